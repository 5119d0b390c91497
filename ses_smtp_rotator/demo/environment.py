"""The demo's world: AWS (a moto server), SES SMTP and Kion on loopback, one Kion installation set
up the way the CDK stack sets it up, and the rotation function deployed as a separate process that
Secrets Manager's stand-in invokes. With ``with_watch``, also the daily watch and the Kion API key
renewal, each in its own process: the watch answers Lambda ``Invoke`` (as ``status`` calls it) and
starts renewals through ``RotateSecret``, which runs the renewal function.

The command line talks to it like to AWS: every boto3 client honours ``AWS_ENDPOINT_URL``
(:meth:`DemoEnvironment.aws_environment`). Tests use it the same way.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api._internal.models import moto_api_backend
from moto.server import ThreadedMotoServer

from ses_smtp_rotator.functions.kion_key_renewal.key_names import named_by_deployment
from ses_smtp_rotator.functions.services.kion_keys import KionKeyClient
from ses_smtp_rotator.functions.services.smtp_password import derive_smtp_password

from ..local.cloudwatch_logs import MotoLogGroupWriter
from ..local.kion_server import KionStandIn
from ..local.lambda_runtime import LambdaRuntime
from ..local.moto_lambda import MotoInvokeHook
from ..local.moto_rotation import MotoRotateSecretHook
from ..local.smtp_server import SesSmtpServer, moto_key_lookup
from ..local.tls import LoopbackCertificates
from .kion_side import KionSide, RemoteKion, StandInKion
from .ses_account import SesAccount

REGION = "us-east-1"
FUNCTION_NAME = "ses-smtp-rotator-demo"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{FUNCTION_NAME}"
LOG_GROUP = f"/aws/lambda/{FUNCTION_NAME}"
HANDLER = "ses_smtp_rotator.functions.smtp_rotation.handler.lambda_handler"
WATCH_NAME = "ses-smtp-rotator-demo-watch"
WATCH_HANDLER = "ses_smtp_rotator.functions.watch.handler.lambda_handler"
RENEWAL_NAME = "ses-smtp-rotator-demo-kion-key"
RENEWAL_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{RENEWAL_NAME}"
RENEWAL_HANDLER = "ses_smtp_rotator.functions.kion_key_renewal.handler.lambda_handler"
DEPLOYMENT = "demo"
DEPLOYMENT_TAG = "ses-smtp-rotator:deployment"
INSTALLATION_TAG = "ses-smtp-rotator:installation"
FUNCTION_TIMEOUT_SECONDS = 300
# The key the demo makes in a Kion given by --kion-url, so that the key it was given is never
# renewed (a renewal deletes the key it replaces).
DEMO_KEY_NAME = "ses-smtp-rotator-demo"
SCHEDULE = "cron(0 14 ? * TUE#1 *)"
ROTATE_TARGET_ARN = "arn:aws:scheduler:::aws-sdk:secretsmanager:rotateSecret"
# What the stack's SES SMTP user may do.
SEND_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": "*"}],
    }
)
# The demo's AWS credentials: moto accepts any.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_SESSION_TOKEN": "demo",
}
# The function's settings as the CDK stack sets them, plus what a local run needs.
FUNCTION_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "ses-smtp-rotator",
    "POWERTOOLS_METRICS_NAMESPACE": "SesSmtpRotator",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "SES_ACCEPT_TIMEOUT_SECONDS": "120",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon on this machine
}

Narrate = Callable[[str], None]


@dataclass(frozen=True)
class DemoInstallation:
    """What was set up for one Kion installation."""

    name: str
    secret_arn: str
    secret_name: str
    kion_api_key_secret_arn: str
    kion_api_key_secret_name: str
    iam_user_name: str
    hand_made_key_id: str


class DemoEnvironment:
    """Starts and stops everything the demo runs on. Use as a context manager."""

    def __init__(
        self,
        *,
        propagation_delay: float = 3.0,
        remote_kion: RemoteKion | None = None,
        function_environment: Mapping[str, str] | None = None,
        rotation_retries: int = 1,
        installation_name: str = "kion",
        with_watch: bool = False,
        register_functions: bool = True,
        ses_account: str | None = None,
    ) -> None:
        """``register_functions``: make the functions known to Lambda as the stack does (their
        timeout, log group and watch), so ``status`` reads their configuration. ``ses_account``:
        the installation's IAM user lives in that account, reached through the access role."""
        self.propagation_delay = propagation_delay
        self.remote_kion = remote_kion
        self.function_environment = {**FUNCTION_ENVIRONMENT, **(function_environment or {})}
        self.rotation_retries = rotation_retries
        self.installation_name = installation_name
        self.with_watch = with_watch
        self.register_functions = register_functions
        self.ses_account = ses_account
        self.ses: SesAccount | None = None
        self._role_settings: dict[str, dict[str, str]] = {}
        self.watch: LambdaRuntime | None = None
        self.renewal: LambdaRuntime | None = None
        self.renewal_hook: MotoRotateSecretHook | None = None
        self.invoke_hook: MotoInvokeHook | None = None
        self.alert_topic_arn = ""
        self.certificates: LoopbackCertificates | None = None
        self.moto: ThreadedMotoServer | None = None
        self.endpoint_url = ""
        self.smtp: SesSmtpServer | None = None
        self.kion_server: KionStandIn | None = None
        self.kion: KionSide | None = None
        self.runtime: LambdaRuntime | None = None
        self.hook: MotoRotateSecretHook | None = None
        self.installation: DemoInstallation | None = None
        self.notes: list[str] = []

    # -- life cycle -----------------------------------------------------------------------------

    def start(
        self, narrate: Narrate = lambda line: None, heading: Narrate = lambda line: None
    ) -> DemoEnvironment:
        """Start every server and set the installation up, telling ``narrate`` each part and
        ``heading`` each stage. On failure, stops what it started."""
        try:
            self._start(narrate, heading)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything that was started, in reverse order. Safe to call twice."""
        if self.renewal_hook is not None:
            self.renewal_hook.wait_idle(timeout=5)
        self._remove_demo_keys()
        helpers = [runtime for runtime in (self.watch, self.renewal) if runtime is not None]
        for runtime in helpers:
            runtime.end_input()  # both processes end side by side
        for runtime in helpers:
            runtime.stop()
        self.watch = self.renewal = None
        if self.invoke_hook is not None:
            self.invoke_hook.uninstall()
            self.invoke_hook = None
        if self.renewal_hook is not None:
            self.renewal_hook.uninstall()
            self.renewal_hook = None
        if self.runtime is not None:  # ends a rotation still running, like a stopped Lambda
            self.runtime.stop()
            self.runtime = None
        if self.hook is not None:
            self.hook.wait_idle(timeout=5)
            self.hook.uninstall()
            self.hook = None
        if self.kion is not None:
            try:
                note = self.kion.restore()
            except Exception as error:
                note = f"Could not put Kion's original SMTP credential back: {error}"
            if note:
                self.notes.append(note)
            self.kion = None
        if self.kion_server is not None:
            self.kion_server.stop()
            self.kion_server = None
        if self.smtp is not None:
            self.smtp.stop()
            self.smtp = None
        if self.ses is not None:
            self.ses.close()
            self.ses = None
        if self.moto is not None:
            self._reset_moto()
            self.moto.stop()
            server = getattr(self.moto, "_server", None)
            if server is not None:
                server.server_close()
            self.moto = None

    def __enter__(self) -> DemoEnvironment:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what callers use -----------------------------------------------------------------------

    def aws_environment(self) -> dict[str, str]:
        """Environment variables that point boto3 (and the command line) at the demo's AWS."""
        environment = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **CREDENTIALS,
        }
        if self.with_watch:  # `status` asks the watch for Kion's side
            environment["SES_SMTP_ROTATOR_WATCH_FUNCTION"] = WATCH_NAME
        return environment

    def client(self, service: str) -> Any:
        """A boto3 client for the demo's AWS."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
        )

    @property
    def user_account(self) -> str:
        """The account of the installation's IAM user."""
        return self.ses_account or DEFAULT_ACCOUNT_ID

    def user_iam(self) -> Any:
        """An IAM client acting in the account of the installation's IAM user."""
        return self.ses.iam if self.ses else self.client("iam")

    @property
    def ports(self) -> list[int]:
        """The loopback ports the demo's servers listen on."""
        ports = [int(self.endpoint_url.rsplit(":", 1)[-1])] if self.endpoint_url else []
        ports += [server.port for server in (self.smtp, self.kion_server) if server is not None]
        return ports

    # -- starting -------------------------------------------------------------------------------

    def _start(self, narrate: Narrate, heading: Narrate) -> None:
        heading("Starting the stand-ins on loopback")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
        self.certificates = LoopbackCertificates()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        narrate(f"AWS (moto server)             {self.endpoint_url}")
        if self.ses_account:
            self.ses = SesAccount(self.ses_account, self.endpoint_url, REGION)
            self._role_settings = self.ses.deploy_access_role((FUNCTION_NAME, WATCH_NAME))
            narrate(
                f"SES account {self.ses_account}: the IAM user's, with the access role the "
                "functions assume"
            )

        self.smtp = SesSmtpServer(
            moto_key_lookup(self.ses_account or DEFAULT_ACCOUNT_ID),
            region=REGION,
            propagation_delay=self.propagation_delay,
            certificates=self.certificates,
        ).start()
        narrate(
            f"SES SMTP (STARTTLS, AUTH)     {self.smtp.host}:{self.smtp.port}, refuses a new key "
            f"for {self.propagation_delay:g} s (propagation)"
        )
        if self.remote_kion is None:
            self.kion_server = KionStandIn(certificates=self.certificates).start()
            self.kion = StandInKion(self.kion_server)
            narrate(f"Kion API (stand-in)           {self.kion_server.url}")
        else:
            self.kion = self.remote_kion
            narrate(f"Kion API (yours)              {self.remote_kion.url}")

        self.hook = MotoRotateSecretHook(
            self._invoke, FUNCTION_ARN, region=REGION, retries=self.rotation_retries
        ).install()
        writer = MotoLogGroupWriter(LOG_GROUP, region=REGION)
        self.runtime = LambdaRuntime(
            HANDLER,
            function_name=FUNCTION_NAME,
            function_arn=FUNCTION_ARN,
            environment={
                **self.function_environment,
                **self.aws_environment(),
                **self._role_settings.get(FUNCTION_NAME, {}),
            },
            on_output=writer.write,
        ).launch()  # the functions' cold starts run side by side; waited for below
        narrate(f"Rotation function             {FUNCTION_NAME} ({HANDLER}, its own process)")
        # Invoke reaches the rotation function too (``rollback`` invokes it directly).
        self.invoke_hook = MotoInvokeHook({FUNCTION_NAME: self._invoke}, region=REGION).install()
        if self.with_watch:
            self._start_watch(narrate)
        for runtime in (self.runtime, self.renewal, self.watch):
            if runtime is not None:
                runtime.wait_ready()
        heading("Setting up a Kion installation the way the CDK stack does")
        self.installation = self._set_up_installation(narrate)

    def _start_watch(self, narrate: Narrate) -> None:
        """The Kion API key renewal (run by RotateSecret) and the daily watch (run by Invoke)."""
        self.alert_topic_arn = self.client("sns").create_topic(Name="ses-smtp-rotator-alerts")[
            "TopicArn"
        ]
        environment = {**self.function_environment, **self.aws_environment()}
        self.renewal = LambdaRuntime(
            RENEWAL_HANDLER,
            function_name=RENEWAL_NAME,
            function_arn=RENEWAL_ARN,
            environment=environment,
            on_output=MotoLogGroupWriter(f"/aws/lambda/{RENEWAL_NAME}", region=REGION).write,
        ).launch()
        self.renewal_hook = MotoRotateSecretHook(
            self.renewal.invoke, RENEWAL_ARN, region=REGION, retries=self.rotation_retries
        ).install()
        narrate(f"Kion API key renewal          {RENEWAL_NAME} ({RENEWAL_HANDLER})")
        self.watch = LambdaRuntime(
            WATCH_HANDLER,
            function_name=WATCH_NAME,
            function_arn=f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{WATCH_NAME}",
            environment={
                **environment,
                "DEPLOYMENT_NAME": DEPLOYMENT,
                "INSTALLATION_SECRET_PREFIX": f"{self.installation_name}/",
                "ROTATION_FUNCTION_TIMEOUT_SECONDS": "900",
                "ROTATION_MAX_AGE_DAYS": "37",
                "ALERT_TOPIC_ARN": self.alert_topic_arn,
                **self._role_settings.get(WATCH_NAME, {}),
            },
            on_output=MotoLogGroupWriter(f"/aws/lambda/{WATCH_NAME}", region=REGION).write,
        ).launch()
        assert self.invoke_hook is not None
        self.invoke_hook.functions[WATCH_NAME] = self.watch.invoke
        narrate(f"Daily watch                   {WATCH_NAME} ({WATCH_HANDLER})")

    def _invoke(self, event: dict[str, Any]) -> Any:
        assert self.runtime is not None
        return self.runtime.invoke(event)

    def _set_up_installation(self, narrate: Narrate) -> DemoInstallation:
        """What ``cdk deploy`` creates for one installation, and the key Kion already runs on."""
        assert self.kion is not None
        assert self.smtp is not None
        name = self.installation_name
        iam = self.user_iam()
        secretsmanager = self.client("secretsmanager")
        user_name = f"{name}-ses-smtp"
        iam.create_user(UserName=user_name, Path="/ses-smtp-rotator/")
        iam.put_user_policy(UserName=user_name, PolicyName="send", PolicyDocument=SEND_POLICY)
        hand_made = iam.create_access_key(UserName=user_name)["AccessKey"]
        self.kion.set_smtp_credential(
            hand_made["AccessKeyId"], derive_smtp_password(hand_made["SecretAccessKey"], REGION)
        )
        narrate(
            f"IAM user {user_name}, with a hand-made access key {hand_made['AccessKeyId']} that "
            "Kion sends with"
        )
        tags = [
            {"Key": DEPLOYMENT_TAG, "Value": DEPLOYMENT},
            {"Key": INSTALLATION_TAG, "Value": name},
        ]
        api_key_secret = secretsmanager.create_secret(
            Name=f"{name}/kion-api-key",
            Description=f"Kion App API key of installation {name}",
            SecretString=json.dumps({"api_key": self.kion.api_key}),
            Tags=tags,
        )
        narrate(f"Secret {name}/kion-api-key: Kion's App API key")
        settings: dict[str, Any] = {
            "username": "",
            "password": "",
            "ses_region": REGION,
            "iam_user_name": user_name,
            "kion_url": self.kion.url,
            "kion_api_key_secret_id": api_key_secret["ARN"],
            "smtp_host": self.smtp.host,
            "smtp_port": self.smtp.port,
            "smtp_tls": "starttls",  # the loopback port is not 587
            "smtp_ca_bundle": self.smtp.ca_pem,
        }
        if self.kion.ca_pem:
            settings["kion_ca_bundle"] = self.kion.ca_pem
        if self.ses_account:
            settings["ses_account"] = self.ses_account
        secret_name = f"{name}/ses-smtp-credential"
        secret = secretsmanager.create_secret(
            Name=secret_name,
            SecretString=json.dumps(settings),
            Tags=tags,
        )
        narrate(
            f"Secret {secret_name}: the settings, credential empty (the first rotation adopts "
            "Kion's key)"
        )
        self._attach_rotation(secret["ARN"])
        narrate(f"Rotation by {FUNCTION_NAME}, scheduled {SCHEDULE} UTC (EventBridge Scheduler)")
        if self.with_watch:
            self._store_kion_key(
                api_key_secret["ARN"], secret["ARN"], f"{name}/ses-smtp-credential"
            )
            if self.register_functions:
                self._register_function(RENEWAL_NAME, f"/aws/lambda/{RENEWAL_NAME}")
            self.client("secretsmanager").rotate_secret(
                SecretId=api_key_secret["ARN"],
                RotationLambdaARN=RENEWAL_ARN,
                RotateImmediately=False,
            )
            narrate(f"Renewal of {name}/kion-api-key by {RENEWAL_NAME}, started by the watch")
        return DemoInstallation(
            name=name,
            secret_arn=secret["ARN"],
            secret_name=secret_name,
            kion_api_key_secret_arn=api_key_secret["ARN"],
            kion_api_key_secret_name=f"{name}/kion-api-key",
            iam_user_name=user_name,
            hand_made_key_id=hand_made["AccessKeyId"],
        )

    def _store_kion_key(self, api_key_secret_arn: str, installation_arn: str, name: str) -> None:
        """Store the Kion key the renewal may replace, with its id, as set-kion-key does. The
        stand-in's own key is the demo's; from another Kion the demo makes a key of its own."""
        assert self.kion is not None
        if self.kion_server is not None:
            key_id = next(
                i for i, key in self.kion_server.api_keys.items() if key == self.kion.api_key
            )
            api_key = self.kion.api_key
        else:
            created = self.given_key_client().create_key(f"{DEMO_KEY_NAME}/{name}")
            key_id, api_key = created.id, created.key
        self.client("secretsmanager").put_secret_value(
            SecretId=api_key_secret_arn,
            SecretString=json.dumps(
                {
                    "api_key": api_key,
                    "api_key_id": key_id,
                    "installation_secret_id": installation_arn,
                }
            ),
        )

    def given_key_client(self) -> KionKeyClient:
        """Kion's key routes, with the key the demo was given."""
        assert self.kion is not None
        return KionKeyClient(
            self.kion.url,
            self.kion.api_key,
            api_key_secret_id="the Kion API key given to the demo",  # noqa: S106 (a name)
            ca_pem=self.kion.ca_pem,
        )

    def _remove_demo_keys(self) -> None:
        """From another Kion, delete the keys the demo made (its own key and its renewals'),
        found by name; never the key it was given."""
        if not (self.with_watch and self.remote_kion and self.kion and self.moto):
            return
        secret_name = f"{self.installation_name}/kion-api-key"
        secret_arn = self.installation.kion_api_key_secret_arn if self.installation else ""
        demo_key = f"{DEMO_KEY_NAME}/{self.installation_name}/ses-smtp-credential"
        try:
            keys = self.given_key_client()
            removed = [
                info.id
                for info in keys.list_keys()
                if (
                    info.name == demo_key or named_by_deployment(secret_arn, secret_name, info.name)
                )
                and keys.delete_key(info.id)
            ]
        except Exception as error:
            self.notes.append(
                f"Could not remove the Kion API keys the demo made ({type(error).__name__}): "
                f"delete the keys named {demo_key} or ses-smtp-rotator/.../{secret_name}/... in "
                "Kion."
            )
            return
        if removed:
            self.notes.append(
                f"Removed the Kion API key(s) the demo made: {', '.join(map(str, removed))}."
            )

    def _attach_rotation(self, secret_arn: str) -> None:
        """The stack's log group, rotation configuration (no rotation at deploy time) and
        EventBridge Scheduler schedule that calls RotateSecret."""
        self.client("logs").create_log_group(logGroupName=LOG_GROUP)
        if self.register_functions:
            self._register_function(FUNCTION_NAME, LOG_GROUP)
        self.client("secretsmanager").rotate_secret(
            SecretId=secret_arn, RotationLambdaARN=FUNCTION_ARN, RotateImmediately=False
        )
        role = self.client("iam").create_role(
            RoleName=f"{self.installation_name}-rotation-scheduler",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        scheduler = self.client("scheduler")
        group = f"{self.installation_name}-rotation"
        scheduler.create_schedule_group(Name=group)
        scheduler.create_schedule(
            Name=f"{self.installation_name}-smtp-credential",
            GroupName=group,
            ScheduleExpression=SCHEDULE,
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
            Target={
                "Arn": ROTATE_TARGET_ARN,
                "RoleArn": role["Role"]["Arn"],
                "Input": json.dumps({"SecretId": secret_arn}),
            },
        )

    def _register_function(self, function_name: str, log_group: str) -> None:
        """The function as Lambda knows it after ``cdk deploy``: its timeout, log group and the
        watch beside it (its code runs here, in its own process, not in moto)."""
        role = self.client("iam").create_role(
            RoleName=f"{function_name}-role", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("index.py", "# runs locally: see ses_smtp_rotator.local\n")
        variables = {"WATCH_FUNCTION_NAME": WATCH_NAME} if self.with_watch else {}
        self.client("lambda").create_function(
            FunctionName=function_name,
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": archive.getvalue()},
            Timeout=FUNCTION_TIMEOUT_SECONDS,
            LoggingConfig={"LogFormat": "JSON", "LogGroup": log_group},
            Environment={"Variables": variables},
        )

    def _reset_moto(self) -> None:
        """Empty moto's backends, which live on in this process after the server stops."""
        moto_api_backend.reset()
