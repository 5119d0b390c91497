"""The code that runs in AWS Lambda: everything the deployment's functions import, and nothing else.

The construct ships this package (with the package root's empty ``__init__``) as the functions'
asset; boto3 and urllib3 come with the Lambda runtime and Powertools with AWS's managed layer.

- ``smtp_rotation``: the Secrets Manager rotation of an installation's SES SMTP credential.
- ``kion_key_renewal``: the Secrets Manager rotation of the Kion App API key it uses.
- ``watch``: the daily watch over every installation, and the health checks ``status`` shares.
- ``installation_settings``: the custom resource that writes an installation's settings.
- ``services``: one module per outside system (IAM, Secrets Manager, SES SMTP and its hosts, Kion's
  settings and keys) and the SES SMTP password derivation.
- ``rotation_protocol``: Secrets Manager's four-step protocol both rotations run under (the
  event, the version guards, dispatch to the steps, failure reporting).
- ``config``, ``errors``, ``installation_secret``, ``regions``, ``telemetry``,
  ``installation_metrics``: what the functions share (tunables, the error types an operator can act
  on, the installation secret's schema, SES regions, Powertools objects, per-installation metrics).
"""
