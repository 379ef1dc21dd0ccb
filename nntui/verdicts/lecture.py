"""Verdict kinds for the lecture presets: paralysis, lower loss, best of, bad init, generalisation, MC intervals."""

from __future__ import annotations

import math
from typing import Any

from nntui.record.state import RunState, VariantState
from nntui.verdicts.registry import (
    LN10, Judgement, accuracy_text, diverged_text, final_loss, fmt, grad_ratio, interp, kind, names_of, rank_by, ready,
    test_loss_of, variant_of,
)

@kind("paralysis")
def paralysis(state: RunState, e: dict[str, Any]) -> Judgement:
    """`stuck` stays near ln 10 with vanishing first-layer gradients; `learns` does not."""
    stuck_margin = e.get("stuck_margin", 0.15)
    out = {}
    for name in (e["stuck"], e["learns"]):
        v = variant_of(state, name)
        if v is None:
            continue
        ratio = grad_ratio(v)
        loss = final_loss(v)
        grad = f"first-layer gradients {ratio:.0f}× smaller than last" if ratio and ratio >= 1 else f"gradient ratio last/first {fmt(ratio)}"
        if name == e["stuck"]:
            ok = loss > LN10 - stuck_margin and (ratio or 0) >= e.get("min_grad_ratio", 10)
            tail = "paralysis reproduced" if ok else "not paralysed (yet)"
        else:
            acc = v.last_test_accuracy
            ok = loss < LN10 - e.get("learn_margin", 0.05) and (acc is None or acc >= e.get("min_accuracy", 0.5))
            tail = "it learns" if ok else "not learning yet"
        out[name] = (ok if ready(state, [name]) else None, f"{name}: {grad}; loss {fmt(loss)} (ln 10 = 2.30){accuracy_text(v)} — {tail}")
    names = [e["stuck"], e["learns"]]
    if not ready(state, names):
        return out, (None, "too early: the gap between the nets opens over the first epochs")
    ok = all(out.get(n, (False,))[0] for n in names)
    finding = (
        f"{e['stuck']} stays at loss {fmt(final_loss(variant_of(state, e['stuck'])))} ≈ ln 10 (a uniform guess) while {e['learns']} learns "
        f"(loss {fmt(final_loss(variant_of(state, e['learns'])))}{accuracy_text(variant_of(state, e['learns']))}) — network paralysis reproduced"
        if ok else f"paralysis not reproduced: {e['stuck']} loss {fmt(final_loss(variant_of(state, e['stuck'])))}, {e['learns']} loss {fmt(final_loss(variant_of(state, e['learns'])))}"
    )
    return out, (ok, finding)


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
def lower_loss(state: RunState, e: dict[str, Any]) -> Judgement:
    """Every `improved` variant ends better than `baseline` by `margin` (train loss, test loss or accuracy)."""
    metric, label, show = METRICS[e.get("metric", "train")]
    base_name, improved = e["baseline"], names_of(e["improved"])
    margin = e.get("margin", 0.1)
    base = metric(variant_of(state, base_name))
    out = {}
    for name in [base_name, *improved]:
        v = variant_of(state, name)
        if v is None:
            continue
        if v.status == "diverged":
            out[name] = (name == base_name if ready(state, [name]) else None, diverged_text(v))
            continue
        m = metric(v)
        detail = f"{name}: train loss {fmt(final_loss(v))}{accuracy_text(v)}"
        if name == base_name:
            out[name] = (None, f"{detail} (the baseline)")
        else:
            ok = m < base - margin and final_loss(v) < e.get("max_loss", math.inf)
            out[name] = (ok if ready(state, [name, base_name]) else None, f"{detail} — {'better than' if ok else 'not better than'} {base_name}")
    if not ready(state, [base_name, *improved]):
        return out, (None, "too early to compare")
    ok = all(out.get(n, (False,))[0] for n in improved)
    best = min(improved, key=lambda n: metric(variant_of(state, n)))
    text = e.get("finding", "{best} beats {baseline}")
    summary = f"{label}: " + ", ".join(f"{n} {show(metric(variant_of(state, n)))}" for n in [base_name, *improved])
    return out, (ok, (text.format(best=best, baseline=base_name) + f" — reproduced ({summary})") if ok else f"not reproduced: {summary}")


@kind("best-of")
def best_of(state: RunState, e: dict[str, Any]) -> Judgement:
    """`winner` ends with the lowest loss of all variants (and, with `worst`, that one the highest)."""
    metric, label, show = METRICS[e.get("metric", "train")]
    names = list(state.variants)
    ranked = rank_by(state, names, metric)
    out = {}
    for i, name in enumerate(ranked):
        v = state.variants[name]
        text = diverged_text(v) if v.status == "diverged" else f"{name}: train loss {fmt(final_loss(v))}{accuracy_text(v)}, rank {i + 1} of {len(ranked)} by {label}"
        out[name] = (None, text)
    if not ready(state, names):
        return out, (None, "too early to rank")
    ok = ("winner" not in e or ranked[0] == e["winner"]) and ("worst" not in e or ranked[-1] == e["worst"])
    summary = f"{label}, best first: " + ", ".join(f"{n} {show(metric(variant_of(state, n)))}" for n in ranked)
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
        out[name] = (None, f"{name}: first loss {first_loss:.2f} ({first_loss / LN10:.1f}× ln 10), {fmt(100 * sat if sat is not None else None, 2)}% of tanh units saturated at step 1; final loss {fmt(final_loss(v))}")
    bad, good = e["bad"], names_of(e["good"])
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
        v = variant_of(state, name)
        if v is not None:
            gap = f", gap {fmt(test_loss_of(v) - final_loss(v))}" if with_gap else ""
            out[name] = (None, f"{name}: train loss {fmt(final_loss(v))}, test loss {fmt(test_loss_of(v))}{gap}{accuracy_text(v)}")
    return out


