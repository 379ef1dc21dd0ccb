"""Crashes, write failures, resource bounds and hostile names: one line, the right exit code, the record kept."""

from __future__ import annotations

import errno
import json
import shutil
import signal
import subprocess
import time

import pytest

from nntui.engine.checkpoints import file_stems, load_checkpoint
from nntui.record.runlog import RunLogReader
from tests.helpers import invoke, tiny_preset
from tests.test_faults_signals import _long_preset, _spawn, _wait_for
from tests.test_reliability import assert_clean_error


def _last_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    return lines[-1]


# ---------------------------------------------------------------- crashes


def test_a_crash_is_failed_with_crash_log_and_exit_1(tmp_path, out_dir, monkeypatch):
    from nntui.engine.train import VariantRun

    real = VariantRun.run_block
    calls = {"n": 0}

    def crashing(self, emit, stop):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom in the second block")
        return real(self, emit, stop)

    monkeypatch.setattr(VariantRun, "run_block", crashing)
    result = invoke("run", str(tiny_preset(tmp_path / "t.toml")), "--headless", "--out", str(out_dir))
    assert result.exit_code == 1
    line = _last_line(result)
    [run_dir] = list(out_dir.iterdir())
    assert line.startswith("error: the run failed: RuntimeError: boom in the second block") and str(run_dir / "crash.log") in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "RuntimeError: boom in the second block"
    assert summary["variants"][0]["status"] == "failed" and summary["variants"][0]["steps"] == 40  # the first block ends at eval_every
    crash = (run_dir / "crash.log").read_text()
    assert crash.startswith("Traceback") and "boom in the second block" in crash and "crashing" in crash
    events = RunLogReader(run_dir).read_all()
    assert events[-1].type == "run_finished" and events[-1].status == "failed"


def test_a_crash_with_json_still_prints_the_summary(tmp_path, out_dir, monkeypatch):
    from nntui.engine.train import VariantRun

    monkeypatch.setattr(VariantRun, "run_block", lambda self, emit, stop: (_ for _ in ()).throw(ValueError("bad")))
    result = invoke("run", str(tiny_preset(tmp_path / "t.toml")), "--json", "--out", str(out_dir))
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "failed"
    assert "crash.log" in _last_line(result)


# ---------------------------------------------------------------- write failures


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_disk_full_is_one_line_exit_1_and_keeps_the_log(tmp_path, small_disk):
    result = invoke("run", str(_long_preset(tmp_path)), "--headless", "--max-steps", "3000", "--out", str(small_disk / "runs"))
    assert result.exit_code == 1
    line = _last_line(result)
    assert "No space left on device" in line and "the disk is full" in line and line.startswith("error: the run failed: cannot write")
    [run_dir] = list((small_disk / "runs").iterdir())
    events = RunLogReader(run_dir).read_all()
    assert events[0].type == "run_started" and any(e.type == "steps" for e in events)
    assert not list(run_dir.glob("*.tmp"))


