"""Start and stop the HTTP service as a background process on 127.0.0.1 (for notebooks, tests, benchmarks).

The service binds a port the system picks (port 0), and its real port is read back from the
process, so there is no check-then-use race for a free port. A file lock makes two callers that
start it at once share one process.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from contoso_chat.backends.processes import ManagedServer, listening_port, terminate, wait_until

SERVER = ManagedServer("service", marker="contoso_chat.serving.api")


@dataclass(frozen=True)
class RunningService:
    """A service process and where it listens."""

    pid: int
    port: int
    started_s: float  # seconds from launch until /ready answered 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def get_status(url: str, timeout: float = 5.0) -> int:
    """The HTTP status of a GET (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def start_service(port: int = 0, max_queue: int | None = None, timeout_s: float = 180.0) -> RunningService:
    """Launch `python -m contoso_chat.serving.api` (a fresh one) and wait until /ready says the model,
    index and store are loaded."""
    with SERVER.lock():
        previous = SERVER.recorded()
        if previous:
            terminate(previous.pid)
        SERVER.forget()
        command = [sys.executable, "-m", "contoso_chat.serving.api", "--port", str(port)]
        if max_queue is not None:
            command += ["--max-queue", str(max_queue)]
        started = time.monotonic()
        process = SERVER.launch(command, env=os.environ.copy())
        bound = {"port": port}

        def ready() -> bool:
            bound["port"] = bound["port"] or listening_port(process.pid) or 0
            return bool(bound["port"]) and get_status(f"http://127.0.0.1:{bound['port']}/ready", timeout=10) == 200

        outcome = wait_until(ready, process, timeout_s, poll_s=0.5)
        if outcome != "ready":
            terminate(process.pid)
            reason = ("stopped while starting" if outcome == "exited"
                      else f"was not ready after {timeout_s:.0f} s")
            raise RuntimeError(f"The service {reason}; see build/service/server.log.")
        SERVER.remember(process.pid, bound["port"], {})
        return RunningService(process.pid, bound["port"], round(time.monotonic() - started, 2))


def stop_service() -> bool:
    """Stop the service started by `start_service`; True if one was running."""
    return SERVER.stop()


def stop_local_stack() -> dict[str, bool]:
    """Stop every background server this checkout started: HTTP service, model server, trace service."""
    from contoso_chat.backends.environment import prepare_offline_environment
    from contoso_chat.backends.local_model import stop_local_model
    from contoso_chat.backends.tracing import stop_trace_service

    prepare_offline_environment()
    return {"HTTP service": stop_service(), "model server": stop_local_model(), "trace service": stop_trace_service()}


if __name__ == "__main__":
    for name, was_running in stop_local_stack().items():
        print(f"{name}: {'stopped' if was_running else 'not running'}")
