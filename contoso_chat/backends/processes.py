"""Background processes the project starts (model server, HTTP service): start once, find, check, stop.

Everything goes through `psutil`, so it works the same on Linux and macOS, and through a
`filelock` lock per server, so two notebooks or tests starting the same server at once share
one process instead of orphaning a second. A server's pid and port live in a small JSON state
file next to its log under build/.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import psutil
from filelock import FileLock

from contoso_chat.paths import build_dir

LOCK_TIMEOUT_S = 600.0  # a second starter waits at most this long for the first one to finish


@dataclass(frozen=True)
class ServerRecord:
    """Where a background server runs, as kept in its state file."""

    pid: int
    port: int
    marker: str  # a word of its command line, so a recycled pid is never mistaken for the server
    details: dict


class ManagedServer:
    """One kind of background server: its state file, log and start lock under build/<name>/."""

    def __init__(self, name: str, marker: str) -> None:
        self.name = name
        self.marker = marker

    @property
    def folder(self) -> Path:
        path = build_dir() / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def state_file(self) -> Path:
        return self.folder / "server.json"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def lock(self) -> FileLock:
        """The lock held while the server is checked, started or stopped."""
        return FileLock(str(self.folder / "start.lock"), timeout=LOCK_TIMEOUT_S)

    def recorded(self) -> ServerRecord | None:
        """The server in the state file, if its process is still alive (it may be busy)."""
        try:
            state = json.loads(self.state_file.read_text())
            record = ServerRecord(int(state["pid"]), int(state["port"]), self.marker, dict(state.get("details", {})))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record if is_running(record.pid, self.marker) else None

    def remember(self, pid: int, port: int, details: dict) -> ServerRecord:
        record = ServerRecord(pid, port, self.marker, details)
        self.state_file.write_text(json.dumps({"pid": pid, "port": port, "details": details}))
        return record

    def forget(self) -> None:
        self.state_file.unlink(missing_ok=True)

    def launch(self, command: Sequence[str], env: dict | None = None) -> subprocess.Popen:
        """Start the command in its own process group, its output appended to the log file."""
        with self.log_file.open("ab") as log:
            log.write(f"\n--- starting {' '.join(command)}\n".encode())
            log.flush()
            return subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env)

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the recorded server and its children; True if one was running."""
        with self.lock():
            record = self.recorded()
            self.forget()
            return terminate(record.pid, timeout) if record else False


def is_running(pid: int, marker: str | None = None) -> bool:
    """True when pid is a live (not zombie) process, whose command line contains `marker` if given."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return marker is None or any(marker in part for part in process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def terminate(pid: int, timeout: float = 10.0) -> bool:
    """Stop a process and all its children: terminate, wait up to `timeout`, then kill; True if it was running."""
    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for process in family:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return True


def listening_port(pid: int) -> int | None:
    """The TCP port the process itself (not its children) listens on, if any."""
    try:
        for connection in psutil.Process(pid).net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN:
                return connection.laddr.port
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return None


def port_in_use(port: int) -> bool:
    """True when something on 127.0.0.1 accepts connections on this port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """A port nothing listens on, on 127.0.0.1 (for programs that cannot take port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], bool], process: subprocess.Popen, timeout_s: float, poll_s: float = 0.25) -> str:
    """Poll `ready` until it is true ('ready'), the process exits ('exited') or time runs out ('timeout')."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "exited"
        if ready():
            return "ready"
        time.sleep(poll_s)
    return "timeout"
