"""Health checks for any run (a preset's or your own loop's): torch-free, they read a RunState only.

Each check says ok / warn / fail / n/a (not enough data yet) with its numbers; `nntui check` fails on
"fail". Thresholds, and why:
- vanishing gradients: the first layer's median |grad| under 1/300 of the last layer's (warn under
  1/100). Each sigmoid passes back at most 1/4 of the gradient (lecture), so k sigmoid layers cost up
  to 4^k and more with small weights: measured on sigmoid-paralysis, the 2-hidden-layer net that
  still learns sits near 1/150, the 3-layer net that does not near 1/1000; healthy ReLU (Kaiming) and
  BatchNorm nets stay above 1/60.
- exploding gradients: the mirror (first layer's median |grad| over 300x the last's), or a layer's
  median |grad| grown 1000x (three decades) above its level at the first probes.
- non-finite: a non-finite loss (the run diverged) or a layer whose gradient turned non-finite after
  being finite; the step and the layer where it started (the one nearest the loss, as backward goes).
- saturated units (sigmoid/tanh outputs in the flat tails): warn from 5 % (Karpathy's rule of thumb),
  fail from 50 % of a layer (the lecture's N(0,1) tanh net, the bad-init preset's threshold).
- dead units (on every example of the probed batch: ReLU never positive, sigmoid/tanh saturated):
  warn from 25 %, fail from 50 % of a layer.
- update:data (|ΔW| / |W| per step, median over layers): about 1e-3 is healthy (CS231n, Karpathy;
  the optimizer panel's guide line); ok within 10x of it (1e-4..1e-2), warn up to 1e-1, fail below
  1e-4 (the LR is too small for these weights: learning crawls) or above 1e-1 (each step rewrites a
  tenth of the weights). Skipped while a schedule has annealed the LR below a tenth of its peak.
- loss not falling: after 100 steps, the smoothed loss less than 2 % under its start: fail; the last
  quarter of the run no lower (by 0.5 %) than the quarter before it: warn (a plateau, or convergence).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from nntui.record.state import RunState, VariantState

VANISHING_FAIL, VANISHING_WARN = 1 / 300, 1 / 100
EXPLODING_DEPTH, EXPLODING_GROWTH = 300.0, 1000.0
SATURATION_WARN, SATURATION_FAIL = 0.05, 0.5
DEAD_WARN, DEAD_FAIL = 0.25, 0.5
UPDATE_OK, UPDATE_WARN = (1e-4, 1e-2), 1e-1
ANNEALED_LR = 0.1
LOSS_MIN_STEPS, LOSS_MIN_FALL, PLATEAU_FALL = 100, 0.02, 0.005
RECENT_PROBES = 10  # probes whose medians are pooled: one probe's batch is noisy

CHECKS = {
    "vanishing-gradients": "vanishing gradients",
    "exploding-gradients": "exploding gradients",
    "non-finite": "non-finite loss or gradients",
    "saturated-units": "saturated units",
    "dead-units": "dead units",
    "update-ratio": "update:data ratio",
    "loss-not-falling": "loss not falling",
}


@dataclass
class Check:
    id: str
    status: str  # ok | warn | fail | n/a
    text: str
    numbers: dict[str, Any] = field(default_factory=dict)
    step: int | None = None
    layer: str | None = None

    @property
    def title(self) -> str:
        return CHECKS[self.id]

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, **asdict(self)}


def _e(x: float | None) -> str:
    return "—" if x is None else f"{x:.2g}" if 0.01 <= abs(x) < 100 else f"{x:.1e}"


def _recent_median(v: VariantState, layer: str) -> float | None:
    series = v.grad_median_history.get(layer)
    if series is None or not series.ys:
        return None
    return statistics.median(series.ys[-RECENT_PROBES:])


def _positive_layers(v: VariantState) -> list[tuple[str, float]]:
    """(layer, recent median |grad|) in model order; layers whose median is 0 (sparse gradients such as
    an embedding's unused rows) are left out."""
    out = []
    for layer in v.layers or [row["name"] for row in v.layer_stats]:
        m = _recent_median(v, layer)
        if m is not None and m > 0:
            out.append((layer, m))
    return out


def vanishing(v: VariantState) -> Check:
    layers = _positive_layers(v)
    if len(layers) < 2:
        return Check("vanishing-gradients", "n/a", "needs gradient medians of two layers (not probed yet)")
    (first, a), (last, b) = layers[0], layers[-1]
    ratio = a / b
    numbers = {"ratio": ratio, "first_median": a, "last_median": b, "fail_below": VANISHING_FAIL}
    text = f"{first} median |grad| {_e(a)} is {_ratio_words(ratio)} {last}'s {_e(b)}"
    status = "fail" if ratio < VANISHING_FAIL else "warn" if ratio < VANISHING_WARN else "ok"
    if status != "ok":
        text += f" ({'fail' if status == 'fail' else 'warn'} below 1/{1 / (VANISHING_FAIL if status == 'fail' else VANISHING_WARN):.0f})"
    return Check("vanishing-gradients", status, text, numbers, v.layer_stats_step or None, first)


def _ratio_words(ratio: float) -> str:
    return f"1/{1 / ratio:.0f} of" if ratio < 1 else f"{ratio:.3g}x"


def exploding(v: VariantState) -> Check:
    layers = _positive_layers(v)
    if len(layers) >= 2:
        (first, a), (last, b) = layers[0], layers[-1]
        if a / b > EXPLODING_DEPTH:
            return Check("exploding-gradients", "fail", f"{first} median |grad| {_e(a)} is {a / b:.0f}x {last}'s {_e(b)} (fail above {EXPLODING_DEPTH:.0f}x)",
                         {"ratio": a / b, "fail_above": EXPLODING_DEPTH}, v.layer_stats_step or None, first)
    start: tuple[int, float, str, float] | None = None  # (step, growth, layer, baseline) of the earliest crossing
    for layer, series in v.grad_median_history.items():
        positive = [y for y in series.ys if y > 0]
        if len(positive) < 2:
            continue
        baseline = statistics.median(positive[:3])
        for x, y in zip(series.xs, series.ys):
            if y > EXPLODING_GROWTH * baseline:
                if start is None or x < start[0] or (x == start[0] and y / baseline > start[1]):
                    start = (int(x), y / baseline, layer, baseline)
                break
    if start is not None:
        step, growth, layer, baseline = start
        return Check("exploding-gradients", "fail", f"{layer} median |grad| grew {growth:.0f}x above its start ({_e(baseline)}) by step {step}",
                     {"growth": growth, "fail_above": EXPLODING_GROWTH}, step, layer)
    if not v.grad_median_history:
        return Check("exploding-gradients", "n/a", "no gradients probed yet")
    return Check("exploding-gradients", "ok", "no layer's median |grad| grew 1000x, none far above the last layer's")


def non_finite(v: VariantState) -> Check:
    if v.status == "diverged":
        return Check("non-finite", "fail", f"the run diverged: {v.finish_reason or 'non-finite loss'}", {}, v.step or None,
                     _nonfinite_origin(v)[1])
    step, layer = _nonfinite_origin(v)
    if step is not None:
        return Check("non-finite", "fail", f"gradient of {layer} became non-finite at step {step}", {}, step, layer)
    if not v.train_loss.ys and not v.layer_stats:
        return Check("non-finite", "n/a", "nothing recorded yet")
    return Check("non-finite", "ok", "loss and gradients finite")


def _nonfinite_origin(v: VariantState) -> tuple[int | None, str | None]:
    """The first probed step with a non-finite gradient and, of the layers hit then, the one nearest the loss."""
    since = v.grad_nonfinite_since
    if not since:
        return None, None
    step = min(since.values())
    order = v.layers or list(since)
    hit = [name for name in order if since.get(name) == step]
    return step, (hit[-1] if hit else None)


def _worst(v: VariantState, key: str) -> tuple[str, float] | None:
    values = [(row["name"], row[key]) for row in v.layer_stats if row.get(key) is not None]
    return max(values, key=lambda item: item[1]) if values else None


def _worst_share(v: VariantState, key: str, name: str, warn: float, fail: float, absent: str, what: str) -> Check:
    """The layer with the largest share of `key` units, judged against the warn / fail shares."""
    worst = _worst(v, key)
    if worst is None:
        return Check(name, "n/a", absent if v.layer_stats else "not probed yet")
    layer, share = worst
    status = "fail" if share >= fail else "warn" if share >= warn else "ok"
    return Check(name, status, f"{layer}: {share:.0%} of {what} (warn from {warn:.0%}, fail from {fail:.0%})",
                 {key: share}, v.layer_stats_step or None, layer)


def saturated(v: VariantState) -> Check:
    return _worst_share(v, "saturation", "saturated-units", SATURATION_WARN, SATURATION_FAIL,
                        "no sigmoid/tanh activations measured", "outputs saturated")


def dead(v: VariantState) -> Check:
    return _worst_share(v, "dead", "dead-units", DEAD_WARN, DEAD_FAIL, "no activations measured", "units dead on the whole batch")


def update_ratio(v: VariantState) -> Check:
    ratios = [(row["name"], row["update_ratio"]) for row in v.layer_stats if row.get("update_ratio")]
    if not ratios:
        return Check("update-ratio", "n/a", "no updates probed yet")
    lrs = [y for y in v.lr.ys if y is not None]
    if lrs and max(lrs) > 0 and lrs[-1] < ANNEALED_LR * max(lrs):
        return Check("update-ratio", "n/a", f"the LR is annealed ({_e(lrs[-1])}, peak {_e(max(lrs))}): small updates are intended")
    median = statistics.median(r for _, r in ratios)
    layer, extreme = max(ratios, key=lambda item: abs(math.log10(item[1] / 1e-3)))
    lo, hi = UPDATE_OK
    status = "ok" if lo <= median <= hi else "warn" if hi < median <= UPDATE_WARN else "fail"
    why = {"ok": "healthy ≈ 1e-3", "warn": "large: the LR may be too high", "fail": "LR too small: learning crawls" if median < lo else "LR too high: unstable"}[status]
    return Check("update-ratio", status, f"median {_e(median)} over {len(ratios)} layers, {layer} {_e(extreme)} ({why}; ok {lo:g}..{hi:g})",
                 {"median": median, "ok_band": [lo, hi], "fail_above": UPDATE_WARN}, v.layer_stats_step or None, layer)


def loss_falling(v: VariantState) -> Check:
    ys = v.train_loss.ys
    if v.step < LOSS_MIN_STEPS or len(ys) < 8:
        return Check("loss-not-falling", "n/a", f"too early (needs {LOSS_MIN_STEPS} logged steps)")
    head = ys[: max(1, len(ys) // 10)]
    start, end = sum(head) / len(head), v.final_train_loss
    if end is None or start <= 0:
        return Check("loss-not-falling", "n/a", "the loss is not a positive quantity")
    fall = (start - end) / start
    numbers = {"start": start, "end": end, "fall": fall}
    if fall < LOSS_MIN_FALL:
        return Check("loss-not-falling", "fail", f"loss {_e(start)} → {_e(end)}: {fall:.1%} down after {v.step} steps (fail under {LOSS_MIN_FALL:.0%})", numbers, v.step)
    q = len(ys) // 4
    before, last = ys[-2 * q : -q], ys[-q:]
    if q >= 2 and sum(last) / q > (1 - PLATEAU_FALL) * sum(before) / q:
        return Check("loss-not-falling", "warn", f"loss {_e(start)} → {_e(end)}, but flat over the last quarter of the run (a plateau, or converged)", numbers, v.step)
    return Check("loss-not-falling", "ok", f"loss {_e(start)} → {_e(end)} ({fall:.0%} down)", numbers, v.step)


def variant_checks(v: VariantState) -> list[Check]:
    return [vanishing(v), exploding(v), non_finite(v), saturated(v), dead(v), update_ratio(v), loss_falling(v)]


def check_health(state: RunState, variants: list[str] | None = None) -> dict[str, Any]:
    """{"healthy", "failed": [check ids], "variants": [{"name", "healthy", "checks": [...]}]} (JSON values)."""
    with state.lock:
        rows = []
        for v in state.variants.values():
            if variants and v.name not in variants:
                continue
            checks = variant_checks(v)
            failed = [c.id for c in checks if c.status == "fail"]
            rows.append({"name": v.name, "healthy": not failed, "failed": failed, "checks": [c.as_dict() for c in checks]})
    failed_ids = sorted({cid for row in rows for cid in row["failed"]}, key=list(CHECKS).index)
    return {"healthy": not failed_ids, "failed": failed_ids, "variants": rows}
