"""The LR range test: suggestions inside a known good range, exact state restore, early stop, NaN safety, CLI."""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nntui.cli import app
from nntui.engine.data import Dataset
from nntui.engine.lr_finder import LR_FIND_FILE, analyse, exponential_lrs, load_bounds, range_test, save_result, suggest
from nntui.record import events as ev
from nntui.record.runlog import RunLogReader
from nntui.record.state import RunState
from nntui.presets import TrainConfig
from nntui.engine.train import VariantRun, evaluate

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")
CHANCE = math.log(4)  # cross-entropy of a uniform guess over 4 classes
# Measured by training at fixed LRs (see test_known_good_range_is_real): LRs that learn without blowing up.
GOOD_RANGE = {"sgd": (0.01, 1.0), "adam": (1e-3, 0.3)}


def blobs(seed: int = 0, n: int = 512, dim: int = 20, classes: int = 4, label_noise: float = 0.3) -> Dataset:
    """Gaussian clusters with 30% of labels shuffled: learnable, but the loss cannot reach 0."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=g) * 1.5
    y = torch.randint(0, classes, (2 * n,), generator=g)
    x = means[y] + torch.randn(2 * n, dim, generator=g)
    x = (x - x.mean(0)) / x.std(0)
    flip = torch.rand(2 * n, generator=g) < label_noise
    y = torch.where(flip, torch.randint(0, classes, (2 * n,), generator=g), y)
    return Dataset("blobs", "classification", x[:n], y[:n], x[n:], y[n:], classes)


def config(optimizer: str = "sgd", lr: float = 0.1, seed: int = 0, **extra) -> TrainConfig:
    data = {"model": {"hidden": [32], "activation": "relu"}, "optimizer": {"name": optimizer, "lr": lr}, "batch_size": 32, "epochs": 4, "seed": seed}
    data.update(extra)
    return TrainConfig.model_validate(data)


def train(run: VariantRun, steps: int) -> list[float]:
    """The trainer's own step, wrapping epochs as run_block does; returns the losses."""
    for i in range(steps):
        if run.pos >= run.steps_per_epoch:
            run.pos = 0
        run._train_step(i % len(run.loss_buffer), probe=False)
    return run.loss_buffer.tolist()


def test_exponential_lrs_span_start_to_end_with_a_constant_ratio():
    lrs = exponential_lrs(1e-8, 10.0, 301)
    assert lrs[0] == pytest.approx(1e-8) and lrs[-1] == pytest.approx(10.0)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_known_good_range_is_real(optimizer):
    lo, hi = GOOD_RANGE[optimizer]
    data = blobs()

    def loss_after(lr: float) -> float:
        run = VariantRun("x", "", config(optimizer, lr), data, CPU, None)
        train(run, 64)
        return evaluate(run.model, data.x_train, data.y_train, "classification")[0]

    assert loss_after(lo) < CHANCE - 0.08 and loss_after(hi) < CHANCE - 0.08
    too_low, too_high = loss_after(lo / 100), loss_after(hi * 10)
    assert too_low > CHANCE - 0.05
    assert not math.isfinite(too_high) or too_high > CHANCE - 0.05


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_suggestions_fall_inside_the_known_good_range(optimizer, seed):
    lo, hi = GOOD_RANGE[optimizer]
    run = VariantRun("x", "", config(optimizer, seed=seed), blobs(seed), CPU, None)
    result = range_test(run, start_lr=1e-5, end_lr=10.0, num_iter=300)
    for name in ("steepest", "valley", "min_div_10"):
        s = result.suggestions[name]
        assert s.rule, name
        assert lo <= s.lr <= hi, f"{name} suggests {s.lr:.3g}, outside the good range [{lo}, {hi}]"
    assert lo <= result.max_lr <= hi
    assert result.base_lr < lo < result.max_lr  # the cycle's lower bound sits below where learning starts
    assert result.max_lr == pytest.approx(result.suggestions["minimum"].lr / 10)


