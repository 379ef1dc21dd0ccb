"""Verdict logic on hand-built run states (no training): the three outcomes, margins, words vs numbers, budgets."""

from __future__ import annotations

import math
import re

import pytest

from nntui.errors import NntuiError
from nntui.expect import EXPECT_MODELS
from nntui.presets import resolve_preset
from nntui.record import events as ev
from nntui.record.state import RunState, build_summary
from nntui.runner import wording
from nntui.verdicts import judge
from nntui.verdicts.lecture import compare, gradient_words

LN10 = math.log(10)


def expect_of(**table):
    return EXPECT_MODELS[table["kind"]].model_validate(table)


def layer(grad_median: float, weight_norm: float = 1.0, saturation: float = 0.0) -> dict:
    return {"name": "fc", "grad": [0.0, 0.0, grad_median, 0.0, 0.0], "weight_norm": weight_norm, "saturation": saturation}


def state_of(variants: dict[str, dict], total: int = 100) -> RunState:
    """One event stream per variant: `loss` for every step up to `steps`, test loss/accuracy, a probe, a finish."""
    state = RunState()
    infos = [{"name": n, "description": "", "layers": [], "steps_per_epoch": 10, "total_steps": spec.get("total", total), "epochs": 10}
             for n, spec in variants.items()]
    state.apply(ev.RunStarted("p", "", "", "d", "cpu", "classification", "", infos, 0.0))
    for name, spec in variants.items():
        steps = spec.get("steps", spec.get("total", total))
        state.apply(ev.Steps(name, 1, [spec.get("first", spec.get("loss", 1.0))] + [spec.get("loss", 1.0)] * (steps - 1), 0.1, steps / 10, 1.0))
        if "test" in spec or "acc" in spec:
            state.apply(ev.Eval(name, steps, steps / 10, "test", spec.get("test", 1.0), spec.get("acc")))
        if "grads" in spec:
            state.apply(ev.LayerStats(name, steps, [layer(g, spec.get("norm", 1.0), spec.get("sat", 0.0)) for g in spec["grads"]]))
        if spec.get("status", "completed") != "running":
            state.apply(ev.VariantFinished(name, spec.get("status", "completed"), steps, steps / 10, ""))
    return state


# ---------------------------------------------------------------- the three outcomes, margins both ways

@pytest.mark.parametrize(("difference", "expected"), [(0.3, True), (0.1, None), (0.0, None), (-0.1, None), (-0.3, False), (math.nan, None)])
def test_compare_is_three_way_around_the_margin(difference, expected):
    assert compare(difference, 0.2) is expected


def test_lower_loss_reproduced_inside_noise_and_reversed():
    e = expect_of(kind="lower-loss", baseline="base", improved="new", metric="test", margin=0.1)
    assert judge(state_of({"base": {"test": 1.0}, "new": {"test": 0.5}}), e)[1][0] is True
    ok, text = judge(state_of({"base": {"test": 1.0}, "new": {"test": 0.95}}), e)[1]
    assert ok is None and text.startswith("inconclusive") and "noise" in text
    ok, text = judge(state_of({"base": {"test": 0.5}, "new": {"test": 1.0}}), e)[1]
    assert ok is False and text.startswith("not reproduced") and "base 0.5" in text and "new 1" in text


def test_lower_loss_max_loss_and_a_diverged_baseline():
    e = expect_of(kind="lower-loss", baseline="base", improved="new", margin=0.1, max_loss=1.0)
    assert judge(state_of({"base": {"status": "diverged", "loss": 5.0}, "new": {"loss": 0.5}}), e)[1][0] is True
    assert judge(state_of({"base": {"loss": 9.0}, "new": {"loss": 2.0}}), e)[1][0] is False  # better, but not below max_loss
    assert judge(state_of({"base": {"loss": 1.0}, "new": {"status": "diverged", "loss": 5.0}}), e)[1][0] is False


def test_best_of_ties_within_the_margin_are_named_and_decide_nothing():
    e = expect_of(kind="best-of", winner="a", worst="c", metric="test", margin=0.1)
    clear = state_of({"a": {"test": 0.5}, "b": {"test": 1.0}, "c": {"test": 2.0}})
    ok, text = judge(clear, e, {"a": 100, "b": 100, "c": 100})[1]
    assert ok is True and "a 0.5, b 1, c 2" in text
    tied = state_of({"a": {"test": 0.5}, "b": {"test": 2.17}, "c": {"test": 2.18}})
    ok, text = judge(tied, e, {"a": 100, "b": 100, "c": 100})[1]
    assert ok is None and "b 2.17 ≈ c 2.18" in text and text.startswith("inconclusive")
    wrong = state_of({"a": {"test": 1.5}, "b": {"test": 0.5}, "c": {"test": 2.0}})
    assert judge(wrong, e, {"a": 100, "b": 100, "c": 100})[1][0] is False
    wrong_worst = state_of({"a": {"test": 0.5}, "b": {"test": 2.0}, "c": {"test": 1.0}})
    assert judge(wrong_worst, e, {"a": 100, "b": 100, "c": 100})[1][0] is False


