"""lr-schedule verdicts on hand-built LR / loss traces (no training): the shapes each schedule draws, broken
ones, and the words. Expected values are worked out by hand in each test (mutation killers for schedules.py)."""

from __future__ import annotations

import math

import pytest

from nntui.expect import EXPECT_MODELS
from nntui.record.state import RunState, VariantState
from nntui.verdicts import judge
from nntui.verdicts.schedules import plateau_lrs

SPE = 10  # steps per epoch; the LR trace has one point per block: (the block's last step, its first step's LR)


def variant(schedule: dict, trace: list[tuple[int, float]], *, name: str = "v", lr: float = 0.01, spe: int = SPE,
            test_losses: tuple = (), best: float | None = None, keep_best: bool = False,
            train: dict[int, float] | None = None, status: str = "completed") -> VariantState:
    steps = max((x for x, _ in trace), default=0)
    config = {"optimizer": {"name": "sgd", "lr": lr}, "schedule": schedule, "keep_best": keep_best}
    v = VariantState(name=name, steps_per_epoch=spe, total_steps=steps, config=config, status=status, step=steps, epoch=steps / spe)
    for x, y in trace:
        v.lr.append(x, y)
    for x, y in (train or {}).items():
        v.train_loss.append(x, y)
    v.test_loss = list(test_losses)
    if best is not None:
        v.checkpoints["best"] = {"step": 0, "epoch": 0, "path": "best.pt", "test_loss": best}
    return v


def judged(*variants: VariantState, **expect):
    state = RunState()
    state.variants = {v.name: v for v in variants}
    table = {"kind": "lr-schedule", "variant": variants[0].name, **expect}
    return judge(state, EXPECT_MODELS["lr-schedule"].model_validate(table))


def line(v: VariantState, **expect) -> tuple[bool | None, str]:
    return judged(v, **expect)[0][v.name]


END = ((0, 0.0),)  # no test loss: the line ends "test loss —"


# ---------------------------------------------------------------- step decay

STEP = {"name": "step", "step_size": 2, "gamma": 0.1}
# lr 0.01, x0.1 every 2 epochs, 5-step blocks over 6 epochs: epochs 0-1 at 1e-2, 2-3 at 1e-3, 4-5 at 1e-4
STEP_TRACE = [(x, 1e-2) for x in (5, 10, 15, 20)] + [(x, 1e-3) for x in (25, 30, 35, 40)] + [(x, 1e-4) for x in (45, 50, 55, 60)]


def test_step_decay_on_time_is_as_scheduled_and_the_finding_quotes_the_levels():
    verdicts, finding = judged(variant(STEP, STEP_TRACE, test_losses=[(60, 0.25)]))
    assert verdicts["v"] == (True, "v: LR ×0.1 every 2 epochs: 0.01 → 0.001 → 0.0001; test loss 0.25 — as scheduled")
    assert finding == (True, "the LR followed its schedule — reproduced (LR ×0.1 every 2 epochs: 0.01 → 0.001 → 0.0001)")


def test_step_decay_one_block_late_names_the_step_and_both_lrs():
    late = [(25, 1e-2) if x == 25 else (x, y) for x, y in STEP_TRACE]  # step 25 is in epoch 2: it should run at 1e-3
    ok, text = line(variant(STEP, late))
    assert (ok, text) == (False, "v: LR ×0.1 every 2 epochs: 0.01 → 0.001 → 0.0001, but step 25 ran at 0.01, expected 0.001; test loss — — not as scheduled")


def test_step_decay_one_block_early_is_caught_at_the_epochs_last_step():
    early = [(20, 1e-3) if x == 20 else (x, y) for x, y in STEP_TRACE]  # step 20 is epoch 1's last: still 1e-2
    assert line(variant(STEP, early))[1].endswith("but step 20 ran at 0.001, expected 0.01; test loss — — not as scheduled")


