"""The verdict registry: kinds register here, `judge` runs the preset's kind; helpers the kinds share.

A preset's `expect` table names a kind (a function below) and its parameters. Each kind returns
per-variant lines and one overall line; `reproduced` is None while it is too early to say.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from nntui.record.state import RunState, VariantState

LN10 = math.log(10)
Judgement = tuple[dict[str, tuple[bool | None, str]], tuple[bool | None, str]]
KINDS: dict[str, Callable[[RunState, dict[str, Any]], Judgement]] = {}


def kind(name: str):
    def register(fn):
        KINDS[name] = fn
        return fn

    return register


def names_of(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


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
    if v is None or v.status == "diverged" or v.last_test_loss is None:
        return math.inf
    return v.last_test_loss


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
    return sorted(names, key=lambda n: metric(variant_of(state, n)))


def interp(x: float, xs: list[float], ys: list[float]) -> float:
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]
