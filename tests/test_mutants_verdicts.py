"""Exact verdict texts at the boundaries (mutation killers for nntui/verdicts)."""

from __future__ import annotations

import pytest

from nntui.record.state import RunState
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
    e = expect_of(kind="best-of", winner="c", worst="a", metric="test")
    state = state_of({"n": {"loss": 1.0}, "a": {"test": 2.0}, "c": {"test": 0.5}, "b": {"test": 1.0}})
    verdicts, (ok, text) = judge(state, e)
    assert text.endswith("(test loss, best first: c 0.5, b 1, a 2, n —)")
    assert [verdicts[n][1].rsplit(", ", 1)[1] for n in "cban"] == [f"rank {i} of 4 by test loss" for i in (1, 2, 3, 4)]
    state = state_of({"a": {"test": 2.0}, "c": {"test": 0.5}, "b": {"test": 1.0}})
    assert judge(state, e)[1] == (True, "c wins — reproduced (test loss, best first: c 0.5, b 1, a 2)")


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


def test_judge_without_an_expectation_says_nothing():
    assert judge(state_of({"a": {"loss": 1.0}}), None) == ({}, (None, ""))


LOWER = {"kind": "lower-loss", "baseline": "a", "improved": "b", "margin": 0.1}


def test_shortfalls_are_grouped_with_thousands_separators_and_diverging_is_no_shortfall():
    e = expect_of(kind="lower-loss", baseline="a", improved=["b", "c"], margin=0.1)
    state = state_of({"a": {"loss": 2.0, "steps": 1000, "total": 1000}, "b": {"loss": 1.0, "steps": 1000, "total": 1000},
                      "c": {"loss": 1.0, "status": "failed", "steps": 1200, "total": 1200}})
    verdicts, (ok, text) = judge(state, e, {"a": 12480, "b": 12480, "c": 12480})
    assert ok is None and text.startswith("inconclusive: a and b ran 1,000 of the 12,480 steps the preset budgets (a verdict needs 80%); "
                                          "c was stopped by an error at step 1,200 (train loss: ")
    state = state_of({"a": {"loss": 2.0}, "b": {"loss": 1.0, "status": "diverged", "steps": 5}, "c": {"loss": 1.0}})
    assert judge(state, e, {"a": 100, "b": 100, "c": 100})[1][0] is False  # diverged early: a result, not a lack of steps


def test_mid_run_a_planned_cut_is_said_ahead_and_a_good_line_is_provisional():
    e = expect_of(**LOWER)
    state = state_of({"a": {"loss": 2.0, "steps": 5, "total": 10, "status": "running"}, "b": {"loss": 1.0, "steps": 5, "total": 10, "status": "running"}})
    verdicts, (ok, text) = judge(state, e, {"a": 100, "b": 100})
    assert ok is None and text.startswith("so far, inconclusive: a and b runs 10 of the 100 steps the preset budgets")
    state = state_of({"a": {"loss": 2.0, "steps": 60, "status": "running"}, "b": {"loss": 1.0, "steps": 60, "status": "running"}})
    verdicts, (ok, text) = judge(state, e, {"a": 100, "b": 100})
    assert verdicts["b"] == (True, "b: train loss 1 — so far better than a") and (ok, text) == (True, "so far, b beats a — reproduced (train loss: a 2, b 1)")
    state = state_of({"a": {"loss": 2.0, "steps": 20, "status": "running"}, "b": {"loss": 1.0, "steps": 20, "status": "running"}})
    assert judge(state, e)[1] == (None, "too early to compare")


def test_a_line_beside_a_shortfall_is_not_judged_and_an_inconclusive_finding_gives_its_reason():
    e = expect_of(**LOWER)
    state = state_of({"a": {"loss": 2.0, "steps": 10}, "b": {"loss": 1.0}})
    verdicts, _ = judge(state, e, {"a": 100, "b": 100})
    assert verdicts["a"] == (None, "a: train loss 2 (the baseline) — inconclusive: ran 10 of the 100 steps the preset budgets (a verdict needs 80%)")
    assert verdicts["b"] == (None, "b: train loss 1 — better than a")
    ok, text = judge(state_of({"a": {"loss": 1.0}, "b": {"loss": 0.95}}), e)[1]
    assert (ok, text) == (None, "inconclusive: the difference is inside the noise margin (±0.1) (train loss: a 1, b 0.95)")


