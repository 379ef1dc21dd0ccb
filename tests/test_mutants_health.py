"""Health checks (verdicts/health.py) on hand-built variant states: statuses at their thresholds and the exact
words, each number worked out by hand in the test (mutation killers; tests/test_check.py runs them from run logs)."""

from __future__ import annotations

import pytest

from nntui.record.state import BoundedSeries, RunState, VariantState
from nntui.verdicts.health import check_health, dead, exploding, loss_falling, non_finite, saturated, update_ratio, vanishing

LAYERS = ["fc1", "fc2", "fc3"]


def series(ys: list[float], xs: list[int] | None = None) -> BoundedSeries:
    s = BoundedSeries(512)
    for x, y in zip(xs or [10 * (i + 1) for i in range(len(ys))], ys):
        s.append(x, y)
    return s


def probed(medians: dict[str, list[float]], *, layers: list[str] | None = None, rows: list[dict] | None = None,
           xs: list[int] | None = None, name: str = "v") -> VariantState:
    """A variant whose layers' median |grad| went through `medians` (one value per probe)."""
    v = VariantState(name=name, layers=LAYERS if layers is None else layers, status="completed", step=120, layer_stats_step=120)
    v.grad_median_history = {layer: series(ys, xs) for layer, ys in medians.items()}
    v.layer_stats = rows if rows is not None else [{"name": layer} for layer in medians]
    return v


def trained(losses: list[float], step: int | None = None, **fields) -> VariantState:
    v = VariantState(name="v", status="completed", step=len(losses) if step is None else step, **fields)
    for i, loss in enumerate(losses):
        v.train_loss.append(i + 1, loss)
        v.recent_losses.append(loss)
    return v


def said(check) -> tuple[str, str]:
    shown = check.as_dict()  # as `nntui check --json` writes it: the title comes from the check's id
    assert shown["title"] and shown["id"] == check.id and shown["numbers"] == check.numbers
    return shown["status"], shown["text"]


# ---------------------------------------------------------------- vanishing gradients

def test_vanishing_pools_the_last_ten_probes_and_fails_below_one_in_three_hundred():
    # fc1: two early probes at 1.0, then 1e-5 and 3e-5 alternating: the median of the last ten is 2e-5 (1/500 of fc3's)
    v = probed({"fc1": [1.0, 1.0] + [1e-5, 3e-5] * 5, "fc2": [1e-3] * 12, "fc3": [1e-2] * 12})
    c = vanishing(v)
    assert said(c) == ("fail", "fc1 median |grad| 2.0e-05 is 1/500 of fc3's 0.01 (fail below 1/300)")
    assert (c.step, c.layer, c.numbers["ratio"]) == (120, "fc1", pytest.approx(0.002))
    assert c.numbers["first_median"] == pytest.approx(2e-5) and c.numbers["last_median"] == pytest.approx(1e-2)
    assert c.numbers["fail_below"] == pytest.approx(1 / 300)


@pytest.mark.parametrize(("first", "expected"), [
    (5e-5, ("warn", "fc1 median |grad| 5.0e-05 is 1/200 of fc3's 0.01 (warn below 1/100)")),
    (2e-3, ("ok", "fc1 median |grad| 2.0e-03 is 1/5 of fc3's 0.01")),
    (5e-2, ("ok", "fc1 median |grad| 0.05 is 5x fc3's 0.01")),
    (1.5e-2, ("ok", "fc1 median |grad| 0.015 is 1.5x fc3's 0.01")),
    (1e-2, ("ok", "fc1 median |grad| 0.01 is 1x fc3's 0.01")),
])
def test_vanishing_warns_below_one_in_a_hundred_and_words_the_ratio_either_way(first, expected):
    assert said(vanishing(probed({"fc1": [first] * 3, "fc2": [1e-3] * 3, "fc3": [1e-2] * 3}))) == expected


def test_vanishing_thresholds_are_strict():
    assert vanishing(probed({"fc1": [0.01] * 3, "fc3": [3.0] * 3})).status == "warn"  # exactly 1/300: not under it
    assert vanishing(probed({"fc1": [0.01] * 3, "fc3": [1.0] * 3})).status == "ok"  # exactly 1/100


