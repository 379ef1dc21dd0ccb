"""The LR range test's reference batch: the sweep measures the loss on a fixed batch after every step.

The rule read off that curve (5 % and 1.5 noise sd below the plateau) is tested on synthetic curves in
tests/test_mutants_lr_suggest.py."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from nntui.engine.lr_finder import REFERENCE_ROWS, analyse, range_test
from nntui.engine.train import VariantRun
from nntui.record import events as ev
from nntui.record.state import RunState
from tests.test_lr_finder import CPU, blobs, config

pytestmark = pytest.mark.usefixtures("one_thread")


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
