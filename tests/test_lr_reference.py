"""The LR range test's reference batch: the curve the suggestions are read from, and the fall-start rule on it."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch
import torch.nn.functional as F

from nntui.engine.lr_finder import REFERENCE_ROWS, analyse, exponential_lrs, range_test
from nntui.engine.train import VariantRun
from nntui.record import events as ev
from nntui.record.state import RunState
from tests.test_lr_finder import CPU, blobs, config

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_the_sweep_records_the_reference_batch_loss_after_every_step():
    extra = {"model": {"hidden": [16, 16], "activation": "relu", "batchnorm": "before", "dropout": 0.3}}
    run = VariantRun("x", "", config("sgd", lr=0.05, **extra), blobs(n=400), CPU, None)
    x_ref, y_ref = run.data.x_train[:REFERENCE_ROWS], run.data.y_train[:REFERENCE_ROWS]
    assert len(x_ref) == REFERENCE_ROWS == 256
    seen: list[float] = []
    step = run.train_step

    def step_and_measure(slot: int, probe: bool = False) -> None:
        step(slot, probe)
        twin = copy.deepcopy(run.model)  # plain torch on a copy: train mode (BatchNorm on this batch), dropout off
        dropouts = [m for m in twin.modules() if "Dropout" in type(m).__name__]
        assert len(dropouts) == 2
        for m in dropouts:
            m.p = 0.0
        with torch.no_grad():
            seen.append(F.cross_entropy(twin(x_ref), y_ref).item())

    run.train_step = step_and_measure
    events: list = []
    result = range_test(run, start_lr=1e-4, end_lr=10.0, num_iter=60, emit=events.append)
    assert len(result.reference) == len(result.losses) == result.steps == len(seen)
    assert result.reference == pytest.approx(seen, rel=1e-5, abs=1e-6)
    assert result.read_from == "reference" and result.to_dict()["reference"] == pytest.approx(seen, rel=1e-5, abs=1e-6)
    # the events carry it, and the run state rebuilds it
    points = [e for e in events if isinstance(e, ev.LRSweepPoints)]
    assert [v for e in points for v in e.reference] == result.reference
    state = RunState()
    for e in events:
        state.apply(e)
    assert state.sweeps["x"].reference == result.reference
    # the suggestions are the ones read off that curve
    again = analyse(result.lrs, result.losses, result.smoothed, result.reference)
    assert (again.base_lr, again.max_lr) == (result.base_lr, result.max_lr)