def test_an_lr_off_by_a_tenth_of_a_percent_is_wrong_even_when_tiny():
    off = [(x, y * 1.001) if x == 60 else (x, y) for x, y in STEP_TRACE]  # 1.001e-4 for 1e-4: 1e-7 apart
    ok, text = line(variant(STEP, off))
    assert ok is False and "but step 60 ran at 0.0001, expected 0.0001" in text
    jitter = [(x, y * (1 + 1e-9)) for x, y in STEP_TRACE]  # float noise is not a wrong LR
    assert line(variant(STEP, jitter))[0] is True
    rounded = [(x, y * (1 + 5e-7)) if x == 5 else (x, y) for x, y in STEP_TRACE]  # inside the 1e-6 tolerance: one level
    assert line(variant(STEP, rounded)) == line(variant(STEP, STEP_TRACE))


def test_a_constant_lr_under_a_step_schedule_has_one_level_and_is_not_as_scheduled():
    ok, text = line(variant(STEP, [(x, 1e-2) for x in (5, 10, 15, 20)]))
    assert (ok, text) == (False, "v: LR ×0.1 every 2 epochs: 0.01; test loss — — not as scheduled")


def test_step_defaults_are_x0_1_every_epoch_and_full_batch_epochs_are_single_steps():
    trace = [(1, 0.5), (2, 0.05), (3, 0.005)]  # one step per epoch: the LR falls tenfold at every step
    ok, text = line(variant({"name": "step"}, trace, lr=0.5, spe=1))
    assert (ok, text) == (True, "v: LR ×0.1 every 1 epochs: 0.5 → 0.05 → 0.005; test loss — — as scheduled")
    ok, text = line(variant({"name": "step", "step_size": 2, "gamma": 0.5}, [(1, 0.5), (2, 0.5), (3, 0.25), (4, 0.25)], lr=0.5, spe=1))
    assert (ok, text) == (True, "v: LR ×0.5 every 2 epochs: 0.5 → 0.25; test loss — — as scheduled")


def test_step_levels_are_shown_with_two_significant_digits():
    trace = [(10, 0.0123), (20, 0.00123)]
    ok, text = line(variant({"name": "step", "step_size": 1, "gamma": 0.1}, trace, lr=0.0123))
    assert (ok, text) == (True, "v: LR ×0.1 every 1 epochs: 0.012 → 0.0012; test loss — — as scheduled")


def test_a_zero_lr_is_a_wrong_lr_not_a_crash():
    ok, text = line(variant(STEP, [*STEP_TRACE[:4], (25, 0.0), *STEP_TRACE[5:]]))
    assert ok is False and "but step 25 ran at 0, expected 0.001" in text and ": 0.01 → 0.001 → 0.0001," in text


# ---------------------------------------------------------------- cyclic

CYCLIC = {"name": "cyclic", "base_lr": 1e-3, "max_lr": 0.1, "mode": "triangular"}
TRIANGLE = [0.001, 0.0505, 0.1, 0.0505, 0.001, 0.0505, 0.1, 0.0505, 0.001]  # peaks at 2 and 6, trough at 4: 3 turns


def blocks(lrs: list[float], size: int = 5) -> list[tuple[int, float]]:
    return [(size * (i + 1), lr) for i, lr in enumerate(lrs)]


def cyclic_line(lrs: list[float], **schedule) -> tuple[bool | None, str]:
    return line(variant({**CYCLIC, **schedule}, blocks(lrs)))


def test_a_triangle_between_the_bounds_is_as_scheduled():
    assert cyclic_line(TRIANGLE) == (True, "v: LR cycles triangular between 0.001 and 0.1 (bounds 0.001–0.1, 3 turns); test loss — — as scheduled")
    assert cyclic_line([0.001, 0.1, 0.001, 0.1]) == (True, "v: LR cycles triangular between 0.001 and 0.1 (bounds 0.001–0.1, 2 turns); test loss — — as scheduled")


def test_one_turn_is_not_a_cycle():
    assert cyclic_line([0.001, 0.1, 0.001]) == (False, "v: LR cycles triangular between 0.001 and 0.1 (bounds 0.001–0.1, 1 turns); test loss — — not as scheduled")


def test_a_flat_lr_inside_the_bounds_has_no_turns():
    assert cyclic_line([0.05] * 5) == (False, "v: LR cycles triangular between 0.05 and 0.05 (bounds 0.001–0.1, 0 turns); test loss — — not as scheduled")