def test_a_finding_without_numbers_and_a_diverged_reason():
    from typing import Literal

    from nntui.expect import ExpectBase
    from nntui.verdicts.registry import KINDS, Finding, Line, diverged_text, kind

    class Bare(ExpectBase):
        kind: Literal["bare-test"]

    results = iter([Finding(True, "it shows"), Finding(False)])

    @kind("bare-test")
    def bare(state, e):
        return {"a": Line(None, diverged_text(state.variants["a"]))}, next(results)

    state = state_of({"a": {"loss": 1.0, "status": "diverged"}})
    state.variants["a"].finish_reason = "loss became inf at step 7"
    try:
        assert judge(state, Bare(kind="bare-test")) == ({"a": (None, "a: diverged (loss became inf at step 7)")}, (True, "it shows — reproduced"))
        assert judge(state, Bare(kind="bare-test"))[1] == (False, "not reproduced")
    finally:
        KINDS.pop("bare-test", None)


def test_lr_schedule_waits_only_for_the_scheduled_variants_that_ran_and_a_baseline_it_must_beat():
    from tests.test_mutants_schedules import STEP, STEP_TRACE, variant

    def judged(better: bool, *variants, budgets):
        state = RunState()
        state.variants = {v.name: v for v in variants}
        return judge(state, expect_of(kind="lr-schedule", variant=["v", "w"], baseline="base", better=better), budgets)

    v = variant(STEP, STEP_TRACE, test_losses=[(60, 0.25)])
    base = variant({"name": "none"}, [(x, 1e-2) for x in (5, 10)], name="base", test_losses=[(10, 0.5)])
    budgets = {"v": 60, "w": 60, "base": 60}  # w left out (--variant), base cut at step 10
    assert judged(False, v, base, budgets=budgets)[1][0] is True
    ok, text = judged(True, v, base, budgets=budgets)[1]
    assert ok is None and text.startswith("inconclusive: base ran 10 of the 60 steps")
    ok, text = judged(False, base, budgets=budgets)[1]
    assert ok is None and text.startswith("inconclusive: v and w ") and text.endswith(" left out of this run")


def test_accuracy_is_compared_as_an_error_rate():
    e = expect_of(kind="lower-loss", baseline="a", improved="b", metric="accuracy", margin=0.05)
    assert judge(state_of({"a": {"acc": 0.8}, "b": {"acc": 0.9}}), e)[1] == (True, "b beats a — reproduced (test accuracy: a 80.0%, b 90.0%)")
    assert judge(state_of({"a": {"acc": 0.8, "status": "diverged"}, "b": {"acc": 0.5}}), e)[1][0] is True


def test_the_winner_and_the_worst_are_judged_against_their_nearest_rival():
    e = expect_of(kind="best-of", winner="a", metric="test", margin=0.1)
    assert judge(state_of({"a": {"test": 0.5}, "b": {"test": 0.55}, "c": {"test": 2.0}}), e)[1][0] is None
    e = expect_of(kind="best-of", worst="c", metric="test", margin=0.1)
    assert judge(state_of({"a": {"test": 0.5}, "b": {"test": 1.95}, "c": {"test": 2.0}}), e)[1][0] is None
    assert judge(state_of({"a": {"test": 0.5}, "b": {"test": 1.5}, "c": {"test": 2.0}}), e)[1] == (True, "c comes last — reproduced (test loss, best first: a 0.5, b 1.5, c 2 (≈: within ±0.1, the run-to-run noise))")


