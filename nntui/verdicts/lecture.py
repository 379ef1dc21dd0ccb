"""Verdict kinds for the lecture presets: paralysis, lower loss, best of, bad init, generalisation, MC intervals."""

from __future__ import annotations

import math

from nntui.expect import BadInit, BestOf, Generalisation, LowerLoss, McInterval, NoGain, Paralysis, WeightNorms, names_of
from nntui.record.state import RunState, VariantState
from nntui.verdicts.registry import (
    LN10, Finding, Line, accuracy_text, diverged_text, final_loss, fmt, grad_ratio, interp, kind, rank_by, ready,
    test_loss_of, variant_of,
)


def compare(difference: float, margin: float) -> bool | None:
    """A difference (positive: as the lecture says) beyond the noise margin either way; None inside it."""
    if math.isnan(difference):
        return None
    if difference > margin:
        return True
    return False if difference < -margin else None


def gradient_words(ratio: float | None) -> str:
    """The last layer's median |grad| over the first layer's, in words that match the number."""
    if ratio is None:
        return "no gradient probe yet"
    if ratio >= 2:
        return f"first-layer gradients {ratio:,.0f}× smaller than the last layer's" if ratio >= 10 else f"first-layer gradients {ratio:.1f}× smaller than the last layer's"
    if 0 < ratio <= 0.5:
        return f"first-layer gradients {1 / ratio:.1f}× larger than the last layer's"
    return f"first- and last-layer gradients of similar size (last/first {ratio:.2f})"


@kind("paralysis")
def paralysis(state: RunState, e: Paralysis) -> tuple[dict[str, Line], Finding]:
    """`stuck` stays near ln 10, guessing, with vanishing first-layer gradients; `learns` does not."""
    out = {}
    for name in (e.stuck, e.learns):
        v = variant_of(state, name)
        if v is None:
            continue
        ratio, loss, acc = grad_ratio(v), final_loss(v), v.last_test_accuracy
        if name == e.stuck:
            ok = loss > LN10 - e.stuck_margin and (ratio or 0) >= e.min_grad_ratio and (acc is None or acc <= e.max_stuck_accuracy)
            yes, no = "paralysed", "not paralysed"
        else:
            ok = loss < LN10 - e.learn_margin and (acc is None or acc >= e.min_accuracy)
            yes, no = "it learns", "it does not learn"
        detail = f"{name}: {gradient_words(ratio)}; loss {fmt(loss)} (ln 10 = 2.30){accuracy_text(v)}"
        out[name] = Line(ok if ready(state, [name]) else None, detail, yes, no)
    if not ready(state, [e.stuck, e.learns]):
        return out, Finding(None, why="too early: the gap between the nets opens over the first epochs")
    stuck, learns = variant_of(state, e.stuck), variant_of(state, e.learns)
    numbers = "; ".join(
        f"{v.name} loss {fmt(final_loss(v))}{accuracy_text(v)}, last/first gradient {fmt(grad_ratio(v))}" for v in (stuck, learns) if v is not None
    )
    ok = all(out[n].ok for n in (e.stuck, e.learns) if n in out) and len(out) == 2
    claim = f"{e.stuck} stays at loss ≈ ln 10 (near-uniform outputs) while {e.learns} learns — network paralysis"
    return out, Finding(ok, e.finding or claim, numbers)


def _accuracy_as_loss(v: VariantState | None) -> float:
    """1 - test accuracy, so that lower is better like the losses."""
    if v is None or v.status == "diverged" or v.last_test_accuracy is None:
        return math.inf
    return 1.0 - v.last_test_accuracy


METRICS = {
    "train": (final_loss, "train loss", lambda x: fmt(x)),
    "test": (test_loss_of, "test loss", lambda x: fmt(x)),
    "accuracy": (_accuracy_as_loss, "test accuracy", lambda x: f"{1 - x:.1%}" if math.isfinite(x) else "diverged"),
}


