"""Real processes told to stop, hung up on, or cut off from their output: the run and its record survive."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nntui.record.runlog import RunLogReader
from tests.helpers import ROOT, tiny_preset


def _long_preset(tmp_path: Path, body: str = "") -> Path:
    text = tiny_preset(tmp_path / "t.toml", body).read_text().replace("max_steps = 120", "max_steps = 200000").replace("epochs = 1", "epochs = 5000")
    path = tmp_path / "long.toml"
    path.write_text(text)
    return path


def _spawn(args: list[str], out: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "NNTUI_HEADLESS": "1", "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    std = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.Popen([sys.executable, "-m", "nntui", *args, "--out", str(out)], cwd=ROOT, env=env, text=True, **std)


def _wait_for(out: Path, needle: str = '"type":"steps"', timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in out.glob("*/events.jsonl"):
            if needle in log.read_text():
                return log.parent
        time.sleep(0.1)
    raise AssertionError(f"{needle} never appeared")


def _record(run_dir: Path) -> tuple[dict, list]:
    summary = json.loads((run_dir / "summary.json").read_text())
    events = RunLogReader(run_dir).read_all()
    assert events[-1].type == "run_finished" and events[-1].status == summary["status"]
    assert not list(run_dir.glob("*.tmp"))
    return summary, events


def test_hangup_by_default_trains_on_to_the_end(tmp_path):
    out = tmp_path / "runs"
    proc = _spawn(["run", str(_long_preset(tmp_path)), "--headless", "--max-steps", "1500"], out)
    run_dir = _wait_for(out)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary, _ = _record(run_dir)
    assert summary["status"] == "completed" and summary["variants"][0]["steps"] == 1500


def test_hangup_with_on_hangup_stop_ends_as_interrupted(tmp_path):
    out = tmp_path / "runs"
    proc = _spawn(["run", str(_long_preset(tmp_path)), "--headless", "--on-hangup", "stop"], out)
    run_dir = _wait_for(out)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary, _ = _record(run_dir)
    assert summary["status"] == "interrupted" and summary["stopped_by"] == "SIGHUP"


def test_on_hangup_takes_only_continue_or_stop(tmp_path):
    proc = _spawn(["run", str(tiny_preset(tmp_path / "t.toml")), "--on-hangup", "pause"], tmp_path / "runs")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.strip().splitlines() == ["error: --on-hangup 'pause': choose continue or stop"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_the_range_test_leaves_a_summary(tmp_path, sig):
    out = tmp_path / "runs"
    proc = _spawn(["run", "cyclic-lr", "--headless", "--variant", "triangular"], out)
    deadline = time.monotonic() + 120
    while not list(out.glob("*/events.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    [run_dir] = list(out.iterdir())
    summary, events = _record(run_dir)
    assert summary["status"] == "interrupted" and summary["stopped_by"] == signal.Signals(sig).name
    assert any(e.type == "run_started" for e in events)
    assert all(v["status"] == "interrupted" for v in summary["variants"])


def _spawn_in_pty(args: list[str], out: Path) -> tuple[subprocess.Popen, int]:
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NNTUI_HEADLESS"} | {"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "nntui", "run", *args, "--out", str(out)], cwd=ROOT, env=env,
                            stdin=secondary, stdout=secondary, stderr=secondary, start_new_session=True)
    os.close(secondary)
    return proc, primary


def _drain(fd: int, proc: subprocess.Popen, timeout: float) -> bytes:
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


def test_sigterm_to_the_dashboard_saves_and_restores_the_terminal(tmp_path):
    out = tmp_path / "runs"
    proc, fd = _spawn_in_pty([str(_long_preset(tmp_path))], out)
    screen = b""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen += _drain(fd, proc, 0.5)
            if list(out.glob("*/events.jsonl")) and '"type":"steps"' in next(out.glob("*/events.jsonl")).read_text():
                break
        proc.send_signal(signal.SIGTERM)
        screen += _drain(fd, proc, 120)
        proc.wait(timeout=60)
    finally:
        os.close(fd)
    assert proc.returncode == 130, screen[-2000:]
    assert b"\x1b[?1049h" in screen and screen.rfind(b"\x1b[?1049l") > screen.rfind(b"\x1b[?1049h")  # left the alternate screen
    assert b"Traceback" not in screen
    summary, _ = _record(next(out.iterdir()))
    assert summary["status"] == "interrupted" and summary["stopped_by"] == "SIGTERM"


def test_hangup_under_the_dashboard_trains_on_headless(tmp_path):
    out = tmp_path / "runs"
    proc, fd = _spawn_in_pty([str(_long_preset(tmp_path)), "--max-steps", "1500"], out)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _drain(fd, proc, 0.5)
            if list(out.glob("*/events.jsonl")) and '"type":"steps"' in next(out.glob("*/events.jsonl")).read_text():
                break
        proc.send_signal(signal.SIGHUP)
        os.close(fd)  # the terminal goes away, as with a dropped SSH connection
        fd = -1
        proc.wait(timeout=300)
    finally:
        if fd >= 0:
            os.close(fd)
    assert proc.returncode == 0
    summary, _ = _record(next(out.iterdir()))
    assert summary["status"] == "completed" and summary["variants"][0]["steps"] == 1500


def test_a_hangup_ends_a_watch_started_with_python_m(tmp_path):
    """`python -m nntui watch` over SSH, connection dropped: the watcher must go, not spin on a dead terminal
    (the hang-up guard of `python -m nntui` is for a run's start-up only)."""
    primary, secondary = pty.openpty()
    env = os.environ | {"TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    proc = subprocess.Popen([sys.executable, "-m", "nntui", "watch", str(ROOT / "tests" / "fixtures" / "tiny-run")], cwd=tmp_path,
                            env=env, stdin=secondary, stdout=secondary, stderr=secondary, start_new_session=True)
    os.close(secondary)
    try:
        screen, deadline = b"", time.monotonic() + 120
        while b"DONE" not in screen and time.monotonic() < deadline:
            screen += _drain(primary, proc, 0.5)
        assert b"DONE" in screen, screen[-500:]
        proc.send_signal(signal.SIGHUP)
    finally:
        os.close(primary)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("nntui watch was still running 30 s after its terminal hung up")


def _catches(pid: int, sig: int) -> bool:
    """Whether the process has its own handler for sig yet (/proc's SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(mask >> (sig - 1) & 1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_the_cli_imports_ends_in_one_line(tmp_path, sig):
    """Ctrl-C in the first half second used to print a KeyboardInterrupt traceback from deep in an import."""
    out = tmp_path / "runs"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("nntui")), "run", str(_long_preset(tmp_path)), "--headless", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as typed in a terminal
    deadline = time.monotonic() + 30
    while not _catches(proc.pid, signal.SIGTERM) and time.monotonic() < deadline:  # nntui's first handlers are in
        time.sleep(0.002)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().count("\n") == 0 and signal.Signals(sig).name in err, err  # one line, naming the signal
    assert not out.exists() or not any(out.iterdir())  # nothing half-made


_SLOW_CLI_IMPORT = """
import sys, time, importlib.abc
class SlowCli(importlib.abc.MetaPathFinder):  # the CLI's import, stretched so a signal surely lands inside it
    def find_spec(self, name, path, target=None):
        if name == "nntui.cli.main":
            print("importing", flush=True)
            time.sleep(20)
        return None
sys.meta_path.insert(0, SlowCli())
sys.argv = ["nntui"] + sys.argv[1:]
from nntui.entry import main
main()
"""


@pytest.mark.parametrize("command", ["run", "watch"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_the_cli_import_is_one_line_not_a_traceback(tmp_path, sig, command):
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_CLI_IMPORT, command, "x"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline() == "importing\n"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err == f"nntui: interrupted ({signal.Signals(sig).name}) while starting; nothing was recorded\n"


def test_a_closed_pipe_does_not_stop_training(tmp_path):
    """`nntui run … 2>&1 | head -3`: the reader goes away after three lines."""
    out = tmp_path / "runs"
    proc = _spawn(["run", str(_long_preset(tmp_path)), "--headless", "--max-steps", "3000"], out, stderr=subprocess.STDOUT)
    for _ in range(3):
        proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0
    summary, _ = _record(next(out.iterdir()))
    assert summary["status"] == "completed" and summary["variants"][0]["steps"] == 3000


def test_json_summary_to_a_closed_pipe_keeps_the_record(tmp_path):
    out = tmp_path / "runs"
    proc = _spawn(["run", str(tiny_preset(tmp_path / "t.toml")), "--json"], out, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    summary, _ = _record(next(out.iterdir()))
    assert summary["status"] == "completed"


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}])
def test_an_encoding_without_the_characters_still_prints_the_table(tmp_path, env):
    preset = tiny_preset(tmp_path / "t.toml", '[[variants]]\nname = "résumé ✓ 漢字"\n')
    out = tmp_path / "runs"
    proc = _spawn(["run", str(preset), "--headless"], out, env=env)
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "completed" in stdout and "r?sum?" in stdout
    summary, _ = _record(next(out.iterdir()))
    assert [v["name"] for v in summary["variants"]] == ["a", "résumé ✓ 漢字"]


def test_after_a_run_the_start_up_guard_is_not_put_back():
    """`nntui run` starts under entry.py's guard ("interrupted while starting; nothing was recorded"); once the run
    is over, a Ctrl-C must not say that: the stop signals hand back the defaults, not the guard."""
    from nntui.cli.terminal import StopSignals
    from nntui.entry import _EarlySignals

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        early = _EarlySignals()
        for sig in saved:
            signal.signal(sig, early)
        with StopSignals():
            pass
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        signal.signal(signal.SIGINT, saved[signal.SIGINT])
        with StopSignals():  # any other handler comes back as it was
            pass
        assert signal.getsignal(signal.SIGINT) is saved[signal.SIGINT]
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
