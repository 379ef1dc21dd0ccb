"""The LR range test's result: the recorded curve, the suggested LRs and the cyclic bounds, and their file.

Torch-free: the sweep (engine/lr_finder.py) produces a curve, this module reads LRs off it.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
    centred: list[float | None] = field(default_factory=list)  # the curve the suggestions are read from
    noise: float | None = None  # sd of the raw per-batch loss
    stability: dict[str, dict[str, Any]] = field(default_factory=dict)  # per cyclic bound: noise band, reliable
    reference: list[float] = field(default_factory=list)  # loss on the fixed reference batch after each step (empty: not measured)
    read_from: str = "losses"  # the curve the suggestions were read from: "reference" or "losses"

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
            "cyclic": {"base_lr": self.base_lr, "max_lr": self.max_lr, "rule": CYCLIC_RULE, "stability": self.stability},
            "noise_sd": self.noise,
            "read_from": self.read_from,
            **self.extra,
            "lrs": self.lrs,
            "losses": clean(self.losses),
            "reference": clean(self.reference),
            "smoothed": clean(self.smoothed),
            "centred": [None if v is None else v for v in self.centred],
        }


CYCLIC_RULE = ("max_lr = LR at the minimum of the loss / 10; base_lr = LR where the loss starts to fall "
               "(its smoothed curve stays 5 % and 1.5 noise sd below the plateau), at 33 batches per decade, / 6; "
               "both read off the loss on a fixed reference batch when the sweep measured it")
SMOOTH_DECADES = 0.3  # bandwidth of the centred smoother (Gaussian kernel), in decades of LR
FALL_SHARE = 0.05  # the loss has started to fall once the smoothed curve stays this share below the plateau level
FALL_NOISE_SDS = 1.5  # ... and this many noise sds of the raw curve below it, so that on a noisy curve a dip of noise never counts
REFERENCE_POINTS_PER_DECADE = 299 / 9  # the default sweep: 300 batches from 1e-8 to 10
RELIABLE_DECADES = 0.3  # a suggestion whose noise band is wider than this is flagged unreliable
PLATEAU_SHARE = 0.25  # the plateau level: median raw loss over this first share of the points before the minimum


def usable_points(lrs: list[float], smoothed: list[float]) -> list[int]:
    """Indices left after dropping non-finite points and the first and last few (start-up noise, the blow-up)."""
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    n = len(finite)
    skip_start = min(10, n // 10)
    skip_end = min(5, n // 20)
    return finite[skip_start : n - skip_end]


def centred_curve(xs: list[float], ys: list[float], bandwidth: float = SMOOTH_DECADES) -> tuple[list[float], list[float]]:
    """Gaussian-kernel average of ys around each x (no lag, unlike an EMA), and each point's noise factor
    sqrt(sum w^2)/sum w: the smoothed value's sd is the raw noise sd times it."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    out, factor = np.empty_like(y), np.empty_like(y)
    for start in range(0, len(x), 512):  # rows in chunks: memory stays O(512 n)
        w = np.exp(-0.5 * ((x[start : start + 512, None] - x[None, :]) / bandwidth) ** 2)
        total = w.sum(axis=1)
        out[start : start + 512] = (w @ y) / total
        factor[start : start + 512] = np.sqrt((w * w).sum(axis=1)) / total
    return out.tolist(), factor.tolist()


def noise_sd(ys: list[float]) -> float:
    """The batch-to-batch noise of the raw loss: robust sd of successive differences / sqrt 2 (a slow trend hardly moves it)."""
    if len(ys) < 3:
        return 0.0
    d = np.diff(np.asarray(ys, dtype=float))
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2))


def _steepest(x: list[float], y: list[float]) -> int:
    """Index of the most negative slope of y against x (central differences; the end points are never chosen)."""
    if len(y) < 3:
        return 0
    slopes = [(y[i + 1] - y[i - 1]) / (x[i + 1] - x[i - 1]) for i in range(1, len(y) - 1)]
    return 1 + min(range(len(slopes)), key=slopes.__getitem__)