def test_vanishing_skips_layers_without_gradient_and_needs_two():
    c = vanishing(probed({"fc1": [0.0] * 3, "fc2": [1e-3] * 3, "fc3": [1e-2] * 3}))  # fc1: sparse, all zero
    assert said(c) == ("ok", "fc2 median |grad| 1.0e-03 is 1/10 of fc3's 0.01") and c.layer == "fc2"
    assert said(vanishing(probed({"fc1": [0.0], "fc2": [], "fc3": [1e-2]}))) == ("n/a", "needs gradient medians of two layers (not probed yet)")
    named_by_rows = probed({"b": [1e-2], "a": [1e-5]}, layers=[], rows=[{"name": "a"}, {"name": "b"}])  # model order from the probe rows
    assert said(vanishing(named_by_rows)) == ("fail", "a median |grad| 1.0e-05 is 1/1000 of b's 0.01 (fail below 1/300)")
    v = probed({"fc1": [1e-5], "fc3": [1e-2]})
    v.layer_stats_step = 0
    assert vanishing(v).step is None


# ---------------------------------------------------------------- exploding gradients

def test_exploding_first_layer_far_above_the_last():
    c = exploding(probed({"fc1": [5.0] * 3, "fc2": [1e-3] * 3, "fc3": [1e-2] * 3}))
    assert said(c) == ("fail", "fc1 median |grad| 5 is 500x fc3's 0.01 (fail above 300x)")
    assert c.numbers == {"ratio": pytest.approx(500), "fail_above": 300.0} and (c.step, c.layer) == (120, "fc1")
    assert exploding(probed({"fc1": [2.0] * 3, "fc2": [1e-3] * 3, "fc3": [1e-2] * 3})).status == "ok"  # 200x
    assert exploding(probed({"fc1": [150.0] * 3, "fc3": [0.5] * 3})).status == "ok"  # exactly 300x: fails only above
    c = exploding(probed({"fc1": [5.0] * 3, "fc3": [1e-2] * 3}))  # two layers are enough
    assert said(c) == ("fail", "fc1 median |grad| 5 is 500x fc3's 0.01 (fail above 300x)") and c.id == "exploding-gradients"


STEPS = [1, 50, 100, 150, 200, 250]


def test_exploding_growth_names_the_first_probe_past_a_thousand_times_its_start():
    # fc2's start: the median of its first three positive probes (1e-3, 2e-3, 3e-3) = 2e-3; 1.9 is under 1000x, 2.5 over
    fc2 = [0.0, 1e-3, 2e-3, 3e-3, 1.9, 2.5, 3.0]
    v = probed({"fc1": [1e-3] * 7, "fc2": fc2, "fc3": [1e-2] * 7}, xs=[0, *STEPS])
    c = exploding(v)
    assert said(c) == ("fail", "fc2 median |grad| grew 1250x above its start (2.0e-03) by step 200")
    assert (c.step, c.layer, c.numbers) == (200, "fc2", {"growth": pytest.approx(1250), "fail_above": 1000.0})


@pytest.mark.parametrize(("fc3", "expected"), [
    ([1e-2, 1e-2, 1e-2, 20.0, 20.0, 20.0], (150, "fc3")),  # fc3 crosses first: it started it
    ([1e-2, 1e-2, 1e-2, 1e-2, 15.0, 15.0], (200, "fc3")),  # same probe: the larger growth (1500x over 1250x)
    ([1e-2, 1e-2, 1e-2, 1e-2, 11.0, 11.0], (200, "fc2")),  # 1100x
])
def test_exploding_growth_in_two_layers_reports_the_earliest_then_the_largest(fc3, expected):
    fc2 = [1e-3, 2e-3, 3e-3, 1.9, 2.5, 3.0]
    c = exploding(probed({"fc1": [1e-3] * 6, "fc2": fc2, "fc3": fc3}, xs=STEPS))
    assert (c.step, c.layer) == expected


def test_exploding_growth_past_a_layer_without_gradients_ties_and_exactly_a_thousand():
    fc2 = [1e-3, 2e-3, 3e-3, 1.9, 2.5, 3.0]  # 1250x at step 200
    c = exploding(probed({"fc1": [0.0] * 6, "fc2": fc2, "fc3": [1e-2] * 6}, xs=STEPS))  # fc1: no positive median to grow from
    assert (c.status, c.step, c.layer) == ("fail", 200, "fc2")
    c = exploding(probed({"fc1": [1e-3] * 6, "fc2": fc2, "fc3": [x * 10 for x in fc2]}, xs=STEPS))  # the same growth: the first layer named
    assert (c.step, c.layer) == (200, "fc2")
    c = exploding(probed({"fc1": [1e-3] * 6, "fc2": [1e-3, 1e-3, 1e-3, 1.0, 1.0, 1.0], "fc3": [1e-2] * 6}, xs=STEPS))
    assert c.status == "ok"  # exactly 1000x: fails only above


