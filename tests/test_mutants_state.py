"""summary.json from a RunState, checked field by field against the events that built it (mutation killers)."""

from __future__ import annotations

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
    assert [layer["name"] for layer in v["layers"]] == ["fc1", "fc2"]


def test_state_series_follow_the_steps():
    state = _state()
    v = state.variants["v"]
    assert v.train_loss.xs[:3] == [1, 2, 3] and v.train_loss.ys[:3] == [40.0, 39.0, 38.0]
    assert v.lr.xs == [25, 40] and v.lr.ys == [0.1, 0.05]
    assert v.first_layer_stats[0]["grad"] == [9.0] * 5 and v.layer_stats_step == 40
    assert v.subset_loss.ys == [9.0] and v.subset_accuracy.ys == [0.1]
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
