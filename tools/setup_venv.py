"""Create or refresh .venv from requirements.txt in timed steps, compiling llama-cpp-python in the background.

Run through `make setup` (tools/setup_venv.sh picks Python 3.11). Standard library only: it runs before .venv exists.
Steps print their time, and a status line shows the running step and the compile; every step logs to
build/setup/, timings go to build/setup/timings.json, and a failure names its step and its log.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import takewhile
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.txt"
LOGS = ROOT / "build" / "setup"
WHEELS = ROOT / "build" / "wheels"
STAMP = VENV / ".installed"
AF_LOCK = ROOT / "requirements-agent-framework.txt"
AF_DIR = VENV / "agent-framework"  # Agent Framework and its OpenTelemetry, in front of .venv's for notebook 08 only
AF_KERNEL = "contoso-chat-af"
STAMPED_FILES = (LOCK, AF_LOCK, ROOT / "pyproject.toml", Path(__file__).resolve())
OWN_STEPS = ("torch", "llama-cpp-python")  # installed by their own steps, not with the rest of the lock
HEARTBEAT_SECONDS = 30
TICK_SECONDS = 0.5
TOTAL_STEPS = 9
# llama-cpp-python's own switch: no multimodal (llava/mtmd) library, which the workshop never loads;
# that is 53 of the compile's 193 steps, about 15% of its work. And a portable build (AVX2 and FMA, llama.cpp's
# default when GGML_NATIVE is off) instead of one for every instruction this CPU reports: on a 2-core machine
# whose CPU reports AMX, the native build's server crashed with a general protection fault on its first answer.
LLAMA_CMAKE_ARGS = "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
# The modules the notebooks and tests lean on, in two halves imported side by side. Importing them checks
# the environment and, since uv installs without bytecode, writes the .pyc files that make every later
# import about twice as fast.
IMPORT_CHECKS = (
    "import lancedb, sentence_transformers, pandas, matplotlib.pyplot, ipykernel.kernelapp",
    "import promptflow.core, azure.ai.ml, azure.ai.evaluation, openai, fastapi, contoso_chat",
)


class SetupError(Exception):
    """A step failed: what happened, the log to read and what to do."""

    def __init__(self, message: str, log: Path | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.log = log
        self.hint = hint


def normalized(name: str) -> str:
    """A package name as PyPI compares it: lowercase, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_lines(text: str) -> list[str]:
    """The requirement lines of a lock file, without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def package_name(line: str) -> str:
    """The normalized package name of a requirement line such as `llama-cpp-python[server]==0.3.36`."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    if not match:
        raise SetupError(f"requirements.txt has a line that is not a requirement: {line!r}",
                         hint="Fix that line: every package is pinned as name==version.")
    return normalized(match.group(0))


def pinned(lines: list[str], name: str) -> str:
    """The line that pins one package, without extras (for example `torch==2.13.0`)."""
    for line in lines:
        if package_name(line) == normalized(name):
            return re.sub(r"\[[^\]]*\]", "", line)
    raise SetupError(f"requirements.txt does not pin {name}.", hint=f"Add {name}==VERSION to requirements.txt.")


def unpinned(lines: list[str]) -> list[str]:
    """The lines that do not pin an exact version with ==."""
    return [line for line in lines if not re.search(r"==\s*[0-9A-Za-z]", line)]


def main_packages(lines: list[str]) -> list[str]:
    """The lock without the packages that have their own steps (torch, llama-cpp-python)."""
    return [line for line in lines if package_name(line) not in OWN_STEPS]