@kind("lower-loss")
def lower_loss(state: RunState, e: LowerLoss) -> tuple[dict[str, Line], Finding]:
    """Every `improved` variant ends better than `baseline` by more than `margin` (train loss, test loss or accuracy)."""
    metric, label, show = METRICS[e.metric]
    improved = names_of(e.improved)
    base = metric(variant_of(state, e.baseline))
    out = {}
    results = {}
    for name in [e.baseline, *improved]:
        v = variant_of(state, name)
        if v is None:
            continue
        if v.status == "diverged":
            results[name] = name == e.baseline
            out[name] = Line(None, diverged_text(v)) if name == e.baseline else Line(False if ready(state, [name]) else None, diverged_text(v), no=f"worse than {e.baseline}")
            continue
        detail = f"{name}: train loss {fmt(final_loss(v))}{accuracy_text(v)}"
        if name == e.baseline:
            out[name] = Line(None, f"{detail} (the baseline)")
            continue
        ok = compare(base - metric(v), e.margin)
        if ok and e.max_loss is not None and not final_loss(v) < e.max_loss:
            ok = False
        results[name] = ok
        if ok is None:
            detail += f" — {label} within ±{e.margin:g} of {e.baseline} (inside the noise margin)"
        out[name] = Line(ok if ready(state, [name, e.baseline]) else None, detail, f"better than {e.baseline}", f"not better than {e.baseline}")
    if not ready(state, [e.baseline, *improved]):
        return out, Finding(None, why="too early to compare")
    summary = f"{label}: " + ", ".join(f"{n} {show(metric(variant_of(state, n)))}" for n in [e.baseline, *improved])
    verdicts = [results.get(n) for n in improved]
    if False in verdicts:
        return out, Finding(False, numbers=summary)
    if None in verdicts:
        return out, Finding(None, numbers=summary, why=f"the difference is inside the noise margin (±{e.margin:g})")
    best = min(improved, key=lambda n: metric(variant_of(state, n)))
    return out, Finding(True, (e.finding or "{best} beats {baseline}").format(best=best, baseline=e.baseline), summary)


def _placed(state: RunState, name: str, names: list[str], metric, margin: float, first: bool) -> bool | None:
    """Whether `name` is first (or last) by more than `margin`; None: tied with a neighbour within the margin."""
    mine = metric(variant_of(state, name))
    others = [metric(variant_of(state, n)) for n in names if n != name]
    if not others:
        return None
    gap = min(others) - mine if first else mine - max(others)
    return compare(gap, margin)


def ranking_text(state: RunState, ranked: list[str], metric, show, margin: float) -> str:
    """'a 0.5, b 2.17 ≈ c 2.18': neighbours closer than the margin are marked as tied."""
    parts = [f"{ranked[0]} {show(metric(variant_of(state, ranked[0])))}"]
    for prev, name in zip(ranked, ranked[1:]):
        a, b = metric(variant_of(state, prev)), metric(variant_of(state, name))
        tied = math.isfinite(a) and math.isfinite(b) and abs(b - a) <= margin
        parts.append((" ≈ " if tied else ", ") + f"{name} {show(b)}")
    return "".join(parts)