def test_checkpoint_write_failure_leaves_no_temp_file(tmp_path, out_dir, monkeypatch):
    import torch

    def full_disk_save(payload, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk_save)
    preset = tiny_preset(tmp_path / "t.toml").read_text().replace("[config]\n", "[config]\ncheckpoint = true\n", 1)
    (tmp_path / "c.toml").write_text(preset)
    result = invoke("run", str(tmp_path / "c.toml"), "--headless", "--out", str(out_dir))
    assert result.exit_code == 1
    assert "cannot write checkpoint" in _last_line(result) and "No space left" in _last_line(result)
    [run_dir] = list(out_dir.iterdir())
    assert not list(run_dir.glob("*.pt*"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "cannot write checkpoint" in summary["error"]


def test_read_only_out_dir_is_refused_before_anything_runs(tmp_path, small_disk):
    (small_disk / "runs").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = invoke("run", str(tiny_preset(tmp_path / "t.toml")), "--out", str(small_disk / "runs"))
    assert_clean_error(result, "not writable", "--out")


def test_log_turning_read_only_mid_run(tmp_path, out_dir, monkeypatch):
    from nntui.record.runlog import RunLog

    class ReadOnlyAfter:
        def __init__(self, file, writes):
            self.file, self.writes = file, writes

        def write(self, text):
            self.writes -= 1
            if self.writes < 0:
                raise OSError(errno.EROFS, "Read-only file system")
            return self.file.write(text)

        def __getattr__(self, name):
            return getattr(self.file, name)

    real_init = RunLog.__init__

    def init(self, run_dir):
        real_init(self, run_dir)
        self._file = ReadOnlyAfter(self._file, 20)

    monkeypatch.setattr(RunLog, "__init__", init)
    result = invoke("run", str(_long_preset(tmp_path)), "--headless", "--out", str(out_dir))
    assert result.exit_code == 1
    line = _last_line(result)
    assert line.startswith("error: the run failed: cannot write") and "Read-only file system" in line and "read-only" in line
    [run_dir] = list(out_dir.iterdir())
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"  # the summary still made it
    assert RunLogReader(run_dir).read_all()[0].type == "run_started"


def test_run_directory_removed_mid_run(tmp_path):
    out = tmp_path / "runs"
    proc = _spawn(["run", str(_long_preset(tmp_path)), "--headless", "--max-steps", "1500"], out)
    run_dir = _wait_for(out)
    shutil.rmtree(run_dir)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("error:") and "summary.json" in last and "No such file or directory" in last


# ---------------------------------------------------------------- bounds, before anything is created


@pytest.mark.parametrize(
    ("setting", "fragments"),
    [
        ('"model.hidden" = [300000, 300000]', ["needs about", "GiB", "parameters", "model.hidden"]),
        ('"data.name" = "noisy-line", mc_samples = 2000000000', ["needs about", "mc samples"]),
        ("epochs = 1000000000000000000000000000000", ["epochs", "--max-steps"]),
        ("seed = 1180591620717411303424", ["seed", "2^63-1"]),
        ("seed = -1", ["seed"]),
    ],
)
def test_resource_and_integer_bounds_are_checked_before_the_run_directory(tmp_path, out_dir, setting, fragments):
    preset = tiny_preset(tmp_path / "t.toml").read_text().replace('[[variants]]\nname = "a"\n', "")
    (tmp_path / "b.toml").write_text(preset + '[[variants]]\nname = "a"\nset = { ' + setting + " }\n")
    assert_clean_error(invoke("run", str(tmp_path / "b.toml"), "--out", str(out_dir)), *fragments)
    assert not out_dir.exists()


@pytest.mark.parametrize("threads", ["0", "-3", "100000", "1" + "0" * 30, "2.5"])
def test_thread_counts_are_range_checked(tmp_path, out_dir, monkeypatch, threads):
    monkeypatch.setenv("NNTUI_THREADS", threads)
    assert_clean_error(invoke("run", str(tiny_preset(tmp_path / "t.toml")), "--out", str(out_dir)), "NNTUI_THREADS", "CPUs here")
    assert not out_dir.exists()


@pytest.mark.parametrize(
    "option", [["--epochs", "1" + "0" * 30], ["--epochs", "0"], ["--max-steps", "-5"], ["--seed", "-1"], ["--seed", str(2**64)]]
)
def test_integer_options_are_range_checked(tmp_path, out_dir, option):
    result = invoke("run", str(tiny_preset(tmp_path / "t.toml")), "--out", str(out_dir), *option)
    assert result.exit_code == 2 and "Traceback" not in result.stderr and option[0] in result.stderr
    assert not out_dir.exists()


@pytest.mark.parametrize(
    ("option", "fragment"),
    [(["--num-iter", "1000000000000"], "--num-iter"), (["--diverge", "inf"], "--diverge"), (["--epochs", "inf"], "--epochs"),
     (["--end-lr", "inf"], "--end-lr"), (["--start-lr", "nan"], "--start-lr")],
)
def test_lr_find_refuses_infinite_or_huge_sweeps(tmp_path, out_dir, option, fragment):
    result = invoke("lr-find", str(tiny_preset(tmp_path / "t.toml")), "--out", str(out_dir), *option)
    assert result.exit_code == 2 and _last_line(result).startswith(f"error: {fragment}")
    assert not out_dir.exists()


# ---------------------------------------------------------------- names: text, never markup; unique file names


def test_markup_in_names_and_texts_is_printed_as_text(tmp_path, out_dir):
    preset = tmp_path / "m.toml"
    preset.write_text(
        'name = "[red]p"\ntitle = "[/] title"\nlesson = "[bold]unclosed [/nope]"\n'
        "[config]\nepochs = 1\nmax_steps = 60\n[config.data]\nname = \"mnist-5k\"\n[config.model]\nhidden = [8]\n"
        '[[variants]]\nname = "[bold]x[/"\n[[variants]]\nname = "[/]"\n'
    )
    result = invoke("run", str(preset), "--headless", "--out", str(out_dir))
    assert result.exit_code == 0, result.stderr
    assert "[bold]x[/" in result.stdout and "[/]" in result.stdout and "[red]p" in result.stdout
    bad_variant = invoke("run", str(preset), "--variant", "[/nope]", "--out", str(out_dir))
    assert_clean_error(bad_variant, "'[/nope]'")


def test_checkpoint_files_of_clashing_names_stay_apart(tmp_path, out_dir):
    long_name = "x" * 300
    preset = tiny_preset(tmp_path / "t.toml", f'[[variants]]\nname = "a/b"\n[[variants]]\nname = "a-b"\n[[variants]]\nname = "A"\n[[variants]]\nname = "{long_name}"\n')
    text = preset.read_text().replace("max_steps = 120", "max_steps = 40").replace("[config]\n", "[config]\ncheckpoint = true\n", 1)
    preset.write_text(text)
    result = invoke("run", str(preset), "--headless", "--json", "--out", str(out_dir))
    assert result.exit_code == 0, result.stderr
    [run_dir] = list(out_dir.iterdir())
    files = sorted(run_dir.glob("last-*.pt"))
    assert len(files) == 5 and all(len(f.name) < 100 for f in files)
    assert sorted(load_checkpoint(f)["variant"] for f in files) == sorted(["a", "a/b", "a-b", "A", long_name])


@pytest.mark.parametrize(
    "names", [["a/b", "a-b"], ["a b", "a-b", "a_b"], ["x", "X"], [".", "..", "-"], ["é", "ü", "漢"], ["y" * 400, "y" * 401]]
)
def test_file_stems_are_unique_and_safe(names):
    stems = file_stems(names)
    assert len({s.lower() for s in stems.values()}) == len(names)
    for stem in stems.values():
        assert 0 < len(stem.encode()) <= 64 and "/" not in stem and stem not in (".", "..")


def test_second_interrupt_exits_130_not_aborted(tmp_path):
    out = tmp_path / "runs"
    proc = _spawn(["run", str(_long_preset(tmp_path)), "--headless"], out)
    run_dir = _wait_for(out)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Aborted" not in err and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
