"""The Secrets Manager rotation of a Kion installation's Amazon SES SMTP credential.

- ``handler``: the entry point (``handler.lambda_handler``), the steps under
  ``functions.rotation_protocol``.
- ``steps``: ``Rotation``, the four steps (a new access key, Kion given its SMTP password once SES
  accepts it, the proof, AWSCURRENT moved and the replaced key deleted).
- ``spare_keys``: making room for the new access key within IAM's limit of two.
- ``send_proof``: the optional message sent with the new credential before Kion gets it.
"""
