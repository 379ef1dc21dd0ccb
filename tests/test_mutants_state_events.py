"""RunState from the rarer events: LR range tests, predictions, samples, checkpoints, alerts, verdicts, endings."""

from __future__ import annotations

from nntui.record import events as ev
from nntui.record.state import RunState, build_summary


def _started(state: RunState) -> None:
    state.apply(ev.RunStarted("run preset", "t", "l", "run data", "cpu", "classification", "/r", [{"name": "v"}], 0.0))


def test_a_range_test_before_the_run_names_the_run_and_shows_as_sweeping():
    state = RunState()
    state.apply(ev.LRSweepStarted("v", 1e-6, 10.0, 100, "sweep preset", "mnist", "cuda"))
    assert (state.preset, state.dataset, state.device, state.status) == ("sweep preset", "mnist", "cuda", "sweeping")
    sweep = state.sweeps["v"]
    assert (sweep.variant, sweep.start_lr, sweep.end_lr, sweep.num_iter, sweep.running) == ("v", 1e-6, 10.0, 100, True)
    _started(state)  # the run itself takes over the header
    assert (state.preset, state.dataset, state.status) == ("run preset", "run data", "running")


def test_a_range_test_during_a_run_leaves_the_header_alone():
    state = RunState()
    _started(state)
    state.apply(ev.LRSweepStarted("v", 1e-5, 1.0, 50, "other", "other data", "cuda"))
    assert (state.preset, state.dataset, state.device, state.status) == ("run preset", "run data", "cpu", "running")


def test_sweep_points_extend_the_curve_and_a_resent_block_replaces_its_tail():
    state = RunState()
    state.apply(ev.LRSweepPoints("v", 0, [1e-4, 1e-3, 1e-2], [2.3, 2.2, 1.9], [2.3, 2.25, 2.1], {"steepest": 1e-3}))
    state.apply(ev.LRSweepPoints("v", 2, [2e-2, 5e-2], [1.5, 9.0], [1.8, 3.0], {"steepest": 2e-2, "valley": None}))
    sweep = state.sweeps["v"]
    assert sweep.lrs == [1e-4, 1e-3, 2e-2, 5e-2]
    assert sweep.losses == [2.3, 2.2, 1.5, 9.0] and sweep.smoothed == [2.3, 2.25, 1.8, 3.0]
    assert sweep.suggestions == {"steepest": 2e-2, "valley": None} and sweep.running and sweep.variant == "v"


def test_a_finished_sweep_keeps_the_final_suggestions_and_bounds():
    state = RunState()
    state.apply(ev.LRSweepStarted("v", 1e-6, 10.0, 100))
    state.apply(ev.LRSweepPoints("v", 0, [1e-3], [2.0], [2.0], {"steepest": 1e-3}))
    suggestions = {"steepest": {"lr": 3e-3, "loss": 1.2, "index": 40, "rule": "r"}, "valley": {"loss": 1.0}}
    cyclic = {"base_lr": 1e-4, "max_lr": 1e-2, "rule": "r"}
    centred = [None, 0.5]
    state.apply(ev.LRSweepFinished("v", 41, "diverged", "loss exploded", suggestions, cyclic, centred, "/r/lr_find.json"))
    sweep = state.sweeps["v"]
    assert sweep.suggestions == {"steepest": 3e-3, "valley": None}
    assert (sweep.cyclic, sweep.centred, sweep.file) == (cyclic, [None, 0.5], "/r/lr_find.json")
    assert (sweep.stopped, sweep.stop_reason, sweep.running) == ("diverged", "loss exploded", False)
    assert sweep.lrs == [1e-3] and sweep.start_lr == 1e-6
    state.apply(ev.LRSweepFinished("w", 0, "interrupted", "", {}, {}))  # finished without a start: still shown
    assert state.sweeps["w"].stopped == "interrupted" and state.sweeps["w"].variant == "w" and list(state.sweeps) == ["v", "w"]


