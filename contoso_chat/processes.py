"""Stopping the background processes the project starts (model server, HTTP service)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def gone(pid: int) -> bool:
    """True when the process has exited (a zombie waiting to be reaped counts as exited)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return True
    except ChildProcessError:
        pass
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


def terminate(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process group led by pid, then SIGKILL after `timeout`; True if it was running."""
    if gone(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    return True
