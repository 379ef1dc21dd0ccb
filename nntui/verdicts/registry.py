"""The verdict registry: kinds register here, `judge` runs the preset's kind; helpers the kinds share.

A preset's `expect` table (a typed model of nntui/expect.py) names a kind and its parameters. Each kind
returns per-variant `Line`s and a `Finding`; `judge` turns them into texts and true / false / None
(inconclusive: too early, cut short, or a difference inside the noise margin).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from nntui.expect import ExpectBase, named_variants, names_of
from nntui.record.state import RunState, VariantState

LN10 = math.log(10)
Judgement = tuple[dict[str, tuple[bool | None, str]], tuple[bool | None, str]]


@dataclass
class Line:
    """One variant's line: the numbers, and the words for a positive / negative judgement."""
    ok: bool | None
    detail: str
    yes: str = ""
    no: str = ""


@dataclass
class Finding:
    """The overall finding: `claim` (the lecture's sentence), `numbers` (the evidence); `ok` None with `why`: inconclusive."""
    ok: bool | None
    claim: str = ""
    numbers: str = ""
    why: str = ""


Kind = Callable[[RunState, ExpectBase], tuple[dict[str, Line], Finding]]
KINDS: dict[str, Kind] = {}


def kind(name: str):
    def register(fn):
        KINDS[name] = fn
        return fn

    return register


def needed_variants(state: RunState, expect: ExpectBase, preset_variants: list[str]) -> list[str]:
    """The variants the finding cannot be shown without."""
    if expect.kind == "best-of":
        return list(preset_variants or state.variants)
    if expect.kind == "lr-schedule":  # each scheduled variant is judged on its own; the baseline only when compared
        names = [n for n in names_of(expect.variant) if n in state.variants] or names_of(expect.variant)
        return names + ([expect.baseline] if expect.better and expect.baseline else [])
    return list(dict.fromkeys(n for names in named_variants(expect).values() for n in names))


def shortfalls(state: RunState, expect: ExpectBase, budgets: dict[str, int | None], final: bool) -> dict[str, str]:
    """Why each needed variant could not show the finding: left out, interrupted, or run far below the preset's budget."""
    out = {}
    for name in needed_variants(state, expect, list(budgets)):
        v = state.variants.get(name)
        if v is None:
            out[name] = "was left out of this run"
            continue
        if v.status == "diverged":
            continue  # divergence is a result, not a lack of evidence
        if v.status in ("interrupted", "failed"):
            out[name] = f"was {'interrupted' if v.status == 'interrupted' else 'stopped by an error'} at step {v.step:,}"
            continue
        budget = budgets.get(name)
        steps = v.step if final else v.total_steps
        if budget and steps < expect.min_share * budget:
            out[name] = f"{'ran' if final else 'runs'} {steps:,} of the {budget:,} steps the preset budgets (a verdict needs {expect.min_share:.0%})"
    return out


def _grouped(reasons: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, why in reasons.items():
        out.setdefault(why, []).append(name)
    return out


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def judge(state: RunState, expect: ExpectBase | None, budgets: dict[str, int | None] | None = None) -> Judgement:
    """Per-variant lines and the finding. `budgets`: each preset variant's own step budget (before --max-steps/--epochs).

    Mid-run every verdict is provisional ("so far", never a final ✗); the final one is reproduced (True),
    not reproduced (False) or inconclusive (None) when the run could not show the finding.
    """
    if expect is None or expect.kind not in KINDS:
        return {}, (None, "")
    with state.lock:
        lines, finding = KINDS[expect.kind](state, expect)
        final = not any(v.status in ("running", "pending") for v in state.variants.values())
        short = shortfalls(state, expect, budgets or {}, final)
    verdicts = {}
    for name, line in lines.items():
        words = line.yes if line.ok else line.no
        if name in short:
            verdicts[name] = (None, f"{line.detail} — inconclusive: {short[name]}")
        elif line.ok is None or not words:
            verdicts[name] = (None if line.ok is None or short else line.ok, line.detail)
        elif not final:
            verdicts[name] = (None if line.ok is False else line.ok, f"{line.detail} — so far {words}")
        else:
            verdicts[name] = (None if short else line.ok, f"{line.detail} — {words}")
    numbers = f" ({finding.numbers})" if finding.numbers else ""
    if short:
        text = "inconclusive: " + "; ".join(f"{_and(names)} {why}" for why, names in _grouped(short).items()) + numbers
        return verdicts, (None, text if final else f"so far, {text}")
    if finding.ok is None:
        text = (f"inconclusive: {finding.why}" if final else finding.why) + numbers
        return verdicts, (None, text)
    text = f"{finding.claim} — reproduced{numbers}" if finding.ok else "not reproduced" + (f": {finding.numbers}" if finding.numbers else "")
    if not final:
        return verdicts, (None if finding.ok is False else True, f"so far, {text}")
    return verdicts, (finding.ok, text)


# ---------------------------------------------------------------- helpers

def variant_of(state: RunState, name: str) -> VariantState | None:
    return state.variants.get(name)


def progress(v: VariantState | None) -> float:
    if v is None or not v.total_steps:
        return 0.0
    return 1.0 if v.status in ("completed", "diverged") else v.step / v.total_steps


def ready(state: RunState, names: list[str], share: float = 0.5) -> bool:
    return all(progress(variant_of(state, n)) >= share for n in names)


def final_loss(v: VariantState | None) -> float:
    if v is None or v.status == "diverged":
        return math.inf
    loss = v.final_train_loss
    return loss if loss is not None else math.nan  # no data yet: neither good nor bad


def test_loss_of(v: VariantState | None) -> float:
    if v is None or v.status == "diverged":
        return math.inf
    return v.last_test_loss if v.last_test_loss is not None else math.nan  # not evaluated yet


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or math.isnan(x):
        return "—"
    if math.isinf(x):
        return "diverged"
    return f"{x:.{digits}g}"


def grad_ratio(v: VariantState) -> float | None:
    """Median |grad| of the last layer over that of the first layer, at the latest probe."""
    if not v.layer_stats:
        return None
    first, last = v.layer_stats[0]["grad"][2], v.layer_stats[-1]["grad"][2]
    if not first or last is None:
        return None
    return last / first


def accuracy_text(v: VariantState) -> str:
    acc = v.last_test_accuracy
    return f", test accuracy {acc:.1%}" if acc is not None else ""


def diverged_text(v: VariantState) -> str:
    return f"{v.name}: diverged ({v.finish_reason or 'non-finite loss'})"


def rank_by(state: RunState, names: list[str], metric: Callable[[VariantState | None], float]) -> list[str]:
    def key(name: str) -> float:
        value = metric(variant_of(state, name))
        return math.inf if math.isnan(value) else value

    return sorted(names, key=key)


def interp(x: float, xs: list[float], ys: list[float]) -> float:
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]