def test_leaving_the_bounds_either_way_is_named():
    above = [lr * 1.01 if lr == 0.1 else lr for lr in TRIANGLE]
    assert cyclic_line(above) == (False, "v: LR cycles triangular between 0.001 and 0.101 (bounds 0.001–0.1, 3 turns), LR left the bounds; test loss — — not as scheduled")
    below = [lr * 0.99 if lr == 0.001 else lr for lr in TRIANGLE]
    ok, text = cyclic_line(below)
    assert ok is False and "between 0.00099 and 0.1" in text and "LR left the bounds" in text
    rounding = [lr * (1 + 5e-7) if lr == 0.1 else lr * (1 - 5e-7) if lr == 0.001 else lr for lr in TRIANGLE]
    assert cyclic_line(rounding)[0] is True  # float rounding at the bounds is not leaving them


def test_a_cycle_that_misses_the_top_or_the_base_is_not_as_scheduled():
    low_peaks = [0.001, 0.05, 0.001, 0.05, 0.001]  # half-way up: fine for triangular2's shrinking peaks only
    assert cyclic_line(low_peaks)[0] is False
    assert cyclic_line(low_peaks, mode="triangular2") == (True, "v: LR cycles triangular2 between 0.001 and 0.05 (bounds 0.001–0.1, 3 turns); test loss — — as scheduled")
    no_mode = line(variant({k: v for k, v in CYCLIC.items() if k != "mode"}, blocks(low_peaks)))  # the default mode: triangular
    assert no_mode == (False, "v: LR cycles triangular between 0.001 and 0.05 (bounds 0.001–0.1, 3 turns); test loss — — not as scheduled")
    assert cyclic_line([0.001, 0.095, 0.001, 0.095, 0.001])[0] is True  # 94 % of the way up counts as the top
    high_troughs = [0.1, 0.02, 0.1, 0.02, 0.1]  # never back near the base
    assert cyclic_line(high_troughs)[0] is False
    assert cyclic_line([0.1, 0.009, 0.1, 0.009, 0.1])[0] is True  # 8 % of the way up counts as the base
    assert cyclic_line([0.015, 0.1, 0.015, 0.1], base_lr=0.01)[0] is True  # the way up is top - base (0.09 here)
    assert cyclic_line([0.01, 0.09, 0.01, 0.09], base_lr=0.01)[0] is False  # 89 % of it
    assert cyclic_line([0.1, 0.9, 0.1, 0.9], base_lr=0.0, max_lr=1.0)[0] is True  # at least 90 % up, at most 10 %


@pytest.mark.parametrize(("schedule", "trace"), [
    ({"base_lr": "auto"}, TRIANGLE), ({"max_lr": None}, TRIANGLE), ({}, [0.001, 0.1]),
])
def test_cyclic_without_bounds_or_trace_says_so(schedule, trace):
    assert cyclic_line(trace, **schedule) == (False, "v: no cyclic bounds or LR trace; test loss — — not as scheduled")


# ---------------------------------------------------------------- one-cycle

ONE_CYCLE = {"name": "one_cycle", "max_lr": 0.2}


def one_cycle_line(lrs: list[float], top: float = 0.2) -> tuple[bool | None, str]:
    return line(variant({**ONE_CYCLE, "max_lr": top}, blocks(lrs)))


def test_one_cycle_rises_to_the_peak_then_anneals_below_the_start():
    lrs = [0.008, 0.008, 0.1, 0.2, 0.1, 0.1, 0.0001]  # flat stretches on the way up and down are fine
    assert one_cycle_line(lrs) == (True, "v: LR 0.008 → peak 0.2 (max_lr 0.2) → 0.0001; test loss — — as scheduled")
    assert one_cycle_line([0.008, 0.17, 0.0001])[0] is True  # 85 % of max_lr is the peak
    assert one_cycle_line([0.008, 0.2, 0.0001], top=0.25)[0] is True  # 80 %: still (blocks can miss the exact peak step)


