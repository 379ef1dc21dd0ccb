"""Exact verdict texts at the boundaries (mutation killers for nntui/verdicts)."""

from __future__ import annotations

import pytest

from nntui.verdicts import judge
from nntui.verdicts.lecture import gradient_words
from tests.test_verdicts import expect_of, state_of


@pytest.mark.parametrize(("ratio", "text"), [
    (2.0, "first-layer gradients 2.0× smaller than the last layer's"),
    (9.96, "first-layer gradients 10.0× smaller than the last layer's"),
    (10.0, "first-layer gradients 10× smaller than the last layer's"),
    (0.5, "first-layer gradients 2.0× larger than the last layer's"),
    (1.99, "first- and last-layer gradients of similar size (last/first 1.99)"),
    (0.51, "first- and last-layer gradients of similar size (last/first 0.51)"),
    (0.0, "first- and last-layer gradients of similar size (last/first 0.00)"),
])
def test_gradient_words_at_their_boundaries(ratio, text):
    assert gradient_words(ratio) == text


def test_generalisation_lines_cite_train_test_and_gap():
    e = expect_of(**{"kind": "generalisation", "with": "w", "without": "wo"})
    verdicts, (ok, text) = judge(state_of({"w": {"loss": 0.1, "test": 0.125}, "wo": {"loss": 0.03, "test": 0.5, "acc": 0.25}}), e)
    assert verdicts["w"] == (None, "w: train loss 0.1, test loss 0.125, gap 0.025")
    assert verdicts["wo"] == (None, "wo: train loss 0.03, test loss 0.5, gap 0.47, test accuracy 25.0%")
    assert (ok, text) == (True, "the net without regularisation overfits — reproduced (test loss without: 0.5, with: 0.125)")


def test_diverged_lines_and_three_names_cut_short():
    e = expect_of(kind="lower-loss", baseline="a", improved=["b", "c"], margin=0.1)
    state = state_of({"a": {"loss": 2.0, "steps": 5}, "b": {"loss": 1.0, "steps": 5}, "c": {"loss": 1.0, "steps": 5}})
    verdicts, (ok, text) = judge(state, e, {"a": 10, "b": 10, "c": 10})
    assert ok is None and text.startswith("inconclusive: a, b and c ran 5 of the 10 steps the preset budgets (a verdict needs 80%)")
    state = state_of({"a": {"loss": 2.0}, "b": {"loss": 1.0, "status": "diverged"}, "c": {"loss": 1.0}})
    verdicts, _ = judge(state, e)
    assert verdicts["b"] == (False, "b: diverged (non-finite loss) — worse than a")


def test_exact_words_without_a_gradient_probe_and_without_a_gap():
    assert gradient_words(None) == "no gradient probe yet"
    e = expect_of(**{"kind": "no-gain", "with": "w", "without": "wo"})
    verdicts, _ = judge(state_of({"w": {"loss": 0.5, "test": 0.4}, "wo": {"loss": 0.3, "test": 0.41}}), e)
    assert verdicts == {"w": (None, "w: train loss 0.5, test loss 0.4"), "wo": (None, "wo: train loss 0.3, test loss 0.41")}


def test_the_gradient_ratio_is_last_layer_over_first_layer_of_three():
    e = expect_of(kind="paralysis", stuck="3", learns="2")
    spec = {"3": {"loss": 2.3, "acc": 0.1, "grads": [1e-5, 1e-4, 1e-3]}, "2": {"loss": 0.5, "acc": 0.9, "grads": [1e-3, 1e-3, 1e-3]}}
    verdicts, _ = judge(state_of(spec), e)
    assert verdicts["3"][1].startswith("3: first-layer gradients 100× smaller than the last layer's;")
    # a zero first-layer gradient or a missing last one gives no ratio (never a division by zero)
    for grads in ([0.0, 1e-3], [1e-3, None]):
        verdicts, _ = judge(state_of({**spec, "3": {**spec["3"], "grads": grads}}), e)
        assert verdicts["3"] == (False, "3: no gradient probe yet; loss 2.3 (ln 10 = 2.30), test accuracy 10.0% — not paralysed")


def test_one_left_out_variant_is_named_alone():
    ok, text = judge(state_of({"a": {"loss": 0.1}}), expect_of(kind="best-of", winner="a"), {"a": 100, "b": 100})[1]
    assert ok is None and text == "inconclusive: b was left out of this run (train loss, best first: a 0.1)"


def test_a_left_out_or_diverged_baseline_counts_as_the_worst_test_loss():
    e = expect_of(kind="lower-loss", baseline="base", improved="new", metric="test", margin=0.1)
    ok, text = judge(state_of({"new": {"test": 0.5}}), e, {"base": 100, "new": 100})[1]
    assert ok is None and text.startswith("inconclusive: base was left out of this run")
    # diverged after a good evaluation: its last test loss does not count
    verdicts, (ok, text) = judge(state_of({"base": {"test": 0.1, "status": "diverged"}, "new": {"test": 0.5}}), e)
    assert ok is True and verdicts["new"] == (True, "new: train loss 1 — better than base") and "base diverged, new 0.5" in text


def test_best_of_ranks_by_the_metric_not_by_name_or_order_and_unmeasured_last():
    e = expect_of(kind="best-of", winner="a", worst="c", metric="test")
    state = state_of({"n": {"loss": 1.0}, "c": {"test": 2.0}, "a": {"test": 0.5}, "b": {"test": 1.0}})
    verdicts, (ok, text) = judge(state, e)
    assert text.endswith("(test loss, best first: a 0.5, b 1, c 2, n —)")
    assert [verdicts[n][1].rsplit(", ", 1)[1] for n in "abcn"] == [f"rank {i} of 4 by test loss" for i in (1, 2, 3, 4)]
    state = state_of({"c": {"test": 2.0}, "a": {"test": 0.5}, "b": {"test": 1.0}})
    assert judge(state, e)[1] == (True, "a wins — reproduced (test loss, best first: a 0.5, b 1, c 2)")


def test_a_gap_of_exactly_the_margin_is_a_tie():
    e = expect_of(kind="best-of", winner="a", worst="c", metric="test", margin=0.25)
    ok, text = judge(state_of({"a": {"test": 0.5}, "b": {"test": 1.0}, "c": {"test": 1.25}}), e)[1]
    assert ok is None and "a 0.5, b 1 ≈ c 1.25 (≈: within ±0.25, the run-to-run noise)" in text


def test_a_registered_kind_is_the_one_judge_runs():
    from typing import Literal

    from nntui.expect import ExpectBase
    from nntui.verdicts.registry import KINDS, Finding, Line, kind

    class Echo(ExpectBase):
        kind: Literal["echo-test"]

    @kind("echo-test")
    def echo(state, e):
        return {"a": Line(True, "a: here", "yes", "no")}, Finding(True, "echoed", "1 variant")

    try:
        assert judge(state_of({"a": {"loss": 1.0}}), Echo(kind="echo-test")) == ({"a": (True, "a: here — yes")}, (True, "echoed — reproduced (1 variant)"))
    finally:
        KINDS.pop("echo-test", None)
