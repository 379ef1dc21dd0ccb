"""The LR-schedule presets, run headless as a user would, each showing its finding on the embedded MNIST subset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nntui.record import events as ev
from nntui.engine.checkpoints import load_checkpoint
from nntui.cli import app
from nntui.engine.data import load_dataset
from nntui.engine.models import MLP
from nntui.presets import TrainConfig, load_preset
from nntui.record.runlog import RunLogReader
from nntui.record.state import RunState
from nntui.engine.train import evaluate

PRESETS = ["cyclic-lr", "one-cycle", "reduce-on-plateau", "step-lr", "warmup"]
STEPS_PER_EPOCH = 125  # mnist-5k: 4,000 training images, batch 32


def run_cli(tmp_path: Path, preset: str, *args: str) -> tuple[dict, list[ev.Event]]:
    result = CliRunner().invoke(app, ["run", preset, "--headless", "--json", "--dataset", "mnist-5k", "--device", "cpu", "--out", str(tmp_path / "runs"), *args])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    reader = RunLogReader(Path(summary["run_dir"]))
    events = reader.read_all()
    reader.close()
    return summary, events


def lr_by_step(events: list[ev.Event], variant: str) -> dict[int, float]:
    return {e.first_step: e.lr for e in events if isinstance(e, ev.Steps) and e.variant == variant}


def lr_by_epoch(events: list[ev.Event], variant: str, steps_per_epoch: int = STEPS_PER_EPOCH) -> list[float]:
    per_epoch: dict[int, float] = {}
    for step, lr in sorted(lr_by_step(events, variant).items()):
        per_epoch.setdefault((step - 1) // steps_per_epoch, lr)
    return [per_epoch[e] for e in sorted(per_epoch)]


def test_lr_presets_are_listed_with_a_lesson_and_a_checkable_finding():
    result = CliRunner().invoke(app, ["list", "--json"])
    listed = {p["name"]: p for p in json.loads(result.stdout)["presets"]}
    for name in PRESETS:
        assert name in listed and listed[name]["lesson"] and listed[name]["title"]
        preset = load_preset(name).preset
        assert preset.expect.kind == "lr-schedule" and preset.expect.finding


def test_cyclic_lr_cycles_between_the_range_test_bounds_and_keeps_the_best_model(tmp_path):
    summary, events = run_cli(tmp_path, "cyclic-lr", "--variant", "triangular", "--epochs", "5")
    run_dir = Path(summary["run_dir"])
    found = json.loads((run_dir / "lr_find.json").read_text())
    base, top = found["cyclic"]["base_lr"], found["cyclic"]["max_lr"]
    assert 0 < base < top and found["suggestions"]["min_div_10"]["lr"] == top
    used = json.loads((run_dir / "preset.json").read_text())["variants"]["triangular"]["schedule"]
    assert (used["base_lr"], used["max_lr"]) == (base, top)
    assert any("cyclic LR bounds" in note for note in summary["notes"])
    # the automatic range test is in the run's event stream, before the training it sets up
    kinds = [e.type for e in events]
    sweep_end = kinds.index("lr_sweep_finished")
    assert kinds[0] == "lr_sweep_started" and set(kinds[1:sweep_end]) == {"lr_sweep_points"}
    assert kinds[sweep_end + 1] == "run_started" and "steps" not in kinds[:sweep_end]
    swept = [lr for e in events if isinstance(e, ev.LRSweepPoints) for lr in e.lrs]
    finished = events[sweep_end]
    assert swept == found["lrs"] and finished.cyclic["base_lr"] == base and finished.cyclic["max_lr"] == top
    assert finished.file == str(run_dir / "lr_find.json") and events[0].preset == "cyclic-lr"
    state = RunState()
    for event in events:
        state.apply(event)
    assert state.sweeps["triangular"].lrs == found["lrs"] and state.sweeps["triangular"].cyclic["max_lr"] == top
    assert found["cyclic"]["stability"]["base_lr"]["band"][0] <= base <= found["cyclic"]["stability"]["base_lr"]["band"][1]

    up = 2 * STEPS_PER_EPOCH  # half cycle: 2 epochs
    lrs = lr_by_step(events, "triangular")
    for step, lr in lrs.items():
        i = step - 1
        x = abs(i / up - 2 * math.floor(1 + i / (2 * up)) + 1)
        assert lr == pytest.approx(base + (top - base) * max(0.0, 1 - x), rel=1e-6), f"step {step}"
    assert max(lrs.values()) == pytest.approx(top) and min(lrs.values()) == pytest.approx(base)

    tests = [e.loss for e in events if isinstance(e, ev.Eval) and e.split == "test"]
    variant = summary["variants"][0]
    best = variant["checkpoints"]["best"]
    assert len(tests) == 5 and best["test_loss"] == min(tests)
    payload = load_checkpoint(Path(best["path"]))
    cfg = TrainConfig.model_validate(json.loads((run_dir / "preset.json").read_text())["variants"]["triangular"])
    model = MLP(784, 10, cfg.model)
    model.load_state_dict(payload["model"])
    data = load_dataset("mnist-5k")
    assert evaluate(model, data.x_test, data.y_test, "classification")[0] == pytest.approx(min(tests), rel=1e-4)
    assert variant["reproduced"] is True and summary["reproduced"] is True

    # --from-lr-find reuses the saved bounds: no new range test
    again, _ = run_cli(tmp_path, "cyclic-lr", "--variant", "triangular", "--max-steps", "20", "--from-lr-find", str(run_dir / "lr_find.json"))
    again_dir = Path(again["run_dir"])
    reused = json.loads((again_dir / "preset.json").read_text())["variants"]["triangular"]["schedule"]
    assert (reused["base_lr"], reused["max_lr"]) == (base, top)
    assert not (again_dir / "lr_find.json").exists()


def test_from_lr_find_with_a_missing_file_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "cyclic-lr", "--headless", "--json", "--dataset", "mnist-5k", "--out", str(tmp_path / "runs"), "--from-lr-find", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "--from-lr-find" in result.stderr and "Traceback" not in result.output


def test_reduce_on_plateau_lowers_the_lr_after_the_test_loss_stalls(tmp_path):
    summary, events = run_cli(tmp_path, "reduce-on-plateau", "--variant", "plateau")
    lrs = lr_by_epoch(events, "plateau")
    tests = [e.loss for e in events if isinstance(e, ev.Eval) and e.split == "test"]
    assert lrs[0] == pytest.approx(1e-2)
    drop = next(e for e in range(1, len(lrs)) if lrs[e] < lrs[e - 1])  # epoch e runs with the lowered LR
    assert lrs[drop] == pytest.approx(lrs[drop - 1] * 0.1)
    best_before = min(tests[: drop - 2])
    assert tests[drop - 2] >= best_before * (1 - 1e-4) and tests[drop - 1] >= best_before * (1 - 1e-4)  # two epochs, no gain
    assert all(lrs[e] == pytest.approx(1e-2) for e in range(drop))  # and not before
    assert summary["reproduced"] is True and "lowered" in summary["finding"]


def test_step_lr_divides_the_lr_by_ten_every_two_epochs_and_the_loss_drops(tmp_path):
    summary, events = run_cli(tmp_path, "step-lr", "--variant", "step lr", "--epochs", "4")
    assert lr_by_epoch(events, "step lr") == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3])
    losses = [(e.first_step + i, loss) for e in events if isinstance(e, ev.Steps) for i, loss in enumerate(e.losses)]
    before = [loss for step, loss in losses if STEPS_PER_EPOCH < step <= 2 * STEPS_PER_EPOCH]
    after = [loss for step, loss in losses if 2 * STEPS_PER_EPOCH < step <= 3 * STEPS_PER_EPOCH]
    assert sum(after) / len(after) < sum(before) / len(before)
    assert summary["reproduced"] is True


def test_one_cycle_beats_a_constant_lr_in_the_same_epochs(tmp_path):
    summary, events = run_cli(tmp_path, "one-cycle")
    by_name = {v["name"]: v for v in summary["variants"]}
    assert by_name["one-cycle"]["test_loss"] < by_name["constant lr 1e-2"]["test_loss"]
    max_lr = json.loads((Path(summary["run_dir"]) / "preset.json").read_text())["variants"]["one-cycle"]["schedule"]["max_lr"]
    lrs = lr_by_step(events, "one-cycle")
    assert max(lrs.values()) == pytest.approx(max_lr, rel=0.05) and lrs[1] == pytest.approx(max_lr / 25)
    assert summary["reproduced"] is True


def test_warmup_lets_the_large_batch_net_train(tmp_path):
    summary, events = run_cli(tmp_path, "warmup", "--variant", "no warmup", "--variant", "warmup + cosine")
    by_name = {v["name"]: v for v in summary["variants"]}
    warm = by_name["warmup + cosine"]
    assert warm["status"] == "completed" and warm["test_accuracy"] > 0.9
    cold = by_name["no warmup"]
    assert cold["status"] == "diverged" or cold["test_loss"] > warm["test_loss"] + 0.05
    lrs = lr_by_epoch(events, "warmup + cosine", steps_per_epoch=8)  # batches of 500
    assert lrs[0] < lrs[1] < lrs[2] < lrs[3] == pytest.approx(0.3)  # linear warmup over 3 epochs, then decay
    assert summary["reproduced"] is True