def _all_tensors(run: VariantRun) -> dict[str, object]:
    """Every tensor and number of the model and the optimizer, plus the data position, cloned."""
    opt = run.optimizer.state_dict()
    return {
        "model": {k: v.clone() for k, v in run.model.state_dict().items()},
        "opt_state": {k: {n: (t.clone() if torch.is_tensor(t) else t) for n, t in s.items()} for k, s in opt["state"].items()},
        "opt_groups": json.loads(json.dumps(opt["param_groups"])),
        "training": run.model.training,
        "step": run.step,
        "pos": run.pos,
    }


def _assert_same(a, b, where="state"):
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    else:
        assert a == b, where


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_state_is_restored_bit_identically_and_training_continues_unchanged(optimizer):
    extra = {"model": {"hidden": [16, 16], "activation": "relu", "batchnorm": "before", "dropout": 0.1}}
    cfg = config(optimizer, lr=0.05, **extra)
    if optimizer == "sgd":
        cfg.optimizer.momentum = 0.9
    data = blobs()
    swept, untouched = (VariantRun("x", "", cfg, data, CPU, None) for _ in range(2))
    torch.manual_seed(123)
    train(swept, 20)  # optimizer state (momentum / Adam moments) and BatchNorm statistics exist, mid-epoch
    torch.manual_seed(123)
    train(untouched, 20)
    before = _all_tensors(swept)
    rng = torch.get_rng_state()

    result = range_test(swept, start_lr=1e-4, end_lr=100.0, num_iter=100)

    assert result.steps > 10
    _assert_same(before, _all_tensors(swept))
    assert torch.equal(rng, torch.get_rng_state())  # dropout masks after the test are the ones they would have been
    # The data order was restored too: the next steps match a run that never swept.
    torch.manual_seed(7)
    continued = train(swept, 30)
    torch.manual_seed(7)
    assert continued == train(untouched, 30)


def test_a_diverging_sweep_stops_early_and_still_suggests():
    run = VariantRun("x", "", config("sgd"), blobs(), CPU, None)
    result = range_test(run, start_lr=1e-4, end_lr=1e4, num_iter=400, diverge=4.0)
    assert result.stopped in ("diverged", "non-finite")
    assert result.steps < 400 and result.stop_reason
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) == result.steps
    assert result.suggestions["valley"].lr is not None and result.suggestions["steepest"].lr is not None
    assert 0 < result.base_lr < result.max_lr < 1e4


def test_nan_losses_stop_the_sweep_and_leave_valid_json(tmp_path):
    run = VariantRun("x", "", config("sgd"), blobs(), CPU, None)
    calls = {"n": 0}
    real_loss = run.loss_fn

    def loss_turning_nan(out, y):
        calls["n"] += torch.is_grad_enabled()  # count training steps, not the reference batch's no-grad loss
        loss = real_loss(out, y)
        return loss * float("nan") if calls["n"] > 150 else loss

    run.loss_fn = loss_turning_nan
    result = range_test(run, start_lr=1e-5, end_lr=10.0, num_iter=300)
    assert result.stopped == "non-finite" and "nan" in result.stop_reason
    assert result.steps == 151 and math.isnan(result.losses[-1])
    assert all(s.lr is None or math.isfinite(s.lr) for s in result.suggestions.values())
    assert result.suggestions["valley"].lr is not None
    path = tmp_path / LR_FIND_FILE
    save_result(result, path)  # strict JSON (no NaN tokens): non-finite points are null
    data = json.loads(path.read_text())
    assert data["losses"][-1] is None and data["stopped"] == "non-finite"
    assert load_bounds(path) == (result.base_lr, result.max_lr)
    assert all(torch.isfinite(p).all() for p in run.model.parameters())  # the NaN steps were undone


def test_suggest_excludes_nan_points_and_the_ends():
    lrs = exponential_lrs(1e-6, 1.0, 100)
    losses = [2.0 - 1.5 * math.exp(-((math.log10(lr) + 2) ** 2)) for lr in lrs]  # minimum at 1e-2
    losses[40] = float("nan")
    losses[0] = -100.0  # a start-up outlier: ignored because the first points are skipped
    suggestions, base, top = suggest(lrs, losses)
    assert suggestions["minimum"].lr == pytest.approx(1e-2, rel=0.2)
    assert top == pytest.approx(1e-3, rel=0.2)
    assert base < top


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_subnormal=False), st.sampled_from([math.nan, math.inf])), min_size=0, max_size=80))
def test_suggest_never_fails_on_any_curve(losses):
    lrs = exponential_lrs(1e-6, 1.0, max(len(losses), 2))[: len(losses)]
    suggestions, base, top = suggest(lrs, losses)
    for s in suggestions.values():
        assert s.lr is None or lrs[0] / 10 <= s.lr <= lrs[-1]
    assert (base is None) == (top is None)
    if base is not None:
        assert 0 < base < top