def test_exploding_needs_probes_and_a_real_start():
    assert said(exploding(probed({}))) == ("n/a", "no gradients probed yet")
    steady = probed({"fc1": [1e-3, 0.0, 5.0], "fc3": [0.0, 0.0, 1e-2]})  # fc1: two positive probes only, no start to grow from
    assert said(exploding(steady)) == ("ok", "no layer's median |grad| grew 1000x, none far above the last layer's")


# ---------------------------------------------------------------- non-finite

def test_a_diverged_run_names_its_reason_step_and_the_layer_nearest_the_loss():
    v = probed({"fc1": [1e-3]})
    v.status, v.step, v.finish_reason = "diverged", 40, "loss became nan at step 41"
    c = non_finite(v)
    assert said(c) == ("fail", "the run diverged: loss became nan at step 41") and (c.step, c.layer) == (40, None)
    assert (c.id, c.title, c.numbers) == ("non-finite", "non-finite loss or gradients", {})
    v.finish_reason, v.grad_nonfinite_since = "", {"fc1": 40, "fc2": 30, "fc3": 30}
    c = non_finite(v)
    assert said(c) == ("fail", "the run diverged: non-finite loss") and c.layer == "fc3"


def test_a_non_finite_gradient_names_the_first_probe_and_the_layer_nearest_the_loss():
    v = probed({"fc1": [1e-3]})
    v.grad_nonfinite_since = {"fc3": 150, "fc1": 100, "fc2": 100}
    c = non_finite(v)
    assert said(c) == ("fail", "gradient of fc2 became non-finite at step 100") and (c.step, c.layer) == (100, "fc2")
    assert (c.id, c.numbers) == ("non-finite", {})
    v.grad_nonfinite_since = {"fc1": 100, "fc2": 100, "fc3": 100}
    assert non_finite(v).layer == "fc3"
    v.grad_nonfinite_since = {"fc3": 150, "fc1": 100, "fc2": 100}
    v.layers = []  # no model order recorded: the order the layers turned non-finite in
    assert non_finite(v).layer == "fc2"
    v.grad_nonfinite_since = {"fc2": 100, "fc1": 100}
    assert non_finite(v).layer == "fc1"
    v.layers = ["fc1", "fc2"]
    v.grad_nonfinite_since = {"embedding": 10}  # a layer the model's list does not name: the step, no layer
    c = non_finite(v)
    assert (c.status, c.step, c.layer) == ("fail", 10, None)


def test_non_finite_before_and_after_anything_is_recorded():
    c = non_finite(VariantState(name="v", status="running"))
    assert said(c) == ("n/a", "nothing recorded yet") and c.id == "non-finite"
    assert said(non_finite(trained([2.3]))) == ("ok", "loss and gradients finite")
    assert said(non_finite(probed({"fc1": [1e-3]}))) == ("ok", "loss and gradients finite")


# ---------------------------------------------------------------- saturated and dead units

def rows(key: str, shares: list[float | None]) -> VariantState:
    return probed({}, rows=[{"name": n, key: s} for n, s in zip(LAYERS, shares)])


@pytest.mark.parametrize(("shares", "status", "layer", "share"), [
    ([0.01, 0.049, 0.0], "ok", "fc2", "5%"), ([0.05, 0.0, None], "warn", "fc1", "5%"),
    ([0.2, 0.49, 0.3], "warn", "fc2", "49%"), ([0.0, 0.1, 0.5], "fail", "fc3", "50%"),
])
def test_saturation_warns_from_five_and_fails_from_fifty_percent(shares, status, layer, share):
    c = saturated(rows("saturation", shares))
    assert said(c) == (status, f"{layer}: {share} of outputs saturated (warn from 5%, fail from 50%)")
    assert (c.layer, c.step, c.numbers) == (layer, 120, {"saturation": max(s for s in shares if s is not None)})


@pytest.mark.parametrize(("shares", "status"), [([0.24, 0.0, 0.1], "ok"), ([0.25, 0.0, 0.1], "warn"), ([0.0, 0.5, 0.1], "fail")])
def test_dead_units_warn_from_a_quarter_and_fail_from_half(shares, status):
    c = dead(rows("dead", shares))
    worst = max(shares)
    assert said(c) == (status, f"{LAYERS[shares.index(worst)]}: {worst:.0%} of units dead on the whole batch (warn from 25%, fail from 50%)")