def wanted_stamp(files: tuple[Path, ...] = STAMPED_FILES) -> str:
    """A short hash of everything that decides the environment: the lock, pyproject.toml and this script."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_installed(site_packages: Path, pin: str) -> bool:
    """True when site-packages holds exactly this `name==version` (a local label such as +cpu allowed)."""
    name, version = pin.split("==")
    prefix = f"{name.replace('-', '_').lower()}-{version}"
    return any(d.name.lower() == f"{prefix}.dist-info" or d.name.lower().startswith(f"{prefix}+")
               for d in site_packages.glob("*.dist-info"))


def wheel_pin(wheel: Path) -> str:
    """The `name==version` a wheel file holds, from its file name (name-version-tags.whl)."""
    name, version = wheel.name.split("-")[:2]
    return f"{normalized(name)}=={version}"


def not_installed(site_packages: Path, wheels: list[Path]) -> list[Path]:
    """The wheels whose exact version site-packages does not hold yet."""
    return [wheel for wheel in wheels if not is_installed(site_packages, wheel_pin(wheel))]


def compile_state(log_tail: str) -> str:
    """What the llama-cpp-python build is doing, read from the end of its pip -v log."""
    for line in reversed(log_tail.splitlines()):
        if "Saved " in line or "Created wheel" in line:
            return "built"
        if ninja := re.search(r"\[(\d+)/(\d+)\]", line):
            done, total = int(ninja.group(1)), int(ninja.group(2))
            return f"compiling {done}/{total} ({100 * done // total}%)"
        if make := re.search(r"\[\s*(\d+%)\]", line):
            return f"compiling {make.group(1)}"
        if line.lstrip().startswith("-- "):
            return "configuring"
        if "build dependencies" in line or "Getting requirements to build" in line:
            return "installing build tools"
        if "Collecting" in line or "Downloading" in line:
            return "downloading the source"
    return "starting"


def uv_summary(log_text: str) -> dict[str, float]:
    """uv's own split of an install: seconds to download and unpack ("Prepared") and to link ("Installed")."""
    figures = {}
    for word, key in (("Prepared", "download_and_unpack_s"), ("Installed", "link_s")):
        match = re.search(rf"^{word} \d+ packages? in ([\d.]+)(m?s)", log_text, re.MULTILINE)
        if match:
            figures[key] = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    return figures


def described(command: list[str]) -> str:
    """A command's program and sub-command as a user would type them (`pip install`, `uv pip install`)."""
    words = [Path(command[0]).name, *(word for word in command[1:] if word != "--disable-pip-version-check")]
    if words[1:2] == ["-m"]:
        words = words[2:]
    return " ".join(takewhile(lambda word: not word.startswith("-") and "/" not in word, words))


def shown(path: Path) -> str:
    """A path as the user reads it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def children_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by the finished child processes of this one, and theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def clock(seconds: float) -> str:
    """Seconds as m:ss."""
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def tail(path: Path, size: int = 4000) -> str:
    """The last `size` characters of a log file ("" when it does not exist yet)."""
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")


@dataclass
class Background:
    """A command running beside the steps, with its own log (the compile, the torch download)."""

    label: str
    log: Path
    process: subprocess.Popen | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    cpu_seconds: float = 0.0
    note: str = ""

    @classmethod
    def start(cls, label: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> Background:
        """Start command in its own process group, output to log."""
        with log.open("w") as handle:
            process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        return cls(label, log, process)

    @classmethod
    def skipped(cls, label: str, note: str) -> Background:
        """A background job with nothing to do."""
        job = cls(label, Path(os.devnull), note=note)
        job.ended = job.started
        return job

    def done(self) -> bool:
        """True once the command has ended (or was never needed); then cpu_seconds holds what it used."""
        if self.ended is None and self.process is not None:
            before = children_cpu_seconds()
            if self.process.poll() is not None:
                self.ended = time.monotonic()
                self.cpu_seconds = children_cpu_seconds() - before
        return self.ended is not None

    def failed(self) -> bool:
        """True when the command ended with an error."""
        return self.done() and self.process is not None and self.process.returncode != 0

    def seconds(self) -> float:
        """Seconds from start to end (or to now)."""
        return (self.ended or time.monotonic()) - self.started

    def stop(self) -> None:
        """End the command and its children if it still runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait()