@kind("best-of")
def best_of(state: RunState, e: BestOf) -> tuple[dict[str, Line], Finding]:
    """`winner` ends with the best metric of all variants (and `worst` the worst one), each clear by more than `margin`."""
    metric, label, show = METRICS[e.metric]
    names = list(state.variants)
    ranked = rank_by(state, names, metric)
    out = {}
    for i, name in enumerate(ranked):
        v = state.variants[name]
        text = diverged_text(v) if v.status == "diverged" else f"{name}: train loss {fmt(final_loss(v))}{accuracy_text(v)}, rank {i + 1} of {len(ranked)} by {label}"
        out[name] = Line(None, text)
    if not ready(state, names):
        return out, Finding(None, why="too early to rank")
    checks = []
    if e.winner is not None:
        checks.append(_placed(state, e.winner, names, metric, e.margin, first=True) if e.winner in state.variants else None)
    if e.worst is not None:
        checks.append(_placed(state, e.worst, names, metric, e.margin, first=False) if e.worst in state.variants else None)
    margin = f" (≈: within ±{e.margin:g}, the run-to-run noise)" if e.margin else ""
    summary = f"{label}, best first: " + ranking_text(state, ranked, metric, show, e.margin) + margin
    if False in checks:
        return out, Finding(False, numbers=summary)
    if None in checks:
        return out, Finding(None, numbers=summary, why=f"the deciding gap is inside the noise margin (±{e.margin:g})")
    default = "{winner} wins" if e.winner is not None else "{worst} comes last"  # a worst-only table has no winner to name
    claim = (e.finding or default).format(winner=e.winner or "", worst=e.worst or "")
    return out, Finding(True, claim, summary)


@kind("bad-init")
def bad_init(state: RunState, e: BadInit) -> tuple[dict[str, Line], Finding]:
    """`bad` starts far above ln C with saturated units; `good` starts near ln C."""
    out = {}
    results = {}
    for name, v in state.variants.items():
        if v.first_loss is None or not v.first_layer_stats:
            continue
        sat = v.first_layer_stats[0].get("saturation")  # the first hidden layer's units at the first step
        results[name] = (v.first_loss, sat)
        out[name] = Line(None, f"{name}: first loss {v.first_loss:.2f} ({v.first_loss / LN10:.1f}× ln 10), {fmt(100 * sat if sat is not None else None, 2)}% of tanh units saturated at step 1; final loss {fmt(final_loss(v))}")
    good = names_of(e.good)
    if e.bad not in results or any(g not in results for g in good):
        return out, Finding(None, why="waiting for the first step of every variant")
    bad_loss, bad_sat = results[e.bad]
    ok = bad_loss > e.bad_factor * LN10 and (bad_sat or 0) > e.bad_saturation
    ok = ok and all(abs(results[g][0] - LN10) < e.good_tolerance for g in good)
    numbers = f"{e.bad}: first loss {bad_loss:.1f} vs ln 10 = 2.30 and {100 * (bad_sat or 0):.0f}% saturated units; " + ", ".join(f"{g}: {results[g][0]:.2f}" for g in good)
    return out, Finding(ok, e.finding or "bad initialisation: the N(0,1) net starts far above ln 10 with saturated units", numbers)


def _loss_lines(state: RunState, names: list[str], with_gap: bool = False) -> dict[str, Line]:
    """Per-variant lines with train and test loss (and their gap), no judgement."""
    out = {}
    for name in names:
        v = variant_of(state, name)
        if v is not None:
            gap = f", gap {fmt(test_loss_of(v) - final_loss(v))}" if with_gap else ""
            out[name] = Line(None, f"{name}: train loss {fmt(final_loss(v))}, test loss {fmt(test_loss_of(v))}{gap}{accuracy_text(v)}")
    return out


@kind("generalisation")
def generalisation(state: RunState, e: Generalisation) -> tuple[dict[str, Line], Finding]:
    """`with` ends with a lower test loss than `without` by more than `margin`."""
    w, wo = e.with_, e.without
    out = _loss_lines(state, [w, wo], with_gap=True)
    if not ready(state, [w, wo], e.ready):
        return out, Finding(None, why="too early: overfitting shows up later in training")
    ok = compare(test_loss_of(variant_of(state, wo)) - test_loss_of(variant_of(state, w)), e.margin)
    numbers = f"test loss without: {fmt(test_loss_of(variant_of(state, wo)))}, with: {fmt(test_loss_of(variant_of(state, w)))}"
    return out, Finding(ok, e.finding or "the net without regularisation overfits", numbers, why=f"the test losses differ by less than the noise margin ±{e.margin:g}")


