"""summary.json from a RunState, checked field by field against the events that built it (mutation killers)."""

from __future__ import annotations

import math

import pytest

from nntui.record import events as ev
from nntui.record.state import FINAL_LOSS_WINDOW, RunState, build_summary


def _state() -> RunState:
    state = RunState()
    info = {"name": "v", "description": "", "layers": ["fc1", "fc2"], "steps_per_epoch": 10, "total_steps": 40, "epochs": 4}
    state.apply(ev.RunStarted("p", "t", "l", "d", "cpu", "classification", "/r", [info], 0.0, ["n"]))
    losses = [float(i) for i in range(40, 0, -1)]
    state.apply(ev.Steps("v", 1, losses[:25], 0.1, 2.5, 2.0))
    state.apply(ev.Steps("v", 26, losses[25:], 0.05, 4.0, 4.0))
    state.apply(ev.Eval("v", 10, 1.0, "test", 3.0, 0.5))
    state.apply(ev.Eval("v", 40, 4.0, "test", 2.0, 0.75))
    state.apply(ev.Eval("v", 40, 4.0, "test_subset", 9.0, 0.1))
    layers = [
        {"name": "fc1", "grad": [0.1, 0.2, 0.3, 0.4, 0.5], "saturation": 0.6, "dead": 0.7, "update_ratio": 0.8},
        {"name": "fc2", "grad": [1.1, 1.2, 1.3, 1.4, 1.5], "saturation": 0.16, "dead": 0.17, "update_ratio": 0.18},
    ]
    state.apply(ev.LayerStats("v", 1, [{**layer, "grad": [9.0] * 5} for layer in layers]))
    state.apply(ev.LayerStats("v", 40, layers))
    state.apply(ev.Verdict("v", 40, None, "variant line"))
    state.apply(ev.Verdict(None, 40, True, "finding"))
    state.apply(ev.VariantFinished("v", "completed", 40, 4.0, "done"))
    state.status = "completed"
    return state


def test_summary_fields_come_from_the_right_events():
    losses = [float(i) for i in range(40, 0, -1)]
    s = build_summary(_state())
    assert (s["preset"], s["title"], s["dataset"], s["device"], s["status"], s["run_dir"]) == ("p", "t", "d", "cpu", "completed", "/r")
    assert s["finding"] == "finding" and s["reproduced"] is True and s["notes"] == ["n"]
    (v,) = s["variants"]
    window = losses[-FINAL_LOSS_WINDOW:]
    assert v["train_loss"] == pytest.approx(sum(window) / len(window))
    assert v["first_loss"] == 40.0 and v["steps"] == 40 and v["epochs"] == 4.0 and v["status"] == "completed"
    assert v["test_loss"] == 2.0 and v["test_accuracy"] == 0.75  # the last full test, not the subset
    assert v["steps_per_second"] == 10.0 and v["verdict"] == "variant line" and v["reproduced"] is None and v["reason"] == "done"
    assert [layer["grad_median"] for layer in v["layers"]] == [0.3, 1.3]  # the median, not a quartile
    assert [(layer["act_saturation"], layer["dead_fraction"], layer["update_ratio"]) for layer in v["layers"]] == [(0.6, 0.7, 0.8), (0.16, 0.17, 0.18)]
    assert [layer["name"] for layer in v["layers"]] == ["fc1", "fc2"] and v["name"] == "v"


def test_state_series_follow_the_steps():
    state = _state()
    v = state.variants["v"]
    assert v.train_loss.xs[:3] == [1, 2, 3] and v.train_loss.ys[:3] == [40.0, 39.0, 38.0]
    assert v.lr.xs == [25, 40] and v.lr.ys == [0.1, 0.05]
    assert v.first_layer_stats[0]["grad"] == [9.0] * 5 and v.layer_stats_step == 40
    assert v.subset_loss.ys == [9.0] and v.subset_accuracy.ys == [0.1] and v.subset_accuracy.xs == [40]
    assert state.finding_reproduced is True


def _bucket_means(values: list[float], size: int) -> list[float]:
    return [sum(values[i : i + size]) / len(values[i : i + size]) for i in range(0, len(values), size)]


def test_bounded_series_keeps_bucket_means_under_capacity():
    from nntui.record.state import BoundedSeries

    series = BoundedSeries(capacity=8)
    values = [float(v * v) for v in range(1, 38)]
    for i, y in enumerate(values, start=1):
        series.append(i, y)
        assert len(series) <= 8 and series.last() == series.ys[-1]
    # 37 points, capacity 8: buckets of 8 (stride doubled twice), the last one partly filled
    assert series.stride == 8
    assert series.ys == pytest.approx(_bucket_means(values, 8))
    assert series.xs == [8.0 * k for k in range(1, 5)] + [37]
    assert BoundedSeries().last() is None and len(BoundedSeries()) == 0