class Progress:
    """Prints each step with its time, a live status line (or a heartbeat when not on a terminal) and timings."""

    def __init__(self) -> None:
        self.number = 0
        self.title = "start"
        self.step_started = self.started = time.monotonic()
        self.compile_job: Background | None = None
        self.waiting_for: Background | None = None
        self.compile_seen = "starting"  # the last phase read; kept while compiler warnings fill the log's end
        self.jobs: list[Background] = []
        self.timings: dict[str, float] = {}
        self.live = sys.stdout.isatty()
        self.last_beat = 0.0

    def say(self, text: str, stream: TextIO | None = None) -> None:
        """Print one line, clearing a live status line first."""
        if self.live:
            print("\r\033[K", end="", flush=True)
        print(text, file=stream or sys.stdout, flush=True)

    def compile_status(self) -> str:
        """The compile's state for the status line."""
        job = self.compile_job
        if job is None:
            return ""
        if job.note:
            return f"{job.label}: {job.note}"
        if job.done():
            return f"{job.label}: {'failed' if job.failed() else 'built'} ({clock(job.seconds())})"
        if (state := compile_state(tail(job.log, 65536))) != "starting":
            self.compile_seen = state
        return f"{job.label}: {self.compile_seen} ({clock(job.seconds())})"

    def tick(self) -> None:
        """Refresh the status line, or print a heartbeat every HEARTBEAT_SECONDS when not on a terminal."""
        now = time.monotonic()
        elapsed = f"{clock(now - self.step_started)} in this step, {clock(now - self.started)} in all"
        waiting = self.waiting_for
        waited = ""
        if waiting is not None and waiting is not self.compile_job:
            waited = f"waiting for {waiting.label} ({clock(waiting.seconds())})"
        status = "; ".join(part for part in (elapsed, waited, self.compile_status()) if part)
        if self.live:
            line = f"  [{self.number}/{TOTAL_STEPS}] {status}"
            print("\r\033[K" + line[: shutil.get_terminal_size().columns - 1], end="", flush=True)
        elif now - max(self.step_started, self.last_beat) >= HEARTBEAT_SECONDS:
            self.last_beat = now
            print(f"      ... {status}", flush=True)

    @contextmanager
    def step(self, key: str, title: str) -> Iterator[None]:
        """Announce a numbered step, time it, and record its seconds under key."""
        self.number += 1
        self.title, self.step_started = title, time.monotonic()
        self.say(f"[{self.number}/{TOTAL_STEPS}] {title}")
        yield
        self.timings[key] = round(time.monotonic() - self.step_started, 1)
        self.say(f"      done in {self.timings[key]:.0f} s")

    def run(self, command: list[str], log: Path, hint: str, env: dict[str, str] | None = None,
            check: bool = True) -> int:
        """Run one command of this step, output to log, showing progress; fail with the log unless check=False."""
        with log.open("a") as handle:
            process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env)
            try:
                while process.poll() is None:
                    self.tick()
                    time.sleep(TICK_SECONDS)
            finally:
                if process.poll() is None:
                    process.terminate()
                    process.wait()
        if check and process.returncode != 0:
            raise SetupError(f"`{described(command)}` exited with {process.returncode}", log, hint)
        return process.returncode

    def wait(self, job: Background) -> None:
        """Wait for a background job, showing progress."""
        self.waiting_for = job
        while not job.done():
            self.tick()
            time.sleep(TICK_SECONDS)
        self.waiting_for = None


def venv_python() -> str:
    """The virtual environment's interpreter."""
    return str(VENV / "bin" / "python")


def site_packages() -> Path:
    """The virtual environment's site-packages folder."""
    return VENV / "lib" / "python3.11" / "site-packages"


def pip(*arguments: str) -> list[str]:
    """A pip command line in the virtual environment."""
    return [venv_python(), "-m", "pip", "--disable-pip-version-check", *arguments]


def uv(*arguments: str) -> list[str]:
    """A `uv pip` command line aimed at the virtual environment."""
    return [str(VENV / "bin" / "uv"), "pip", *arguments, "--python", venv_python()]


def install(installer: str, *arguments: str) -> list[str]:
    """An install command that does not resolve (the lock is complete)."""
    return uv("install", "--no-deps", *arguments) if installer == "uv" else pip("install", "--no-deps", *arguments)


