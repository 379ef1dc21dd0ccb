"""Verdict kinds for the LR-schedule presets: did the LR follow the schedule, and what did it do to the loss?

The LR trace is the run's recorded LR (one point per block of steps: the LR of the block's first step).
"""

from __future__ import annotations

import math
from typing import Any

from nntui.expect import LrSchedule, names_of
from nntui.record.state import RunState, VariantState
from nntui.verdicts.registry import Finding, Line, fmt, final_loss, kind, progress, ready, test_loss_of, variant_of

REL = 1e-6  # tolerance when comparing recorded LRs with the expected ones


def _trace(v: VariantState) -> list[tuple[float, float]]:
    return list(zip(v.lr.xs, v.lr.ys))


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b), 1e-30)


def _epoch_of(step: float, v: VariantState) -> int:
    return int((step - 1) // max(v.steps_per_epoch, 1))


def _sched(v: VariantState) -> dict[str, Any]:
    return v.config.get("schedule", {}) if v.config else {}


def _lr0(v: VariantState) -> float:
    return float(v.config.get("optimizer", {}).get("lr", math.nan)) if v.config else math.nan


def _best_kept(v: VariantState) -> tuple[bool | None, str]:
    """Whether the kept checkpoint holds the lowest test loss seen; None when the variant keeps none."""
    if not v.config.get("keep_best"):
        return None, ""
    best = v.checkpoints.get("best")
    if not v.test_loss:
        return None, "no test evaluation yet"
    low_step, low = min(v.test_loss, key=lambda p: p[1])
    last = v.test_loss[-1][1]
    if best is None:
        return False, "keep_best is on but no best model was saved"
    ok = best.get("test_loss") is not None and math.isclose(best["test_loss"], low, rel_tol=1e-9)
    epoch = round(low_step / max(v.steps_per_epoch, 1))
    where = "the last epoch" if low_step == v.test_loss[-1][0] else f"epoch {epoch}, final test loss {fmt(last)}"
    text = f"kept model: test loss {fmt(best.get('test_loss'))} from {where}" if ok else f"kept model's test loss {fmt(best.get('test_loss'))} is not the best seen ({fmt(low)})"
    return ok, text


# ---------------------------------------------------------------- per schedule: does the trace fit?

def _check_cyclic(v: VariantState) -> tuple[bool, str]:
    s = _sched(v)
    base, top = s.get("base_lr"), s.get("max_lr")
    trace = _trace(v)
    if not isinstance(base, (int, float)) or not isinstance(top, (int, float)) or len(trace) < 3:
        return False, "no cyclic bounds or LR trace"
    lrs = [lr for _, lr in trace]
    inside = all(base * (1 - 1e-6) <= lr <= top * (1 + 1e-6) for lr in lrs)
    span = top - base
    reaches_top = max(lrs) >= base + 0.9 * span * (1 if s.get("mode", "triangular") == "triangular" else 0.5)
    reaches_base = min(lrs) <= base + 0.1 * span
    turns = sum(1 for a, b, c in zip(lrs, lrs[1:], lrs[2:]) if (b - a) * (c - b) < 0)
    ok = inside and reaches_top and reaches_base and turns >= 2
    text = f"LR cycles {s.get('mode', 'triangular')} between {fmt(min(lrs))} and {fmt(max(lrs))} (bounds {fmt(base)}–{fmt(top)}, {turns} turns)"
    if not inside:
        text += ", LR left the bounds"
    return ok, text


def _check_step(v: VariantState) -> tuple[bool, str]:
    s = _sched(v)
    lr0, gamma, size = _lr0(v), float(s.get("gamma", 0.1)), int(s.get("step_size", 1))
    trace = _trace(v)
    wrong = [(x, lr) for x, lr in trace if not _close(lr, lr0 * gamma ** (_epoch_of(x, v) // size))]
    levels = sorted({round(math.log10(lr), 6) for _, lr in trace if lr > 0}, reverse=True)
    ok = not wrong and len(levels) >= 2
    text = f"LR ×{gamma:g} every {size} epochs: {' → '.join(fmt(10 ** l, 2) for l in levels)}"
    if wrong:
        x, lr = wrong[0]
        text += f", but step {int(x)} ran at {fmt(lr)}, expected {fmt(lr0 * gamma ** (_epoch_of(x, v) // size))}"
    return ok, text


def plateau_lrs(test_losses: list[float], lr0: float, factor: float, patience: int, threshold: float = 1e-4) -> list[float]:
    """The LR for each epoch after each test loss, as ReduceLROnPlateau (mode min, relative threshold) sets it.

    A non-finite test loss leaves the LR alone: the trainer does not step the scheduler on one (engine/optim.py)."""
    best, bad, lr, out = math.inf, 0, lr0, []
    for loss in test_losses:
        if not math.isfinite(loss):
            out.append(lr)
            continue
        if loss < best * (1 - threshold):
            best, bad = loss, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = lr * factor, 0
        out.append(lr)
    return out


def _check_plateau(v: VariantState) -> tuple[bool, str]:
    s = _sched(v)
    lr0, factor, patience = _lr0(v), float(s.get("factor", 0.1)), int(s.get("patience", 1))
    losses = [loss for _, loss in v.test_loss]
    expected = [lr0, *plateau_lrs(losses, lr0, factor, patience)]  # LR of epoch e: after e test losses
    wrong = [(x, lr) for x, lr in _trace(v) if _epoch_of(x, v) < len(expected) and not _close(lr, expected[_epoch_of(x, v)])]
    drops = [e for e in range(1, len(expected)) if expected[e] < expected[e - 1] and e < v.epoch]
    ok = not wrong and bool(drops)
    where = ", ".join(f"after epoch {e} ({patience + 1} epochs without a better test loss)" for e in drops[:3]) or "never (the test loss kept improving)"
    text = f"LR lowered ×{factor:g} {where}; final LR {fmt(v.lr.last())}"
    if wrong:
        text += f", but step {int(wrong[0][0])} ran at {fmt(wrong[0][1])}"
    return ok, text


def _check_one_cycle(v: VariantState) -> tuple[bool, str]:
    s = _sched(v)
    top = s.get("max_lr")
    lrs = [lr for _, lr in _trace(v)]
    if not isinstance(top, (int, float)) or len(lrs) < 3:
        return False, "no max_lr or LR trace"
    peak = max(lrs)
    i = lrs.index(peak)
    rises = all(a <= b * (1 + 1e-9) for a, b in zip(lrs[: i + 1], lrs[1 : i + 1]))
    falls = all(a >= b * (1 - 1e-9) for a, b in zip(lrs[i:], lrs[i + 1 :]))
    ok = rises and falls and peak >= 0.8 * top and lrs[-1] < lrs[0]  # the last block starts before the final anneal
    return ok, f"LR {fmt(lrs[0])} → peak {fmt(peak)} (max_lr {fmt(top)}) → {fmt(lrs[-1])}" + ("" if rises and falls else ", not one rise then one fall")


def _check_warmup(v: VariantState) -> tuple[bool, str]:
    s = _sched(v)
    lr0 = _lr0(v)
    lrs = [lr for _, lr in _trace(v)]
    if len(lrs) < 3:
        return False, "no LR trace"
    peak = max(lrs)
    i = lrs.index(peak)
    rises = all(a <= b * (1 + 1e-9) for a, b in zip(lrs[: i + 1], lrs[1 : i + 1]))
    falls = all(a >= b * (1 - 1e-9) for a, b in zip(lrs[i:], lrs[i + 1 :]))
    ok = rises and falls and lrs[0] < lr0 / 4 and peak >= 0.9 * lr0 and lrs[-1] < peak / 2
    decay = "cosine" if s.get("name") == "warmup_cosine" else f"×{s.get('gamma', 0.1):g} steps"
    return ok, f"LR warms up {fmt(lrs[0])} → {fmt(peak)} over {s.get('warmup_epochs', 1):g} epoch(s), then {decay} decay to {fmt(lrs[-1])}"


CHECKS = {"cyclic": _check_cyclic, "step": _check_step, "plateau": _check_plateau, "one_cycle": _check_one_cycle,
          "warmup_cosine": _check_warmup, "warmup_step": _check_warmup}


def _loss_after_first_drop(v: VariantState) -> tuple[float, float] | None:
    """Mean train loss over the epoch before the first LR drop and the epoch after it."""
    trace = _trace(v)
    drop = next((x for (x0, a), (x, b) in zip(trace, trace[1:]) if b < a * (1 - 1e-6)), None)
    if drop is None:
        return None
    first = _epoch_of(drop, v) * v.steps_per_epoch  # the drop happens at an epoch boundary
    before = [y for x, y in zip(v.train_loss.xs, v.train_loss.ys) if first - v.steps_per_epoch < x <= first]
    after = [y for x, y in zip(v.train_loss.xs, v.train_loss.ys) if first < x <= first + v.steps_per_epoch]
    if not before or not after:
        return None
    return sum(before) / len(before), sum(after) / len(after)


# ---------------------------------------------------------------- kinds

@kind("lr-schedule")
def lr_schedule(state: RunState, e: LrSchedule) -> tuple[dict[str, Line], Finding]:
    """Each `variant`'s LR followed its schedule (and, with `better`, it beat the baseline's loss).

    Options: metric = "test" | "train"; better = true (the scheduled variants end lower than the baseline);
    drop_helps = true (the train loss right after the first LR drop is lower than right before it).
    """
    # variants left out of this run (--variant) are not waited for; judge() says when none is left
    names = [n for n in names_of(e.variant) if n in state.variants]
    baseline = e.baseline if e.baseline in state.variants else None
    if not names:
        return {}, Finding(None, why="none of the scheduled variants ran")
    metric, label = (test_loss_of, "test loss") if e.metric == "test" else (final_loss, "train loss")
    out: dict[str, Line] = {}
    results: dict[str, bool] = {}
    for name in names:
        v = variant_of(state, name)
        if v.status == "diverged":
            out[name] = Line(False if ready(state, [name], 0.99) else None, f"{name}: diverged ({v.finish_reason or 'non-finite loss'})", no="the schedule did not keep it stable")
            results[name] = False
            continue
        check = CHECKS.get(_sched(v).get("name", "none"))
        ok, text = check(v) if check else (False, f"schedule {_sched(v).get('name')!r} has no LR check")
        if e.drop_helps:
            pair = _loss_after_first_drop(v)
            if pair is None:
                ok, text = False, text + "; no LR drop yet"
            else:
                helped = pair[1] < pair[0]
                ok = ok and helped
                text += f"; train loss {fmt(pair[0])} in the epoch before the first drop, {fmt(pair[1])} after" + ("" if helped else " (no better)")
        kept, kept_text = _best_kept(v)
        if kept is not None:
            ok = ok and kept
            text += f"; {kept_text}"
        done = progress(v) >= 0.99
        out[name] = Line(ok if done else None, f"{name}: {text}; {label} {fmt(metric(v))}", "as scheduled", "not as scheduled")
        results[name] = ok
    if baseline is not None and (b := variant_of(state, baseline)) is not None:
        sched = _sched(b).get("name", "none")
        how = f"constant LR {fmt(_lr0(b))}" if sched == "none" else f"{sched} schedule, LR {fmt(_lr0(b))}" + (" without warmup" if sched.startswith("warmup") and not _sched(b).get("warmup_epochs") else "")
        out[baseline] = Line(None, f"{baseline}: {how}; {label} {fmt(metric(b))}")
    everyone = names + ([baseline] if baseline else [])
    if not ready(state, everyone, 0.99):
        return out, Finding(None, why="too early: the LR schedule shows over the whole run")
    ok = all(results.get(n, False) for n in names)
    comparison = ""
    if baseline is not None:
        base_m = metric(variant_of(state, baseline))
        beats = all(metric(variant_of(state, n)) < base_m for n in names)
        comparison = f"; {label} " + ", ".join(f"{n} {fmt(metric(variant_of(state, n)))}" for n in everyone)
        if e.better:
            ok = ok and beats
            comparison += "" if beats else f", {baseline} is not beaten"
    lines = "; ".join(out[n].detail.split(": ", 1)[1].split(";")[0] for n in names if n in out)
    return out, Finding(ok, e.finding or "the LR followed its schedule", lines + comparison)
