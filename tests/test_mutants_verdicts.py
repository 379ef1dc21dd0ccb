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
