"""Core engine units: data, models, probes, run log, state, imports."""

from __future__ import annotations

import gzip
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nntui.record import events as ev
from nntui.engine.data import find_idx_files, load_dataset, load_mnist_5k, noisy_line, read_idx
from nntui.errors import NntuiError
from nntui.engine.models import MLP
from nntui.presets import ModelConfig, OptimizerConfig, load_preset
from nntui.engine.optim import build_optimizer
from nntui.engine.probes import Probe
from nntui.record.runlog import RunLog, RunLogReader, create_run_dir
from nntui.record.state import BoundedSeries, RunState
from tests.helpers import run_json, tiny_preset

# ---------------------------------------------------------------- data

def test_mnist_5k_is_a_stratified_fixed_split():
    data = load_mnist_5k()
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784)
    assert torch.bincount(data.y_train).tolist() == [400] * 10
    assert torch.bincount(data.y_test).tolist() == [100] * 10
    # Normalize((0.13), (0.3)) as in the lecture: background pixels map to -0.13/0.3
    assert data.x_train.min().item() == pytest.approx(-0.13 / 0.3, abs=1e-5)
    assert torch.equal(load_mnist_5k().y_test, data.y_test)


def test_noisy_line_is_seeded_and_sized_like_the_lecture():
    a, b = noisy_line(seed=3), noisy_line(seed=3)
    assert a.x_train.shape == (50, 1) and a.x_test.shape == (50, 1)
    assert torch.equal(a.y_train, b.y_train)
    assert a.x_train.min().item() == -1 and a.x_train.max().item() == 1
    residual = (a.y_train - a.x_train).std().item()
    assert 0.15 < residual < 0.45


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _idx_folder(folder: Path, n_train: int = 20, n_test: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    _write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (n_train, 28, 28)))
    _write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_train))
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (n_test, 28, 28)))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test))
    return folder


def test_fashion_mnist_reads_a_flat_idx_folder(tmp_path):
    data = load_dataset("fashion-mnist", _idx_folder(tmp_path / "fm"))
    assert data.name == "fashion-mnist"
    assert data.x_train.shape == (20, 784) and data.x_test.shape == (10, 784)


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    folder = _idx_folder(tmp_path / "fm")
    path = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(NntuiError, match="truncated or corrupt"):
        read_idx(path)
    path.write_bytes(path.read_bytes()[:50])  # a cut gzip stream
    with pytest.raises(NntuiError, match="corrupt or truncated"):
        load_dataset("fashion-mnist", folder)


def test_missing_idx_file_named(tmp_path):
    folder = _idx_folder(tmp_path / "fm")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(NntuiError, match="t10k-labels-idx1-ubyte"):
        find_idx_files(folder)


def test_mnist_offline_falls_back_to_embedded_with_a_note(tmp_path, monkeypatch):
    import nntui.engine.data as data_mod

    def offline(*_args, **_kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(data_mod, "_torchvision_dataset", offline)
    data = load_dataset("mnist", None)
    assert data.name == "mnist-5k"
    assert "using the embedded mnist-5k" in data.note


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian_package():
    data = load_dataset("fashion-mnist", Path("/usr/share/datasets/fashion-mnist"))
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)


# ---------------------------------------------------------------- models

def test_batchnorm_before_activation_drops_the_linear_bias():
    model = MLP(784, 10, ModelConfig(hidden=[32, 32], batchnorm="before"))
    assert all(linear.bias is None for linear in model.linears[:-1])
    kinds = [type(m).__name__ for m in model.layers[0]]
    assert kinds == ["Linear", "BatchNorm1d", "Sigmoid"]


def test_dropout_goes_where_the_lecture_puts_it():
    model = MLP(1, 1, ModelConfig(hidden=[100, 100], activation="relu", dropout=[0.5, 0.2]))
    assert [type(m).__name__ for m in model.layers[0]] == ["Linear", "Dropout", "ReLU"]
    assert model.layers[1][1].p == 0.2


@pytest.mark.parametrize(("init", "expected_std"), [("xavier_normal", math.sqrt(2 / (784 + 100))), ("kaiming_normal", math.sqrt(2 / 784)), ("normal", 1.0)])
def test_init_scales(init, expected_std):
    torch.manual_seed(0)
    model = MLP(784, 10, ModelConfig(hidden=[100], activation="relu", init=init))
    assert model.linears[0].weight.std().item() == pytest.approx(expected_std, rel=0.05)


# ---------------------------------------------------------------- probes