def uv_environment() -> dict[str, str]:
    """The environment for uv: pip's configured index (a mirror) becomes uv's default index, never printed."""
    env = dict(os.environ)
    if "UV_DEFAULT_INDEX" in env or "UV_INDEX_URL" in env:
        return env
    index = env.get("PIP_INDEX_URL") or subprocess.run(
        pip("config", "get", "global.index-url"), capture_output=True, text=True).stdout.strip()
    if index:
        env["UV_DEFAULT_INDEX"] = index
    return env


def compile_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The compile's environment: CMAKE_ARGS as set (the dev container's, say) plus this project's own."""
    return dict(environ, CMAKE_ARGS=f"{environ.get('CMAKE_ARGS', '')} {LLAMA_CMAKE_ARGS}".strip())


def compile_cache(environment: Mapping[str, str]) -> Path:
    """pip's cache for the compile, one per set of CMake flags: pip keys a built wheel by the source alone, so a
    shared cache would hand a wheel built with other flags (say, a native build) to this set-up."""
    flags = hashlib.sha256(environment.get("CMAKE_ARGS", "").encode()).hexdigest()[:12]
    home = Path(environment.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return home / "contoso-chat" / f"llama-cpp-{flags}"


def start_compile(lines: list[str]) -> Background:
    """Build the llama-cpp-python wheel in the background (the compile's own pip cache makes a rebuild a copy)."""
    pin = pinned(lines, "llama-cpp-python")
    version = pin.split("==")[1]
    if is_installed(site_packages(), pin):
        return Background.skipped("llama-cpp-python", "already installed")
    if list(WHEELS.glob(f"llama_cpp_python-{version}-*.whl")):
        return Background.skipped("llama-cpp-python", "wheel already built")
    WHEELS.mkdir(parents=True, exist_ok=True)
    environment = compile_environment(os.environ)
    command = pip("wheel", "--no-deps", "-v", "--cache-dir", str(compile_cache(environment)), "-w", str(WHEELS), pin)
    return Background.start("llama-cpp-python", command, LOGS / "llama-build.log", environment)


def start_torch_download(lines: list[str]) -> Background:
    """Fetch the torch wheel with pip, which knows this machine's wheels and TORCH_CPU_INDEX (uv does not)."""
    pin = pinned(lines, "torch")
    if is_installed(site_packages(), pin):
        return Background.skipped("torch", "already installed")
    folder = LOGS / "torch"
    shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get("TORCH_CPU_INDEX"):
        source = ["--no-deps", "--index-url", os.environ["TORCH_CPU_INDEX"]]
    else:
        source = ["-c", str(LOGS / "constraints.txt")]  # a CUDA build brings its nvidia-* packages along
    return Background.start("torch", pip("download", *source, "-d", str(folder), pin), LOGS / "torch.log")


def create_venv(progress: Progress) -> None:
    """Create .venv with Python 3.11, or check the one that is there."""
    if (VENV / "bin" / "python").exists():
        version = subprocess.run([venv_python(), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True).stdout.strip()
        if version != "3.11":
            raise SetupError(f".venv uses Python {version or 'that does not start'}, not 3.11.",
                             hint="Remove it (rm -rf .venv) and run make setup again.")
        return
    progress.run([sys.executable, "-m", "venv", str(VENV)], LOGS / "venv.log",
                 "Install Python 3.11 with its venv module (Debian: apt-get install python3.11-venv).")


def install_uv(progress: Progress, lines: list[str]) -> bool:
    """Install the pinned uv into .venv; False (and pip does the work) when it cannot be had."""
    if is_installed(site_packages(), pinned(lines, "uv")):
        return True
    code = progress.run(install("pip", pinned(lines, "uv")), LOGS / "uv.log", "", check=False)
    if code != 0:
        progress.say(f"      uv could not be installed (see {shown(LOGS / 'uv.log')}); pip installs instead")
    return code == 0


def install_packages(progress: Progress, packages: list[str], use_uv: bool) -> str:
    """Install the lock but torch and llama-cpp-python, without resolving (the lock is complete); returns the tool."""
    listing = LOGS / "requirements-main.txt"
    listing.write_text("\n".join(packages) + "\n")
    hint = "Check the network and the pins in requirements.txt, then run make setup again."
    if use_uv:
        log = LOGS / "packages-uv.log"
        log.unlink(missing_ok=True)
        if progress.run(install("uv", "-r", str(listing)), log, hint, env=uv_environment(), check=False) == 0:
            return "uv"
        progress.say(f"      uv could not install them (see {shown(log)}); pip installs instead")
    progress.run(install("pip", "-r", str(listing)), LOGS / "packages-pip.log", hint)
    return "pip"


def install_wheels(progress: Progress, wheels: list[Path], installer: str, log: Path, hint: str) -> None:
    """Install wheel files without resolving, with uv when it works here, else pip."""
    if wheels:
        progress.run(install(installer, *(str(path) for path in wheels)), log, hint)


def install_torch(progress: Progress, job: Background, installer: str) -> None:
    """Wait for the torch download and install what it fetched."""
    if job.note:
        return
    progress.wait(job)
    hint = "Check the network (and TORCH_CPU_INDEX, when set), then run make setup again."
    if job.failed():
        raise SetupError("pip could not download torch", job.log, hint)
    wheels = not_installed(site_packages(), sorted((LOGS / "torch").glob("*.whl")))
    install_wheels(progress, wheels, installer, LOGS / "torch.log", hint)


def install_project(progress: Progress, installer: str) -> None:
    """Install contoso_chat in editable mode, the Jupyter kernel and the nbstripout git filter."""
    log = LOGS / "project.log"
    log.unlink(missing_ok=True)
    hint = "Read the log, fix the cause and run make setup again."
    progress.run(install(installer, "--no-build-isolation", "-e", str(ROOT)), log, hint)
    # A kernel for this venv, named in every notebook, so VS Code, Codespaces and Jupyter pick the right one.
    progress.run([venv_python(), "-m", "ipykernel", "install", "--sys-prefix", "--name", "contoso-chat",
                  "--display-name", "Python 3.11 (contoso-chat)"], log, hint)
    if (ROOT / ".git").exists() and progress.run([str(VENV / "bin" / "nbstripout"), "--install"], log, hint,
                                                  check=False) != 0:
        progress.say("      (nbstripout git filter not installed; strip notebooks before committing: make strip)")


def install_agent_framework(progress: Progress, installer: str) -> None:
    """Install Agent Framework's pinned packages into .venv/agent-framework and register the notebook 08 kernel.

    The folder goes in front of .venv's packages (PYTHONPATH) only in that kernel and in `make test`'s second
    session: Agent Framework needs a newer OpenTelemetry than prompt flow accepts, so they cannot share one folder.
    """
    log = LOGS / "agent-framework.log"
    log.unlink(missing_ok=True)
    lines = lock_lines(AF_LOCK.read_text())
    if loose := unpinned(lines):
        raise SetupError(f"{shown(AF_LOCK)} has lines without an exact pin: {', '.join(loose)}",
                         hint="Pin each of them with ==.")
    hint = f"Check the network and the pins in {shown(AF_LOCK)}, then run make setup again."
    shutil.rmtree(AF_DIR, ignore_errors=True)  # a fresh folder: no package left over from an older lock
    target = ["--target", str(AF_DIR), "--no-deps", "-r", str(AF_LOCK)]
    if installer == "uv":
        progress.run(uv("install", *target), log, hint, env=uv_environment())
    else:
        progress.run(pip("install", *target), log, hint)
    progress.run([venv_python(), "-m", "ipykernel", "install", "--sys-prefix", "--name", AF_KERNEL,
                  "--display-name", "Python 3.11 (contoso-chat, Agent Framework)"], log, hint)
    spec_file = VENV / "share" / "jupyter" / "kernels" / AF_KERNEL / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["env"] = {"PYTHONPATH": str(AF_DIR)}
    spec_file.write_text(json.dumps(spec, indent=1) + "\n")


def telemetry_is_off() -> bool:
    """True when prompt flow's user config (used by `pf` in a terminal) already has telemetry off."""
    home = Path(os.environ.get("PF_HOME_DIRECTORY") or Path.home() / ".promptflow")
    config = home / "pf.yaml"
    text = config.read_text() if config.exists() else ""
    return re.search(r"^telemetry:\s*\n\s+enabled:\s*['\"]?false", text, re.MULTILINE | re.IGNORECASE) is not None


def start_telemetry_off() -> Background:
    """Turn prompt flow's telemetry off for `pf` typed in a terminal (the app's own runs set it in build/promptflow)."""
    if telemetry_is_off():
        return Background.skipped("pf telemetry", "already off")
    env = dict(os.environ, APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED="true",
               APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true")
    return Background.start("pf telemetry", [str(VENV / "bin" / "pf"), "config", "set", "telemetry.enabled=false"],
                            LOGS / "pf-telemetry.log", env)


def install_llama(progress: Progress, job: Background, lines: list[str], installer: str) -> None:
    """Wait for the compile and install the wheel it built."""
    if job.note == "already installed":
        return
    progress.wait(job)
    hint = ("llama-cpp-python compiles with a C++ compiler and CMake (Debian: apt-get install build-essential cmake); "
            "read the log, fix the cause and run make setup again.")
    if job.failed():
        raise SetupError("the llama-cpp-python compile failed", job.log, hint)
    version = pinned(lines, "llama-cpp-python").split("==")[1]
    install_wheels(progress, sorted(WHEELS.glob(f"llama_cpp_python-{version}-*.whl"))[-1:], installer,
                   LOGS / "llama-install.log", hint)


def bytecode_environment() -> dict[str, str]:
    """The environment with bytecode writing on, so an import leaves its .pyc files behind."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def start_import_checks() -> list[Background]:
    """Import the heavy modules, with the app's offline settings, while the compile runs (llama_cpp comes later)."""
    offline = "from contoso_chat.backends.environment import prepare_offline_environment; prepare_offline_environment()"
    return [Background.start("imports", [venv_python(), "-c", f"{offline}\n{modules}"], LOGS / f"imports-{n}.log",
                             bytecode_environment())
            for n, modules in enumerate(IMPORT_CHECKS, start=1)]


def check_environment(progress: Progress, installer: str, imports: list[Background], telemetry: Background) -> None:
    """Check that every installed package has what it needs, and that the key modules import."""
    log = LOGS / "check.log"
    log.unlink(missing_ok=True)
    hint = "The environment is incomplete: read the log, fix the cause and run make setup again."
    progress.run(uv("check") if installer == "uv" else pip("check"), log,
                 "A package needs one that requirements.txt does not pin: add it, pinned with ==, to the "
                 "pulled-in section of requirements.txt and run make setup again.")
    progress.run([venv_python(), "-c", "import llama_cpp"], log, hint, env=bytecode_environment())
    progress.run([venv_python(), "-c", "import agent_framework.openai, contoso_chat.agentframework"], log, hint,
                 env={**bytecode_environment(), "PYTHONPATH": str(AF_DIR)})
    for job in imports:
        progress.wait(job)
        if job.failed():
            raise SetupError("a key module does not import", job.log, hint)
    progress.wait(telemetry)
    if telemetry.failed():
        progress.say(f"      (could not turn prompt flow telemetry off; see {shown(telemetry.log)})")


def build(progress: Progress, lines: list[str]) -> dict[str, object]:
    """Run every step; return the timings and figures for timings.json."""
    with progress.step("venv", "Create .venv (Python 3.11)"):
        create_venv(progress)
    with progress.step("uv", f"Install {pinned(lines, 'uv')}, the parallel installer (pip if it cannot be had)"):
        use_uv = install_uv(progress, lines)
    with progress.step("start_background", "Start the llama-cpp-python compile and the torch download"):
        (LOGS / "constraints.txt").write_text("\n".join(re.sub(r"\[[^\]]*\]", "", line) for line in lines) + "\n")
        compile_job = progress.compile_job = start_compile(lines)
        torch_job = start_torch_download(lines)
        progress.jobs += [compile_job, torch_job]
        progress.say("      the compile takes about 4 minutes on 2 idle cores the first time, seconds from pip's cache"
                     if compile_job.note == "" else f"      llama-cpp-python: {compile_job.note}")
    packages = main_packages(lines)
    tool = "uv" if use_uv else "pip"
    with progress.step("packages", f"Install {len(packages)} pinned packages ({tool}, no resolving)"):
        installer = install_packages(progress, packages, use_uv)
    with progress.step("torch", f"Install {pinned(lines, 'torch')} (downloaded by pip)"):
        install_torch(progress, torch_job, installer)
    with progress.step("project", "Install contoso_chat (editable), the Jupyter kernel and the nbstripout filter; "
                       "start an import check in the background"):
        install_project(progress, installer)
        imports, telemetry = start_import_checks(), start_telemetry_off()
        progress.jobs += [*imports, telemetry]
    with progress.step("agent_framework", f"Install Agent Framework for notebook 08 into {shown(AF_DIR)} "
                       f"and its kernel ({AF_KERNEL})"):
        install_agent_framework(progress, installer)
    with progress.step("llama", "Wait for the llama-cpp-python compile and install it"):
        install_llama(progress, compile_job, lines, installer)
    with progress.step("check", "Check the environment (requirements met, key modules import)"):
        check_environment(progress, installer, imports, telemetry)
    compiled = not compile_job.note
    return {"installer": installer, "steps_s": progress.timings, "packages": len(packages),
            "packages_uv": uv_summary(tail(LOGS / "packages-uv.log", 20000)) if installer == "uv" else {},
            "compile": compile_job.note or "compiled, or copied from pip's cache",
            "compile_s": round(compile_job.seconds(), 1) if compiled else None,
            "compile_cpu_s": round(compile_job.cpu_seconds, 1) if compiled else None,
            "torch_download_s": None if torch_job.note else round(torch_job.seconds(), 1)}


@contextmanager
def exclusive() -> Iterator[None]:
    """Hold build/setup/.lock so two set-ups in one folder never install at once."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("Another set-up is running in this folder; waiting for it to finish...", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def report_failure(progress: Progress, error: SetupError) -> None:
    """Say which step failed, why, what to do and where the log is, with its last lines."""
    where = f"step {progress.number}/{TOTAL_STEPS} ({progress.title})" if progress.number else "the start"
    say = partial(progress.say, stream=sys.stderr)
    say(f"\nSet-up failed at {where} after {clock(time.monotonic() - progress.started)}: {error}.")
    if error.log is not None and error.log.exists():
        say(f"Log: {shown(error.log)}; its last lines:")
        say("    " + "\n    ".join(tail(error.log, 3000).splitlines()[-15:]))
    if error.hint:
        say(error.hint)


def up_to_date() -> bool:
    """True when .venv was set up from exactly the current lock, pyproject.toml and this script."""
    return STAMP.exists() and STAMP.read_text().strip() == wanted_stamp()


def main() -> int:
    """Set up .venv unless the stamp says it is up to date."""
    if up_to_date():
        return 0
    with exclusive():
        if up_to_date():
            return 0
        lines = lock_lines(LOCK.read_text())
        progress = Progress()
        print(f"Setting up .venv ({os.cpu_count()} cores); each step logs to {shown(LOGS)}/", flush=True)
        try:
            if loose := unpinned(lines):
                raise SetupError(f"requirements.txt has lines without an exact pin: {', '.join(loose)}",
                                 hint="Pin each of them with ==.")
            figures = build(progress, lines)
        except SetupError as error:
            report_failure(progress, error)
            return 1
        except KeyboardInterrupt:
            progress.say("Set-up interrupted; run make setup again to finish it.")
            return 130
        finally:
            for job in progress.jobs:
                job.stop()
        total = time.monotonic() - progress.started
        figures.update(total_s=round(total, 1), cpu_s=round(children_cpu_seconds(), 1))
        (LOGS / "timings.json").write_text(json.dumps(figures, indent=2) + "\n")
        STAMP.write_text(wanted_stamp() + "\n")
        progress.say(f"Environment ready in .venv after {clock(total)} (timings: {shown(LOGS / 'timings.json')}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