def _valley(y: list[float]) -> int:
    """fastai's valley: the longest decreasing subsequence of the loss, and the point half way along it.

    lds[i] (the longest strictly decreasing run ending at i) by patience sorting: O(n log n)."""
    n = len(y)
    tails: list[float] = []  # tails[k]: the largest -y ending a decreasing run of length k+1
    lds = [1] * n
    for i, v in enumerate(y):
        k = bisect.bisect_left(tails, -v)
        if k == len(tails):
            tails.append(-v)
        else:
            tails[k] = -v
        lds[i] = k + 1
    max_end = max(range(n), key=lambda i: (lds[i], -i)) if n else 0
    max_start = max_end - lds[max_end] if n else 0
    sections = (max_end - max_start) / 3
    return max(0, min(n - 1, max_start + int(sections) + int(sections / 2)))


def _last_above(y: list[float], threshold: float, i_min: int) -> int:
    """The fall start for a threshold: the point after the last one, before the minimum, at or above it.

    Scanning back from the minimum, so a noise dip in the flat head cannot end the plateau early."""
    for i in range(i_min, -1, -1):
        if y[i] >= threshold:
            return min(i + 1, i_min)
    return 0


@dataclass
class Analysis:
    suggestions: dict[str, Suggestion]
    base_lr: float | None
    max_lr: float | None
    centred: list[float | None]  # the centred curve on every swept point (None where not usable)
    noise: float | None  # sd of the raw per-batch loss
    stability: dict[str, dict[str, Any]]  # per cyclic bound: band (lo, hi), decades, reliable


def _band(lrs_at: list[float], lo: int, hi: int, scale: float) -> dict[str, Any]:
    a, b = lrs_at[lo] * scale, lrs_at[hi] * scale
    decades = math.log10(b / a) if b > 0 and a > 0 else 0.0
    return {"band": [a, b], "decades": round(decades, 3), "reliable": decades <= RELIABLE_DECADES}


RULES = {
    "steepest": "steepest descent of the smoothed loss (EMA) against log10(LR), before its minimum",
    "valley": "fastai's valley: inside the longest falling stretch of the smoothed loss (EMA), 1/2 of the way down",
    "min_div_10": "LR at the minimum of the centred smoothed {curve} / 10",
    "minimum": "LR at the minimum of the centred smoothed {curve} (an upper bound, not a training LR)",
    "fall_start": "LR where the {curve} starts to fall: its smoothed curve stays 5 % and 1.5 noise sd below the plateau from here on",
}


def ema_curve(losses: list[float], weight: float = 0.05) -> list[float]:
    """The sweep's running smoothing (the newest loss has `weight`); non-finite points pass through."""
    out: list[float] = []
    for loss in losses:
        if not math.isfinite(loss):
            out.append(loss)
            continue
        prev = next((v for v in reversed(out) if math.isfinite(v)), None)
        out.append(loss if prev is None else weight * loss + (1 - weight) * prev)
    return out