def test_best_of_needs_every_preset_variant():
    e = expect_of(kind="best-of", winner="a")
    ok, text = judge(state_of({"a": {"loss": 0.1}}), e, {"a": 100, "b": 100})[1]
    assert ok is None and "b was left out" in text


def test_generalisation_and_weight_norms_margins():
    g = expect_of(**{"kind": "generalisation", "with": "w", "without": "wo", "margin": 0.05})
    assert judge(state_of({"w": {"test": 0.1}, "wo": {"test": 0.3}}), g)[1][0] is True
    assert judge(state_of({"w": {"test": 0.3}, "wo": {"test": 0.1}}), g)[1][0] is False
    assert judge(state_of({"w": {"test": 0.3}, "wo": {"test": 0.32}}), g)[1][0] is None
    n = expect_of(kind="weight-norms", baseline="b", regularized=["r"], margin=0.05)
    assert judge(state_of({"b": {"grads": [1e-3], "norm": 10.0}, "r": {"grads": [1e-3], "norm": 5.0}}), n)[1][0] is True
    assert judge(state_of({"b": {"grads": [1e-3], "norm": 5.0}, "r": {"grads": [1e-3], "norm": 10.0}}), n)[1][0] is False
    assert judge(state_of({"b": {"grads": [1e-3], "norm": 10.0}, "r": {"grads": [1e-3], "norm": 9.8}}), n)[1][0] is None


def test_no_gain_and_bad_init():
    e = expect_of(**{"kind": "no-gain", "with": "w", "without": "wo", "margin": 0.02})
    assert judge(state_of({"w": {"loss": 0.5, "test": 0.40}, "wo": {"loss": 0.3, "test": 0.41}}), e)[1][0] is True
    assert judge(state_of({"w": {"loss": 0.2, "test": 0.40}, "wo": {"loss": 0.3, "test": 0.41}}), e)[1][0] is False
    assert judge(state_of({"w": {"loss": 0.5, "test": 0.30}, "wo": {"loss": 0.3, "test": 0.41}}), e)[1][0] is False
    b = expect_of(kind="bad-init", bad="bad", good="good")
    ok, text = judge(state_of({"bad": {"first": 20.0, "grads": [1.0], "sat": 0.8}, "good": {"first": 2.35, "grads": [1.0]}}), b)[1]
    assert ok is True and "first loss 20.0" in text and "80% saturated" in text
    assert judge(state_of({"bad": {"first": 20.0, "grads": [1.0], "sat": 0.2}, "good": {"first": 2.35, "grads": [1.0]}}), b)[1][0] is False
    assert judge(state_of({"bad": {"first": 5.0, "grads": [1.0], "sat": 0.8}, "good": {"first": 2.35, "grads": [1.0]}}), b)[1][0] is False
    assert judge(state_of({"bad": {"first": 20.0, "grads": [1.0], "sat": 0.8}, "good": {"first": 3.0, "grads": [1.0]}}), b)[1][0] is False


# ---------------------------------------------------------------- paralysis: words agree with numbers

PARALYSIS = {"kind": "paralysis", "stuck": "3", "learns": "2"}


def test_paralysis_reproduced_only_when_the_stuck_net_also_guesses():
    e = expect_of(**PARALYSIS)
    good = {"3": {"loss": LN10, "acc": 0.11, "grads": [1e-5, 1e-3]}, "2": {"loss": 0.5, "acc": 0.9, "grads": [1e-3, 1e-3]}}
    verdicts, (ok, text) = judge(state_of(good), e)
    assert ok is True and "3 loss 2.3, test accuracy 11.0%" in text
    assert verdicts["3"] == (True, "3: first-layer gradients 100× smaller than the last layer's; loss 2.3 (ln 10 = 2.30), test accuracy 11.0% — paralysed")
    guessing_right = {**good, "3": {**good["3"], "acc": 0.568}}  # loss ≈ ln 10 but 56.8 % right: not paralysed
    verdicts, (ok, text) = judge(state_of(guessing_right), e)
    assert ok is False and verdicts["3"][1].endswith("— not paralysed")
    no_vanishing = {**good, "3": {**good["3"], "grads": [1e-3, 2e-3]}}
    assert judge(state_of(no_vanishing), e)[1][0] is False
    both_learn = {**good, "3": {"loss": 0.6, "acc": 0.85, "grads": [1e-5, 1e-3]}}
    assert judge(state_of(both_learn), e)[1][0] is False
    neither = {**good, "2": {"loss": LN10, "acc": 0.1, "grads": [1e-3, 1e-3]}}
    verdicts, (ok, _) = judge(state_of(neither), e)
    assert ok is False and verdicts["2"][1].endswith("— it does not learn")


