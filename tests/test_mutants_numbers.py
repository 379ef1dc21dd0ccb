"""Tests that kill realistic mutants of the number-producing code (issue 15, item 5), each checked a second,
independent way: the periodic evaluation's split, the LR finder's smoothing and steepest-slope rule, the
activation mean's centring, the headless table's columns. scripts/mutation.sh runs these per module."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nntui.engine.data import load_dataset
from nntui.engine.lr_suggest import suggest
from nntui.engine.probes import stats
from nntui.engine.probes.numpy_ops import NumpyOps
from nntui.engine.train import VariantRun
from nntui.presets import TrainConfig
from nntui.report import summary_table
from tests.helpers import invoke


def test_periodic_evaluation_runs_on_the_test_subset_not_the_training_set():
    data = load_dataset("mnist-5k")
    cfg = TrainConfig.model_validate({"model": {"hidden": [16, 16]}, "eval_subset": 300, "eval_every": 5, "data": {"name": "mnist-5k"}})
    run = VariantRun("v", "", cfg, data, torch.device("cpu"), None)
    events = []
    run.run_block(events.append, threading.Event())  # a block ends at the periodic evaluation (eval_every 5)
    (event,) = [e for e in events if e.type == "eval"]
    assert event.step == 5
    run.model.eval()
    with torch.no_grad():
        logits = run.model(data.x_test[:300])
        expected = F.cross_entropy(logits, data.y_test[:300]).item()
        on_train = F.cross_entropy(run.model(data.x_train[:300]), data.y_train[:300]).item()
    assert event.split == "test_subset"
    assert event.loss == pytest.approx(expected, rel=1e-5) and abs(expected - on_train) > 1e-4
    assert event.accuracy == pytest.approx((logits.argmax(1) == data.y_test[:300]).float().mean().item())


def _sweep_curve() -> tuple[list[float], list[float]]:
    """A range test's smoothed loss: flat, a fall centred on 1e-2 (steepest there), a minimum, a blow-up."""
    lrs = [10 ** (-5 + 5 * i / 99) for i in range(100)]
    losses = [2.3 - 2.0 / (1 + math.exp(-3 * (math.log10(lr) + 2))) + (8 * (math.log10(lr) + 0.7) ** 2 if lr > 0.2 else 0) for lr in lrs]
    return lrs, losses


def test_the_steepest_suggestion_is_the_steepest_fall_not_the_flattest_stretch():
    lrs, losses = _sweep_curve()
    suggestions, _, _ = suggest(lrs, losses, ema=losses)  # the curve is already smooth: it is the EMA
    steepest = suggestions["steepest"].lr
    assert abs(math.log10(steepest) - (-2)) < 0.3, steepest
    minimum = lrs[losses.index(min(losses))]
    # the minimum is read off a centred smoothing 0.3 decades wide: within that of the raw curve's minimum
    assert abs(math.log10(suggestions["minimum"].lr) - math.log10(minimum)) < 0.3


def test_the_lr_finder_smooths_with_a_small_weight_on_the_newest_loss(tmp_path):
    import json

    from tests.helpers import tiny_preset

    result = invoke("lr-find", str(tiny_preset(tmp_path / "t.toml")), "--json", "--num-iter", "60", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    raw = [x for x, s in zip(found["losses"], found["smoothed"]) if x is not None and s is not None]
    smoothed = [s for x, s in zip(found["losses"], found["smoothed"]) if x is not None and s is not None]
    assert len(raw) > 20
    wiggle = lambda ys: sum(abs(b - a) for a, b in zip(ys, ys[1:]))  # noqa: E731
    # an EMA with weight 0.05 on the newest point keeps a fraction of the batch noise; 0.95 would keep nearly all of it
    assert wiggle(smoothed) < 0.5 * wiggle(raw)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_activation_mean_and_std_match_numpy_whatever_the_centre(activation):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 64, 10))
    out = {"sigmoid": 1 / (1 + np.exp(-x)), "tanh": np.tanh(x), "relu": np.maximum(x, 0)}[activation]
    parts = np.asarray(stats.activation_parts(NumpyOps(), out, activation), dtype=float).reshape(4, 2)
    for layer in range(2):
        total, norm, saturated, dead = parts[:, layer]
        mean, std, _, _ = stats.activation_stats_from(total, norm, saturated, dead, 64, 10, activation)
        assert mean == pytest.approx(out[layer].mean(), rel=1e-9, abs=1e-12)
        assert std == pytest.approx(out[layer].std(ddof=1), rel=1e-9)


def test_the_headless_table_puts_each_figure_under_its_own_heading():
    summary = {"preset": "p", "dataset": "d", "device": "cpu", "status": "completed", "variants": [
        {"name": "a", "status": "completed", "steps": 7, "train_loss": 0.1234, "test_loss": 0.5678, "test_accuracy": 0.25, "steps_per_second": 99.0},
    ]}
    table = summary_table(summary)
    cells = {str(col.header): list(col.cells)[0] for col in table.columns}
    assert "0.1234" in cells["train loss"] and "0.5678" in cells["test loss"]
    assert cells["test acc"] == "25.0%" and cells["steps"] == "7" and str(cells["variant"]) == "a"