def test_probe_statistics_match_a_direct_computation():
    torch.manual_seed(0)
    model = MLP(20, 3, ModelConfig(hidden=[8], activation="relu"))
    opt = build_optimizer(model.parameters(), OptimizerConfig(name="sgd", lr=0.1, momentum=0.9))
    probe = Probe(model, opt)
    x, y = torch.randn(16, 20), torch.randint(0, 3, (16,))
    probe.attach()
    out = model(x)
    probe.detach()
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    torch.nn.functional.cross_entropy(out, y).backward()
    grad = model.linears[0].weight.grad.abs().flatten()
    before = model.linears[0].weight.detach().clone()
    probe.before_step()
    opt.step()
    [(step, layers, groups, opt_layers)] = probe.read([probe.collect(1)])
    fc1 = layers[0]
    assert fc1["grad"][2] == pytest.approx(grad.median().item(), rel=1e-4) or fc1["grad"][2] == pytest.approx(torch.quantile(grad, 0.5).item(), rel=1e-4)
    assert fc1["grad"][4] == pytest.approx(grad.max().item(), rel=1e-5)
    assert fc1["act"][0] == pytest.approx(x.min().item(), rel=1e-5)
    hidden = torch.relu(x @ before.T + model.linears[0].bias.detach())
    assert fc1["dead"] == pytest.approx((hidden <= 0).all(dim=0).float().mean().item())
    assert fc1["update_norm"] == pytest.approx((model.linears[0].weight.detach() - before).norm().item(), rel=1e-4)
    assert groups == [{"lr": 0.1, "weight_decay": 0.0, "momentum": 0.9}]
    assert opt_layers[0]["momentum_norm"] == pytest.approx(grad.norm().item(), rel=1e-4)
    assert layers[-1]["saturation"] is None  # the output layer feeds no activation


# ---------------------------------------------------------------- run log and state

def test_truncated_last_line_is_skipped(tmp_path):
    run_dir = create_run_dir(tmp_path, "x")
    log = RunLog(run_dir)
    log.append(ev.Alert(None, 1, "info", "hello"))
    log.append(ev.Steps("a", 1, [2.3, 2.2], 0.1, 0.1, 0.5))
    log.close()
    with open(run_dir / "events.jsonl", "a") as f:
        f.write('{"type":"steps","variant":"a","first_st')
    reader = RunLogReader(run_dir)
    events = reader.read_all()
    assert [e.type for e in events if e.type != "skipped"] == ["alert", "steps"]
    assert sum(e.lines for e in events if e.type == "skipped") == 1  # a closed log's cut line is counted, not parsed


def test_reader_waits_for_a_line_being_written(tmp_path):
    run_dir = create_run_dir(tmp_path, "x")
    path = run_dir / "events.jsonl"
    line = ev.Alert(None, 1, "info", "hi").to_json()
    path.write_text(line[:10])
    reader = RunLogReader(run_dir)
    assert reader.read_new() == []
    with open(path, "a") as f:
        f.write(line[10:] + "\n")
    assert [e.message for e in reader.read_new()] == ["hi"]


def test_run_dirs_are_never_reused(tmp_path):
    dirs = {create_run_dir(tmp_path, "same") for _ in range(5)}
    assert len(dirs) == 5


def test_bounded_series_stays_bounded_and_keeps_the_mean():
    s = BoundedSeries(capacity=64)
    for i in range(100_000):
        s.append(i, 1.0 + (i % 2))
    assert len(s) < 64
    assert sum(s.ys) / len(s.ys) == pytest.approx(1.5, rel=0.01)
    assert s.xs[-1] == 99_999  # the newest point is always there


def test_state_replay_equals_live_state(tmp_path):
    preset = tiny_preset(tmp_path / "tiny.toml")
    summary = run_json(str(preset), tmp_path / "runs")
    state = RunState()
    for event in RunLogReader(Path(summary["run_dir"])).read_all():
        state.apply(event)
    assert state.status == "completed"
    assert state.variants["a"].step == summary["variants"][0]["steps"] == 120
    assert state.summary == summary
    saved = json.loads((Path(summary["run_dir"]) / "summary.json").read_text())
    assert saved == summary


def test_runs_are_reproducible_with_a_seed(tmp_path):
    preset = tiny_preset(tmp_path / "tiny.toml")
    a = run_json(str(preset), tmp_path / "a", "--seed", "7")
    b = run_json(str(preset), tmp_path / "b", "--seed", "7")
    assert a["variants"][0]["train_loss"] == b["variants"][0]["train_loss"]
    assert a["variants"][0]["test_loss"] == b["variants"][0]["test_loss"]


def test_preset_set_overrides_reach_the_config():
    resolved = load_preset("sigmoid-paralysis", ["optimizer.lr=0.05", "model.activation=tanh"])
    for cfg in resolved.configs.values():
        assert cfg.optimizer.lr == 0.05 and cfg.model.activation == "tanh"
    assert resolved.configs["2 layers"].model.hidden == [100, 100]


def test_recorded_lr_is_the_one_the_probed_step_used(tmp_path):
    # warmup over 125 batches: step k (1-based) trains at lr * k / 125
    body = '[variants.set]\n"schedule.name" = "warmup_cosine"\n"schedule.warmup_epochs" = 1.0\n"optimizer.lr" = 0.1\n'
    summary = run_json(str(tiny_preset(tmp_path / "w.toml", body)), tmp_path / "runs")
    events = RunLogReader(Path(summary["run_dir"])).read_all()
    probed = {e.step: e.groups[0]["lr"] for e in events if e.type == "optimizer_state"}
    assert probed[20] == pytest.approx(0.1 * 20 / 125)
    assert probed[100] == pytest.approx(0.1 * 100 / 125)
