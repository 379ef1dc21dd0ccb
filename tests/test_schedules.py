"""LR schedules in presets, checked against the LR each training step actually used (as the run log records it)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from nntui.record import events as ev
from nntui.engine.checkpoints import load_checkpoint
from nntui.errors import NntuiError
from nntui.engine.models import MLP
from nntui.engine.optim import build_optimizer, build_schedule
from nntui.presets import OptimizerConfig, ScheduleConfig, TrainConfig, resolve_preset
from nntui.runner import RunOptions, prepare_run
from nntui.engine.train import evaluate

STEPS_PER_EPOCH = 8  # 256 training examples, batch 32


pytestmark = pytest.mark.usefixtures("one_thread")


def run_preset(tmp_path, config: dict, variants: list[dict] | None = None, **options) -> tuple[dict, list[ev.Event], object]:
    base = {"data": {"name": "mnist-5k", "train_limit": 256}, "model": {"hidden": [16], "activation": "relu"},
            "batch_size": 32, "epochs": 4, "eval_every": 1000, "probe_every": 5}
    merged = {**base, **config}
    preset = {"name": "sched", "config": merged, "variants": variants or [{"name": "v"}]}
    resolved = resolve_preset(preset, "test preset")
    events: list[ev.Event] = []
    run = prepare_run(resolved, RunOptions(out=tmp_path / "runs", device="cpu", **options), listeners=[events.append])
    summary = run.execute()
    return summary, events, run


def lr_per_step(events: list[ev.Event], variant: str = "v") -> dict[int, float]:
    """The LR of the first step of every block, keyed by that step (1-based)."""
    return {e.first_step: e.lr for e in events if isinstance(e, ev.Steps) and e.variant == variant}


def test_step_lr_multiplies_by_gamma_every_step_size_epochs(tmp_path):
    summary, events, _ = run_preset(tmp_path, {"epochs": 6, "optimizer": {"name": "sgd", "lr": 0.1}, "schedule": {"name": "step", "step_size": 2, "gamma": 0.1}})
    lrs = lr_per_step(events)
    assert len(lrs) >= 6
    for step, lr in lrs.items():
        epoch = (step - 1) // STEPS_PER_EPOCH
        assert lr == pytest.approx(0.1 * 0.1 ** (epoch // 2)), f"step {step}"
    assert summary["status"] == "completed"


def test_plateau_lowers_the_lr_only_after_patience_epochs_without_improvement():
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model.parameters(), OptimizerConfig(name="adam", lr=1e-2))
    sched = build_schedule(opt, ScheduleConfig(name="plateau", factor=0.1, patience=1), STEPS_PER_EPOCH, 80, 1e-2)
    seen = []
    for loss in [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.76, float("nan"), 0.77]:
        sched.after_batch()  # per-epoch schedules ignore batches
        sched.after_epoch(loss)
        seen.append(opt.param_groups[0]["lr"])
    # improvements at 0.8 and 0.7; two epochs without one (patience 1) -> ×0.1; NaN test losses are skipped
    assert seen == pytest.approx([1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4])


def triangular(i: int, base: float, top: float, up: int, scale: float = 1.0) -> float:
    cycle = math.floor(1 + i / (2 * up))
    x = abs(i / up - 2 * cycle + 1)
    return base + (top - base) * max(0.0, 1 - x) * scale


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr_follows_the_triangle_batch_by_batch(tmp_path, mode):
    up = 4
    schedule = {"name": "cyclic", "base_lr": 1e-3, "max_lr": 1e-1, "mode": mode, "step_size_up": up}
    _, events, run = run_preset(tmp_path, {"epochs": 3, "eval_every": 1, "eval_subset": 64, "optimizer": {"name": "sgd", "lr": 0.5}, "schedule": schedule})
    lrs = lr_per_step(events)
    assert len(lrs) == 3 * STEPS_PER_EPOCH  # eval_every 1: one block, so one recorded LR, per step
    gamma = 0.5 ** (1 / (2 * up))
    for step, lr in lrs.items():
        i = step - 1
        cycle = math.floor(1 + i / (2 * up))
        scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**i}[mode]
        assert lr == pytest.approx(triangular(i, 1e-3, 1e-1, up, scale)), f"step {step}"
    peaks = [lrs[1 + up + 2 * up * k] for k in range(2)]
    assert peaks[0] == pytest.approx(1e-3 + 0.099 * (gamma**up if mode == "exp_range" else 1.0))
    if mode != "triangular":  # the later peaks are lower, but the cycle is still there (not flattened)
        assert 0.03 < peaks[1] < 0.09
    assert run.runs[0].optimizer.param_groups[0]["momentum"] == 0  # plain SGD stays plain


def test_one_cycle_warms_up_to_max_then_anneals_far_below_the_start(tmp_path):
    _, events, run = run_preset(tmp_path, {"epochs": 4, "eval_every": 1, "eval_subset": 64, "optimizer": {"name": "sgd", "lr": 0.01}, "schedule": {"name": "one_cycle", "max_lr": 0.2, "pct_start": 0.25}})
    lrs = lr_per_step(events)
    steps = sorted(lrs)
    values = [lrs[s] for s in steps]
    peak_at = steps[values.index(max(values))]
    assert max(values) == pytest.approx(0.2, rel=0.02)
    assert abs(peak_at - 0.25 * 32) <= 2
    assert values[0] == pytest.approx(0.2 / 25, rel=0.01)
    assert values[-1] < values[0] / 100
    assert all(a <= b for a, b in zip(values[: values.index(max(values))], values[1:]))  # rising, then
    assert all(a >= b for a, b in zip(values[values.index(max(values)) :], values[values.index(max(values)) + 1 :]))  # falling
    assert run.runs[0].optimizer.param_groups[0]["momentum"] == 0  # one-cycle must not switch momentum on for plain SGD


@pytest.mark.parametrize("decay", ["warmup_cosine", "warmup_step"])
def test_warmup_rises_linearly_then_decays(tmp_path, decay):
    lr0 = 0.05
    schedule = {"name": decay, "warmup_epochs": 1, "step_size": 1, "gamma": 0.1}
    _, events, _ = run_preset(tmp_path, {"epochs": 4, "eval_every": 1, "eval_subset": 64, "optimizer": {"name": "sgd", "lr": lr0}, "schedule": schedule})
    lrs = lr_per_step(events)
    warmup = [lrs[s] for s in range(1, STEPS_PER_EPOCH + 1)]
    assert warmup == pytest.approx([lr0 * (k + 1) / STEPS_PER_EPOCH for k in range(STEPS_PER_EPOCH)])
    after = [lrs[s] for s in range(STEPS_PER_EPOCH + 1, 4 * STEPS_PER_EPOCH + 1)]
    assert after[0] == pytest.approx(lr0)
    assert all(a >= b for a, b in zip(after, after[1:]))
    if decay == "warmup_cosine":
        assert after[len(after) // 2] == pytest.approx(lr0 / 2, rel=0.1)
        assert after[-1] < lr0 * 0.01
    else:
        assert sorted(set(round(v / lr0, 6) for v in after), reverse=True) == [1.0, 0.1, 0.01]


def test_the_current_lr_is_in_the_recorded_optimizer_state(tmp_path):
    _, events, run = run_preset(tmp_path, {"epochs": 2, "optimizer": {"name": "sgd", "lr": 0.1}, "schedule": {"name": "step", "step_size": 1, "gamma": 0.5}})
    states = [e for e in events if isinstance(e, ev.OptimizerState)]
    assert states and all("lr" in g for e in states for g in e.groups)
    by_epoch = {(e.step - 1) // STEPS_PER_EPOCH: e.groups[0]["lr"] for e in states if e.step % STEPS_PER_EPOCH}
    assert by_epoch[0] == pytest.approx(0.1) and by_epoch[1] == pytest.approx(0.05)
    assert run.state.variants["v"].optimizer["groups"][0]["lr"] == pytest.approx(0.05)


def test_auto_bounds_without_a_range_test_are_an_error():
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model.parameters(), OptimizerConfig())
    with pytest.raises(NntuiError, match="auto"):
        build_schedule(opt, ScheduleConfig(name="cyclic"), 10, 100, 0.1)
    with pytest.raises(NntuiError, match="below"):
        build_schedule(opt, ScheduleConfig(name="cyclic", base_lr=0.1, max_lr=0.01), 10, 100, 0.1)


def test_keep_best_saves_the_weights_of_the_lowest_test_loss(tmp_path):
    # A high constant LR makes the test loss jump around, so the best epoch is not simply the last one.
    config = {"epochs": 6, "keep_best": True, "optimizer": {"name": "sgd", "lr": 0.5}, "model": {"hidden": [16], "activation": "relu"}}
    summary, events, run = run_preset(tmp_path, config)
    tests = [e.loss for e in events if isinstance(e, ev.Eval) and e.split == "test"]
    saves = [e for e in events if isinstance(e, ev.Checkpoint) and e.kind == "best"]
    assert len(tests) == 6 and saves
    assert saves[-1].test_loss == min(tests)
    assert [s.test_loss for s in saves] == sorted((s.test_loss for s in saves), reverse=True)  # saved only on improvement
    best = summary["variants"][0]["checkpoints"]["best"]
    assert best["test_loss"] == min(tests) and best["path"] == saves[-1].path
    payload = load_checkpoint(best["path"])
    model = MLP(784, 10, TrainConfig.model_validate(config).model)
    model.load_state_dict(payload["model"])
    data = run.datasets["v"]
    assert evaluate(model, data.x_test, data.y_test, "classification")[0] == pytest.approx(min(tests), rel=1e-5)
    saved_summary = json.loads((run.run_dir / "summary.json").read_text())
    assert saved_summary["variants"][0]["checkpoints"]["best"]["test_loss"] == min(tests)
