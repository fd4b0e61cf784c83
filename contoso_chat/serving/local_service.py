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
from pathlib import Path

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


def start_service(port: int = 0, max_queue: int | None = None, timeout_s: float = 180.0,
                  engine: str | None = None) -> RunningService:
    """Launch `python -m contoso_chat.serving.api` and wait until /ready says the model, index and store are
    loaded. A service already running with the same settings and answering /ready is shared, not restarted.
    `engine="agent-framework"` runs each turn with Agent Framework (its folder goes on the service's PYTHONPATH)."""
    wanted = {"max_queue": max_queue, "port": port, **({"engine": engine} if engine else {})}
    with SERVER.lock():
        previous = SERVER.recorded()
        if previous and previous.details.get("settings") == wanted and \
                get_status(f"http://127.0.0.1:{previous.port}/ready", timeout=30) == 200:
            return RunningService(previous.pid, previous.port, previous.details.get("started_s", 0.0))
        if previous:
            terminate(previous.pid)
        SERVER.forget()
        command = [sys.executable, "-m", "contoso_chat.serving.api", "--port", str(port)]
        if max_queue is not None:
            command += ["--max-queue", str(max_queue)]
        started = time.monotonic()
        process = SERVER.launch(command, env=service_environment(engine))
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
        seconds = round(time.monotonic() - started, 2)
        SERVER.remember(process.pid, bound["port"], {"settings": wanted, "started_s": seconds})
        return RunningService(process.pid, bound["port"], seconds)


AGENT_FRAMEWORK_DIR = Path(sys.prefix) / "agent-framework"  # where `make setup` installs Agent Framework


def service_environment(engine: str | None) -> dict[str, str]:
    """The service's environment: this one, plus the engine (else SERVICE_ENGINE from .env) and, for Agent
    Framework, its folder in front."""
    from contoso_chat.backends.settings import load_settings

    env = os.environ.copy()
    if engine:
        env["SERVICE_ENGINE"] = engine
    if (engine or load_settings().get("SERVICE_ENGINE")) == "agent-framework":
        env["PYTHONPATH"] = os.pathsep.join([str(AGENT_FRAMEWORK_DIR), *filter(None, [env.get("PYTHONPATH")])])
    return env


def stop_service() -> bool:
    """Stop the service started by `start_service`; True if one was running."""
    return SERVER.stop()


def running_servers() -> dict[str, int]:
    """The background servers of this checkout that are running now, by name, with their pids."""
    from contoso_chat.backends.local_model import SERVER as MODEL_SERVER
    from contoso_chat.backends.tracing import trace_service_pid

    found = {name: record.pid for name, record in (("HTTP service", SERVER.recorded()),
                                                   ("model server", MODEL_SERVER.recorded())) if record}
    trace_pid = trace_service_pid()
    if trace_pid:
        found["trace service"] = trace_pid
    return found


def stop_local_stack(keep: dict[str, int] | None = None) -> dict[str, bool]:
    """Stop the background servers of this checkout: all of them, or those not in `keep` (what was
    already running before, as `running_servers()` returned it), so a run stops only what it started."""
    from contoso_chat.backends.environment import prepare_offline_environment
    from contoso_chat.backends.local_model import stop_local_model
    from contoso_chat.backends.tracing import stop_trace_service

    prepare_offline_environment()
    keep = keep or {}
    now = running_servers()
    stoppers = {"HTTP service": stop_service, "model server": stop_local_model, "trace service": stop_trace_service}
    return {name: (stop() if name in now and keep.get(name) != now[name] else False)
            for name, stop in stoppers.items()}



def main(argv: list[str] | None = None) -> int:
    """`stop`: stop every background server of this checkout. `run -- CMD ...`: run a command, then stop the
    servers it started (not those that were already running), whatever its exit code; return that code."""
    import subprocess

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"]:
        command = args[2:] if args[1:2] == ["--"] else args[1:]
        if not command:
            print("usage: python -m contoso_chat.serving.local_service run -- COMMAND [ARGS...]")
            return 2
        before = running_servers()
        try:
            return subprocess.call(command)
        finally:
            stop_local_stack(keep=before)
    if args not in ([], ["stop"]):
        print("usage: python -m contoso_chat.serving.local_service [stop | run -- COMMAND ...]")
        return 2
    for name, was_running in stop_local_stack().items():
        print(f"{name}: {'stopped' if was_running else 'not running'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
