"""The CloudFormation custom resource that writes an installation's settings into its secret.

- ``handler``: the entry point (``handler.lambda_handler``), run on every deploy.
"""
