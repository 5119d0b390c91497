#!/usr/bin/env python3
"""CDK app: the SES SMTP credential rotation for the Kion installations named in cdk.json.

`make synth` (or `npx cdk synth`) runs it; every synthesis is checked by cdk-nag's AWS Solutions
rules, and an unacknowledged finding fails it.
"""

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from ses_smtp_rotator.cdk import SesSmtpRotatorStack, load_settings


def main() -> None:
    app = cdk.App()
    try:
        settings = load_settings(app.node.get_all_context())
        SesSmtpRotatorStack(app, "SesSmtpRotator", settings=settings)
    except ValueError as error:  # SettingsError, or a check of the construct
        sys.exit(f"cdk.json: {error}")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()


if __name__ == "__main__":
    main()
