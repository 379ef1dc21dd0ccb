"""Run directories as a whole: load one into a RunState, tell a seeds run (runs/<id>/seed-N/…) from a
single run, and fold the seeds' summaries into one. Torch-free and UI-free: compare, export, the seeds
orchestration and the dashboards all read runs through here.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

from nntui.errors import NntuiError
from nntui.record.runlog import EVENTS_FILE, SUMMARY_FILE, RunLogReader
from nntui.record.state import RunState, build_summary

SEED_DIR = re.compile(r"^seed-(-?\d+)$")
SEEDS_FILE = "seeds.json"  # written first by `nntui run --seeds`: the seeds and the preset


def seed_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """(seed, directory) of a seeds run, by seed; empty for a single run."""
    found = []
    for child in Path(run_dir).iterdir() if Path(run_dir).is_dir() else []:
        match = SEED_DIR.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def is_seeds_run(run_dir: Path) -> bool:
    run_dir = Path(run_dir)
    return not (run_dir / EVENTS_FILE).is_file() and ((run_dir / SEEDS_FILE).is_file() or bool(seed_dirs(run_dir)))


def check_run_dir(path: Path) -> Path:
    """The path if it is a run directory (single or seeds), else a one-line NntuiError."""
    path = Path(path)
    if not path.exists():
        raise NntuiError(f"{path} does not exist; pass a run directory such as runs/<id> (`ls runs`)")
    if not path.is_dir():
        raise NntuiError(f"{path} is not a directory; pass a run directory such as runs/<id>")
    if not (path / EVENTS_FILE).is_file() and not is_seeds_run(path):
        raise NntuiError(f"{path} is not a run directory (no {EVENTS_FILE}); pass one written by `nntui run` or nntui.watch")
    return path


def load_state(run_dir: Path) -> RunState:
    """Everything the run log holds now, applied to a fresh RunState (a truncated last line is skipped)."""
    reader = RunLogReader(Path(run_dir))
    try:
        state = RunState()
        for event in reader.read_all():
            state.apply(event)
    finally:
        reader.close()
    if not state.run_dir:
        state.run_dir = str(run_dir)
    return state


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / SUMMARY_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- across seeds

STATUS_ORDER = ("failed", "interrupted", "diverged", "completed")  # the worst seed's status is the run's


def combined_status(statuses: list[str]) -> str:
    for status in STATUS_ORDER:
        if status in statuses:
            return status
    return statuses[0] if statuses else "waiting"


def reproduced_across(flags: list[bool | None]) -> bool | None:
    """True only when the finding held in every seed; false when it failed in any; else null (inconclusive)."""
    if flags and all(f is True for f in flags):
        return True
    if any(f is False for f in flags):
        return False
    return None


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return None, None
    return statistics.fmean(known), statistics.pstdev(known) if len(known) > 1 else 0.0


def _mean_layers(per_seed: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if not per_seed or not per_seed[0]:
        return []
    out = []
    for i, first in enumerate(per_seed[0]):
        row: dict[str, Any] = {"name": first["name"]}
        for key in ("grad_median", "act_saturation", "dead_fraction", "update_ratio"):
            row[key] = _mean_std([layers[i].get(key) if i < len(layers) else None for layers in per_seed])[0]
        out.append(row)
    return out


def aggregate_seeds(seeds: list[int], summaries: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """One summary for a seeds run: per variant the mean figures (and their standard deviations, population
    std over the seeds that have the figure), each seed's verdicts, and the finding judged across seeds."""
    first = summaries[0] if summaries else {}
    flags = [s.get("reproduced") for s in summaries]
    held = sum(f is True for f in flags)
    variants = []
    for name in [v["name"] for v in first.get("variants", [])]:
        rows = [next((v for v in s.get("variants", []) if v["name"] == name), None) for s in summaries]
        rows = [r for r in rows if r is not None]
        merged: dict[str, Any] = {"name": name, "status": combined_status([r["status"] for r in rows])}
        for key in ("steps", "epochs", "train_loss", "test_loss", "test_accuracy", "steps_per_second", "first_loss"):
            mean, std = _mean_std([r.get(key) for r in rows])
            merged[key] = mean
            if key in ("train_loss", "test_loss", "test_accuracy"):
                merged[f"{key}_std"] = std
                known = [r.get(key) for r in rows if r.get(key) is not None]
                merged[f"{key}_min"], merged[f"{key}_max"] = (min(known), max(known)) if known else (None, None)
        merged["steps"] = round(merged["steps"]) if merged["steps"] is not None else 0
        flags_v = [r.get("reproduced") for r in rows]
        merged["reproduced"] = reproduced_across(flags_v)
        merged["reproduced_in"] = sum(f is True for f in flags_v)
        merged["seed_verdicts"] = [{"seed": seed, "reproduced": r.get("reproduced"), "verdict": r.get("verdict", "")} for seed, r in zip(seeds, rows)]
        merged["verdict"] = f"{merged['reproduced_in']} of {len(rows)} seeds: " + (rows[0].get("verdict", "") if rows else "")
        merged["layers"] = _mean_layers([r.get("layers", []) for r in rows])
        variants.append(merged)
    reproduced = reproduced_across(flags)
    finding = first.get("finding", "")
    if finding:
        finding = f"held in {held} of {len(summaries)} seeds — {_finding_rule(reproduced)}"
    return {
        "preset": first.get("preset", ""), "title": first.get("title", ""), "dataset": first.get("dataset", ""),
        "device": first.get("device", ""), "status": combined_status([s.get("status", "failed") for s in summaries]),
        "run_dir": str(run_dir), "finding": finding, "reproduced": reproduced, "seeds": list(seeds), "reproduced_in": held,
        "seed_runs": [
            {"seed": seed, "run_dir": s.get("run_dir", ""), "status": s.get("status"), "reproduced": s.get("reproduced"), "finding": s.get("finding", "")}
            for seed, s in zip(seeds, summaries)
        ],
        "notes": list(first.get("notes", [])), "variants": variants,
    }