def test_mc_interval_counts_test_points_inside_the_interpolated_interval():
    state = state_of({"v": {"loss": 0.1}})
    grid = [-1.0, -0.5, 0.0, 0.5, 1.0]  # the interval is y = x ± 0.5 on the grid, its end values beyond it
    state.variants["v"].predictions = {"x": grid, "y": grid, "lower": [x - 0.5 for x in grid], "upper": [x + 0.5 for x in grid]}
    # inside: (-0.75, -0.3) under -0.25, (-0.25, 0.2) under 0.25, (0.7, 0.25) over 0.2, (-2, -1.4) and (1.5, 1.0) in the
    # end intervals; outside: (0.3, 0.85) over 0.8, (2, 1.7) over 1.5 -> 5 of 7
    state.samples["test"] = ([-0.75, -0.25, 0.3, 0.7, -2.0, 1.5, 2.0], [-0.3, 0.2, 0.85, 0.25, -1.4, 1.0, 1.7])
    verdicts, finding = judge(state, expect_of(kind="mc-interval", variant="v"))
    assert verdicts["v"] == (True, "v: interval width 1.00, true line inside on 100% — uncertainty estimate reproduced")
    assert finding == (True, "MC dropout gives an uncertainty estimate — reproduced (the 90% MC-dropout interval of v (mean width 1.00) "
                             "contains the true line y = x on 100% of [-1, 1] and 71% of the noisy test points)")


def test_lines_without_words_keep_their_judgement_unless_the_run_is_cut_short():
    from typing import Literal

    from nntui.expect import ExpectBase
    from nntui.verdicts.registry import KINDS, Finding, Line, kind

    class Plain(ExpectBase):
        kind: Literal["plain-test"]
        variant: str

    @kind("plain-test")
    def plain(state, e):
        return {"a": Line(True, "a: fine"), "b": Line(False, "b: off")}, Finding(True, "shown", "n")

    try:
        state = state_of({"a": {"loss": 1.0}, "b": {"loss": 1.0, "steps": 10}})
        assert judge(state, Plain(kind="plain-test", variant="a"))[0] == {"a": (True, "a: fine"), "b": (False, "b: off")}
        verdicts, (ok, _) = judge(state, Plain(kind="plain-test", variant="b"), {"a": 100, "b": 100})  # b ran 10 of 100
        assert ok is None and verdicts["a"] == (None, "a: fine")
        state.variants["a"].status = "pending"  # a variant not started yet: the verdict is provisional
        assert judge(state, Plain(kind="plain-test", variant="a"))[1] == (True, "so far, shown — reproduced (n)")
    finally:
        KINDS.pop("plain-test", None)


def test_a_diverged_variant_does_not_hide_another_ones_shortfall():
    e = expect_of(kind="lower-loss", baseline="a", improved="b", margin=0.1)
    state = state_of({"a": {"loss": 2.0, "status": "diverged", "steps": 5}, "b": {"loss": 1.0, "steps": 5}})
    ok, text = judge(state, e, {"a": 100, "b": 100})[1]
    assert ok is None and text.startswith("inconclusive: b ran 5 of the 100 steps")


def test_a_difference_of_exactly_the_margin_is_inside_it_and_train_loss_edge_cases():
    from nntui.verdicts.lecture import compare

    assert compare(0.25, 0.25) is None and compare(-0.25, 0.25) is None
    e = expect_of(kind="lower-loss", baseline="a", improved="b", margin=0.1)
    assert judge(state_of({"b": {"loss": 0.5}}), e, {"a": 100, "b": 100})[1][1].startswith("inconclusive: a was left out")
    assert judge(state_of({"a": {"loss": 0.1, "status": "diverged"}, "b": {"loss": 0.5}}), e)[1][0] is True  # diverged: worst
    state = state_of({"n": {"loss": 1.0}, "a": {"loss": 2.0}, "c": {"loss": 0.5}})
    state.variants["n"].recent_losses.clear()  # no train loss yet: ranked last, shown as —
    assert judge(state, expect_of(kind="best-of", winner="c"))[1][1].endswith("(train loss, best first: c 0.5, a 2, n —)")
