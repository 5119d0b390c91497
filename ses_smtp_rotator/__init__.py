"""ses-smtp-rotator: rotates the Amazon SES SMTP credential a Kion installation sends e-mail with.

- ``cli``: the operator's command line, ``ses-smtp-rotator`` (``pip install ses-smtp-rotator``).
- ``cdk``: the AWS CDK construct ``SesSmtpRotation`` (``pip install "ses-smtp-rotator[cdk]"``).
- ``functions``: the code the deployed Lambda functions run; the construct ships it as their asset.
- ``local``: loopback stand-ins of AWS, SES SMTP and Kion (``[local]``), for tests and the demo.
- ``demo``: a real rotation on those stand-ins (``python -m ses_smtp_rotator.demo``).
- ``schedule``: the EventBridge Scheduler expression checks the construct and ``status`` share.
"""