def test_units_not_measured_or_not_probed():
    assert said(saturated(rows("saturation", [None, None, None]))) == ("n/a", "no sigmoid/tanh activations measured")
    assert said(dead(rows("dead", [None, None, None]))) == ("n/a", "no activations measured")
    assert said(dead(probed({}, rows=[]))) == ("n/a", "not probed yet")


# ---------------------------------------------------------------- update:data ratio

def ratios(values: list[float | None], lrs: list[float] = ()) -> VariantState:
    v = rows("update_ratio", values)
    v.lr = series(list(lrs))
    return v


@pytest.mark.parametrize(("values", "status", "text"), [
    ([2e-5, 3e-5, 1e-3], "fail", "median 3.0e-05 over 3 layers, fc1 2.0e-05 (LR too small: learning crawls; ok 0.0001..0.01)"),
    ([1e-3, 3e-3, 5e-4], "ok", "median 1.0e-03 over 3 layers, fc2 3.0e-03 (healthy ≈ 1e-3; ok 0.0001..0.01)"),
    ([0.05, 0.02, 0.03], "warn", "median 0.03 over 3 layers, fc1 0.05 (large: the LR may be too high; ok 0.0001..0.01)"),
    ([0.2, 0.3, 0.5], "fail", "median 0.3 over 3 layers, fc3 0.5 (LR too high: unstable; ok 0.0001..0.01)"),
    ([1e-4, 1e-4, None], "ok", "median 1.0e-04 over 2 layers, fc1 1.0e-04 (healthy ≈ 1e-3; ok 0.0001..0.01)"),
    ([0.01, 0.0, 0.01], "ok", "median 0.01 over 2 layers, fc1 0.01 (healthy ≈ 1e-3; ok 0.0001..0.01)"),
    ([0.1, 0.1, 0.1], "warn", "median 0.1 over 3 layers, fc1 0.1 (large: the LR may be too high; ok 0.0001..0.01)"),
])
def test_update_ratio_bands(values, status, text):
    c = update_ratio(ratios(values, [0.1, 0.1]))
    assert said(c) == (status, text) and c.step == 120 and c.layer == text.split(", ")[1].split()[0]  # the most extreme layer
    assert c.numbers == {"median": pytest.approx(float(text.split()[1])), "ok_band": [1e-4, 1e-2], "fail_above": 0.1}


def test_update_ratio_is_not_judged_while_the_lr_is_annealed_or_before_a_probe():
    assert said(update_ratio(ratios([2e-5] * 3, [0.1, 0.05, 0.005]))) == ("n/a", "the LR is annealed (5.0e-03, peak 0.1): small updates are intended")
    assert update_ratio(ratios([2e-5] * 3, [0.1, 0.05, 0.02])).status == "fail"  # a fifth of the peak: not annealed
    assert update_ratio(ratios([2e-5] * 3, [1.0, 0.1])).status == "fail"  # exactly a tenth: not yet
    assert update_ratio(ratios([2e-5] * 3, [0.0, 0.0])).status == "fail"
    assert said(update_ratio(ratios([None, 0.0, None]))) == ("n/a", "no updates probed yet")


# ---------------------------------------------------------------- loss not falling

def test_a_falling_loss_is_ok_with_its_start_and_end():
    c = loss_falling(trained([3.0] * 10 + [2.0] * 30 + [1.0] * 80 + [0.5] * 80))
    # start: the first tenth (3.0 x10, 2.0 x10) = 2.5; end: the last 50 = 0.5; last quarter 0.5 vs the one before 0.7
    assert said(c) == ("ok", "loss 2.5 → 0.5 (80% down)") and c.numbers == pytest.approx({"start": 2.5, "end": 0.5, "fall": 0.8}) and c.step == 200


@pytest.mark.parametrize(("tail", "status"), [(0.996, "warn"), (0.994, "ok")])
def test_a_flat_last_quarter_warns(tail, status):
    c = loss_falling(trained([2.0] * 100 + [1.0] * 50 + [tail] * 50))
    assert c.status == status
    if status == "warn":
        assert c.text == "loss 2 → 1, but flat over the last quarter of the run (a plateau, or converged)"