def test_one_cycle_with_a_second_rise_or_fall_is_named():
    assert one_cycle_line([0.008, 0.1, 0.05, 0.2, 0.1, 0.0001]) == (
        False, "v: LR 0.008 → peak 0.2 (max_lr 0.2) → 0.0001, not one rise then one fall; test loss — — not as scheduled")
    ok, text = one_cycle_line([0.008, 0.2, 0.05, 0.1, 0.0001])
    assert ok is False and text.endswith("→ 0.0001, not one rise then one fall; test loss — — not as scheduled")


def test_one_cycle_short_of_max_lr_or_ending_above_its_start_is_not_as_scheduled():
    assert one_cycle_line([0.008, 0.1, 0.15, 0.0001]) == (False, "v: LR 0.008 → peak 0.15 (max_lr 0.2) → 0.0001; test loss — — not as scheduled")
    assert one_cycle_line([0.008, 0.2, 0.1, 0.008])[0] is False
    assert one_cycle_line([0.008, 0.2, 0.1, 0.009])[0] is False


def test_one_cycle_without_max_lr_or_trace_says_so():
    assert line(variant({"name": "one_cycle"}, blocks([0.008, 0.2, 0.001]))) == (False, "v: no max_lr or LR trace; test loss — — not as scheduled")
    assert one_cycle_line([0.008, 0.2]) == (False, "v: no max_lr or LR trace; test loss — — not as scheduled")
    assert one_cycle_line([0.008, 0.2, 0.001])[0] is True  # three points are enough


# ---------------------------------------------------------------- warmup

WARMUP = [0.01, 0.06, 0.11, 0.16, 0.21, 0.26, 0.3, 0.28, 0.2, 0.1, 0.02, 0.001]  # lr 0.3: linear up, then down


def warmup_line(lrs: list[float], **schedule) -> tuple[bool | None, str]:
    return line(variant({"name": "warmup_cosine", "warmup_epochs": 3, **schedule}, blocks(lrs), lr=0.3))


def test_warmup_then_decay_is_as_scheduled_and_names_the_decay():
    assert warmup_line(WARMUP) == (True, "v: LR warms up 0.01 → 0.3 over 3 epoch(s), then cosine decay to 0.001; test loss — — as scheduled")
    step_decay = WARMUP[:7] + [0.03, 0.03, 0.003]
    assert warmup_line(step_decay, name="warmup_step", gamma=0.5) == (
        True, "v: LR warms up 0.01 → 0.3 over 3 epoch(s), then ×0.5 steps decay to 0.003; test loss — — as scheduled")
    ok, text = line(variant({"name": "warmup_step"}, blocks(step_decay), lr=0.3))
    assert ok is True and "over 1 epoch(s), then ×0.1 steps decay" in text  # the defaults: 1 epoch, ×0.1


def test_no_warmup_a_low_peak_or_no_decay_is_not_as_scheduled():
    assert warmup_line(WARMUP[6:])[0] is False  # starts at the full LR
    assert warmup_line([0.09, 0.1, *WARMUP[2:]])[0] is False  # starts at 30 % of the LR: no warmup to speak of
    assert warmup_line([0.07, 0.1, *WARMUP[2:]])[0] is True  # 23 %
    assert warmup_line([x * 0.85 for x in WARMUP])[0] is False  # peaks at 85 % of the LR
    assert warmup_line([x * 0.95 for x in WARMUP])[0] is True
    assert warmup_line(WARMUP[:7] + [0.2, 0.16])[0] is False  # ends above half the peak
    assert warmup_line(WARMUP[:7] + [0.2, 0.14])[0] is True
    assert warmup_line(WARMUP[:7] + [0.2, 0.15])[0] is False  # exactly half the peak
    assert warmup_line([0.01, 0.1, 0.27, 0.1])[0] is True  # a peak of exactly 90 % of the LR
    assert warmup_line(WARMUP[:4] + [0.1] + WARMUP[4:])[0] is False  # a dip on the way up
    assert warmup_line(WARMUP[:2] + [0.05] + WARMUP[2:])[0] is False  # a small one
    assert warmup_line(WARMUP[:6] + [0.2] + WARMUP[6:])[0] is False  # one just before the peak
    assert warmup_line([0.075, 0.1, *WARMUP[2:]])[0] is False  # starts at a quarter of the LR: too high for a warmup
    assert warmup_line(WARMUP[:2] + [0.06] + WARMUP[2:7] + [0.3] + WARMUP[7:])[0] is True  # flat stretches are fine
    assert warmup_line([0.01, 0.3, 0.001]) == (True, "v: LR warms up 0.01 → 0.3 over 3 epoch(s), then cosine decay to 0.001; test loss — — as scheduled")
    assert warmup_line(WARMUP[:9] + [0.25] + WARMUP[9:])[0] is False  # a bump on the way down
    assert warmup_line([0.01, 0.3]) == (False, "v: no LR trace; test loss — — not as scheduled")


