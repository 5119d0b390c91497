"""The ARN of AWS's managed Powertools for AWS Lambda (Python) v3 layer, for a region.

AWS publishes the layer as ``AWSLambdaPowertoolsPythonV3-<python>-<arch>`` from one account per
partition (two in GovCloud). Every Powertools release is published under the same layer version
number in every region and for every Python version, so the version pins the Powertools release.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnCondition, Fn, Stack, Token
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

# Layer version 40 is the publication of aws-lambda-powertools 3.37.0, the release pinned in
# requirements-dev.txt. How the number was established (no AWS credentials were at hand to ask
# Lambda directly): the v3 pipeline has published exactly one layer version per PyPI release
# since 3.0.0 (3.1.0 -> 2, 3.2.0 -> 3, 3.4.0 -> 5, 3.20.0 -> 23, 3.23.0 -> 27 and 3.31.1 -> 36
# are each documented); PyPI lists 3.34.0, 3.35.0, 3.36.0 and 3.37.0 after 3.31.1 (no 3.32 or
# 3.33), which makes 3.37.0 version 40. Check it before a first production deploy with
#   aws lambda get-layer-version-by-arn --region <region> --arn <the ARN this module builds>
# (the Description names the Powertools version) or read the SSM parameter
# /aws/service/powertools/python/arm64/python3.12/latest; override with the
# `powertoolsLayerVersion` setting without a code change.
POWERTOOLS_LAYER_VERSION = 40
POWERTOOLS_VERSION = "3.37.0"

COMMERCIAL_LAYER_ACCOUNT = "017000801446"
# Regions outside the commercial partition, each with its own publishing account.
REGIONAL_LAYER_ACCOUNTS = {
    "us-gov-east-1": "165087284144",
    "us-gov-west-1": "165093116878",
    "cn-north-1": "498634801083",
}


def layer_name(runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> str:
    """``AWSLambdaPowertoolsPythonV3-python312-arm64`` for Python 3.12 on arm64."""
    python = runtime.name.replace(".", "")  # "python3.12" -> "python312"
    if not python.startswith("python3"):
        raise ValueError(f"Powertools for AWS Lambda (Python) needs a Python runtime, not {python}")
    return f"AWSLambdaPowertoolsPythonV3-{python}-{architecture.name}"


def partition_of(region: str) -> str:
    """The ARN partition of a concrete region name."""
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def layer_arn_for_region(
    region: str,
    *,
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    version: int = POWERTOOLS_LAYER_VERSION,
) -> str:
    """The layer version ARN in a concrete region, e.g.
    ``arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:40``.
    """
    if partition_of(region) == "aws-cn" and region not in REGIONAL_LAYER_ACCOUNTS:
        raise ValueError(
            f"AWS does not publish the Powertools layer in {region}; set the layer ARN explicitly "
            "(the powertoolsLayerArn setting) to a copy you publish yourself."
        )
    account = REGIONAL_LAYER_ACCOUNTS.get(region, COMMERCIAL_LAYER_ACCOUNT)
    name = layer_name(runtime, architecture)
    return f"arn:{partition_of(region)}:lambda:{region}:{account}:layer:{name}:{version}"


def layer_arn(
    scope: Construct,
    *,
    runtime: lambda_.Runtime,
    architecture: lambda_.Architecture,
    version: int = POWERTOOLS_LAYER_VERSION,
) -> str:
    """The layer ARN for the stack of ``scope``.

    A stack with a concrete region gets a literal ARN. An environment-agnostic stack gets an ARN
    that CloudFormation completes at deploy time, picking the publishing account by region.
    """
    region = Stack.of(scope).region
    if not Token.is_unresolved(region):
        return layer_arn_for_region(
            region, runtime=runtime, architecture=architecture, version=version
        )
    account: str = COMMERCIAL_LAYER_ACCOUNT
    for special_region, special_account in REGIONAL_LAYER_ACCOUNTS.items():
        condition = CfnCondition(
            scope,
            f"PowertoolsLayerIn{special_region.replace('-', '')}",
            expression=Fn.condition_equals(Aws.REGION, special_region),
        )
        account = Fn.condition_if(condition.logical_id, special_account, account).to_string()
    name = layer_name(runtime, architecture)
    return Fn.join(
        "",
        ["arn:", Aws.PARTITION, ":lambda:", Aws.REGION, ":", account, f":layer:{name}:{version}"],
    )
