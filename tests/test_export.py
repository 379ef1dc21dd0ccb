"""`nntui export`: CSV files and TensorBoard event files of a real run, read back with csv and with
TensorBoard's own reader, checked against the run log read with plain json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nntui.record import export as export_module
from tests.helpers import invoke, run_json

TINY = str(Path(__file__).parent / "fixtures" / "tiny.toml")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, one_thread) -> Path:
    return Path(run_json(TINY, tmp_path_factory.mktemp("export") / "runs", "--max-steps", "60")["run_dir"])


def log_events(run_dir: Path, kind: str) -> list[dict]:
    return [e for line in (run_dir / "events.jsonl").read_text().splitlines() if (e := json.loads(line))["type"] == kind]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_has_a_step_column_per_series_and_the_logged_values(run_dir, tmp_path):
    out = tmp_path / "csv"
    result = invoke("export", str(run_dir), "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    names = {"train_loss.csv", "evaluations.csv", "layer_stats.csv", "optimizer_groups.csv", "optimizer_layers.csv"}
    assert names <= {p.name for p in out.iterdir()}
    for name in names:
        with open(out / name, newline="") as f:
            assert next(csv.reader(f))[0] == "step"

    losses = [(s["variant"], s["first_step"] + i, loss) for s in log_events(run_dir, "steps") for i, loss in enumerate(s["losses"])]
    rows = read_csv(out / "train_loss.csv")
    assert [(r["variant"], int(r["step"]), float(r["train_loss"])) for r in rows] == losses

    evals = log_events(run_dir, "eval")
    rows = read_csv(out / "evaluations.csv")
    assert [(r["variant"], int(r["step"]), r["split"], float(r["loss"])) for r in rows] == [(e["variant"], e["step"], e["split"], e["loss"]) for e in evals]

    stats = log_events(run_dir, "layer_stats")
    rows = read_csv(out / "layer_stats.csv")
    expected = [(s["variant"], s["step"], layer["name"], layer["grad"][2], layer["grad"][4], layer["update_ratio"]) for s in stats for layer in s["layers"]]
    assert [(r["variant"], int(r["step"]), r["layer"], float(r["grad_median"]), float(r["grad_max"]), float(r["update_ratio"])) for r in rows] == expected
    assert {"fc1", "fc2", "fc3", "fc4"} <= {r["layer"] for r in rows if r["variant"] == "deep"}

    groups = read_csv(out / "optimizer_groups.csv")
    logged = log_events(run_dir, "optimizer_state")
    assert [(int(r["step"]), float(r["lr"])) for r in groups] == [(o["step"], g["lr"]) for o in logged for g in o["groups"]]
    assert "no gradient histograms" not in result.stdout


def test_tensorboard_event_files_read_back_with_tensorboards_reader(run_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    result = invoke("export", str(run_dir), "--format", "tensorboard", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert f"tensorboard --logdir {out}" in result.stdout
    steps = log_events(run_dir, "steps")
    for variant in ("shallow", "deep"):
        acc = EventAccumulator(str(out / variant), size_guidance={"scalars": 0})
        acc.Reload()
        tags = acc.Tags()["scalars"]
        assert {"loss/train", "loss/test", "accuracy/test", "lr", "layers/fc1/grad_median", "layers/fc2/update_ratio"} <= set(tags)
        train = [(s.step, s.value) for s in acc.Scalars("loss/train")]
        expected = [(s["first_step"] + i, loss) for s in steps if s["variant"] == variant for i, loss in enumerate(s["losses"])]
        assert [step for step, _ in train] == [step for step, _ in expected]
        assert [v for _, v in train] == pytest.approx([v for _, v in expected], rel=1e-6)  # float32 in TensorBoard
        medians = [(s["step"], layer["grad"][2]) for s in log_events(run_dir, "layer_stats") if s["variant"] == variant for layer in s["layers"] if layer["name"] == "fc1"]
        got = [(s.step, s.value) for s in acc.Scalars("layers/fc1/grad_median")]
        assert [s for s, _ in got] == [s for s, _ in medians] and [v for _, v in got] == pytest.approx([v for _, v in medians], rel=1e-6)


def test_gradient_histograms_are_the_probes_buckets_and_match_numpy(run_dir, tmp_path):
    """The probes' counts out to CSV and TensorBoard unchanged; a numpy histogram of the same layer's
    |grad W| on the same power-of-two edges (a second, independent binning) gives the same counts."""
    import numpy as np
    import torch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    stats = [s for s in log_events(run_dir, "layer_stats") if s["variant"] == "deep"]
    recorded = {(s["step"], layer["name"]): layer["grad_hist"] for s in stats for layer in s["layers"]}
    assert recorded and all(h is not None for h in recorded.values())
    export_module.export_csv(run_dir, tmp_path / "csv")
    rows = read_csv(tmp_path / "csv" / "grad_histograms.csv")
    step, name = next(iter(recorded))
    counts = [int(r["count"]) for r in rows if r["variant"] == "deep" and int(r["step"]) == step and r["layer"] == name]
    assert counts == recorded[(step, name)]["counts"]
    assert sum(counts) > 0

    export_module.export_tensorboard(run_dir, tmp_path / "tb")
    acc = EventAccumulator(str(tmp_path / "tb" / "deep"), size_guidance={"histograms": 0})
    acc.Reload()
    assert {f"histograms/{layer}/grad_hist" for layer in ("fc1", "fc2", "fc3", "fc4")} <= set(acc.Tags()["histograms"])
    for event in acc.Histograms(f"histograms/{name}/grad_hist"):
        expected = recorded[(event.step, name)]
        assert list(event.histogram_value.bucket) == expected["counts"]
        assert event.histogram_value.num == sum(expected["counts"])
        assert event.histogram_value.bucket_limit[0] == pytest.approx(2.0 ** expected["log2_min"])

    # an independent binning of a real |grad W|: the same buckets as np.histogram gives
    torch.manual_seed(0)
    layer = torch.nn.Linear(30, 20)
    layer(torch.randn(64, 30)).pow(2).mean().backward()
    grad = layer.weight.grad.abs().flatten().double().numpy()
    m, n = -40, 47
    edges = [0.0, *[2.0 ** (m + k) for k in range(n + 1)], np.inf]
    hist = {"log2_min": m, "counts": np.histogram(grad, bins=edges)[0].tolist()}
    ((_, decoded),) = export_module.histograms_of({"grad_hist": hist})
    assert decoded["edges"][1:-1] == edges[1:-1] and sum(decoded["counts"]) == grad.size


def test_missing_tensorboard_is_one_clear_line(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "tensorboard_available", lambda: False)
    result = invoke("export", str(run_dir), "--format", "tensorboard", "--out", str(tmp_path / "tb"))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "pip install 'nntui[tensorboard]'" in result.stderr
    assert not (tmp_path / "tb").exists()


def test_not_a_run_directory_is_exit_2(tmp_path):
    result = invoke("export", str(tmp_path), "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "not a run directory" in result.stderr and "Traceback" not in result.stderr


def test_a_run_recorded_without_histogram_buckets_gets_none_and_is_told_so(tmp_path):
    old_run = Path(__file__).parent / "fixtures" / "tiny-run"  # recorded before the probes kept buckets
    result = export_module.export_csv(old_run, tmp_path / "csv")
    assert not (tmp_path / "csv" / "grad_histograms.csv").exists()
    assert any("no gradient histograms" in note for note in result.notes)
    assert export_module.export_tensorboard(old_run, tmp_path / "tb").rows["histograms"] == 0
