"""Background processes: stopped through psutil (no /proc parsing), and one server for concurrent starters."""

from __future__ import annotations

import builtins
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from contoso_chat.backends import processes


def test_terminate_stops_a_process_and_its_children():
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"],
                              start_new_session=True)
    deadline = time.monotonic() + 10
    while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = psutil.Process(parent.pid).children()[0].pid
    assert processes.terminate(parent.pid, timeout=5) is True
    parent.wait(timeout=5)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    assert processes.terminate(parent.pid) is False, "a process that is gone is reported as not running"


class _StubbornProcess:
    """A psutil.Process stand-in that ignores terminate(), as a hung server would."""

    calls: list[str] = []

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def children(self, recursive: bool = False) -> list:
        return []

    def terminate(self) -> None:
        self.calls.append("terminate")

    def kill(self) -> None:
        self.calls.append("kill")


def test_stop_escalates_to_kill_through_psutil_alone(monkeypatch):
    """The stop path uses only psutil's portable API, so it works where there is no /proc (macOS)."""
    real_open = builtins.open

    def no_proc(file, *args, **kwargs):
        if str(file).startswith("/proc"):
            raise AssertionError("the project parsed /proc itself")
        return real_open(file, *args, **kwargs)

    _StubbornProcess.calls = []
    monkeypatch.setattr(builtins, "open", no_proc)
    monkeypatch.setattr(io, "open", no_proc)
    monkeypatch.setattr(processes.psutil, "Process", _StubbornProcess)
    monkeypatch.setattr(processes.psutil, "wait_procs", lambda procs, timeout=None: ([], list(procs)))
    assert processes.terminate(4242, timeout=0.1) is True
    assert _StubbornProcess.calls == ["terminate", "kill"]
    source = Path(processes.__file__).read_text() + Path(processes.__file__).with_name("local_model.py").read_text()
    assert "/proc" not in source


def test_a_recycled_pid_is_not_taken_for_the_server(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTOSO_BUILD_DIR", str(tmp_path))
    server = processes.ManagedServer("demo", marker="llama_cpp.server")
    server.remember(os.getpid(), 1234, {})  # this pytest process is alive but is not a model server
    assert server.recorded() is None
    assert processes.is_running(os.getpid()) is True


def test_listening_port_is_read_back_from_the_process():
    code = ("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
            "print(s.getsockname()[1], flush=True); time.sleep(30)")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        assert processes.listening_port(process.pid) == port
    finally:
        processes.terminate(process.pid)


START_ONE = """
import json, sys
from contoso_chat.backends.local_model import ensure_local_model
from contoso_chat.backends.settings import resolve
server = ensure_local_model(resolve({"LOCAL_MODEL_PORT": sys.argv[1]}), log=lambda *_: None)
print(json.dumps({"pid": server.pid, "port": server.port}))
"""


def llama_servers() -> set[int]:
    found = set()
    for process in psutil.process_iter(["cmdline"]):
        if any("llama_cpp.server" in part for part in process.info["cmdline"] or []):
            found.add(process.pid)
    return found


def test_two_concurrent_starts_share_one_server(tmp_path):
    environment = {**os.environ, "CONTOSO_BUILD_DIR": str(tmp_path)}
    before = llama_servers()
    port = str(processes.free_port())
    starters = [subprocess.Popen([sys.executable, "-c", START_ONE, port], stdout=subprocess.PIPE, text=True,
                                 env=environment) for _ in range(2)]
    try:
        results = [json.loads(starter.communicate(timeout=180)[0]) for starter in starters]
        assert results[0] == results[1], "both starters must get the same server"
        assert llama_servers() - before == {results[0]["pid"]}, "exactly one new model server"
    finally:
        subprocess.run([sys.executable, "-c", "from contoso_chat.backends.local_model import stop_local_model; "
                        "stop_local_model()"], env=environment, check=True)
    assert not (llama_servers() - before)


@pytest.mark.parametrize("marker", [None, "python"])
def test_is_running_is_false_for_an_exited_process(marker):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert processes.is_running(process.pid, marker) is False