def test_a_state_before_any_event_is_an_empty_waiting_run():
    state = RunState()
    assert build_summary(state) == {
        "preset": "", "title": "", "dataset": "", "device": "", "status": "waiting", "run_dir": "",
        "finding": "", "reproduced": None, "notes": [], "variants": [],
    }
    # what the dashboard header, the watcher and the verdicts read before run_started arrives
    assert (state.lesson, state.task, state.writer_pid, state.writer_host, state.error) == ("", "classification", 0, "", "")
    assert (state.version, state.skipped_lines, state.summary, state.samples, state.sweeps) == (0, 0, {}, {}, {})
    assert list(state.alerts) == [] and state.variants == {}


def test_version_moves_by_one_per_event_and_misfits_are_counted():
    state = RunState()
    events = [
        ev.Steps("v", 1, [1.0], 0.1, 0.1, 1.0),
        ev.LayerStats("v", 1, [{"grad": [0.0] * 5}]),  # no layer name: skipped
        ev.Steps("v", 2, None, 0.1, 0.1, 1.0),  # no losses: skipped
        ev.Skipped(5),
        ev.Skipped(-2),  # a reader never counts lines back
        ev.Skipped(0),
        ev.Event(),  # a kind the state has no use for: ignored
    ]
    for count, event in enumerate(events, start=1):
        state.apply(event)
        assert state.version == count
    assert state.skipped_lines == 2 + 5


def _variant_infos(count: int) -> list[dict]:
    return [{"name": f"v{i}"} for i in range(count)]


def test_run_started_sets_the_header_and_each_variant_plan():
    state = RunState()
    full = {"name": "a", "description": "d", "layers": ["fc1"], "steps_per_epoch": 7, "total_steps": 21, "epochs": 3, "config": {"lr": 0.1}}
    event = ev.RunStarted("p", "t", "l", "ds", "cuda", "regression", "/r", [full, {"name": "b"}], 0.0, ["n1", "n2"], 42, "h")
    state.apply(event)
    assert (state.preset, state.title, state.lesson, state.dataset, state.device) == ("p", "t", "l", "ds", "cuda")
    assert (state.task, state.run_dir, state.notes, state.writer_pid, state.writer_host) == ("regression", "/r", ["n1", "n2"], 42, "h")
    assert state.status == "running" and list(state.variants) == ["a", "b"]
    a, b = state.variants["a"], state.variants["b"]
    assert (a.description, a.layers, a.steps_per_epoch, a.total_steps, a.epochs, a.config) == ("d", ["fc1"], 7, 21, 3, {"lr": 0.1})
    assert (b.description, b.layers, b.steps_per_epoch, b.total_steps, b.epochs, b.config) == ("", [], 0, 0, 0, {})
    assert a.status == b.status == "pending"
    event.notes.append("later")  # the state keeps its own copy
    assert state.notes == ["n1", "n2"]


def test_at_most_256_variants_are_kept():
    state = RunState()
    state.apply(ev.RunStarted("p", "t", "l", "d", "cpu", "classification", "/r", _variant_infos(300), 0.0))
    assert list(state.variants) == [f"v{i}" for i in range(256)]
    state = RunState()
    state.apply(ev.RunStarted("p", "t", "l", "d", "cpu", "classification", "/r", _variant_infos(255), 0.0))
    state.apply(ev.Steps("new", 1, [1.0], 0.1, 0.1, 1.0))  # the 256th: kept
    state.apply(ev.Steps("one too many", 1, [1.0], 0.1, 0.1, 1.0))
    assert len(state.variants) == 256 and "new" in state.variants and "one too many" not in state.variants
    assert state.skipped_lines == 1


def test_steps_drive_the_loss_curves_the_ema_and_the_status():
    import numpy as np

    state = RunState()
    state.apply(ev.RunStarted("p", "t", "l", "d", "cpu", "classification", "/r", [{"name": "v", "total_steps": 100}], 0.0))
    assert state.variants["v"].status == "pending"
    losses = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    state.apply(ev.Steps("v", 1, losses[:5], 0.5, 0.25, 2.0))
    v = state.variants["v"]
    assert v.status == "running" and (v.step, v.epoch, v.elapsed) == (5, 0.25, 2.0)
    state.apply(ev.Steps("v", 6, losses[5:], 0.25, 0.5, 4.0))
    # closed form of the EMA with weight 0.05 on the newest point, seeded with the first loss
    alpha, x = 0.05, np.array(losses)
    k = np.arange(len(x))
    expected = [(1 - alpha) ** n * x[0] + sum(alpha * (1 - alpha) ** (n - k[1 : n + 1]) * x[1 : n + 1]) for n in k]
    assert v.train_loss_ema.ys == pytest.approx(expected) and v.train_loss_ema.xs == list(range(1, 9))
    assert v.train_loss.ys == losses and v.first_loss == 3.0
    assert v.lr.xs == [5, 8] and v.lr.ys == [0.5, 0.25]
    assert (v.step, v.epoch, v.elapsed) == (8, 0.5, 4.0)
    state.apply(ev.Steps("v", 2, [7.0], 0.1, 0.6, 5.0))  # a late, older block does not move the step back
    assert v.step == 8 and v.first_loss == 3.0
    s = build_summary(state)["variants"][0]
    assert s["steps"] == 8 and s["steps_per_second"] == 1.6  # 8 steps in 5 s
    assert s["train_loss"] == pytest.approx(float(np.mean(losses + [7.0])))