def test_the_quarter_before_the_last_is_counted_from_the_end():
    # 203 points: quarters of 50, the one before the last is points 103-152 (all 1.0), not 100-152
    assert loss_falling(trained([2.0] * 103 + [1.0] * 50 + [0.996] * 50)).status == "warn"
    c = loss_falling(trained([300.0] * 100 + [200.0] * 50 + [199.0] * 50))  # exactly 0.5 % lower: still falling
    assert said(c) == ("ok", "loss 3.0e+02 → 2.0e+02 (34% down)")


def test_a_flat_quarter_of_a_short_log_warns_too():
    c = loss_falling(trained([3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0], step=100))  # quarters of two points; the start: the first point
    assert said(c) == ("warn", "loss 3 → 1.6, but flat over the last quarter of the run (a plateau, or converged)")  # end: the mean, 13/8


@pytest.mark.parametrize(("end", "expected"), [
    (0.981, ("fail", "loss 1 → 0.98: 1.9% down after 200 steps (fail under 2%)")), (0.979, ("ok", "loss 1 → 0.98 (2% down)")),
])
def test_less_than_two_percent_down_fails(end, expected):
    c = loss_falling(trained([1.0] * 150 + [end] * 50))
    assert said(c) == expected and c.step == 200 and c.numbers == pytest.approx({"start": 1.0, "end": end, "fall": 1.0 - end})


def test_exactly_two_percent_down_passes():
    assert said(loss_falling(trained([50.0] * 150 + [49.0] * 50))) == ("ok", "loss 50 → 49 (2% down)")


def test_too_early_or_not_a_positive_loss():
    early = ("n/a", "too early (needs 100 logged steps)")
    assert said(loss_falling(trained([2.0] * 99))) == early
    assert said(loss_falling(trained([2.0] * 7, step=500))) == early
    assert loss_falling(trained([2.0] * 100)).status == "fail"
    assert said(loss_falling(trained([-1.0] * 200))) == ("n/a", "the loss is not a positive quantity")
    assert said(loss_falling(trained([0.0] * 200))) == ("n/a", "the loss is not a positive quantity")
    assert said(loss_falling(trained([2.0] * 100 + [-0.5] * 100))) == ("ok", "loss 2 → -0.5 (125% down)")  # ends below zero


def test_large_gradients_are_written_in_powers_of_ten():
    assert said(exploding(probed({"fc1": [100.0] * 3, "fc3": [1e-2] * 3})))[1] == "fc1 median |grad| 1.0e+02 is 10000x fc3's 0.01 (fail above 300x)"


# ---------------------------------------------------------------- the report

def test_check_health_lists_failures_in_check_order_and_filters_variants():
    state = RunState()
    a = ratios([2e-5] * 3)  # update ratio too small
    a.name = "a"
    b = probed({"fc1": [1e-6] * 3, "fc3": [1e-2] * 3}, name="b")  # vanishing
    state.variants = {"a": a, "b": b}
    report = check_health(state)
    assert report["healthy"] is False and report["failed"] == ["vanishing-gradients", "update-ratio"]
    assert [(r["name"], r["healthy"], r["failed"]) for r in report["variants"]] == [("a", False, ["update-ratio"]), ("b", False, ["vanishing-gradients"])]
    first = report["variants"][1]["checks"][0]
    assert first["title"] == "vanishing gradients" and first["id"] == "vanishing-gradients" and first["status"] == "fail" and first["layer"] == "fc1"
    assert [c["id"] for c in report["variants"][0]["checks"]] == ["vanishing-gradients", "exploding-gradients", "non-finite", "saturated-units",
                                                                  "dead-units", "update-ratio", "loss-not-falling"]
    only_b = check_health(state, ["b"])
    assert [r["name"] for r in only_b["variants"]] == ["b"] and only_b["failed"] == ["vanishing-gradients"]
    state.variants = {"c": trained([2.0] * 50 + [1.0] * 150)}
    report = check_health(state)  # a warning is not a failure: still healthy
    assert (report["healthy"], report["failed"], report["variants"][0]["healthy"], report["variants"][0]["failed"]) == (True, [], True, [])
    assert report["variants"][0]["checks"][-1] == {"title": "loss not falling", "id": "loss-not-falling", "status": "warn",
                                                  "text": "loss 2 → 1, but flat over the last quarter of the run (a plateau, or converged)",
                                                  "numbers": {"start": 2.0, "end": 1.0, "fall": 0.5}, "step": 200, "layer": None}
