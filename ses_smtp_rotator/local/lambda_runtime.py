"""A stand-in for the Lambda service: runs a handler in its own process, like a warm function.

The process gets only the environment a Lambda function would (the function's variables, a region
and credentials), so nothing of the caller's configuration leaks in. Every line it writes to
standard output or standard error goes to ``on_output``, the way Lambda sends a function's output
to its CloudWatch Logs group, framed by platform records like Lambda's JSON log format. Invocations
run one at a time (a function with a reserved concurrency of one).

Run as ``python -m ses_smtp_rotator.local.lambda_runtime HANDLER`` it is the worker side.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .rotation_service import LambdaContextStub

OutputSink = Callable[[str, float], None]
"""``on_output(line, epoch_seconds)``."""

# Variables a process needs to start at all; everything else comes from the function's settings.
_PASSED_THROUGH = (
    "PATH",
    "PYTHONPATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "SYSTEMROOT",
    "VIRTUAL_ENV",
)
_REPORT = "platform.report"


class FunctionError(Exception):
    """The handler raised: ``error_type`` and ``message`` as Lambda reports them."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        self.message = message
        super().__init__(f"{error_type}: {message}")


class LambdaRuntime:
    """One warm instance of a function, in a child process."""

    def __init__(
        self,
        handler: str,
        *,
        function_name: str,
        function_arn: str,
        environment: Mapping[str, str],
        on_output: OutputSink,
        timeout: float = 300.0,
    ) -> None:
        self.handler = handler
        self.function_name = function_name
        self.function_arn = function_arn
        self.environment = dict(environment)
        self.timeout = timeout
        self._on_output = on_output
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._results: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reported: set[str] = set()
        self._output_closed = False
        self._reported_changed = threading.Condition()
        self._threads: list[threading.Thread] = []

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> LambdaRuntime:
        """Start the process and wait until the handler module is imported (the cold start)."""
        return self.launch().wait_ready()

    def launch(self) -> LambdaRuntime:
        """Start the process without waiting for its cold start (several start side by side);
        :meth:`wait_ready` waits for it."""
        read_results, write_results = os.pipe()
        env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        env.update(self.environment)
        env.update(
            AWS_LAMBDA_FUNCTION_NAME=self.function_name,
            AWS_LAMBDA_FUNCTION_TIMEOUT=str(int(self.timeout)),
            LAMBDA_RUNTIME_RESULT_FD=str(write_results),
            LAMBDA_RUNTIME_FUNCTION_ARN=self.function_arn,
            PYTHONUNBUFFERED="1",
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, self.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            bufsize=1,
            pass_fds=(write_results,),
            start_new_session=True,  # Ctrl-C goes to the caller, which stops this process
        )
        os.close(write_results)
        self._output_closed = False
        self._threads = [
            threading.Thread(target=self._read_output, args=(self._process,), daemon=True),
            threading.Thread(target=self._read_results, args=(read_results,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def wait_ready(self) -> LambdaRuntime:
        """Wait until the launched process has imported the handler module; raises
        FunctionError (and stops the process) when the import failed."""
        ready = self._next_result(self.timeout)
        if ready.get("type") != "ready":
            self.stop()
            raise FunctionError(ready.get("errorType", "InitError"), ready.get("errorMessage", ""))
        return self

    def end_input(self) -> None:
        """Tell the process no invocation follows: it exits after the one it runs, while the
        caller ends others side by side; :meth:`stop` then waits for it."""
        if self._process is not None and self._process.stdin:
            self._process.stdin.close()

    def stop(self) -> None:
        """End the process; an invocation still running is ended too, as when Lambda stops an
        instance, and fails with Runtime.ExitError. Safe to call twice."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin:
            process.stdin.close()
        if self._lock.locked():
            process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for thread in self._threads:
            thread.join(timeout=3)
        if process.stdout:
            process.stdout.close()

    def __enter__(self) -> LambdaRuntime:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- invoking -------------------------------------------------------------------------------

    def invoke(self, event: dict[str, Any]) -> Any:
        """Invoke the handler with ``event`` and return its result; raise FunctionError when it
        raises or runs out of time. Returns after all its output has gone to ``on_output``."""
        with self._lock:
            process = self._process
            if process is None or process.stdin is None or process.poll() is not None:
                raise FunctionError("Runtime.ExitError", "the function's process is not running")
            request_id = str(uuid.uuid4())
            process.stdin.write(json.dumps({"request_id": request_id, "event": event}) + "\n")
            process.stdin.flush()
            try:
                result = self._next_result(self.timeout)
            except queue.Empty:
                self.stop()
                raise FunctionError(
                    "Sandbox.Timedout", f"Task timed out after {self.timeout:.2f} seconds"
                ) from None
            self._wait_for_report(request_id)
        if result.get("type") == "error":
            raise FunctionError(result["errorType"], result["errorMessage"])
        return result.get("result")

    def __call__(self, event: dict[str, Any]) -> Any:
        return self.invoke(event)

    # -- the parent's reader threads ------------------------------------------------------------

    def _read_output(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            if line:
                self._on_output(line, time.time())
            if _REPORT in line:
                request_id = _report_request_id(line)
                with self._reported_changed:
                    self._reported.add(request_id)
                    self._reported_changed.notify_all()
        with self._reported_changed:
            self._output_closed = True
            self._reported_changed.notify_all()

    def _read_results(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "r", encoding="utf-8") as results:
            for line in results:
                self._results.put(json.loads(line))
        self._results.put(
            {
                "type": "error",
                "errorType": "Runtime.ExitError",
                "errorMessage": "the function's process exited",
            }
        )

    def _next_result(self, timeout: float) -> dict[str, Any]:
        return self._results.get(timeout=timeout)

    def _wait_for_report(self, request_id: str) -> None:
        with self._reported_changed:
            self._reported_changed.wait_for(
                lambda: request_id in self._reported or self._output_closed, timeout=5
            )
            self._reported.discard(request_id)


def _report_request_id(line: str) -> str:
    try:
        return str(json.loads(line)["record"]["requestId"])
    except (ValueError, KeyError, TypeError):
        return ""


# -- the worker side ------------------------------------------------------------------------------


def _platform(kind: str, request_id: str, **record: Any) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(
        json.dumps({"time": stamp, "type": kind, "record": {"requestId": request_id, **record}}),
        flush=True,
    )


def _worker(handler_path: str) -> None:
    results = os.fdopen(int(os.environ["LAMBDA_RUNTIME_RESULT_FD"]), "w", encoding="utf-8")

    def reply(**message: Any) -> None:
        results.write(json.dumps(message, default=str) + "\n")
        results.flush()

    module_name, _, attribute = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:
        reply(type="error", errorType="Runtime.ImportModuleError", errorMessage=str(error))
        return
    reply(type="ready")
    function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    function_arn = os.environ["LAMBDA_RUNTIME_FUNCTION_ARN"]
    timeout = float(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"])
    for line in sys.stdin:
        request = json.loads(line)
        request_id = request["request_id"]
        _platform("platform.start", request_id, version="$LATEST")
        started = time.monotonic()
        context = LambdaContextStub(
            function_name=function_name,
            invoked_function_arn=function_arn,
            aws_request_id=request_id,
            timeout_seconds=timeout,
        )
        try:
            outcome: dict[str, Any] = {
                "type": "result",
                "result": handler(request["event"], context),
            }
        except Exception as error:
            outcome = {
                "type": "error",
                "errorType": type(error).__name__,
                "errorMessage": str(error),
            }
            print(
                json.dumps(
                    {
                        "timestamp": datetime.now(UTC).isoformat(),
                        "level": "ERROR",
                        "message": {
                            "errorMessage": str(error),
                            "errorType": type(error).__name__,
                            "requestId": request_id,
                            "stackTrace": traceback.format_tb(error.__traceback__),
                        },
                        "requestId": request_id,
                    }
                ),
                flush=True,
            )
        sys.stdout.flush()
        duration_ms = round((time.monotonic() - started) * 1000, 2)
        _platform(
            "platform.report",
            request_id,
            status="success" if outcome["type"] == "result" else "error",
            metrics={"durationMs": duration_ms},
        )
        reply(**outcome)


if __name__ == "__main__":
    _worker(sys.argv[1])