# ---------------------------------------------------------------- reduce on plateau

PLATEAU = {"name": "plateau", "factor": 0.1, "patience": 1}


def per_epoch(lrs: list[float]) -> list[tuple[int, float]]:
    return [(SPE * (e + 1), lr) for e, lr in enumerate(lrs)]


def evals_at_epochs(losses: list[float]) -> list[tuple[int, float]]:
    return [(SPE * (e + 1), loss) for e, loss in enumerate(losses)]


def test_plateau_lrs_follow_reduce_lr_on_plateau_by_hand():
    # improvements at 1.0 and 0.8, then 0.9 and 0.85 are two epochs without one (patience 1): x0.1; 0.7 improves
    assert plateau_lrs([1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.76, 0.77], 1e-2, 0.1, 1) == pytest.approx(
        [1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4])
    assert plateau_lrs([1.0, 1.0, 1.0], 0.4, 0.5, 0) == pytest.approx([0.4, 0.2, 0.1])  # patience 0: every flat epoch


def test_plateau_improvement_is_relative_by_one_in_ten_thousand():
    assert plateau_lrs([1.0, 0.99995, 0.99995], 1e-2, 0.1, 1) == pytest.approx([1e-2, 1e-2, 1e-3])  # 5e-5 better: not enough
    assert plateau_lrs([1.0, 0.9998, 0.9996], 1e-2, 0.1, 1) == pytest.approx([1e-2, 1e-2, 1e-2])  # 2e-4 better each time
    assert plateau_lrs([1.0, 0.9999, 0.9999], 1e-2, 0.1, 1) == pytest.approx([1e-2, 1e-2, 1e-3])  # exactly 1e-4: torch says not better


def test_plateau_skips_non_finite_test_losses_like_the_trainer():
    # engine/optim.py steps the scheduler only on a finite test loss: a NaN epoch neither improves nor counts as bad
    assert plateau_lrs([1.0, math.nan, 1.1, 0.9], 1e-2, 0.1, 1) == pytest.approx([1e-2, 1e-2, 1e-2, 1e-2])
    assert plateau_lrs([1.0, math.inf, 1.1, 1.2], 1e-2, 0.1, 1) == pytest.approx([1e-2, 1e-2, 1e-2, 1e-3])


def test_plateau_drop_on_time_is_named_with_its_epoch_and_the_final_lr():
    v = variant(PLATEAU, per_epoch([1e-2] * 4 + [1e-3] * 2), test_losses=evals_at_epochs([1.0, 0.8, 0.9, 0.85, 0.7, 0.75]))
    assert line(v) == (True, "v: LR lowered ×0.1 after epoch 4 (2 epochs without a better test loss); final LR 0.001; test loss 0.75 — as scheduled")


def test_plateau_drop_an_epoch_early_names_the_step():
    v = variant(PLATEAU, per_epoch([1e-2] * 3 + [1e-3] * 3), test_losses=evals_at_epochs([1.0, 0.8, 0.9, 0.85, 0.7, 0.75]))
    assert line(v) == (False, "v: LR lowered ×0.1 after epoch 4 (2 epochs without a better test loss); final LR 0.001, but step 40 ran at 0.001; test loss 0.75 — not as scheduled")


def test_plateau_that_never_dropped_or_drops_only_after_the_last_epoch():
    v = variant(PLATEAU, per_epoch([1e-2] * 4), test_losses=evals_at_epochs([1.0, 0.9, 0.8, 0.7]))
    assert line(v) == (False, "v: LR lowered ×0.1 never (the test loss kept improving); final LR 0.01; test loss 0.7 — not as scheduled")
    v = variant(PLATEAU, per_epoch([1e-2] * 3), test_losses=evals_at_epochs([1.0, 1.1, 1.2]))  # the drop would come in epoch 4
    assert line(v)[1].startswith("v: LR lowered ×0.1 never")