def test_lr_finder_imports_no_ui_library():
    code = "import sys, nntui.engine.lr_finder; bad = [m for m in ('textual', 'typer', 'rich', 'plotext') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


TINY_PRESET = """
name = "tiny"
[config]
batch_size = 32
[config.data]
name = "mnist-5k"
[config.model]
hidden = [16]
activation = "relu"
[[variants]]
name = "only"
"""


def test_cli_json_prints_the_result_and_saves_lr_find_json(tmp_path):
    preset = tmp_path / "tiny.toml"
    preset.write_text(TINY_PRESET)
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["lr-find", str(preset), "--json", "--num-iter", "60", "--start-lr", "1e-4", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["steps"] <= 60 and data["variant"] == "only" and data["dataset"] == "mnist-5k"
    assert set(data["suggestions"]) >= {"steepest", "valley", "min_div_10"}
    assert all(s["rule"] for s in data["suggestions"].values())
    assert data["cyclic"]["base_lr"] < data["cyclic"]["max_lr"]
    saved = json.loads((out / next(p.name for p in out.iterdir()) / LR_FIND_FILE).read_text())
    assert saved["lrs"] == data["lrs"] and saved["suggestions"] == data["suggestions"]
    assert "learning rate" in result.stderr and "valley" in result.stderr  # the plot and table went to stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start-lr", "1", "--end-lr", "0.1"], "--end-lr"),
        (["--num-iter", "3"], "--num-iter"),
        (["--num-iter", "50", "--epochs", "1"], "not both"),
        (["--variant", "nope"], "nope"),
        (["--smooth", "1.5"], "--smooth"),
    ],
)
def test_cli_bad_input_is_a_one_line_error_with_exit_2(tmp_path, args, message):
    preset = tmp_path / "tiny.toml"
    preset.write_text(TINY_PRESET)
    result = CliRunner().invoke(app, ["lr-find", str(preset), "--device", "cpu", "--out", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


# ---------------------------------------------------------------- the fall-start rule and the noise bands

def synthetic_curve(num_iter: int, seed: int, fall_at: float = -3.0, minimum_at: float = -0.5, sd: float = 0.12) -> tuple[list[float], list[float]]:
    """Flat at 2.5 up to lr 10^fall_at, falling one unit per decade to 10^minimum_at, then blowing up; Gaussian batch noise."""
    rng = random.Random(seed)
    lrs = exponential_lrs(1e-8, 10.0, num_iter)
    losses = []
    for lr in lrs:
        x = math.log10(lr)
        loss = 2.5 - max(0.0, min(x, minimum_at) - fall_at) + 3 * max(0.0, x - minimum_at) ** 2
        losses.append(loss + rng.gauss(0, sd))
    return lrs, losses


@pytest.mark.parametrize("num_iter", [100, 300])
def test_fall_start_holds_still_across_noise_seeds_on_a_curve_with_a_known_fall(num_iter):
    found = [analyse(*synthetic_curve(num_iter, seed)) for seed in range(8)]
    falls = [math.log10(a.suggestions["fall_start"].lr) for a in found]
    # 1.5 noise sd (0.18) below the plateau is 0.18 decades after the true fall at 1e-3; smoothing adds a little
    assert all(-3.0 <= f <= -2.6 for f in falls), falls
    assert max(falls) - min(falls) <= 0.3
    assert all(abs(math.log10(a.suggestions["minimum"].lr) + 0.5) <= 0.2 for a in found)
    assert all(0.08 <= a.noise <= 0.16 for a in found)  # the batch noise sd (0.12), estimated from the curve
    for a in found:
        assert a.stability["base_lr"]["reliable"]
        for bound, value in (("base_lr", a.base_lr), ("max_lr", a.max_lr)):
            lo, hi = a.stability[bound]["band"]
            assert lo <= value <= hi and a.stability[bound]["decades"] == pytest.approx(math.log10(hi / lo), abs=1e-3)


def test_a_noise_dip_in_the_flat_head_does_not_end_the_plateau():
    lrs, losses = synthetic_curve(300, 0)
    for i in range(60, 70):  # a run of low losses around lr 1e-6, long before the fall
        losses[i] -= 0.5
    fall = math.log10(analyse(lrs, losses).suggestions["fall_start"].lr)
    assert -3.0 <= fall <= -2.6


def test_a_wide_noise_band_is_flagged_unreliable_with_a_warning():
    lrs, losses = synthetic_curve(100, 3, sd=0.6)  # the fall is drowned in noise
    found = analyse(lrs, losses)
    flagged = [b for b in found.stability.values() if not b["reliable"]]
    assert flagged and all("not reliable" in b["warning"] for b in flagged)


# ---------------------------------------------------------------- the sweep in the event stream

def _lr_find_run(tmp_path) -> tuple[dict, Path]:
    preset = tmp_path / "tiny.toml"
    preset.write_text(TINY_PRESET)
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["lr-find", str(preset), "--json", "--num-iter", "80", "--start-lr", "1e-4", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), Path(json.loads(result.stdout)["run_dir"])


def test_lr_find_writes_its_sweep_as_events_that_rebuild_the_result(tmp_path):
    data, run_dir = _lr_find_run(tmp_path)
    reader = RunLogReader(run_dir)
    events = reader.read_all()
    reader.close()
    kinds = [e.type for e in events]
    points = [e for e in events if isinstance(e, ev.LRSweepPoints)]
    assert kinds[:2] == ["run_started", "lr_sweep_started"] and kinds[-2:] == ["lr_sweep_finished", "run_finished"]
    assert set(kinds[2:-2]) == {"lr_sweep_points"} and len(points) == math.ceil(data["steps"] / 25)  # one per read-back block
    assert [e.first_index for e in points] == list(range(0, data["steps"], 25))
    assert [lr for e in points for lr in e.lrs] == data["lrs"] and [x for e in points for x in e.losses] == data["losses"]
    assert points[-1].suggestions["minimum"] == data["suggestions"]["minimum"]["lr"]  # the last provisional = the final
    state = RunState()
    for event in events:
        state.apply(event)
    sweep = state.sweeps["only"]
    assert sweep.lrs == data["lrs"] and sweep.smoothed == data["smoothed"] and sweep.stopped == data["stopped"]
    assert sweep.cyclic["base_lr"] == data["cyclic"]["base_lr"] and sweep.cyclic["max_lr"] == data["cyclic"]["max_lr"]
    assert sweep.cyclic["stability"] == data["cyclic"]["stability"] and sweep.file.endswith(LR_FIND_FILE)
    assert state.status == "completed" and state.preset == "tiny"


def test_watch_on_an_lr_find_run_shows_the_sweep_and_its_bounds(tmp_path):
    data, run_dir = _lr_find_run(tmp_path)
    from nntui.tui.app import make_app

    async def pilot_run(size):
        app = make_app(run_dir=run_dir)
        async with app.run_test(size=size) as pilot:
            deadline = time.monotonic() + 60
            while not (app.state.sweeps and app.state.status == "completed"):
                assert time.monotonic() < deadline, "the log was not read"
                await pilot.pause(0.05)
            app.refresh_now()
            await pilot.pause()
            panel = app.query_one("#sweep")
            assert panel.display and app.sweep_phase and ("sweep" in app.visible_panels())
            assert "loss" not in app.visible_panels()
            table = str(panel.query_one("#sweep-table").render())
            plot = panel.query_one("#sweep-plot").text()
            return table, plot

    for size in ((80, 24), (160, 48)):
        table, plot = asyncio.run(pilot_run(size))
        assert f"base_lr {data['cyclic']['base_lr']:.2g}" in table and f"max_lr {data['cyclic']['max_lr']:.2g}" in table
        assert f"valley {data['suggestions']['valley']['lr']:.2g}" in table
        assert f"LR range test · only · {data['steps']}/80 · completed" in plot
        assert "V valley" in plot and "M minimum" in plot and "F fall_start" in plot  # the legend of the marks
