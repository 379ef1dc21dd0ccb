"""A run's record out to other tools: CSV files (one per series, each with a `step` column) and
TensorBoard event files (scalars, and gradient histograms where the probes recorded buckets).

Torch-free; the TensorBoard writer comes from the optional `tensorboard` package (nntui[tensorboard]).
"""

from __future__ import annotations

import csv
import importlib.util
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nntui.errors import NntuiError
from nntui.record import events as ev
from nntui.record.runlog import RunLogReader

FIVE = ("min", "q1", "median", "q3", "max")
# Per-layer |grad W| histograms as the probes record them: "grad_hist": {"log2_min": m, "counts": [n + 2]}:
# counts[0] below 2**m (zeros included), counts[k] in [2**(m+k-1), 2**(m+k)), counts[-1] at or above 2**(m+n).
HISTOGRAM_KEYS = ("grad_hist",)
MISSING_TENSORBOARD = "--format tensorboard needs the tensorboard package: pip install 'nntui[tensorboard]' (or pip install tensorboard)"


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # file or tag kind -> how many rows / values
    notes: list[str] = field(default_factory=list)


def read_events(run_dir: Path) -> list[ev.Event]:
    reader = RunLogReader(Path(run_dir))
    try:
        return reader.read_all()
    finally:
        reader.close()


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars as they are; five-number summaries as name_min … name_max; pairs (betas) as name_0, name_1.
    Nested records (histogram buckets) are left to their own file."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = prefix + key
        if isinstance(value, list) and len(value) == 5 and all(v is None or isinstance(v, (int, float)) for v in value):
            out.update({f"{name}_{part}": v for part, v in zip(FIVE, value)})
        elif isinstance(value, list) and all(v is None or isinstance(v, (int, float)) for v in value) and len(value) <= 4:
            out.update({f"{name}_{i}": v for i, v in enumerate(value)})
        elif value is None or isinstance(value, (int, float, str, bool)):
            out[name] = value
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]], first: tuple[str, ...]) -> None:
    columns = list(first)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def csv_series(events: Iterable[ev.Event]) -> dict[str, tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """file name -> (leading columns, rows)."""
    train, evals, layers, groups, opt_layers, hists = [], [], [], [], [], []
    for e in events:
        if isinstance(e, ev.Steps):
            train.extend({"step": e.first_step + i, "variant": e.variant, "train_loss": loss, "lr": e.lr} for i, loss in enumerate(e.losses))
        elif isinstance(e, ev.Eval):
            evals.append({"step": e.step, "variant": e.variant, "split": e.split, "epoch": e.epoch, "loss": e.loss, "accuracy": e.accuracy})
        elif isinstance(e, ev.LayerStats):
            for layer in e.layers:
                layers.append({"step": e.step, "variant": e.variant, "layer": layer["name"], **flatten({k: v for k, v in layer.items() if k != "name"})})
                for key, hist in histograms_of(layer):
                    hists.extend({"step": e.step, "variant": e.variant, "layer": layer["name"], "tensor": key, "lower": lo, "upper": hi, "count": n}
                                 for lo, hi, n in zip(hist["edges"], hist["edges"][1:], hist["counts"]))
        elif isinstance(e, ev.OptimizerState):
            groups.extend({"step": e.step, "variant": e.variant, "group": i, **flatten(g)} for i, g in enumerate(e.groups))
            opt_layers.extend({"step": e.step, "variant": e.variant, "layer": layer["name"], **flatten({k: v for k, v in layer.items() if k != "name"})} for layer in e.layers)
    series = {
        "train_loss.csv": (("step", "variant"), train),
        "evaluations.csv": (("step", "variant", "split"), evals),
        "layer_stats.csv": (("step", "variant", "layer"), layers),
        "optimizer_groups.csv": (("step", "variant", "group"), groups),
        "optimizer_layers.csv": (("step", "variant", "layer"), opt_layers),
    }
    if hists:
        series["grad_histograms.csv"] = (("step", "variant", "layer", "tensor"), hists)
    return series


def histograms_of(layer: dict[str, Any]) -> list[tuple[str, dict[str, list[float]]]]:
    """The probe's histogram buckets of this layer as {"edges": n + 1, "counts": n} (the first bucket starts
    at 0, the last ends at +inf); none for runs recorded before the probes had them."""
    found = []
    for key in HISTOGRAM_KEYS:
        hist = layer.get(key)
        if not isinstance(hist, dict) or not isinstance(hist.get("log2_min"), int) or not isinstance(hist.get("counts"), list):
            continue
        counts = hist["counts"]
        if len(counts) < 3 or any(c is None for c in counts):
            continue
        powers = [2.0 ** (hist["log2_min"] + k) for k in range(len(counts) - 1)]
        found.append((key, {"edges": [0.0, *powers, math.inf], "counts": counts}))
    return found


def export_csv(run_dir: Path, out: Path) -> ExportResult:
    events = read_events(run_dir)
    out = _out_dir(out)
    result = ExportResult()
    for name, (first, rows) in csv_series(events).items():
        _write_csv(out / name, rows, first)
        result.files.append(out / name)
        result.rows[name] = len(rows)
    if "grad_histograms.csv" not in result.rows:
        result.notes.append("no gradient histograms: this run's probes recorded no histogram buckets")
    return result


def _out_dir(out: Path) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NntuiError(f"cannot create {out}: {exc.strerror}; pass a writable --out DIR") from None
    return out


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/]+", "_", text)


