"""Kion's published OpenAPI description (v3.14), and a check of the Kion stand-in against it.

``make install`` fetches the description from the kion-mcp-server wheel into
``.venv/kion-openapi/fixed_spec.json`` (``KION_OPENAPI_SPEC`` names another copy). Its paths lack
the ``/api`` prefix; its one server, ``/api``, supplies it. openapi-core matches each request the
stand-in received to its operation and checks the request (path parameters, bearer header, body)
and the reply (status documented for the operation, body schema).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse

from ses_smtp_rotator.local.kion_app_api_keys import KionExchange

SPEC_PATH = Path(
    os.environ.get("KION_OPENAPI_SPEC")
    or Path(__file__).resolve().parent.parent / ".venv" / "kion-openapi" / "fixed_spec.json"
)


@cache
def kion_openapi() -> OpenAPI:
    """The description, loaded once (the document itself is not re-validated: 5 s per worker)."""
    if not SPEC_PATH.is_file():
        raise FileNotFoundError(
            f"Kion's OpenAPI description is not at {SPEC_PATH}. Fix: run make install, which "
            "fetches it from the kion-mcp-server wheel (or set KION_OPENAPI_SPEC)."
        )
    spec = json.loads(SPEC_PATH.read_text())
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


@dataclass
class OpenApiCheck:
    """An observer of the stand-in: checks every exchange; keeps what broke the description.

    ``undocumented`` holds replies whose status the description does not list for the route
    (the stand-in's fault switches make some on purpose); ``violations`` everything else.
    ``secrets`` are scrubbed from every message.
    """

    secrets: Callable[[], Iterable[str]] = lambda: ()
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    undocumented: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, exchange: KionExchange) -> None:
        target = urlsplit(exchange.target)
        content_type = exchange.headers.get("Content-Type", "application/json")
        request = MockRequest(
            "https://kion.invalid",
            exchange.method.lower(),
            target.path,
            headers=dict(exchange.headers),
            data=exchange.body or None,
            content_type=content_type if exchange.body else None,
        )
        response = MockResponse(
            exchange.reply, status_code=exchange.status, content_type="application/json"
        )
        where = f"{exchange.method} {target.path} -> {exchange.status}"
        problems: list[str] = []
        undocumented: list[str] = []
        try:
            kion_openapi().validate_request(request)
        except Exception as error:
            problems.append(f"request of {where}: {self._text(error)}")
        try:
            kion_openapi().validate_response(request, response)
        except ResponseNotFound:
            undocumented.append(where)
        except Exception as error:
            problems.append(f"reply of {where}: {self._text(error)}")
        with self._lock:
            self.checked += 1
            self.violations.extend(problems)
            self.undocumented.extend(undocumented)

    def _text(self, error: BaseException) -> str:
        """The error and its schema errors, without the whole value (which may hold secrets)."""
        found: list[str] = []
        cause: BaseException | None = error
        while cause is not None:
            for schema_error in getattr(cause, "schema_errors", None) or ():
                found.append(f"{schema_error.json_path}: {schema_error.message}")
            cause = cause.__cause__ or cause.__context__
        text = "; ".join(found) or str(error)
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return f"{type(error).__name__}: {text[:600]}"