def _finding_rule(reproduced: bool | None) -> str:
    if reproduced is True:
        return "reproduced in every seed"
    if reproduced is False:
        return "not reproduced: it failed in at least one seed"
    return "inconclusive: at least one seed could not show it and none contradicted it"


def run_summary(run_dir: Path) -> dict[str, Any]:
    """A run's summary from its log as it stands now (also for a run still being written, or one from
    nntui.watch); a seeds run's across-seeds summary (saved, or folded now from its seeds' logs)."""

    run_dir = check_run_dir(run_dir)
    if not is_seeds_run(run_dir):
        return build_summary(load_state(run_dir))
    saved = read_summary(run_dir)
    if saved is not None and "seeds" in saved:
        return saved
    found = [(seed, path) for seed, path in seed_dirs(run_dir) if (path / EVENTS_FILE).is_file()]
    if not found:
        raise NntuiError(f"{run_dir}: a seeds run with no seed's log yet; wait for the first seed to start")
    return aggregate_seeds([s for s, _ in found], [build_summary(load_state(p)) for _, p in found], run_dir)


def short_labels(run_dirs: list[Path], presets: list[str]) -> list[str]:
    """Labels for runs side by side: the preset's name where it is unique among them, else name#k
    (k: the run's place on the command line); the directory name when no preset is known."""
    names = [p or Path(d).name for d, p in zip(run_dirs, presets)]
    return [n if names.count(n) == 1 else f"{n}#{k}" for k, n in enumerate(names, 1)]


def read_preset_name(run_dir: Path) -> str:
    """The preset (or nntui.watch name) a run recorded, from its first event or its seeds.json."""
    run_dir = Path(run_dir)
    try:
        if is_seeds_run(run_dir):
            return json.loads((run_dir / SEEDS_FILE).read_text(encoding="utf-8")).get("preset", "")
        with open(run_dir / EVENTS_FILE, "rb") as f:
            first = json.loads(f.readline() or b"{}")
    except (OSError, ValueError):
        return ""
    return first.get("preset", "") if first.get("type") == "run_started" else ""