def tensorboard_values(events: Iterable[ev.Event]) -> dict[str, list[tuple[str, int, float, Any]]]:
    """variant -> [(tag, step, wall_time, value)], value a float or a histogram dict {edges, counts}."""
    out: dict[str, list[tuple[str, int, float, Any]]] = {}
    started = 0.0
    for e in events:
        if isinstance(e, ev.RunStarted):
            started = e.started_at
            continue
        if not isinstance(e, (ev.Steps, ev.Eval, ev.LayerStats, ev.OptimizerState)):
            continue
        rows = out.setdefault(e.variant, [])
        if isinstance(e, ev.Steps):
            rows.extend(("loss/train", e.first_step + i, started + e.elapsed, loss) for i, loss in enumerate(e.losses))
            rows.append(("lr", e.first_step + len(e.losses) - 1, started + e.elapsed, e.lr))
        elif isinstance(e, ev.Eval):
            suffix = "test" if e.split == "test" else e.split
            rows.append((f"loss/{suffix}", e.step, started, e.loss))
            if e.accuracy is not None:
                rows.append((f"accuracy/{suffix}", e.step, started, e.accuracy))
        elif isinstance(e, ev.LayerStats):
            for layer in e.layers:
                name = _tag(layer["name"])
                for key, value in flatten({k: v for k, v in layer.items() if k != "name"}).items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        rows.append((f"layers/{name}/{key}", e.step, started, float(value)))
                for key, hist in histograms_of(layer):
                    rows.append((f"histograms/{name}/{key}", e.step, started, hist))
        elif isinstance(e, ev.OptimizerState):
            for i, group in enumerate(e.groups):
                for key, value in flatten(group).items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        rows.append((f"optimizer/group{i}/{key}", e.step, started, float(value)))
            for layer in e.layers:
                for key, value in flatten({k: v for k, v in layer.items() if k != "name"}).items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        rows.append((f"optimizer/{_tag(layer['name'])}/{key}", e.step, started, float(value)))
    return out


def export_tensorboard(run_dir: Path, out: Path) -> ExportResult:
    """One TensorBoard run per variant (out/<variant>/events.out.tfevents.*), so TensorBoard overlays them."""
    if not tensorboard_available():
        raise NntuiError(MISSING_TENSORBOARD)
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    values = tensorboard_values(read_events(run_dir))
    out = _out_dir(out)
    result = ExportResult(rows={"scalars": 0, "histograms": 0})
    for variant, rows in values.items():
        writer = EventFileWriter(str(out / _tag(variant)))
        try:
            for tag, step, wall_time, value in rows:
                if isinstance(value, dict):
                    summary_value = summary_pb2.Summary.Value(tag=tag, histo=_histogram_proto(summary_pb2, value))
                    result.rows["histograms"] += 1
                else:
                    summary_value = summary_pb2.Summary.Value(tag=tag, simple_value=value)
                    result.rows["scalars"] += 1
                writer.add_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=[summary_value])))
        finally:
            writer.close()
        result.files.extend(sorted((out / _tag(variant)).glob("events.out.tfevents.*")))
    if not result.rows["histograms"]:
        result.notes.append("no gradient histograms: this run's probes recorded no histogram buckets")
    return result


def _histogram_proto(summary_pb2, hist: dict[str, list[float]]):
    """TensorBoard buckets from the recorded counts: bucket i holds values up to its upper edge (the last,
    open-ended one up to the largest double, as TensorBoard's own histograms). num is exact; min, max, sum
    and sum of squares are bounded by the occupied buckets' edges (sum from their midpoints)."""
    edges, counts = hist["edges"], hist["counts"]
    occupied = [i for i, n in enumerate(counts) if n]
    lows = [edges[i] for i in occupied]
    highs = [edges[i + 1] if math.isfinite(edges[i + 1]) else edges[i] * 2 for i in occupied]
    centres = [(lo + hi) / 2 for lo, hi in zip(lows, highs)]
    return summary_pb2.HistogramProto(
        min=min(lows, default=0.0), max=max(highs, default=0.0), num=float(sum(counts)),
        sum=sum(c * counts[i] for c, i in zip(centres, occupied)), sum_squares=sum(c * c * counts[i] for c, i in zip(centres, occupied)),
        bucket_limit=[e if math.isfinite(e) else sys.float_info.max for e in edges[1:]], bucket=[float(n) for n in counts],
    )
