"""The access stack a team deploys in each SES account of a deployment: one role the deployment's
rotation and watch functions may assume, and the SMTP users the stack makes there.

- Trust: the deployment account's root, on the condition that the caller is one of the two function
  roles by exact ARN (``aws:PrincipalArn``). Unlike naming the roles as principals, this can be
  deployed before the roles exist and keeps working when they are made again.
- Permissions: the key actions the rotation uses, on the deployment's IAM path in this account and
  on the existing users the installations in this account name; nothing else.
- Users: for an installation that wants the stack to make its user, that user (fixed name, the
  deployment's path, only ``ses:SendRawEmail``), as the main stack does in its own account.

One template per SES account (``<stackName>-Access-<account>``): the users differ per account,
and a template of them all would outgrow CloudFormation's 500 resources long before 500 accounts.
The template has no parameters, no assets, no lookups and no bootstrap version rule, and the
stack names no deployment roles (``LegacyStackSynthesizer``): ``cdk deploy`` with that account's
credentials needs no ``cdk bootstrap`` there, and a CloudFormation StackSet instance in that
account takes the template as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Environment, LegacyStackSynthesizer, Stack, Tags, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from . import acknowledgments
from .accounts import (
    ACCESS_ROLE,
    ROTATION_ROLE,
    WATCH_ROLE,
    created_user_name,
    function_role_arn,
    role_name,
    role_path,
)
from .deployment import DEPLOYMENT_TAG, INSTALLATION_TAG, Deployment
from .function import ROTATION_KEY_ACTIONS
from .installation import KionInstallation
from .installation_resources import make_smtp_sender
from .rotation import SesSmtpRotation


class SesSmtpAccess(Construct):
    """The access role (``role``) and the SMTP users the stack makes (``users``, installation
    name -> user) in the account of the stack it is put in.

    :param deployment: the deployment whose functions may assume the role.
    :param deployment_account: the 12-digit account the deployment's stack is in.
    :param installations: the deployment's installations whose ``ses_account`` is this one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        deployment_account: str,
        installations: Sequence[KionInstallation],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        function_roles = [
            function_role_arn(deployment, purpose, deployment_account)
            for purpose in (ROTATION_ROLE, WATCH_ROLE)
        ]
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name(deployment, ACCESS_ROLE),
            path=role_path(deployment),
            description=(
                f"Lets the rotation and watch of SES SMTP deployment {deployment.name} "
                f"({deployment_account}) manage the access keys of its SMTP users here"
            ),
            assumed_by=iam.AccountPrincipal(deployment_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": function_roles}}
            ),
        )
        self.users: dict[str, iam.User] = {}
        named_users = []
        Tags.of(self).add(DEPLOYMENT_TAG, deployment.name)
        for installation in installations:
            if installation.iam_user_name:
                named_users.append(
                    stack.format_arn(
                        service="iam",
                        region="",
                        resource="user",
                        resource_name=(
                            f"{installation.iam_user_path.lstrip('/')}{installation.iam_user_name}"
                        ),
                    )
                )
            else:
                self.users[installation.name] = self._user(deployment, installation)
        # Inline in the role: one resource, and the policy exists whenever the role does.
        cfn_role = self.role.node.default_child
        assert isinstance(cfn_role, iam.CfnRole)
        cfn_role.policies = [
            iam.CfnRole.PolicyProperty(
                policy_name="SmtpUserKeys",
                policy_document=iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="SmtpUserKeys",
                            actions=ROTATION_KEY_ACTIONS,
                            resources=[deployment.users_arn(stack), *sorted(set(named_users))],
                        )
                    ]
                ),
            )
        ]
        acknowledgments.acknowledge_access_stack(
            deployment,
            self.role,
            [(i, self.users[i.name]) for i in installations if i.name in self.users],
        )

    def _user(self, deployment: Deployment, installation: KionInstallation) -> iam.User:
        user = iam.User(
            self,
            f"SmtpUser-{installation.name}",
            user_name=created_user_name(deployment, installation),
            path=deployment.user_path,
        )
        Tags.of(user).add(INSTALLATION_TAG, installation.name)
        make_smtp_sender(user, installation)  # as the main stack makes its users
        return user


class SesSmtpAccessStack(Stack):
    """``<stackName>-Access-<account>``: the ``SesSmtpAccess`` of one SES account of
    ``rotation``, to deploy in that account (``cdk deploy`` with its credentials, or a StackSet
    instance)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rotation: SesSmtpRotation,
        ses_account: str,
        stack_name: str | None = None,
    ) -> None:
        deployment_stack = Stack.of(rotation)
        if ses_account not in rotation.ses_accounts:
            raise ValueError(
                f"No installation of deployment {rotation.deployment.name} names ses_account "
                f"{ses_account!r}. Fix: make an access stack for one of "
                f"{', '.join(rotation.ses_accounts) or 'none'}."
            )
        assert not Token.is_unresolved(deployment_stack.account)  # the construct's check
        super().__init__(
            scope,
            construct_id,
            stack_name=stack_name,
            description=(
                f"Access for SES SMTP rotation deployment {rotation.deployment.name} of account "
                f"{deployment_stack.account} to its SMTP users in this account"
            ),
            env=Environment(account=ses_account, region=deployment_stack.region),
            synthesizer=LegacyStackSynthesizer(),
        )
        self.access = SesSmtpAccess(
            self,
            "Access",
            deployment=rotation.deployment,
            deployment_account=deployment_stack.account,
            installations=rotation.ses_accounts[ses_account],
        )