@kind("no-gain")
def no_gain(state: RunState, e: NoGain) -> tuple[dict[str, Line], Finding]:
    """The lecture's dropout-on-MNIST result: `with` trains slower and its test loss is no better than `without`'s."""
    w, wo = e.with_, e.without
    out = _loss_lines(state, [w, wo])
    if not ready(state, [w, wo], e.ready):
        return out, Finding(None, why="too early to compare")
    vw, vwo = variant_of(state, w), variant_of(state, wo)
    ok = final_loss(vw) > final_loss(vwo) and test_loss_of(vw) > test_loss_of(vwo) - e.margin
    numbers = f"train loss {wo} {fmt(final_loss(vwo))} vs {w} {fmt(final_loss(vw))}; test loss {fmt(test_loss_of(vwo))} vs {fmt(test_loss_of(vw))}"
    return out, Finding(ok, (e.finding or "no gain from {with}").format(**{"with": w}), numbers)


@kind("mc-interval")
def mc_interval(state: RunState, e: McInterval) -> tuple[dict[str, Line], Finding]:
    """Sampling with dropout on gives an interval of real width that contains the true line y = x."""
    v = variant_of(state, e.variant)
    test = state.samples.get("test")
    if v is None or v.predictions is None or v.predictions.get("lower") is None or test is None:
        return {}, Finding(None, why="waiting for predictions with dropout on")
    xs, lower, upper = v.predictions["x"], v.predictions["lower"], v.predictions["upper"]
    truth_inside = sum(lo <= x <= hi for x, lo, hi in zip(xs, lower, upper)) / len(xs)
    points_inside = sum(interp(x, xs, lower) <= y <= interp(x, xs, upper) for x, y in zip(*test)) / max(len(test[0]), 1)
    width = sum(u - lo for lo, u in zip(lower, upper)) / len(xs)
    ok = truth_inside >= e.min_coverage and width > e.min_width
    numbers = (f"the 90% MC-dropout interval of {e.variant} (mean width {width:.2f}) contains the true line y = x "
               f"on {truth_inside:.0%} of [-1, 1] and {points_inside:.0%} of the noisy test points")
    verdict = ok if ready(state, [e.variant], 0.99) else None
    line = Line(verdict, f"{e.variant}: interval width {width:.2f}, true line inside on {truth_inside:.0%}", "uncertainty estimate reproduced", "not reproduced")
    return {e.variant: line}, Finding(verdict, e.finding or "MC dropout gives an uncertainty estimate", numbers, why="too early: the interval settles at the end of training")


@kind("weight-norms")
def weight_norms(state: RunState, e: WeightNorms) -> tuple[dict[str, Line], Finding]:
    """Every `regularized` variant ends with smaller weights than `baseline`, by more than `margin` (relative)."""
    def norm(v: VariantState | None) -> float:
        if v is None or not v.layer_stats:
            return math.inf
        return math.sqrt(sum((layer.get("weight_norm") or 0.0) ** 2 for layer in v.layer_stats))

    regs = names_of(e.regularized)
    out = {}
    for name in [e.baseline, *regs]:
        v = variant_of(state, name)
        if v is not None:
            out[name] = Line(None, f"{name}: weight norm {fmt(norm(v))}, train loss {fmt(final_loss(v))}, test loss {fmt(test_loss_of(v))}{accuracy_text(v)}")
    if not ready(state, [e.baseline, *regs]):
        return out, Finding(None, why="too early: weights shrink over training")
    base = norm(variant_of(state, e.baseline))
    checks = [compare(1 - norm(variant_of(state, r)) / base, e.margin) if math.isfinite(base) and base > 0 else None for r in regs]
    numbers = "weight norms: " + ", ".join(f"{n} {fmt(norm(variant_of(state, n)))}" for n in [e.baseline, *regs])
    ok = False if False in checks else (None if None in checks else True)
    return out, Finding(ok, e.finding or "regularisation shrinks the weights", numbers, why=f"a weight norm within {e.margin:.0%} of the baseline's")