@kind("generalisation")
def generalisation(state: RunState, e: dict[str, Any]) -> Judgement:
    """`with` ends with a lower test loss than `without` (and a smaller train-test gap)."""
    w, wo = e["with"], e["without"]
    out = _loss_lines(state, [w, wo], with_gap=True)
    if not ready(state, [w, wo], e.get("ready", 0.5)):
        return out, (None, "too early: overfitting shows up later in training")
    ok = test_loss_of(variant_of(state, wo)) > test_loss_of(variant_of(state, w))
    text = f"test loss without: {fmt(test_loss_of(variant_of(state, wo)))}, with: {fmt(test_loss_of(variant_of(state, w)))}"
    return out, (ok, (e.get("finding", "the net without regularisation overfits") + f" — reproduced ({text})") if ok else f"not reproduced: {text}")


@kind("no-gain")
def no_gain(state: RunState, e: dict[str, Any]) -> Judgement:
    """The lecture's dropout-on-MNIST result: `with` trains slower and its test loss is no better than `without`'s."""
    w, wo = e["with"], e["without"]
    out = _loss_lines(state, [w, wo])
    if not ready(state, [w, wo], e.get("ready", 0.9)):
        return out, (None, "too early to compare")
    vw, vwo = variant_of(state, w), variant_of(state, wo)
    ok = final_loss(vw) > final_loss(vwo) and test_loss_of(vw) > test_loss_of(vwo) - e.get("margin", 0.02)
    text = f"train loss {wo} {fmt(final_loss(vwo))} vs {w} {fmt(final_loss(vw))}; test loss {fmt(test_loss_of(vwo))} vs {fmt(test_loss_of(vw))}"
    return out, (ok, (e.get("finding", "no gain from {with}").format(**{"with": w}) + f" — reproduced ({text})") if ok else f"not reproduced: {text}")


@kind("mc-interval")
def mc_interval(state: RunState, e: dict[str, Any]) -> Judgement:
    """Sampling with dropout on gives an interval of real width that contains the true line y = x."""
    name = e["variant"]
    v = variant_of(state, name)
    test = state.samples.get("test")
    if v is None or v.predictions is None or v.predictions.get("lower") is None or test is None:
        return {}, (None, "waiting for predictions with dropout on")
    xs, lower, upper = v.predictions["x"], v.predictions["lower"], v.predictions["upper"]
    truth_inside = sum(lo <= x <= hi for x, lo, hi in zip(xs, lower, upper)) / len(xs)
    points_inside = sum(interp(x, xs, lower) <= y <= interp(x, xs, upper) for x, y in zip(*test)) / max(len(test[0]), 1)
    width = sum(u - l for l, u in zip(lower, upper)) / len(xs)
    ok = truth_inside >= e.get("min_coverage", 0.8) and width > e.get("min_width", 0.05)
    text = (f"{name}: the 90% MC-dropout interval (mean width {width:.2f}) contains the true line y = x "
            f"on {truth_inside:.0%} of [-1, 1] and {points_inside:.0%} of the noisy test points")
    done = ready(state, [name], 0.99)
    verdict = ok if done else None
    return {name: (verdict, text)}, (verdict, text + (" — uncertainty estimate reproduced" if ok else " — not reproduced"))


@kind("weight-norms")
def weight_norms(state: RunState, e: dict[str, Any]) -> Judgement:
    """Every `regularized` variant ends with smaller weights than `baseline`."""
    def norm(v: VariantState | None) -> float:
        if v is None or not v.layer_stats:
            return math.inf
        return math.sqrt(sum((layer.get("weight_norm") or 0.0) ** 2 for layer in v.layer_stats))

    base = e["baseline"]
    regs = names_of(e["regularized"])
    out = {}
    for name in [base, *regs]:
        v = variant_of(state, name)
        if v is None:
            continue
        out[name] = (None, f"{name}: weight norm {fmt(norm(v))}, train loss {fmt(final_loss(v))}, test loss {fmt(test_loss_of(v))}{accuracy_text(v)}")
    if not ready(state, [base, *regs]):
        return out, (None, "too early: weights shrink over training")
    ok = all(norm(variant_of(state, r)) < norm(variant_of(state, base)) for r in regs)
    text = ", ".join(f"{n} {fmt(norm(variant_of(state, n)))}" for n in [base, *regs])
    return out, (ok, (e.get("finding", "regularisation shrinks the weights") + f" — reproduced (weight norms: {text})") if ok else f"not reproduced (weight norms: {text})")
