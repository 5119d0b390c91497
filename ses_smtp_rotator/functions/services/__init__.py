"""The outside systems, each behind one small module with a typed surface.

- ``aws_clients``: the boto3 clients and the translation of AWS errors into actionable ones.
- ``iam_keys``: the SES SMTP user's access keys (IAM).
- ``secrets_store``: the versions of an installation secret and the Kion API key (Secrets Manager).
- ``ses_smtp``: SMTP AUTH against SES and the bounded wait until SES accepts a new key.
- ``ses_hosts``: which SES region an SMTP host name belongs to, and where Kion sends.
- ``smtp_password``: the SES SMTP password derived from a secret access key.
- ``kion_settings``: Kion's SMTP settings (``/api/v3/app-config``).
- ``kion_keys``: Kion's App API keys (``/api/v3/app-api-key``).
"""
