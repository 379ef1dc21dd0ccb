"""lr_suggest's rules on small curves with answers worked out by hand or by a second, plain computation.

Fast (no training): mutation testing runs this file per mutant (scripts/mutation.sh lr_suggest)."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from nntui.engine.lr_suggest import (
    LRFindResult, Suggestion, _band, _last_above, _steepest, _valley, analyse, centred_curve, ema_curve,
    load_bounds, noise_sd, save_result, suggest, usable_points,
)
from nntui.errors import NntuiError


def exponential_lrs(start: float, end: float, n: int) -> list[float]:
    return [start * (end / start) ** (i / (n - 1)) for i in range(n)]




def _phi(d: float) -> float:
    return math.exp(-d * d / 2) / math.sqrt(2 * math.pi)


def _cdf(d: float) -> float:
    return 0.5 * (1 + math.erf(d / math.sqrt(2)))


def kinked(num_iter: int, plateau: float, fall_at: float = -3.0, slope: float = 1.0, minimum_at: float = -0.5, sd: float = 0.0, seed: int = 0):
    """Flat at `plateau` up to lr 10^fall_at, then falling `slope` per decade to 10^minimum_at, then blowing up."""
    rng = random.Random(seed)
    lrs = exponential_lrs(1e-8, 10.0, num_iter)
    out = []
    for lr in lrs:
        x = math.log10(lr)
        out.append(plateau - slope * max(0.0, min(x, minimum_at) - fall_at) + 3 * max(0.0, x - minimum_at) ** 2 + rng.gauss(0, sd))
    return lrs, out


def test_on_a_clean_curve_the_fall_starts_where_the_smoothed_loss_is_5_percent_down():
    lrs, reference = kinked(300, plateau=2.0)
    # A Gaussian kernel of 0.3 decades turns the kink max(0, x + 3) into 0.3 (d Φ(d) + φ(d)), d = (x + 3) / 0.3;
    # 5 % of the plateau (0.1) is reached at d Φ(d) + φ(d) = 1/3: solve by bisection.
    lo, hi = -2.0, 2.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * _cdf(mid) + _phi(mid) < 1 / 3 else (lo, mid)
    expected = -3.0 + 0.3 * lo  # about -3.04
    step = 9 / 299
    noisy = [v + random.Random(1).gauss(0, 0.3) for v in reference]  # the training batches' noise must not matter
    found = analyse(lrs, noisy, reference=reference)
    fall = math.log10(found.suggestions["fall_start"].lr)
    assert expected <= fall <= expected + step + 1e-9  # the first grid point past the crossing
    assert found.stability["base_lr"]["reliable"] and found.stability["base_lr"]["decades"] <= step + 1e-9
    i = found.suggestions["fall_start"].index  # no noise: the band is the step the crossing lies in, / 6
    assert found.stability["base_lr"]["band"] == pytest.approx([lrs[i - 1] / 6, lrs[i] / 6], rel=1e-9)
    assert found.base_lr == pytest.approx(found.suggestions["fall_start"].lr / 6, rel=0.01)  # 300 points over 9 decades: the reference density
    assert abs(math.log10(found.max_lr) + 1.5) <= 0.1  # the minimum at 10^-0.5, / 10


def test_the_training_losses_do_not_move_what_is_read_off_the_reference():
    lrs, reference = kinked(200, plateau=2.3)
    a = analyse(lrs, kinked(200, plateau=2.3, sd=0.2, seed=1)[1], reference=reference)
    b = analyse(lrs, kinked(200, plateau=2.3, sd=0.2, seed=2)[1], reference=reference)
    assert (a.base_lr, a.max_lr) == (b.base_lr, b.max_lr)
    assert a.centred == b.centred and a.noise == b.noise
    without = analyse(lrs, kinked(200, plateau=2.3, sd=0.2, seed=1)[1])  # no reference: read off the noisy losses
    assert without.centred != a.centred


def test_on_a_noisy_curve_the_fall_waits_for_1_5_noise_sd_not_5_percent():
    # plateau 2.0, batch noise sd 0.2: 1.5 sd (0.3) is more than 5 % (0.1), so the fall is read 0.3 down the slope
    found = [analyse(*kinked(300, plateau=2.0, sd=0.2, seed=s)) for s in range(8)]
    falls = [math.log10(a.suggestions["fall_start"].lr) for a in found]
    assert all(-2.77 <= f <= -2.6 for f in falls), falls  # 0.3 below a slope of 1 per decade: about 10^-2.7
    # on a tall plateau with little noise 5 % (0.5 here) is the larger one
    lrs, reference = kinked(300, plateau=10.0, sd=0.02)
    assert abs(math.log10(analyse(lrs, reference).suggestions["fall_start"].lr) + 2.5) <= 0.06


def _cumulative_curve(num_iter: int) -> tuple[list[float], list[float]]:
    """A model whose loss depends only on the summed LR so far: 2.5 exp(-S / 0.01), blowing up past lr 0.3."""
    lrs = exponential_lrs(1e-8, 10.0, num_iter)
    total, out = 0.0, []
    for lr in lrs:
        total += lr
        out.append(2.5 * math.exp(-total / 0.01) + 50 * max(0.0, math.log10(lr / 0.3)) ** 2)
    return lrs, out


def test_base_lr_is_the_same_for_a_short_and_a_long_sweep_of_the_same_model():
    # The summed LR up to lr L is L / (1 - 1/r) for a step ratio r: a sweep with fewer points reaches the same
    # sum (the same fall) at a higher LR, by the density ratio that base_lr's rescaling takes out again.
    bases = {n: analyse(*_cumulative_curve(n)).base_lr for n in (100, 300, 1000)}
    assert max(bases.values()) / min(bases.values()) <= 10 ** 0.1, bases
    # Independently: the loss is 5 % down where S = -0.01 ln 0.95; at 300 points S = L / (1 - 1/r), and the
    # Gaussian smoothing of a curve linear in L (10^x) raises it by exp((0.3 ln 10)^2 / 2), moving the crossing earlier.
    r = 10 ** (9 / 299)
    lr_fall = -0.01 * math.log(0.95) * (1 - 1 / r) / math.exp((0.3 * math.log(10)) ** 2 / 2)
    assert abs(math.log10(bases[300] / (lr_fall / 6))) <= 0.08




# ---------------------------------------------------------------- the pieces

def test_usable_points_drop_non_finite_points_a_tenth_at_the_start_and_a_twentieth_at_the_end():
    assert usable_points([1.0] * 40, [1.0] * 40) == list(range(4, 38))  # 40 // 10 = 4 first, 40 // 20 = 2 last
    assert usable_points([1.0] * 300, [1.0] * 300) == list(range(10, 295))  # at most 10 first and 5 last
    assert usable_points([1.0] * 9, [1.0] * 9) == list(range(9))
    ys = [1.0] * 42
    ys[0], ys[20] = math.nan, math.inf  # 40 finite points left: the same cut, counted over the finite ones
    finite = [i for i in range(42) if i not in (0, 20)]
    assert usable_points([1.0] * 42, ys) == finite[4:38]


def test_centred_curve_is_a_gaussian_weighted_mean_with_its_noise_factor():
    xs, ys = [0.0, 0.1, 0.5, 3.0], [1.0, 2.0, 4.0, 8.0]
    out, factor = centred_curve(xs, ys, bandwidth=0.3)
    for i, x in enumerate(xs):
        w = [math.exp(-0.5 * ((x - xj) / 0.3) ** 2) for xj in xs]
        assert out[i] == pytest.approx(sum(wj * yj for wj, yj in zip(w, ys)) / sum(w), rel=1e-12)
        assert factor[i] == pytest.approx(math.sqrt(sum(wj * wj for wj in w)) / sum(w), rel=1e-12)
    assert out[3] == pytest.approx(8.0, rel=1e-6) and factor[3] == pytest.approx(1.0, rel=1e-6)  # alone: no neighbour within 5 bandwidths
    # more points than one chunk of rows: the same as the whole matrix at once
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-8, 1, 1100))
    y = rng.normal(size=1100)
    w = np.exp(-0.5 * ((x[:, None] - x[None, :]) / 0.3) ** 2)
    out, factor = centred_curve(x.tolist(), y.tolist())
    assert np.allclose(out, (w @ y) / w.sum(1), rtol=1e-10) and np.allclose(factor, np.sqrt((w * w).sum(1)) / w.sum(1), rtol=1e-10)


def test_noise_sd_is_the_robust_sd_of_successive_differences_over_root_2():
    assert noise_sd([]) == 0.0 and noise_sd([1.0, 5.0]) == 0.0
    # differences ±1, median 0, all deviations 1: MAD 1, sd 1.4826 / sqrt 2
    assert noise_sd([0.0, 1.0, 0.0, 1.0, 0.0]) == pytest.approx(1.4826 / math.sqrt(2), rel=1e-9)
    # a steady trend moves every difference alike: it does not count as noise
    assert noise_sd([0.5 * i + (i % 2) for i in range(5)]) == pytest.approx(1.4826 / math.sqrt(2), rel=1e-9)
    rng = random.Random(0)
    assert noise_sd([rng.gauss(3.0, 0.3) for _ in range(20000)]) == pytest.approx(0.3, rel=0.04)


def test_steepest_is_the_most_negative_central_slope_on_uneven_x():
    assert _steepest([0.0, 1.0], [2.0, 1.0]) == 0
    assert _steepest([0, 1, 2, 3, 4], [5.0, 4.0, 1.0, 0.5, 0.4]) == 1  # slopes -2, -1.75, -0.3
    # uneven x: slopes (1-3)/2 = -1, (0-2)/1.2 = -1.67, (0-1)/1 = -1; on even x the first would win
    assert _steepest([0, 1, 2, 2.2, 3], [3.0, 2.0, 1.0, 0.0, 0.0]) == 2


def test_last_above_scans_back_from_the_minimum():
    y = [5.0, 5.0, 4.0, 5.0, 3.0, 2.0, 1.0]
    assert _last_above(y, 4.5, 6) == 4  # y[3] = 5 is the last at or above 4.5 before the minimum
    assert _last_above(y, 5.0, 6) == 4  # "at" counts
    assert _last_above(y, 9.0, 6) == 0  # never above: from the start
    assert _last_above(y, 0.5, 6) == 6  # the minimum itself is above: the fall starts there, never after it
    assert _last_above(y, 4.5, 2) == 2  # only the stretch up to i_min is looked at


def test_band_in_decades_and_reliable_up_to_0_3():
    band = _band([1e-3, 1e-2, 1e-1], 0, 2, 0.5)
    assert band["band"] == pytest.approx([5e-4, 5e-2]) and band["decades"] == 2.0 and band["reliable"] is False
    assert _band([1.0, 10 ** 0.3], 0, 1, 1.0)["reliable"] is True  # exactly 0.3 decades still holds
    assert _band([1.0, 10 ** 0.301], 0, 1, 1.0)["reliable"] is False
    assert _band([2.0], 0, 0, 1.0) == {"band": [2.0, 2.0], "decades": 0.0, "reliable": True}
    assert _band([0.0, 1.0], 0, 1, 1.0)["decades"] == 0.0  # a zero LR: no log; 0 rather than a crash


def test_ema_weights_the_newest_loss_by_0_05_and_passes_non_finite_points():
    out = ema_curve([1.0, 2.0, math.nan, 3.0])
    assert out[:2] == [1.0, 0.05 * 2 + 0.95 * 1]
    assert math.isnan(out[2]) and out[3] == pytest.approx(0.05 * 3 + 0.95 * 1.05)
    out = ema_curve([math.inf, 2.0, 4.0], weight=0.5)
    assert out[0] == math.inf and out[1:] == [2.0, 3.0]


def _quadratic_valley(y):
    n = len(y)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if y[i] < y[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
        if lds[max_end] < lds[i]:
            max_end = i
            max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max(0, min(n - 1, max_start + int(sections) + int(sections / 2)))


def test_valley_matches_fastais_quadratic_definition():
    rng = random.Random(0)
    for n in (0, 1, 2, 3, 5, 7, 40, 200):  # ties too (0.5 repeats)
        for _ in range(30):
            y = [rng.choice([rng.random(), 0.5]) for _ in range(n)]
            if n:
                assert _valley(y) == _quadratic_valley(y)
    assert _valley([9.0, 8, 7, 6, 5, 4, 3]) == 2  # fastai: start = 6 - 7 = -1, sections 7 / 3: -1 + 2 + 1


# ---------------------------------------------------------------- analyse: its edges

def test_eight_usable_points_are_enough_and_seven_are_not():
    lrs = exponential_lrs(1e-4, 1.0, 8)
    losses = [2.0, 1.9, 1.7, 1.4, 1.0, 0.8, 0.9, 1.5]
    a = analyse(lrs, losses)
    assert a.base_lr is not None and a.suggestions["minimum"].lr == lrs[5]
    b = analyse(lrs[:7], losses[:7])
    assert b.base_lr is None and b.max_lr is None and b.stability == {} and b.noise is None
    assert "fall_start" not in b.suggestions and set(b.suggestions) == {"steepest", "valley", "min_div_10", "minimum"}
    assert all(s.lr is None and s.note == "only 7 usable points (need 8); sweep longer or start lower" for s in b.suggestions.values())
    assert b.centred == [None] * 7


def test_a_loss_that_never_falls_says_so():
    lrs = exponential_lrs(1e-4, 1.0, 60)
    a = analyse(lrs, [1.0 + 0.01 * i for i in range(60)])
    assert a.suggestions["minimum"].index == 6  # the first usable point (60 // 10 skipped)
    assert all(s.note == "the loss never fell: the sweep starts too high, or the model does not learn" for s in a.suggestions.values())
    falling = analyse(lrs, [2.0 - 0.01 * i for i in range(60)])
    assert all(s.note == "" for s in falling.suggestions.values())


def test_a_fall_only_at_the_minimum_keeps_a_decade_below_max_lr_and_is_flagged():
    # flat, then one sharp drop right at the minimum: fall LR / 6 is not below minimum / 10
    # 300 points per decade: base_lr = fall × (300 / 33.2) / 6 = 1.5 × fall, above minimum / 10 when the fall
    # starts less than 1.2 decades before the minimum (here 0.7)
    lrs = exponential_lrs(1e-3, 1.0, 901)
    losses = [2.0 - max(0.0, min(x, -0.5) + 1.2) + 3 * max(0.0, x + 0.5) ** 2 for x in (math.log10(lr) for lr in lrs)]
    a = analyse(lrs, losses)
    assert a.base_lr == pytest.approx(a.max_lr / 10)
    band = a.stability["base_lr"]
    fall = a.suggestions["fall_start"].lr
    assert band["reliable"] is False and band["warning"] == (
        f"base_lr is not reliable: the loss starts to fall only near its minimum (fall start {fall:.2g}); set to max_lr / 10 = {a.base_lr:.2g}; check the plot")


def test_a_wide_band_warns_with_its_ends():
    lrs, losses = kinked(100, plateau=2.0, sd=0.6, seed=3)  # the fall drowned in noise
    band = analyse(lrs, losses).stability["base_lr"]
    lo, hi = band["band"]
    assert band["reliable"] is False and band["decades"] > 0.3
    assert band["warning"] == (f"base_lr is not reliable: within ±1 noise sd the rule's answer moves over {band['decades']:.2f} decades "
                               f"({lo:.2g} … {hi:.2g}); sweep longer (--num-iter) or check the plot")


def test_the_minimum_and_max_lr_on_a_clean_valley():
    lrs = exponential_lrs(1e-6, 10.0, 211)  # 30 points per decade
    losses = [1.0 + abs(math.log10(lr) + 1) for lr in lrs]  # a V at 1e-1, symmetric: the smoothing keeps it there
    a = analyse(lrs, losses)
    assert a.suggestions["minimum"].lr == pytest.approx(0.1, rel=1e-9)
    assert a.max_lr == pytest.approx(0.01, rel=1e-9) and a.suggestions["min_div_10"].lr == pytest.approx(0.01, rel=1e-9)
    assert a.suggestions["minimum"].index == 150 and a.suggestions["min_div_10"].index == 150
    assert a.suggestions["min_div_10"].loss is None
    assert a.suggestions["minimum"].loss == pytest.approx(a.centred[150])
    # the max_lr band: a steady fall has no noise (every difference alike), so a grid step either side of the minimum, / 10
    lo, hi = a.stability["max_lr"]["band"]
    assert lo == pytest.approx(lrs[149] / 10) and hi == pytest.approx(lrs[151] / 10)
    assert a.stability["max_lr"]["decades"] == pytest.approx(round(2 / 30, 3))


def test_base_lr_is_rescaled_to_33_points_per_decade_and_divided_by_6():
    for n in (100, 300, 451):
        lrs = exponential_lrs(1e-8, 10.0, n)
        losses = [2.0 - 1.0 * max(0.0, min(math.log10(lr), -0.5) + 3) + 3 * max(0.0, math.log10(lr) + 0.5) ** 2 for lr in lrs]
        a = analyse(lrs, losses)
        per_decade = (n - 1) / 9
        assert a.base_lr == pytest.approx(a.suggestions["fall_start"].lr * per_decade / (299 / 9) / 6, rel=1e-9)
        assert a.suggestions["fall_start"].loss == pytest.approx(a.centred[a.suggestions["fall_start"].index])


def test_the_plateau_is_the_median_of_the_first_quarter_before_the_minimum():
    # The minimum is at 10^-0.5, usable points start at 10^-7.7: the first quarter before the minimum is
    # 10^-7.7 .. 10^-5.9. A step down from 4 to 2 inside it: the median of that quarter decides the plateau.
    lrs = exponential_lrs(1e-8, 10.0, 300)
    xs = [math.log10(lr) for lr in lrs]
    curve = lambda step: [(4.0 if x < step else 2.0) - max(0.0, min(x, -0.5) + 3) + 3 * max(0.0, x + 0.5) ** 2 for x in xs]  # noqa: E731
    # step at 10^-6.5: most of the quarter is at 4, so 5 % below 4 (3.8) is where the smoothed step passes:
    # 4 - 2 Φ((x + 6.5) / 0.3) = 3.8 at x = -6.5 + 0.3 Φ⁻¹(0.1) = -6.5 - 0.3 × 1.2816
    fall = math.log10(analyse(lrs, curve(-6.5)).suggestions["fall_start"].lr)
    assert abs(fall - (-6.5 - 0.3 * 1.2816)) <= 0.035
    # step at 10^-7.2: most of the quarter is at 2 already, the plateau is 2 and the fall is the real one near 10^-3
    fall = math.log10(analyse(lrs, curve(-7.2)).suggestions["fall_start"].lr)
    assert -3.1 <= fall <= -2.95


def test_a_minimum_at_the_second_point_reads_the_noise_over_the_whole_curve():
    lrs = exponential_lrs(1e-4, 1.0, 40)
    losses = [1.0, 1.0, 1.0, 1.0, 1.0, 0.1] + [1.0 + (i % 2) * 0.2 for i in range(34)]
    a = analyse(lrs, losses)
    assert a.suggestions["minimum"].index >= 4
    assert a.noise is not None and a.noise >= 0


def test_steepest_and_valley_read_the_ema_and_stop_at_its_minimum():
    lrs = exponential_lrs(1e-5, 1.0, 100)
    idx = usable_points(lrs, [1.0] * 100)
    # EMA given: a smooth fall steepest at 40, its minimum at 70, then up to 5 and a sharp drop to 2 (still above
    # the minimum): that drop is steeper, but after the minimum, so it is not the suggestion
    ema = [3.0 - 2.0 / (1 + math.exp(-(i - 40) / 3)) if i <= 70 else (1.0 + 0.4 * (i - 70) if i <= 80 else 2.0) for i in range(100)]
    losses = [2.0] * 100
    a = analyse(lrs, losses, ema)
    assert a.suggestions["steepest"].index in (39, 40, 41)
    assert a.suggestions["steepest"].loss == pytest.approx(ema[a.suggestions["steepest"].index])
    assert idx[0] <= a.suggestions["valley"].index <= idx[-1]
    assert a.suggestions["valley"].loss == pytest.approx(ema[a.suggestions["valley"].index])
    # without an EMA one is computed from the losses with weight 0.05
    b = analyse(lrs, [3.0 - 2.0 / (1 + math.exp(-(i - 40) / 3)) for i in range(100)])
    ema_b = ema_curve([3.0 - 2.0 / (1 + math.exp(-(i - 40) / 3)) for i in range(100)])
    assert b.suggestions["valley"].loss == pytest.approx(ema_b[b.suggestions["valley"].index])


def test_suggest_returns_the_analysis_pair_and_prefers_a_full_length_reference():
    lrs, ref = kinked(200, plateau=2.0)
    noisy = kinked(200, plateau=2.0, sd=0.3, seed=4)[1]
    s, base, top = suggest(lrs, noisy, None, ref)
    a = analyse(lrs, noisy, None, ref)
    assert (base, top) == (a.base_lr, a.max_lr) and {k: v.lr for k, v in s.items()} == {k: v.lr for k, v in a.suggestions.items()}
    assert "reference-batch loss" in a.suggestions["minimum"].rule and "reference-batch loss" in a.suggestions["fall_start"].rule
    short = analyse(lrs, noisy, None, ref[:-1])  # not one value per point: ignored, the batch losses are read
    assert short.centred == analyse(lrs, noisy).centred and "batch loss" in short.suggestions["minimum"].rule
    assert "reference" not in short.suggestions["minimum"].rule
    assert analyse([], [], None, []).base_lr is None


# ---------------------------------------------------------------- the result and its file

def _result(**extra) -> LRFindResult:
    lrs, losses = kinked(60, plateau=2.0)
    losses[-1] = math.nan
    a = analyse(lrs, losses)
    return LRFindResult(lrs=lrs, losses=losses, smoothed=ema_curve(losses), suggestions=a.suggestions, base_lr=a.base_lr, max_lr=a.max_lr,
                        start_lr=1e-8, end_lr=10.0, num_iter=80, smooth=0.05, diverge=5.0, stopped="non-finite", stop_reason="nan",
                        variant="v", preset="p", dataset="d", device="cpu", centred=a.centred, noise=a.noise, stability=a.stability, **extra)


def test_the_result_dict_names_everything_and_writes_null_for_non_finite(tmp_path):
    r = _result(reference=[1.0] * 59 + [math.inf], read_from="reference", extra={"run_dir": "x"})
    d = r.to_dict()
    assert r.steps == 60 and d["steps"] == 60 and d["num_iter"] == 80
    assert d["losses"][-1] is None and d["smoothed"][-1] is None and d["reference"] == [1.0] * 59 + [None]
    assert d["losses"][:59] == r.losses[:59]
    assert d["cyclic"]["base_lr"] == r.base_lr and d["cyclic"]["max_lr"] == r.max_lr and d["cyclic"]["stability"] == r.stability
    assert "5 %" in d["cyclic"]["rule"] and "/ 10" in d["cyclic"]["rule"] and "/ 6" in d["cyclic"]["rule"]
    assert (d["preset"], d["variant"], d["dataset"], d["device"], d["stopped"], d["stop_reason"]) == ("p", "v", "d", "cpu", "non-finite", "nan")
    assert (d["start_lr"], d["end_lr"], d["smooth"], d["diverge"], d["noise_sd"], d["read_from"], d["run_dir"]) == (1e-8, 10.0, 0.05, 5.0, r.noise, "reference", "x")
    assert d["centred"] == r.centred and d["lrs"] == r.lrs
    s = d["suggestions"]["minimum"]
    assert set(s) == {"lr", "loss", "index", "rule"} and s["lr"] == r.suggestions["minimum"].lr
    assert Suggestion("x", None, "r", note="why").to_dict() == {"lr": None, "loss": None, "index": None, "rule": "r", "note": "why"}
    path = tmp_path / "lr_find.json"
    save_result(r, path)
    assert json.loads(path.read_text()) == json.loads(json.dumps(d))
    assert load_bounds(path) == (r.base_lr, r.max_lr) and load_bounds(tmp_path) == (r.base_lr, r.max_lr)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not readable JSON"),
        ("[1, 2]", "no usable cyclic.base_lr/max_lr"),
        ('{"cyclic": 3}', "no usable cyclic.base_lr/max_lr"),
        ('{"cyclic": {"base_lr": 0.01, "max_lr": 0.001}}', "no usable"),
        ('{"cyclic": {"base_lr": 0.01, "max_lr": 0.01}}', "no usable"),
        ('{"cyclic": {"base_lr": 0, "max_lr": 0.1}}', "no usable"),
        ('{"cyclic": {"base_lr": null, "max_lr": 0.1}}', "no usable"),
        ('{"cyclic": {"base_lr": "0.001", "max_lr": 0.1}}', "no usable"),
        ('{"cyclic": {"base_lr": 1e-3, "max_lr": 1e999}}', "no usable"),
    ],
)
def test_load_bounds_refuses_a_file_without_a_usable_pair_in_one_line(tmp_path, content, message):
    path = tmp_path / "lr_find.json"
    path.write_text(content)
    with pytest.raises(NntuiError) as err:
        load_bounds(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("--from-lr-find ")


def test_load_bounds_names_a_missing_file_and_accepts_a_good_pair(tmp_path):
    with pytest.raises(NntuiError, match="file not found; pass the lr_find.json written by `nntui lr-find`"):
        load_bounds(tmp_path / "nope.json")
    with pytest.raises(NntuiError, match="file not found"):
        load_bounds(tmp_path)  # a directory without lr_find.json
    (tmp_path / "lr_find.json").write_text('{"cyclic": {"base_lr": 1, "max_lr": 2.5}}')
    assert load_bounds(tmp_path) == (1.0, 2.5) and all(type(v) is float for v in load_bounds(tmp_path))


# ---------------------------------------------------------------- steepest: only before the EMA's minimum

def _steepest_on(ema: list[float]) -> tuple[int, float, str]:
    lrs = exponential_lrs(1e-4, 1.0, len(ema))  # 9 points: none skipped, even steps in log10(LR)
    s = analyse(lrs, [1.0] * len(ema), ema).suggestions["steepest"]
    assert s.name == "steepest" and s.lr == lrs[s.index]
    return s.index, s.loss, s.rule


def test_steepest_looks_before_the_ema_minimum_once_that_is_3_points_in():
    # minimum at 3: slopes before it -0.1, -2.45 (index 2); the steeper -3.95 at 5 comes after it
    assert _steepest_on([5, 4.9, 4.8, 0.0, 9.0, 1.0, 1.1, 1.2, 1.3])[:2] == (2, 4.8)
    # minimum at 2 (under 3 points in): the whole curve counts, and 5 (slope -3.95) wins over 1 (-2.5)
    assert _steepest_on([5, 4.0, 0.0, 9.0, 1.0, 1.1, 1.2, 1.3, 1.4])[0] == 4
    # minimum at 5: the slope at 4 (-2.5) is the last one before it; the one at the minimum (-4.25) is not looked at
    index, loss, rule = _steepest_on([5, 5, 5, 5, 9, 0, 0.5, 0.6, 0.7])
    assert (index, loss) == (4, 9)
    assert rule == "steepest descent of the smoothed loss (EMA) against log10(LR), before its minimum"


def test_valley_names_its_point_and_rule():
    lrs = exponential_lrs(1e-4, 1.0, 9)
    ema = [5.0, 4, 3, 2, 1, 0, 0.5, 0.6, 0.7]
    v = analyse(lrs, [1.0] * 9, ema).suggestions["valley"]
    assert v.name == "valley" and v.index == _quadratic_valley(ema) and v.lr == lrs[v.index] and v.loss == ema[v.index]
    assert v.rule == "fastai's valley: inside the longest falling stretch of the smoothed loss (EMA), 1/2 of the way down"
    s, _, _ = suggest(lrs, [1.0] * 9, ema)  # suggest passes the EMA on
    assert s["valley"].index == v.index and s["steepest"].index == analyse(lrs, [1.0] * 9, ema).suggestions["steepest"].index


def test_rule_texts_name_the_curve_they_read():
    lrs = exponential_lrs(1e-4, 1.0, 9)
    a = analyse(lrs, [2.0, 1.9, 1.7, 1.4, 1.0, 0.8, 0.9, 1.5, 2.0]).suggestions
    assert a["minimum"].rule == "LR at the minimum of the centred smoothed batch loss (an upper bound, not a training LR)"
    assert a["min_div_10"].rule == "LR at the minimum of the centred smoothed batch loss / 10"
    assert a["fall_start"].rule == "LR where the batch loss starts to fall: its smoothed curve stays 5 % and 1.5 noise sd below the plateau from here on"
    one = analyse([1e-3], [1.0], None, [1.0]).suggestions  # too short, but a reference of one point is still the curve named
    assert one["minimum"].rule == "LR at the minimum of the centred smoothed reference-batch loss (an upper bound, not a training LR)"
    assert {k: (s.name, s.rule) for k, s in analyse([1e-3], [1.0]).suggestions.items()} == {
        "steepest": ("steepest", "steepest descent of the smoothed loss (EMA) against log10(LR), before its minimum"),
        "valley": ("valley", "fastai's valley: inside the longest falling stretch of the smoothed loss (EMA), 1/2 of the way down"),
        "min_div_10": ("min_div_10", "LR at the minimum of the centred smoothed batch loss / 10"),
        "minimum": ("minimum", "LR at the minimum of the centred smoothed batch loss (an upper bound, not a training LR)"),
    }


def test_load_bounds_refuses_a_folder_named_like_the_file(tmp_path):
    (tmp_path / "lr_find.json").mkdir()
    with pytest.raises(NntuiError) as err:
        load_bounds(tmp_path)
    assert str(err.value).startswith(f"--from-lr-find {tmp_path / 'lr_find.json'}: not a regular file")


def test_every_suggestion_carries_its_own_name():
    lrs, losses = kinked(200, plateau=2.0, sd=0.05)
    assert {k: s.name for k, s in analyse(lrs, losses).suggestions.items()} == {
        k: k for k in ("steepest", "valley", "min_div_10", "minimum", "fall_start")}


def _robust_sd(ys: list[float]) -> float:
    d = [b - a for a, b in zip(ys, ys[1:])]
    med = sorted(d)[len(d) // 2] if len(d) % 2 else sum(sorted(d)[len(d) // 2 - 1 : len(d) // 2 + 1]) / 2
    dev = sorted(abs(x - med) for x in d)
    mad = dev[len(dev) // 2] if len(dev) % 2 else (dev[len(dev) // 2 - 1] + dev[len(dev) // 2]) / 2
    return 1.4826 * mad / math.sqrt(2)


def test_the_noise_is_read_up_to_the_minimum_once_that_is_2_points_in():
    # points 2 decades apart: the 0.3-decade smoothing leaves every point alone, so the minimum is where it is put
    lrs = [10.0 ** (-20 + 2 * i) for i in range(12)]  # 12 points: the first is skipped, 11 usable
    tail = [2.0, 2.6, 2.1, 2.9, 2.2, 2.8, 2.3, 2.7]
    usable = [3.0, 3.2, 1.0] + tail  # the minimum at usable point 2: the noise from points 0..2 only
    a = analyse(lrs, [9.0] + usable)
    assert a.suggestions["minimum"].index == 3
    assert a.noise == pytest.approx(_robust_sd(usable[:3]), rel=1e-9) and a.noise == pytest.approx(1.4826 * 1.2 / math.sqrt(2), rel=1e-9)
    usable = [3.0, 1.0, 3.2] + tail  # the minimum at usable point 1: too few before it, the whole curve's noise
    a = analyse(lrs, [9.0] + usable)
    assert a.suggestions["minimum"].index == 2
    assert a.noise == pytest.approx(_robust_sd(usable), rel=1e-9)


def test_a_short_curve_takes_its_plateau_from_3_points():
    # 2 decades apart (no smoothing), minimum at usable point 8: a quarter of 8 is 2, so the plateau is the median
    # of the first 3 points (2, 2, 4) = 2, and the loss falls 5 % below it (1.9) only at the minimum; no noise:
    # every difference but two is 0. Were the plateau 3 (the median of 4 points), the fall would start at point 4.
    lrs = [10.0 ** (-20 + 2 * i) for i in range(10)]  # 10 points: the first is skipped
    a = analyse(lrs, [9.0, 2.0, 2.0, 4.0, 4.0, 2.5, 2.5, 2.5, 2.5, 1.0])
    assert a.noise == 0.0 and a.suggestions["minimum"].index == 9
    assert a.suggestions["fall_start"].index == 9


def test_the_smallest_inputs_of_the_pieces():
    assert noise_sd([0.0, 1.0, 0.0]) == pytest.approx(1.4826 / math.sqrt(2))  # 3 points: 2 differences are enough
    assert _steepest([0.0, 1.0, 2.0], [3.0, 2.0, 1.0]) == 1  # 3 points: the middle one
    assert _steepest([0.0, 1.0, 2.0, 3.0], [3.0, 3.0, 3.0, 0.0]) == 2  # the last interior point counts
    assert _valley([]) == 0
    assert _band([1.0, 0.0], 0, 1, 1.0)["decades"] == 0.0  # a zero upper end: 0 decades, not a math error