def test_plateau_names_at_most_three_drops():
    schedule = {"name": "plateau", "factor": 0.5, "patience": 0}
    v = variant(schedule, per_epoch([0.01, 0.01, 0.005, 0.0025, 0.00125, 0.000625]), test_losses=evals_at_epochs([1.0] * 6))
    assert line(v) == (True, "v: LR lowered ×0.5 after epoch 2 (1 epochs without a better test loss), after epoch 3 (1 epochs without a better test loss), "
                             "after epoch 4 (1 epochs without a better test loss); final LR 0.000625; test loss 1 — as scheduled")


def test_plateau_defaults_and_blocks_past_the_evaluated_epochs():
    # defaults factor 0.1, patience 1; the LR of epochs not yet evaluated is not judged
    v = variant({"name": "plateau"}, per_epoch([1e-2, 1e-2, 1e-2, 1e-3, 5.0]), test_losses=evals_at_epochs([1.0, 1.0, 1.0]))
    assert line(v)[1].startswith("v: LR lowered ×0.1 after epoch 3 (2 epochs without a better test loss); final LR 5;")


# ---------------------------------------------------------------- the kept best model

def kept(test_losses: list[tuple[int, float]], best: float | None, spe: int = SPE) -> str:
    v = variant(CYCLIC, blocks(TRIANGLE), spe=spe, keep_best=True, test_losses=test_losses, best=best)
    return line(v)


TESTS = [(10, 0.5), (20, 0.35), (30, 0.3), (40, 0.32), (50, 0.4)]
CYCLE_WORDS = "v: LR cycles triangular between 0.001 and 0.1 (bounds 0.001–0.1, 3 turns)"


def test_the_kept_model_is_the_lowest_test_loss_and_its_epoch_is_named():
    assert kept(TESTS, 0.3) == (True, f"{CYCLE_WORDS}; kept model: test loss 0.3 from epoch 3, final test loss 0.4; test loss 0.4 — as scheduled")
    assert kept(TESTS[:3], 0.3) == (True, f"{CYCLE_WORDS}; kept model: test loss 0.3 from the last epoch; test loss 0.3 — as scheduled")
    assert kept([(1, 0.5), (2, 0.3), (3, 0.4)], 0.3, spe=1)[1] == f"{CYCLE_WORDS}; kept model: test loss 0.3 from epoch 2, final test loss 0.4; test loss 0.4 — as scheduled"


def test_a_tie_keeps_the_earlier_epoch_as_the_trainer_saves_only_on_improvement():
    assert kept([(10, 0.5), (20, 0.3), (30, 0.3)], 0.3)[1] == f"{CYCLE_WORDS}; kept model: test loss 0.3 from epoch 2, final test loss 0.3; test loss 0.3 — as scheduled"


def test_a_kept_model_that_is_not_the_best_or_missing_fails_the_variant():
    assert kept(TESTS, 0.35) == (False, f"{CYCLE_WORDS}; kept model's test loss 0.35 is not the best seen (0.3); test loss 0.4 — not as scheduled")
    assert kept(TESTS, 0.3 * (1 + 1e-6))[0] is False
    assert kept(TESTS, None) == (False, f"{CYCLE_WORDS}; keep_best is on but no best model was saved; test loss 0.4 — not as scheduled")
    assert kept([], 0.3) == (True, f"{CYCLE_WORDS}; test loss — — as scheduled")  # no evaluation yet: nothing to judge


# ---------------------------------------------------------------- the loss right after the first drop

DROP = [(10, 1e-2), (20, 1e-2 * (1 - 1e-9)), (30, 1e-3), (40, 1e-3)]  # decays at step 21 (epoch 2); float noise before
FALLING = {x: 1 - x / 100 for x in range(1, 41)}  # means: steps 11-20 0.845, steps 21-30 0.745


