"""The layer of the Powertools for AWS Lambda (Python) release the function is tested with.

AWS publishes the layer ARN of every release as a public SSM parameter,
``/aws/service/powertools/python/<arch>/python<major.minor>/<release>``. The stack reads that
parameter when CloudFormation deploys it, so no layer version number is written anywhere here:
layer numbers do not follow releases one for one.
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

# The release pinned in requirements-dev.txt (a test keeps the two equal).
POWERTOOLS_RELEASE = "3.37.0"
LAYER_ARN_SETTING = "powertoolsLayerArn"

# The regions where AWS writes the release parameters (the regions of the Powertools project's
# SSM publishing workflow, .github/workflows/update_ssm.yml). GovCloud, China, me-central-1,
# me-south-1 and regions opened since have no parameter: there the layer ARN must be given.
PARAMETER_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    }
)


def parameter_name(
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    release: str = POWERTOOLS_RELEASE,
) -> str:
    """``/aws/service/powertools/python/arm64/python3.12/3.37.0`` for Python 3.12 on arm64."""
    if not runtime.name.startswith("python3."):
        raise ValueError(
            f"Powertools for AWS Lambda (Python) needs a Python runtime, not {runtime.name}. "
            "Fix: choose a python3.x runtime."
        )
    return f"/aws/service/powertools/python/{architecture.name}/{runtime.name}/{release}"


def layer_arn(
    scope: Construct,
    *,
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    release: str = POWERTOOLS_RELEASE,
) -> str:
    """The layer ARN of ``release``, read from its SSM parameter at deploy time.

    A stack whose region is known at synthesis refuses a region without the parameter. An
    environment-agnostic stack cannot be checked here: deployed to such a region, CloudFormation
    stops with the parameter's name before it changes anything.
    """
    region = Stack.of(scope).region
    if not Token.is_unresolved(region) and region not in PARAMETER_REGIONS:
        raise ValueError(
            f"AWS publishes no Powertools layer parameter in {region}, so the layer of "
            f"Powertools {release} cannot be looked up there. Fix: set {LAYER_ARN_SETTING} to "
            "the ARN of that release's layer in the region (AWS's own, where it publishes one, "
            "or a copy you publish)."
        )
    return ssm.StringParameter.value_for_string_parameter(
        scope, parameter_name(runtime, architecture, release)
    )
