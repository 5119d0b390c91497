"""CloudFormation custom resource that writes an installation's settings into its secret."""