def test_predictions_samples_and_optimizer_state_are_kept_as_sent():
    state = RunState()
    state.apply(ev.Predictions("v", 10, [0.0, 1.0], [0.5, 1.5], [0.4, 1.4], [0.6, 1.6]))
    state.apply(ev.Predictions("v", 20, [0.0, 1.0], [0.2, 1.2]))
    assert state.variants["v"].predictions == {"step": 20, "x": [0.0, 1.0], "y": [0.2, 1.2], "lower": None, "upper": None}
    state.apply(ev.Sample("train", [1.0, 2.0], [3.0, 4.0]))
    state.apply(ev.Sample("test", [5.0], [6.0]))
    assert state.samples == {"train": ([1.0, 2.0], [3.0, 4.0]), "test": ([5.0], [6.0])}
    groups, layers = [{"lr": 0.1}], [{"name": "fc1", "momentum_norm": 2.0}]
    state.apply(ev.OptimizerState("v", 30, groups, layers))
    assert state.variants["v"].optimizer == {"step": 30, "groups": groups, "layers": layers}


def test_checkpoints_keep_the_latest_of_each_kind_in_the_summary():
    state = RunState()
    state.apply(ev.Checkpoint("v", 10, 1.0, "best", "/r/best.pt", 0.9))
    state.apply(ev.Checkpoint("v", 20, 2.0, "last", "/r/last.pt", None))
    state.apply(ev.Checkpoint("v", 30, 3.0, "best", "/r/best.pt", 0.7))
    (s,) = build_summary(state)["variants"]
    assert s["name"] == "v" and s["checkpoints"] == {
        "best": {"step": 30, "epoch": 3.0, "path": "/r/best.pt", "test_loss": 0.7},
        "last": {"step": 20, "epoch": 2.0, "path": "/r/last.pt", "test_loss": None},
    }


def test_alerts_keep_the_latest_200():
    state = RunState()
    alerts = [ev.Alert("v", i, "warning", f"alert {i}") for i in range(250)]
    for alert in alerts:
        state.apply(alert)
    assert list(state.alerts) == alerts[50:]
    small = RunState(max_alerts=2)
    for alert in alerts[:3]:
        small.apply(alert)
    assert list(small.alerts) == alerts[1:3]


def test_verdicts_go_to_the_variant_or_to_the_finding():
    state = RunState()
    state.apply(ev.Verdict("v", 5, False, "v did not"))
    state.apply(ev.Verdict(None, 5, None, "too early"))
    v = state.variants["v"]
    assert (v.verdict, v.reproduced) == ("v did not", False)
    assert (state.finding, state.finding_reproduced) == ("too early", None)
    summary = build_summary(state)
    assert (summary["finding"], summary["reproduced"]) == ("too early", None)
    assert (summary["variants"][0]["verdict"], summary["variants"][0]["reproduced"]) == ("v did not", False)


def test_variant_finished_sets_status_step_epoch_and_reason():
    state = RunState()
    state.apply(ev.Steps("v", 1, [1.0, 2.0], 0.1, 0.5, 1.0))
    state.apply(ev.VariantFinished("v", "interrupted", 7, 1.75, "Ctrl-C"))
    v = state.variants["v"]
    assert (v.status, v.step, v.epoch, v.finish_reason) == ("interrupted", 7, 1.75, "Ctrl-C")


def test_run_finished_keeps_the_summary_and_a_failed_runs_error():
    state = RunState()
    summary = {"status": "completed", "error": "not a failure"}
    state.apply(ev.RunFinished("completed", 1.0, summary))
    assert (state.status, state.summary, state.error) == ("completed", summary, "")
    assert "error" not in build_summary(state)
    state = RunState()
    long_error = "x" * (ev.MAX_TEXT + 10)
    state.apply(ev.RunFinished("failed", 1.0, {"error": long_error}))
    assert state.status == "failed" and state.error == "x" * ev.MAX_TEXT
    assert build_summary(state)["error"] == "x" * ev.MAX_TEXT
    state = RunState()
    state.apply(ev.RunFinished("failed", 1.0, {"error": 3}))  # not a text: no error line
    assert state.status == "failed" and state.error == "" and state.skipped_lines == 0