def test_a_finished_variant_keeps_its_status_when_more_steps_arrive():
    state = RunState()
    state.apply(ev.VariantFinished("v", "diverged", 3, 0.1, "loss NaN"))
    state.apply(ev.Steps("v", 4, [1.0], 0.1, 0.2, 1.0))
    assert state.variants["v"].status == "diverged"


def test_regression_evals_have_no_accuracy():
    state = RunState()
    state.apply(ev.Eval("v", 10, 1.0, "test", 0.5, None))
    state.apply(ev.Eval("v", 5, 0.5, "test_subset", 0.7, None))
    v = state.variants["v"]
    assert v.test_accuracy == [] and len(v.subset_accuracy) == 0 and v.test_loss == [(10, 0.5)]
    assert v.subset_loss.xs == [5] and v.subset_loss.ys == [0.7]
    (s,) = build_summary(state)["variants"]
    assert s["test_accuracy"] is None and s["name"] == "v"  # named by its first event, no run_started


def _layer(name: str, median: float | None, grad_norm: float | None) -> dict:
    return {"name": name, "grad": [0.0, 0.1, median, 0.9, 1.0], "grad_norm": grad_norm}


def test_layer_stats_keep_each_layers_gradient_median_history_and_when_it_broke():
    state = RunState()
    probes = [
        (1, [_layer("fc1", 0.3, 1.0), _layer("fc2", 0.03, None)]),  # fc2: no gradient from the start
        (5, [_layer("fc1", None, None), _layer("fc2", 0.02, None)]),  # fc1's gradient turns non-finite
        (9, [_layer("fc1", 0.5, None), _layer("fc2", 0.01, None)]),
    ]
    for step, layers in probes:
        state.apply(ev.LayerStats("v", step, layers))
    v = state.variants["v"]
    assert v.grad_median_history["fc1"].xs == [1, 9] and v.grad_median_history["fc1"].ys == [0.3, 0.5]
    assert v.grad_median_history["fc2"].xs == [1, 5, 9] and v.grad_median_history["fc2"].ys == [0.03, 0.02, 0.01]
    assert v.grad_nonfinite_since == {"fc1": 5}
    assert v.first_layer_stats is probes[0][1] and v.layer_stats is probes[2][1] and v.layer_stats_step == 9


def test_histories_stay_bounded_as_bucket_means():
    state = RunState()
    for step in range(1, 1001):
        state.apply(ev.LayerStats("v", step, [_layer("fc1", float(step), 1.0)]))
    history = state.variants["v"].grad_median_history["fc1"]
    # 1000 probes into 512 points: halved once at 512, buckets of 2 from then on (512/2 + 488/2 = 500 points)
    assert len(history) == 500 and history.ys == pytest.approx(_bucket_means([float(s) for s in range(1, 1001)], 2))
    losses = [float(i % 7) for i in range(5000)]
    state.apply(ev.Steps("v", 1, losses, 0.1, 1.0, 1.0))
    # 5000 steps into 2048 points: halved at 2048 and at 4096 steps, buckets of 4: 5000 / 4 = 1250 points
    train_loss = state.variants["v"].train_loss
    assert len(train_loss) == 1250 and train_loss.ys == pytest.approx(_bucket_means(losses, 4))


def test_summary_rounds_and_drops_non_finite_losses():
    state = RunState()
    state.apply(ev.Steps("v", 1, [math.nan, math.inf, math.inf], 0.1, 1.23456, 0.7))
    state.apply(ev.Eval("v", 3, 1.0, "test", math.inf, 0.5))
    (s,) = build_summary(state)["variants"]
    assert s["first_loss"] is None and s["train_loss"] is None and s["test_loss"] is None
    assert s["epochs"] == 1.235 and s["steps_per_second"] == 4.3  # 3 steps / 0.7 s = 4.2857
    assert "error" not in build_summary(state)
