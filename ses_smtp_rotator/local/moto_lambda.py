"""Makes moto's Lambda ``Invoke`` run local functions, the way it would run deployed ones.

moto runs a function only in Docker. With :class:`MotoInvokeHook` installed, ``Invoke`` (in
process, or on a moto server in the same process) of a function it knows by name or ARN calls that
function's :class:`LambdaRuntime` (or any callable taking the event) and answers as Lambda does: the
handler's return value as JSON, or ``FunctionError: Unhandled`` with the error type and message.
Any other function goes to moto.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.core import DEFAULT_ACCOUNT_ID

from .lambda_runtime import FunctionError
from .rotation_service import Invoke


class MotoInvokeHook:
    """Routes moto's Invoke of ``functions`` (name -> invoke) to local functions."""

    def __init__(
        self,
        functions: Mapping[str, Invoke],
        *,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        self.functions = dict(functions)
        self._backend = lambda_backends[account_id][region]
        self._installed = False

    def install(self) -> MotoInvokeHook:
        self._backend.invoke = self.invoke  # type: ignore[method-assign]
        self._installed = True
        return self

    def uninstall(self) -> None:
        if self._installed:
            del self._backend.invoke
            self._installed = False

    def invoke(
        self,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> str | bytes | None:
        """moto's LambdaBackend.invoke, for the local functions."""
        name = function_name.split(":function:", 1)[-1].split(":", 1)[0]
        function = self.functions.get(name)
        if function is None:
            return type(self._backend).invoke(
                self._backend, function_name, qualifier, body, headers, response_headers
            )
        event = json.loads(body) if body else {}
        try:
            result = function(event)
        except FunctionError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": error.error_type, "errorMessage": error.message})
        except Exception as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)})
        return json.dumps(result)
