"""Bad input, divergence, interrupts and crashes: one clear line, the right exit code, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import example, HealthCheck, given, settings
from hypothesis import strategies as st

from nntui.engine.checkpoints import load_checkpoint
from nntui.errors import NntuiError
from nntui.presets import resolve_preset
from nntui.record.runlog import RunLogReader
from tests.helpers import ROOT, invoke, run_json, tiny_preset, variant


def assert_clean_error(result, *fragments: str, code: int = 2) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error:")
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_unknown_preset_lists_the_closest_names(out_dir):
    result = invoke("run", "sigmoid-paralisys", "--out", str(out_dir))
    assert_clean_error(result, "unknown preset", "sigmoid-paralysis")
    assert not out_dir.exists()


def test_toml_syntax_error_names_file_line_and_column(tmp_path, out_dir):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[config]\nepochs = = 3\n')
    result = invoke("run", str(bad), "--out", str(out_dir))
    assert_clean_error(result, "bad.toml", "line 3", "column")


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("[config.optimizer]\nlr = -0.1\n", ["config.optimizer.lr", "greater than 0"]),
        ("[config.optimizer]\nlr = 0\n", ["optimizer.lr"]),
        ("[config.model]\ndropout = 1.0\n", ["model.dropout", "less than 1"]),
        ("[config]\nbatch_size = 0\n", ["batch_size"]),
        ("[config.model]\nhidden = []\n", ["model.hidden", "at least 1"]),
        ('[config.model]\nactivation = "swish"\n', ["model.activation", "'sigmoid'", "'relu'"]),
        ('[config.optimizer]\nname = "lion"\n', ["optimizer.name", "'adamw'"]),
        ('[config.schedule]\nname = "cosine"\n', ["schedule.name", "'cyclic'"]),
        ('[config.data]\nname = "cifar"\n', ["data.name", "'mnist-5k'"]),
        ("[config.model]\nhiden = [10]\n", ["model.hiden", "unknown key"]),
        ('[config]\nepochs = "ten"\n', ["epochs", "integer"]),
    ],
)
def test_invalid_preset_values_name_the_key(tmp_path, out_dir, body, fragments):
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\n' + body)
    assert_clean_error(invoke("run", str(path), "--out", str(out_dir)), *fragments)
    assert not out_dir.exists()


@pytest.mark.parametrize(
    ("setting", "fragments"),
    [
        ("optimizer.lrr=0.1", ["optimizer.lrr", "allowed here", "lr"]),
        ("optimizer.lr=fast", ["optimizer.lr", "valid number"]),
        ("model.hidden=ten", ["model.hidden"]),
        ("epochs", ["KEY=VALUE"]),
        ("optimizer.lr=nan", ["optimizer.lr", "finite"]),
    ],
)
def test_bad_set_options(out_dir, setting, fragments):
    assert_clean_error(invoke("run", "sigmoid-paralysis", "--out", str(out_dir), "--set", setting), *fragments)


def test_data_dir_problems(tmp_path, out_dir):
    missing = tmp_path / "nope"
    assert_clean_error(invoke("run", "sigmoid-paralysis", "--dataset", "fashion-mnist", "--data-dir", str(missing), "--out", str(out_dir)), "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(invoke("run", "sigmoid-paralysis", "--dataset", "fashion-mnist", "--data-dir", str(empty), "--out", str(out_dir)), "is empty", "train-images-idx3-ubyte")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (corrupt / f"{stem}.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert_clean_error(invoke("run", "sigmoid-paralysis", "--dataset", "fashion-mnist", "--data-dir", str(corrupt), "--out", str(out_dir)), "corrupt")
    assert not out_dir.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(tmp_path, out_dir):
    preset = tiny_preset(tmp_path / "t.toml")
    assert_clean_error(invoke("run", str(preset), "--device", "cuda", "--out", str(out_dir)), "--device cuda", "--device cpu")
    result = invoke("run", str(preset), "--headless", "--device", "auto", "--out", str(out_dir))
    assert result.exit_code == 0
    assert "training on the CPU" in result.stderr


def test_unwritable_out_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    preset = tiny_preset(tmp_path / "t.toml")
    assert_clean_error(invoke("run", str(preset), "--out", str(blocker / "runs")), "--out")


def test_divergence_stops_only_that_variant(tmp_path, out_dir):
    preset = tiny_preset(
        tmp_path / "t.toml",
        '[[variants]]\nname = "blows up"\nset = { "optimizer.lr" = 1e3, "model.activation" = "relu", "model.init" = "normal" }\n',
    )
    summary = run_json(str(preset), out_dir)
    bad, good = variant(summary, "blows up"), variant(summary, "a")
    assert bad["status"] == "diverged" and "at step" in bad["reason"]
    assert good["status"] == "completed" and good["steps"] == 120
    events = [json.loads(line) for line in (Path(summary["run_dir"]) / "events.jsonl").read_text().splitlines()]
    losses = [x for e in events if e["type"] == "steps" and e["variant"] == "blows up" for x in e["losses"]]
    assert len(losses) < bad["steps"] or len(losses) == bad["steps"] - 1
    assert all(isinstance(x, float) for x in losses)  # no NaN/inf recorded (JSON would hold NaN/Infinity)
    assert any(e["type"] == "alert" and "diverged" in e["message"] for e in events)
    assert summary["status"] == "completed"


def _spawn(args: list[str], out: Path) -> subprocess.Popen:
    env = {**os.environ, "NNTUI_HEADLESS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "nntui", *args, "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(out: Path, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in out.glob("*/events.jsonl"):
            if '"type":"steps"' in log.read_text():
                return log.parent
        time.sleep(0.1)
    raise AssertionError("training never started")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_saves_everything_and_exits_130(tmp_path, sig):
    preset = tiny_preset(tmp_path / "t.toml").read_text().replace("max_steps = 120", "max_steps = 200000").replace("epochs = 1", "epochs = 5000")
    (tmp_path / "long.toml").write_text(preset + "[config]\n" if False else preset)
    (tmp_path / "long.toml").write_text(preset.replace("[config]\n", "[config]\ncheckpoint = true\n", 1))
    out = tmp_path / "runs"
    proc = _spawn(["run", str(tmp_path / "long.toml"), "--headless"], out)
    run_dir = _wait_for_steps(out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["variants"][0]["status"] == "interrupted"
    events = RunLogReader(run_dir).read_all()
    assert events[-1].type == "run_finished" and events[-1].status == "interrupted"
    ckpt = load_checkpoint(run_dir / "last-a.pt")
    assert ckpt["step"] == summary["variants"][0]["steps"]


def test_kill_9_leaves_a_readable_log(tmp_path):
    preset = tiny_preset(tmp_path / "t.toml").read_text().replace("max_steps = 120", "max_steps = 200000").replace("epochs = 1", "epochs = 5000")
    (tmp_path / "long.toml").write_text(preset)
    out = tmp_path / "runs"
    proc = _spawn(["run", str(tmp_path / "long.toml"), "--headless"], out)
    run_dir = _wait_for_steps(out)
    time.sleep(1.5)  # past one flush interval
    proc.kill()
    proc.wait(timeout=30)
    with open(run_dir / "events.jsonl", "a") as f:
        f.write('{"type":"steps","vari')  # as if cut mid-write
    events = RunLogReader(run_dir).read_all()
    assert events[0].type == "run_started"
    assert any(e.type == "steps" for e in events)
    assert not (run_dir / "summary.json").exists()


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "best-a.pt"
    path.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(NntuiError, match="corrupt"):
        load_checkpoint(path)


def test_checkpoints_are_written_atomically(tmp_path, out_dir):
    preset = tiny_preset(tmp_path / "t.toml", "").read_text().replace("[config]\n", "[config]\ncheckpoint = true\nkeep_best = true\n", 1)
    (tmp_path / "c.toml").write_text(preset)
    summary = run_json(str(tmp_path / "c.toml"), out_dir)
    run_dir = Path(summary["run_dir"])
    assert sorted(p.name for p in run_dir.glob("*.pt")) == ["best-a.pt", "last-a.pt"]
    assert not list(run_dir.glob("*.tmp"))
    best = load_checkpoint(run_dir / "best-a.pt")
    assert best["test_loss"] == pytest.approx(summary["variants"][0]["checkpoints"]["best"]["test_loss"])


def test_two_runs_at_once_get_their_own_directories(tmp_path):
    preset = tiny_preset(tmp_path / "t.toml")
    out = tmp_path / "runs"
    procs = [_spawn(["run", str(preset), "--headless", "--json"], out) for _ in range(2)]
    dirs = set()
    for proc in procs:
        stdout, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        dirs.add(json.loads(stdout)["run_dir"])
    assert len(dirs) == 2 and all((Path(d) / "summary.json").exists() for d in dirs)


# ---------------------------------------------------------------- property-based: only our error type

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
config_keys = st.sampled_from(["epochs", "batch_size", "model", "model.hidden", "model.activation", "model.dropout", "optimizer", "optimizer.lr",
                               "optimizer.name", "optimizer.betas", "schedule.name", "data.name", "l2", "seed", "nope", "model.x.y", ".", "a..b"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=st.dictionaries(config_keys, json_values, max_size=4),
    expect=st.dictionaries(st.sampled_from(["kind", "stuck", "learns", "margin", "baseline", "improved", "metric"]), json_values, max_size=3),
    sets=st.lists(st.tuples(config_keys, st.text(max_size=12)).map(lambda kv: f"{kv[0]}={kv[1]}") | st.text(max_size=12), max_size=3),
    name=json_values,
)
@example(config={"model": {"\n": 0}}, expect={}, sets=[], name="x")  # a key with a newline once split the error line
def test_loader_raises_only_its_own_error(config, expect, sets, name):
    nested: dict = {}
    for key, value in config.items():
        nested[key.split(".")[0]] = value
    data = {"name": name, "config": nested, "expect": expect, "variants": [{"name": "v", "set": config}]}
    try:
        resolve_preset(data, "fuzz", sets)
    except NntuiError as exc:
        assert str(exc) and "\n" not in str(exc)


def test_bad_thread_count_is_bad_input(tmp_path, out_dir, monkeypatch):
    monkeypatch.setenv("NNTUI_THREADS", "many")
    assert_clean_error(invoke("run", str(tiny_preset(tmp_path / "t.toml")), "--out", str(out_dir)), "NNTUI_THREADS")
    assert not out_dir.exists()


def test_missing_lr_find_file_leaves_no_run_behind(tmp_path, out_dir):
    result = invoke("run", "cyclic-lr", "--from-lr-find", str(tmp_path / "nope.json"), "--out", str(out_dir))
    assert_clean_error(result, "--from-lr-find", "lr_find.json")
    assert not list(out_dir.glob("*"))


def test_batchnorm_with_single_example_batches_is_bad_input(out_dir):
    result = invoke("run", "batchnorm", "--set", "batch_size=1", "--out", str(out_dir))
    assert_clean_error(result, "batch_size 1", "BatchNorm", "batch_size to 2 or more")
    assert not out_dir.exists()


def test_batchnorm_skips_a_last_batch_of_one(out_dir):
    # 4,000 digits in batches of 3 leave one over each epoch: BatchNorm cannot train on it, so it sits out.
    summary = run_json("batchnorm", out_dir, "--set", "batch_size=3", "--max-steps", "1400", "--variant", "BN lr 1e-2")
    assert summary["status"] == "completed"
    [v] = summary["variants"]
    assert v["steps"] == 1400 and v["epochs"] == pytest.approx(1400 / 1333, abs=1e-3)
