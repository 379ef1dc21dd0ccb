"""Verdicts: does the lecture's finding show up in this run? Read from a RunState only.

A preset's `expect` table names a kind (a function below) and its parameters. Each kind returns
per-variant lines and one overall line; `reproduced` is None while it is too early to say.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from nntui.errors import NntuiError
from nntui.state import RunState, VariantState

LN10 = math.log(10)
Judgement = tuple[dict[str, tuple[bool | None, str]], tuple[bool | None, str]]
KINDS: dict[str, Callable[[RunState, dict[str, Any]], Judgement]] = {}
VARIANT_PARAMS = ("stuck", "learns", "baseline", "improved", "best", "winner", "worst", "bad", "good", "without", "with", "variant", "regularized")


def kind(name: str):
    def register(fn):
        KINDS[name] = fn
        return fn

    return register


NUMBER_PARAMS = (
    "margin", "max_loss", "min_grad_ratio", "stuck_margin", "learn_margin", "bad_factor", "bad_saturation",
    "good_tolerance", "ready", "min_coverage", "min_width", "min_accuracy",
)
REQUIRED_PARAMS = {
    "paralysis": ("stuck", "learns"), "lower-loss": ("baseline", "improved"), "bad-init": ("bad", "good"),
    "generalisation": ("with", "without"), "no-gain": ("with", "without"), "mc-interval": ("variant",), "weight-norms": ("baseline", "regularized"),
}


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def check_expectation(preset, where: str) -> None:
    """Fail early on an `expect` table that names an unknown kind or variant, or has mistyped parameters."""
    expect = preset.expect
    if not expect:
        return
    kind_name = expect.get("kind")
    if not isinstance(kind_name, str) or kind_name not in KINDS:
        raise NntuiError(f"{where}: expect.kind {kind_name!r} is unknown; known: {', '.join(sorted(KINDS))}")
    for key in REQUIRED_PARAMS.get(kind_name, ()):
        if key not in expect:
            raise NntuiError(f"{where}: expect.{key} is missing; kind {kind_name!r} needs {', '.join(REQUIRED_PARAMS[kind_name])}")
    names = {v.name for v in preset.variants}
    for key in VARIANT_PARAMS:
        if key not in expect:
            continue
        values = expect[key]
        if not isinstance(values, (str, list)) or not all(isinstance(v, str) for v in _names(values)):
            raise NntuiError(f"{where}: expect.{key} must be a variant name or a list of names")
        for value in _names(values):
            if value not in names:
                raise NntuiError(f"{where}: expect.{key} names variant {value!r}, which the preset does not have; variants: {', '.join(sorted(names))}")
    for key in NUMBER_PARAMS:
        if key in expect and (isinstance(expect[key], bool) or not isinstance(expect[key], (int, float)) or not math.isfinite(expect[key])):
            raise NntuiError(f"{where}: expect.{key} must be a number (got {expect[key]!r})")
    if "metric" in expect and expect["metric"] not in METRICS:
        raise NntuiError(f"{where}: expect.metric {expect['metric']!r} is unknown; choose {', '.join(METRICS)}")
    if "finding" in expect and not isinstance(expect["finding"], str):
        raise NntuiError(f"{where}: expect.finding must be a string")


def judge(state: RunState, expect: dict[str, Any]) -> Judgement:
    if not expect or expect.get("kind") not in KINDS:
        return {}, (None, "")
    with state.lock:
        verdicts, (ok, text) = KINDS[expect["kind"]](state, expect)
        if any(v.status in ("running", "pending") for v in state.variants.values()):
            # Mid-run a negative only means "not yet": the lecture's effects take the whole run to show.
            verdicts = {name: (None if r is False else r, t) for name, (r, t) in verdicts.items()}
            if ok is False:
                ok, text = None, f"so far, {text}"
        return verdicts, (ok, text)


# ---------------------------------------------------------------- helpers

def _v(state: RunState, name: str) -> VariantState | None:
    return state.variants.get(name)


def _progress(v: VariantState | None) -> float:
    if v is None or not v.total_steps:
        return 0.0
    return 1.0 if v.status in ("completed", "diverged") else v.step / v.total_steps


def _ready(state: RunState, names: list[str], share: float = 0.5) -> bool:
    return all(_progress(_v(state, n)) >= share for n in names)


def _loss(v: VariantState | None) -> float:
    if v is None or v.status == "diverged":
        return math.inf
    loss = v.final_train_loss
    return loss if loss is not None else math.nan  # no data yet: neither good nor bad


def _test_loss(v: VariantState | None) -> float:
    if v is None or v.status == "diverged" or v.last_test_loss is None:
        return math.inf
    return v.last_test_loss


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or math.isnan(x):
        return "—"
    if math.isinf(x):
        return "diverged"
    return f"{x:.{digits}g}"


def _grad_ratio(v: VariantState) -> float | None:
    """Median |grad| of the last layer over that of the first layer, at the latest probe."""
    if not v.layer_stats:
        return None
    first, last = v.layer_stats[0]["grad"][2], v.layer_stats[-1]["grad"][2]
    if not first or last is None:
        return None
    return last / first


def _final_acc(v: VariantState) -> str:
    acc = v.last_test_accuracy
    return f", test accuracy {acc:.1%}" if acc is not None else ""


def _diverged_text(v: VariantState) -> str:
    return f"{v.name}: diverged ({v.finish_reason or 'non-finite loss'})"


def _rank_by(state: RunState, names: list[str], metric: Callable[[VariantState | None], float]) -> list[str]:
    return sorted(names, key=lambda n: metric(_v(state, n)))


# ---------------------------------------------------------------- kinds

@kind("paralysis")
def paralysis(state: RunState, e: dict[str, Any]) -> Judgement:
    """`stuck` stays near ln 10 with vanishing first-layer gradients; `learns` does not."""
    stuck_margin = e.get("stuck_margin", 0.15)
    out = {}
    for name in (e["stuck"], e["learns"]):
        v = _v(state, name)
        if v is None:
            continue
        ratio = _grad_ratio(v)
        loss = _loss(v)
        grad = f"first-layer gradients {ratio:.0f}× smaller than last" if ratio and ratio >= 1 else f"gradient ratio last/first {_fmt(ratio)}"
        if name == e["stuck"]:
            ok = loss > LN10 - stuck_margin and (ratio or 0) >= e.get("min_grad_ratio", 10)
            tail = "paralysis reproduced" if ok else "not paralysed (yet)"
        else:
            acc = v.last_test_accuracy
            ok = loss < LN10 - e.get("learn_margin", 0.05) and (acc is None or acc >= e.get("min_accuracy", 0.5))
            tail = "it learns" if ok else "not learning yet"
        out[name] = (ok if _ready(state, [name]) else None, f"{name}: {grad}; loss {_fmt(loss)} (ln 10 = 2.30){_final_acc(v)} — {tail}")
    names = [e["stuck"], e["learns"]]
    if not _ready(state, names):
        return out, (None, "too early: the gap between the nets opens over the first epochs")
    ok = all(out.get(n, (False,))[0] for n in names)
    finding = (
        f"{e['stuck']} stays at loss {_fmt(_loss(_v(state, e['stuck'])))} ≈ ln 10 (a uniform guess) while {e['learns']} learns "
        f"(loss {_fmt(_loss(_v(state, e['learns'])))}{_final_acc(_v(state, e['learns']))}) — network paralysis reproduced"
        if ok else f"paralysis not reproduced: {e['stuck']} loss {_fmt(_loss(_v(state, e['stuck'])))}, {e['learns']} loss {_fmt(_loss(_v(state, e['learns'])))}"
    )
    return out, (ok, finding)


def _accuracy_as_loss(v: VariantState | None) -> float:
    """1 - test accuracy, so that lower is better like the losses."""
    if v is None or v.status == "diverged" or v.last_test_accuracy is None:
        return math.inf
    return 1.0 - v.last_test_accuracy


METRICS = {
    "train": (_loss, "train loss", lambda x: _fmt(x)),
    "test": (_test_loss, "test loss", lambda x: _fmt(x)),
    "accuracy": (_accuracy_as_loss, "test accuracy", lambda x: f"{1 - x:.1%}" if math.isfinite(x) else "diverged"),
}


@kind("lower-loss")
def lower_loss(state: RunState, e: dict[str, Any]) -> Judgement:
    """Every `improved` variant ends better than `baseline` by `margin` (train loss, test loss or accuracy)."""
    metric, label, show = METRICS[e.get("metric", "train")]
    base_name, improved = e["baseline"], _names(e["improved"])
    margin = e.get("margin", 0.1)
    base = metric(_v(state, base_name))
    out = {}
    for name in [base_name, *improved]:
        v = _v(state, name)
        if v is None:
            continue
        if v.status == "diverged":
            out[name] = (name == base_name if _ready(state, [name]) else None, _diverged_text(v))
            continue
        m = metric(v)
        detail = f"{name}: train loss {_fmt(_loss(v))}{_final_acc(v)}"
        if name == base_name:
            out[name] = (None, f"{detail} (the baseline)")
        else:
            ok = m < base - margin and _loss(v) < e.get("max_loss", math.inf)
            out[name] = (ok if _ready(state, [name, base_name]) else None, f"{detail} — {'better than' if ok else 'not better than'} {base_name}")
    if not _ready(state, [base_name, *improved]):
        return out, (None, "too early to compare")
    ok = all(out.get(n, (False,))[0] for n in improved)
    best = min(improved, key=lambda n: metric(_v(state, n)))
    text = e.get("finding", "{best} beats {baseline}")
    summary = f"{label}: " + ", ".join(f"{n} {show(metric(_v(state, n)))}" for n in [base_name, *improved])
    return out, (ok, (text.format(best=best, baseline=base_name) + f" — reproduced ({summary})") if ok else f"not reproduced: {summary}")


@kind("best-of")
def best_of(state: RunState, e: dict[str, Any]) -> Judgement:
    """`winner` ends with the lowest loss of all variants (and, with `worst`, that one the highest)."""
    metric, label, show = METRICS[e.get("metric", "train")]
    names = list(state.variants)
    ranked = _rank_by(state, names, metric)
    out = {}
    for i, name in enumerate(ranked):
        v = state.variants[name]
        text = _diverged_text(v) if v.status == "diverged" else f"{name}: train loss {_fmt(_loss(v))}{_final_acc(v)}, rank {i + 1} of {len(ranked)} by {label}"
        out[name] = (None, text)
    if not _ready(state, names):
        return out, (None, "too early to rank")
    ok = ("winner" not in e or ranked[0] == e["winner"]) and ("worst" not in e or ranked[-1] == e["worst"])
    summary = f"{label}, best first: " + ", ".join(f"{n} {show(metric(_v(state, n)))}" for n in ranked)
    text = e.get("finding", "{winner} wins")
    return out, (ok, (text.format(winner=e.get("winner", ""), worst=e.get("worst", "")) + f" — reproduced ({summary})") if ok else f"not reproduced: {summary}")


@kind("bad-init")
def bad_init(state: RunState, e: dict[str, Any]) -> Judgement:
    """`bad` starts far above ln C with saturated units; `good` starts near ln C, few saturated."""
    out = {}
    results = {}
    for name in state.variants:
        v = state.variants[name]
        if v.first_loss is None or not v.first_layer_stats:
            continue
        sat = v.first_layer_stats[0].get("saturation")
        # saturation of the first hidden layer's units at the first step
        first_loss = v.first_loss
        results[name] = (first_loss, sat)
        out[name] = (None, f"{name}: first loss {first_loss:.2f} ({first_loss / LN10:.1f}× ln 10), {_fmt(100 * sat if sat is not None else None, 2)}% of tanh units saturated at step 1; final loss {_fmt(_loss(v))}")
    bad, good = e["bad"], _names(e["good"])
    if bad not in results or any(g not in results for g in good):
        return out, (None, "waiting for the first step of every variant")
    bad_loss, bad_sat = results[bad]
    ok = bad_loss > e.get("bad_factor", 3) * LN10 and (bad_sat or 0) > e.get("bad_saturation", 0.5)
    ok = ok and all(abs(results[g][0] - LN10) < e.get("good_tolerance", 0.5) for g in good)
    text = f"{bad}: first loss {bad_loss:.1f} vs ln 10 = 2.30 and {100 * (bad_sat or 0):.0f}% saturated units; " + ", ".join(f"{g}: {results[g][0]:.2f}" for g in good)
    return out, (ok, text + (" — bad initialisation reproduced" if ok else " — not reproduced"))


def _loss_lines(state: RunState, names: list[str], with_gap: bool = False) -> dict[str, tuple[bool | None, str]]:
    """Per-variant lines with train and test loss (and their gap), no judgement yet."""
    out = {}
    for name in names:
        v = _v(state, name)
        if v is not None:
            gap = f", gap {_fmt(_test_loss(v) - _loss(v))}" if with_gap else ""
            out[name] = (None, f"{name}: train loss {_fmt(_loss(v))}, test loss {_fmt(_test_loss(v))}{gap}{_final_acc(v)}")
    return out


@kind("generalisation")
def generalisation(state: RunState, e: dict[str, Any]) -> Judgement:
    """`with` ends with a lower test loss than `without` (and a smaller train-test gap)."""
    w, wo = e["with"], e["without"]
    out = _loss_lines(state, [w, wo], with_gap=True)
    if not _ready(state, [w, wo], e.get("ready", 0.5)):
        return out, (None, "too early: overfitting shows up later in training")
    ok = _test_loss(_v(state, wo)) > _test_loss(_v(state, w))
    text = f"test loss without: {_fmt(_test_loss(_v(state, wo)))}, with: {_fmt(_test_loss(_v(state, w)))}"
    return out, (ok, (e.get("finding", "the net without regularisation overfits") + f" — reproduced ({text})") if ok else f"not reproduced: {text}")


@kind("no-gain")
def no_gain(state: RunState, e: dict[str, Any]) -> Judgement:
    """The lecture's dropout-on-MNIST result: `with` trains slower and its test loss is no better than `without`'s."""
    w, wo = e["with"], e["without"]
    out = _loss_lines(state, [w, wo])
    if not _ready(state, [w, wo], e.get("ready", 0.9)):
        return out, (None, "too early to compare")
    vw, vwo = _v(state, w), _v(state, wo)
    ok = _loss(vw) > _loss(vwo) and _test_loss(vw) > _test_loss(vwo) - e.get("margin", 0.02)
    text = f"train loss {wo} {_fmt(_loss(vwo))} vs {w} {_fmt(_loss(vw))}; test loss {_fmt(_test_loss(vwo))} vs {_fmt(_test_loss(vw))}"
    return out, (ok, (e.get("finding", "no gain from {with}").format(**{"with": w}) + f" — reproduced ({text})") if ok else f"not reproduced: {text}")


@kind("mc-interval")
def mc_interval(state: RunState, e: dict[str, Any]) -> Judgement:
    """Sampling with dropout on gives an interval of real width that contains the true line y = x."""
    name = e["variant"]
    v = _v(state, name)
    test = state.samples.get("test")
    if v is None or v.predictions is None or v.predictions.get("lower") is None or test is None:
        return {}, (None, "waiting for predictions with dropout on")
    xs, lower, upper = v.predictions["x"], v.predictions["lower"], v.predictions["upper"]
    truth_inside = sum(lo <= x <= hi for x, lo, hi in zip(xs, lower, upper)) / len(xs)
    points_inside = sum(_interp(x, xs, lower) <= y <= _interp(x, xs, upper) for x, y in zip(*test)) / max(len(test[0]), 1)
    width = sum(u - l for l, u in zip(lower, upper)) / len(xs)
    ok = truth_inside >= e.get("min_coverage", 0.8) and width > e.get("min_width", 0.05)
    text = (f"{name}: the 90% MC-dropout interval (mean width {width:.2f}) contains the true line y = x "
            f"on {truth_inside:.0%} of [-1, 1] and {points_inside:.0%} of the noisy test points")
    ready = _ready(state, [name], 0.99)
    verdict = ok if ready else None
    return {name: (verdict, text)}, (verdict, text + (" — uncertainty estimate reproduced" if ok else " — not reproduced"))


@kind("weight-norms")
def weight_norms(state: RunState, e: dict[str, Any]) -> Judgement:
    """Every `regularized` variant ends with smaller weights than `baseline`."""
    def norm(v: VariantState | None) -> float:
        if v is None or not v.layer_stats:
            return math.inf
        return math.sqrt(sum((layer.get("weight_norm") or 0.0) ** 2 for layer in v.layer_stats))

    base = e["baseline"]
    regs = _names(e["regularized"])
    out = {}
    for name in [base, *regs]:
        v = _v(state, name)
        if v is None:
            continue
        out[name] = (None, f"{name}: weight norm {_fmt(norm(v))}, train loss {_fmt(_loss(v))}, test loss {_fmt(_test_loss(v))}{_final_acc(v)}")
    if not _ready(state, [base, *regs]):
        return out, (None, "too early: weights shrink over training")
    ok = all(norm(_v(state, r)) < norm(_v(state, base)) for r in regs)
    text = ", ".join(f"{n} {_fmt(norm(_v(state, n)))}" for n in [base, *regs])
    return out, (ok, (e.get("finding", "regularisation shrinks the weights") + f" — reproduced (weight norms: {text})") if ok else f"not reproduced (weight norms: {text})")


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


# Kinds for the LR-schedule presets live in their own module and register themselves here.
try:
    from nntui import verdicts_lr as _verdicts_lr  # noqa: E402,F401
except ImportError:
    pass