def analyse(lrs: list[float], losses: list[float], ema: list[float] | None = None, reference: list[float] | None = None) -> Analysis:
    """Suggestions read off a curve: the minimum and the fall start on a centred smoothing in log10(LR)
    with a noise sd and noise bands; steepest and valley, fastai's rules, on the sweep's EMA.

    The curve is `reference` (the loss on one fixed batch after each step: no batch-sampling noise) when
    given for every point, else the training batches' own losses."""
    ema = ema_curve(losses) if ema is None else ema
    curve = "batch loss"
    if reference is not None and len(reference) == len(losses) and len(losses) > 0:
        losses, curve = reference, "reference-batch loss"
    rules = {name: rule.format(curve=curve) for name, rule in RULES.items()}
    idx = usable_points(lrs, losses)
    centred: list[float | None] = [None] * len(lrs)
    if len(idx) < MIN_POINTS:
        note = f"only {len(idx)} usable points (need {MIN_POINTS}); sweep longer or start lower"
        return Analysis({k: Suggestion(k, None, rule, note=note) for k, rule in rules.items() if k != "fall_start"}, None, None, centred, None, {})
    xs = [math.log10(lrs[i]) for i in idx]
    raw = [losses[i] for i in idx]
    ys, factor = centred_curve(xs, raw)
    for i, v in zip(idx, ys):
        centred[i] = v
    lr_at = [lrs[i] for i in idx]
    out: dict[str, Suggestion] = {}
    i_min = min(range(len(ys)), key=ys.__getitem__)
    at = lambda k: (lrs[idx[k]], ys[k], idx[k])  # noqa: E731
    es = [ema[i] for i in idx]
    e_min = min(range(len(es)), key=es.__getitem__)
    e_head = e_min + 1 if e_min >= 3 else len(es)
    k = _steepest(xs[:e_head], es[:e_head])
    out["steepest"] = Suggestion("steepest", lrs[idx[k]], rules["steepest"], es[k], idx[k])
    k = _valley(es)
    out["valley"] = Suggestion("valley", lrs[idx[k]], rules["valley"], es[k], idx[k])
    lr_min, loss_min, i_abs = at(i_min)
    out["min_div_10"] = Suggestion("min_div_10", lr_min / 10, rules["min_div_10"], None, i_abs)
    out["minimum"] = Suggestion("minimum", lr_min, rules["minimum"], loss_min, i_abs)
    # the plateau and the noise, from the stretch before the minimum
    sd = noise_sd(raw[: i_min + 1]) if i_min >= 2 else noise_sd(raw)
    n_head = max(3, int(PLATEAU_SHARE * i_min))
    level = float(np.median(raw[:n_head]))
    threshold = level - max(FALL_SHARE * abs(level), FALL_NOISE_SDS * sd)
    fall = _last_above(ys, threshold, i_min)
    lr_fall, loss_fall, i_fall = at(fall)
    out["fall_start"] = Suggestion("fall_start", lr_fall, rules["fall_start"], loss_fall, i_fall)
    # noise bands: where each decision lands if the smoothed curve (and the plateau) move by ±1 sd
    sd_level = 1.2533 * sd / math.sqrt(n_head)  # sd of a median of n_head points
    sd_fall = math.hypot(sd * factor[fall], sd_level)
    density = 1 / float(np.median(np.diff(xs))) if len(xs) > 1 else REFERENCE_POINTS_PER_DECADE
    scale = density / REFERENCE_POINTS_PER_DECADE / 6
    # the crossing itself lies between the point before the fall and the fall: the band spans at least that step
    fall_band = _band(lr_at, min(max(fall - 1, 0), _last_above(ys, threshold + sd_fall, i_min)), _last_above(ys, threshold - sd_fall, i_min), scale)
    near_min = [k for k, v in enumerate(ys) if v <= ys[i_min] + math.sqrt(2) * sd * factor[i_min]]
    min_band = _band(lr_at, min(min(near_min), max(i_min - 1, 0)), max(max(near_min), min(i_min + 1, len(ys) - 1)), 0.1)  # a grid step either side at least
    max_lr = lr_min / 10
    base_lr = lr_fall * scale
    if not base_lr < max_lr:  # the loss fell only near its minimum: keep a decade between the bounds
        base_lr = max_lr / 10
        fall_band["reliable"] = False
        fall_band["warning"] = (f"base_lr is not reliable: the loss starts to fall only near its minimum (fall start {lr_fall:.2g}); "
                                f"set to max_lr / 10 = {base_lr:.2g}; check the plot")
    stability = {"base_lr": fall_band, "max_lr": min_band}
    for name, band in stability.items():
        if not band["reliable"] and "warning" not in band:
            band["warning"] = (f"{name} is not reliable: within ±1 noise sd the rule's answer moves over {band['decades']:.2f} decades "
                               f"({band['band'][0]:.2g} … {band['band'][1]:.2g}); sweep longer (--num-iter) or check the plot")
    if i_min == 0:
        for s in out.values():
            s.note = "the loss never fell: the sweep starts too high, or the model does not learn"
    return Analysis(out, base_lr, max_lr, centred, sd, stability)


def suggest(lrs: list[float], losses: list[float], ema: list[float] | None = None,
            reference: list[float] | None = None) -> tuple[dict[str, Suggestion], float | None, float | None]:
    """The suggestions and the lecture's cyclic pair; each says which rule made it."""
    a = analyse(lrs, losses, ema, reference)
    return a.suggestions, a.base_lr, a.max_lr


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