def test_the_train_loss_in_the_epoch_after_the_first_drop_is_compared_with_the_epoch_before():
    v = variant(STEP, DROP, train=FALLING)
    assert line(v, drop_helps=True) == (True, "v: LR ×0.1 every 2 epochs: 0.01 → 0.001; train loss 0.845 in the epoch before the first drop, 0.745 after; test loss — — as scheduled")
    rising = {x: x / 100 for x in range(1, 41)}
    assert line(variant(STEP, DROP, train=rising), drop_helps=True) == (
        False, "v: LR ×0.1 every 2 epochs: 0.01 → 0.001; train loss 0.155 in the epoch before the first drop, 0.255 after (no better); test loss — — not as scheduled")


def test_a_drop_at_the_first_epoch_boundary_compares_the_first_two_epochs():
    trace = [(10, 1e-2), (20, 1e-3), (30, 1e-4)]  # x0.1 every epoch: the first drop is in the second block
    ok, text = line(variant({"name": "step", "step_size": 1, "gamma": 0.1}, trace, train=FALLING), drop_helps=True)
    assert ok is True and "train loss 0.945 in the epoch before the first drop, 0.845 after;" in text  # steps 1-10, 11-20


def test_no_drop_or_no_losses_around_it_is_not_as_scheduled():
    flat = [(10, 1e-2), (20, 1e-2)]
    assert line(variant(STEP, flat, train=FALLING), drop_helps=True)[1] == "v: LR ×0.1 every 2 epochs: 0.01; no LR drop yet; test loss — — not as scheduled"
    before_only = {x: y for x, y in FALLING.items() if x <= 20}
    assert line(variant(STEP, DROP, train=before_only), drop_helps=True)[1].endswith("0.01 → 0.001; no LR drop yet; test loss — — not as scheduled")
    after_only = {x: y for x, y in FALLING.items() if x > 20}
    assert line(variant(STEP, DROP, train=after_only), drop_helps=True)[0] is False


# ---------------------------------------------------------------- a baseline, schedules without a check

def test_the_baseline_is_described_and_must_be_beaten_when_better_is_asked():
    v = variant(STEP, STEP_TRACE, test_losses=[(60, 0.25)])
    base = variant({"name": "none"}, [(60, 1e-2)], name="base", test_losses=[(60, 0.3)])
    verdicts, finding = judged(v, base, baseline="base", better=True)
    assert verdicts["base"] == (None, "base: constant LR 0.01; test loss 0.3")
    assert finding == (True, "the LR followed its schedule — reproduced (LR ×0.1 every 2 epochs: 0.01 → 0.001 → 0.0001; test loss v 0.25, base 0.3)")
    base.test_loss = [(60, 0.2)]
    assert judged(v, base, baseline="base", better=True)[1] == (
        False, "not reproduced: LR ×0.1 every 2 epochs: 0.01 → 0.001 → 0.0001; test loss v 0.25, base 0.2, base is not beaten")
    cosine = variant({"name": "warmup_cosine", "warmup_epochs": 0}, [(60, 0.3)], name="cos", lr=0.3)
    assert judged(v, cosine, baseline="cos")[0]["cos"] == (None, "cos: warmup_cosine schedule, LR 0.3 without warmup; test loss —")


def test_a_schedule_without_an_lr_check_is_not_as_scheduled():
    assert line(variant({"name": "exotic"}, STEP_TRACE)) == (False, "v: schedule 'exotic' has no LR check; test loss — — not as scheduled")
    v = variant({}, STEP_TRACE)
    v.config = {}  # no config recorded at all (an old run log)
    assert line(v) == (False, "v: schedule None has no LR check; test loss — — not as scheduled")
    v.config = {"optimizer": {"name": "sgd", "lr": 0.01}}  # no schedule table
    assert line(v) == (False, "v: schedule None has no LR check; test loss — — not as scheduled")


def test_without_a_recorded_lr_no_step_is_as_scheduled():
    for config in ({"schedule": STEP}, {"schedule": STEP, "optimizer": {"name": "sgd"}}):
        v = variant(STEP, STEP_TRACE)
        v.config = config
        ok, text = line(v)
        assert ok is False and ", but step 5 ran at 0.01, expected —;" in text
