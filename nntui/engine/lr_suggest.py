"""The LR range test's result: the recorded curve, the suggested LRs and the cyclic bounds, and their file.

Torch-free: the sweep (engine/lr_finder.py) produces a curve, this module reads LRs off it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nntui.errors import NntuiError
from nntui.record.runlog import read_small_file, write_json_atomic

LR_FIND_FILE = "lr_find.json"
MIN_POINTS = 8  # fewer usable points than this: no suggestion


@dataclass
class Suggestion:
    name: str
    lr: float | None
    rule: str
    loss: float | None = None  # smoothed loss at the suggested point (None for derived LRs)
    index: int | None = None
    note: str = ""  # why there is no value

    def to_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "loss": self.loss, "index": self.index, "rule": self.rule, **({"note": self.note} if self.note else {})}


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]  # raw; nan/inf where the loss was not finite
    smoothed: list[float]
    suggestions: dict[str, Suggestion]
    base_lr: float | None  # the lecture's recommended pair for cyclic LR
    max_lr: float | None
    start_lr: float
    end_lr: float
    num_iter: int  # planned
    smooth: float
    diverge: float
    stopped: str  # "completed" | "diverged" | "non-finite"
    stop_reason: str = ""
    variant: str = ""
    preset: str = ""
    dataset: str = ""
    device: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.lrs)

    def to_dict(self) -> dict[str, Any]:
        clean = lambda xs: [x if math.isfinite(x) else None for x in xs]  # noqa: E731
        return {
            "preset": self.preset,
            "variant": self.variant,
            "dataset": self.dataset,
            "device": self.device,
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "num_iter": self.num_iter,
            "steps": self.steps,
            "smooth": self.smooth,
            "diverge": self.diverge,
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
            "suggestions": {name: s.to_dict() for name, s in self.suggestions.items()},
            "cyclic": {"base_lr": self.base_lr, "max_lr": self.max_lr, "rule": CYCLIC_RULE},
            **self.extra,
            "lrs": self.lrs,
            "losses": clean(self.losses),
            "smoothed": clean(self.smoothed),
        }


CYCLIC_RULE = "lecture: max_lr = LR at the loss minimum / 10, base_lr = LR where the loss starts to fall / 6"


def usable_points(lrs: list[float], smoothed: list[float]) -> list[int]:
    """Indices left after dropping non-finite points and the first and last few (start-up noise, the blow-up)."""
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    n = len(finite)
    skip_start = min(10, n // 10)
    skip_end = min(5, n // 20)
    return finite[skip_start : n - skip_end]


def _steepest(x: list[float], y: list[float]) -> int:
    """Index of the most negative slope of y against x (central differences; the end points are never chosen)."""
    if len(y) < 3:
        return 0
    slopes = [(y[i + 1] - y[i - 1]) / (x[i + 1] - x[i - 1]) for i in range(1, len(y) - 1)]
    return 1 + min(range(len(slopes)), key=slopes.__getitem__)


def _valley(y: list[float]) -> int:
    """fastai's valley: the longest decreasing subsequence of the loss, and the point half way along it."""
    n = len(y)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if y[i] < y[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
        if lds[max_end] < lds[i]:
            max_end = i
            max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max(0, min(n - 1, max_start + int(sections) + int(sections / 2)))


def _fall_start(y: list[float], i_min: int, share: float = 0.1) -> int:
    """First point before the minimum where the loss has fallen by `share` of its total drop from the start."""
    head = y[: max(1, min(len(y), 5))]
    level = sorted(head)[len(head) // 2]
    drop = level - y[i_min]
    if drop <= 0:
        return 0
    for i in range(i_min + 1):
        if y[i] <= level - share * drop:
            return i
    return i_min


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[dict[str, Suggestion], float | None, float | None]:
    """The four suggestions and the lecture's cyclic pair; each says which rule made it."""
    idx = usable_points(lrs, smoothed)
    rules = {
        "steepest": "steepest descent of the smoothed loss against log10(LR)",
        "valley": "fastai's valley: inside the longest falling stretch of the smoothed loss, 1/2 of the way down",
        "min_div_10": "LR at the minimum of the smoothed loss / 10",
        "minimum": "LR at the minimum of the smoothed loss (an upper bound, not a training LR)",
    }
    if len(idx) < MIN_POINTS:
        note = f"only {len(idx)} usable points (need {MIN_POINTS}); sweep longer or start lower"
        return {k: Suggestion(k, None, rule, note=note) for k, rule in rules.items()}, None, None
    xs = [math.log10(lrs[i]) for i in idx]
    ys = [smoothed[i] for i in idx]
    out: dict[str, Suggestion] = {}
    i_min = min(range(len(ys)), key=ys.__getitem__)
    at = lambda k: (lrs[idx[k]], ys[k], idx[k])  # noqa: E731
    head = i_min + 1 if i_min >= 3 else len(ys)  # the steepest fall before the minimum, not the blow-up after it
    lr, loss, i = at(_steepest(xs[:head], ys[:head]))
    out["steepest"] = Suggestion("steepest", lr, rules["steepest"], loss, i)
    lr, loss, i = at(_valley(ys))
    out["valley"] = Suggestion("valley", lr, rules["valley"], loss, i)
    lr_min, loss_min, i_abs = at(i_min)
    out["min_div_10"] = Suggestion("min_div_10", lr_min / 10, rules["min_div_10"], None, i_abs)
    out["minimum"] = Suggestion("minimum", lr_min, rules["minimum"], loss_min, i_abs)
    fall = _fall_start(ys, i_min)
    lr_fall, loss_fall, i_fall = at(fall)
    max_lr = lr_min / 10
    base_lr = lr_fall / 6
    if not base_lr < max_lr:  # the loss fell only near its minimum: keep a decade between the bounds
        base_lr = max_lr / 10
    out["fall_start"] = Suggestion("fall_start", lr_fall, "LR where the smoothed loss has made 10% of its drop (the loss starts to fall)", loss_fall, i_fall)
    if i_min == 0:
        for s in out.values():
            s.note = "the loss never fell: the sweep starts too high, or the model does not learn"
    return out, base_lr, max_lr


# ---------------------------------------------------------------- running it for a config

def save_result(result: LRFindResult, path: Path) -> None:
    write_json_atomic(path, result.to_dict())


def load_bounds(path: Path) -> tuple[float, float]:
    """The cyclic pair (base_lr, max_lr) from a saved lr_find.json (a file, or a run directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / LR_FIND_FILE
    if not path.exists():
        raise NntuiError(f"--from-lr-find {path}: file not found; pass the lr_find.json written by `nntui lr-find` (or its run directory)")
    try:
        data = json.loads(read_small_file(path, "--from-lr-find"))
    except (ValueError, RecursionError) as exc:
        raise NntuiError(f"--from-lr-find {path}: not readable JSON ({exc})") from None
    cyclic = data.get("cyclic") if isinstance(data, dict) else None
    base, top = (cyclic.get("base_lr"), cyclic.get("max_lr")) if isinstance(cyclic, dict) else (None, None)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in (base, top)) or not base < top:
        raise NntuiError(f"--from-lr-find {path}: no usable cyclic.base_lr/max_lr in it (the sweep found no minimum); run `nntui lr-find` again")
    return float(base), float(top)
