"""The Kion App API key's renewal: Secrets Manager's rotation protocol on the Kion API key secret.

- ``handler``: the entry point (``handler.lambda_handler``).
- ``steps``: the four steps (create the new key in Kion, check it, move AWSCURRENT, delete the old).
- ``key_secret``: the Kion API key secret's versions, each a key with its Kion id.
- ``key_life``: when a key is due for renewal, and the error when it no longer works.
"""