@pytest.mark.parametrize(("ratio", "words"), [
    (1000.0, "first-layer gradients 1,000× smaller"), (3.0, "first-layer gradients 3.0× smaller"),
    (1.2, "of similar size (last/first 1.20)"), (0.9, "of similar size (last/first 0.90)"), (0.25, "first-layer gradients 4.0× larger"),
    (None, "no gradient probe yet"),
])
def test_gradient_words_match_the_ratio(ratio, words):
    assert words in gradient_words(ratio)
    assert "1× smaller" not in gradient_words(ratio)


# ---------------------------------------------------------------- mid-run, final, cut short

def test_mid_run_is_provisional_and_the_final_verdict_drops_so_far():
    e = expect_of(**PARALYSIS)
    spec = {"3": {"loss": 0.5, "acc": 0.9, "grads": [1e-3, 1e-3]}, "2": {"loss": 0.5, "acc": 0.9, "grads": [1e-3, 1e-3]}}
    running = state_of({n: {**s, "status": "running", "steps": 80} for n, s in spec.items()})
    verdicts, (ok, text) = judge(running, e)
    assert ok is None and text.startswith("so far, not reproduced")
    assert verdicts["3"][0] is None and "so far not paralysed" in verdicts["3"][1]
    verdicts, (ok, text) = judge(state_of(spec), e)
    assert ok is False and "so far" not in text and all("so far" not in t and "…" not in t for _, t in verdicts.values())


@pytest.mark.parametrize(("spec", "why"), [
    ({"steps": 10}, "ran 10 of the 100 steps the preset budgets"),
    ({"status": "interrupted", "steps": 90}, "was interrupted at step 90"),
])
def test_a_run_cut_short_is_inconclusive_whatever_the_numbers(spec, why):
    e = expect_of(kind="lower-loss", baseline="base", improved="new", margin=0.1)
    state = state_of({"base": {"loss": 2.0, **spec}, "new": {"loss": 0.1, **spec}})
    verdicts, (ok, text) = judge(state, e, {"base": 100, "new": 100})
    assert ok is None and text.startswith("inconclusive: base and new " + why)
    assert verdicts["new"][0] is None and "better than" not in verdicts["new"][1] and why in verdicts["new"][1]


def test_enough_of_the_budget_is_conclusive():
    e = expect_of(kind="lower-loss", baseline="base", improved="new", margin=0.1, min_share=0.8)
    state = state_of({"base": {"loss": 2.0, "steps": 80}, "new": {"loss": 0.1, "steps": 80}})
    assert judge(state, e, {"base": 100, "new": 100})[1][0] is True
    state = state_of({"base": {"loss": 2.0, "steps": 79}, "new": {"loss": 0.1, "steps": 79}})
    assert judge(state, e, {"base": 100, "new": 100})[1][0] is None


def test_summary_carries_null_for_inconclusive():
    state = state_of({"base": {"loss": 2.0, "steps": 10}, "new": {"loss": 0.1, "steps": 10}})
    e = expect_of(kind="lower-loss", baseline="base", improved="new")
    verdicts, (ok, text) = judge(state, e, {"base": 100, "new": 100})
    for name, (r, t) in verdicts.items():
        state.apply(ev.Verdict(name, 10, r, t))
    state.apply(ev.Verdict(None, 10, ok, text))
    summary = build_summary(state)
    assert summary["reproduced"] is None and summary["finding"] == text
    assert [v["reproduced"] for v in summary["variants"]] == [None, None]


# ---------------------------------------------------------------- schema

def test_expect_tables_are_typed_and_checked():
    base = {"name": "p", "variants": [{"name": "a"}, {"name": "b"}]}
    preset = resolve_preset({**base, "expect": {"kind": "generalisation", "with": "a", "without": "b"}}, "p").preset
    assert preset.expect.with_ == "a" and preset.expect.margin == 0.0 and preset.expect.min_share == 0.8
    for bad, words in [
        ({"kind": "nope"}, "kind 'nope' is unknown"),
        ({"kind": "best-of", "margin": "wide"}, "margin"),
        ({"kind": "best-of", "margin": -1}, "margin"),
        ({"kind": "best-of", "winner": "c"}, "expect.winner names variant 'c'"),
        ({"kind": "lower-loss", "baseline": "a"}, "improved"),
        ({"kind": "best-of", "typo": 1}, "unknown key"),
        ({"kind": "best-of", "min_share": 0}, "min_share"),
    ]:
        with pytest.raises(NntuiError, match=re.escape(words)):
            resolve_preset({**base, "expect": bad}, "p")


def test_wording_blanks_numbers_only():
    assert wording("a 2.17 vs b 1e-4 (56.8%, 12,480 steps)") == "a # vs b # (#%, # steps)"
    assert wording("so far, not reproduced") != wording("so far, a wins — reproduced")
