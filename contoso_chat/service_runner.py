"""Start and stop the HTTP service as a background process on 127.0.0.1 (for notebooks, tests, benchmarks)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from contoso_chat.paths import build_dir
from contoso_chat.processes import terminate


@dataclass(frozen=True)
class RunningService:
    """A service process and where it listens."""

    pid: int
    port: int
    started_s: float  # seconds from launch until /ready answered 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _state_file() -> Path:
    folder = build_dir() / "service"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "service.json"


def free_port() -> int:
    """A port nobody listens on, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_status(url: str, timeout: float = 5.0) -> int:
    """The HTTP status of a GET (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def start_service(port: int | None = None, max_queue: int | None = None, timeout_s: float = 180.0) -> RunningService:
    """Launch `python -m contoso_chat.service` and wait until /ready says the model, index and store are loaded."""
    stop_service()
    port = port or free_port()
    command = [sys.executable, "-m", "contoso_chat.service", "--port", str(port)]
    if max_queue is not None:
        command += ["--max-queue", str(max_queue)]
    log = (_state_file().parent / "service.log").open("ab")
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env=os.environ.copy())
    log.close()
    _state_file().write_text(json.dumps({"pid": process.pid, "port": port}))
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _state_file().unlink(missing_ok=True)
            raise RuntimeError("The service stopped while starting; see build/service/service.log.")
        if get_status(f"http://127.0.0.1:{port}/ready", timeout=10) == 200:
            return RunningService(process.pid, port, round(time.monotonic() - started, 2))
        time.sleep(0.5)
    stop_service()
    raise RuntimeError(f"The service was not ready after {timeout_s:.0f} s; see build/service/service.log.")


def stop_service() -> bool:
    """Stop the service recorded in build/service/service.json; True if one was running."""
    path = _state_file()
    if not path.exists():
        return False
    pid = json.loads(path.read_text())["pid"]
    path.unlink(missing_ok=True)
    return terminate(pid)
