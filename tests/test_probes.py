"""Probe statistics: both backends agree, and each number matches a direct computation."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from nntui.engine.models import MLP
from nntui.engine.optim import build_optimizer
from nntui.presets import ModelConfig, OptimizerConfig
from nntui.engine.probes.stats import QUANTILE_SAMPLE
from nntui.engine.probes import LAYER_FIELDS, Probe


def probed_step(model: MLP, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, prefer_numpy: bool = True) -> list[dict]:
    """One training step with a probe, as the trainer does it; the layer stats."""
    probe = Probe(model, opt, layers=model.named_layers(), prefer_numpy=prefer_numpy)
    probe.attach()
    try:
        out = model(x)
    finally:
        probe.detach()
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(out, y).backward()
    probe.before_step()
    opt.step()
    [(_, layers, _, _)] = probe.read([probe.collect(1)])
    return layers


def setup(activation: str = "sigmoid", optimizer: str = "sgd", hidden=(64, 64), batch: int = 32, seed: int = 0):
    torch.manual_seed(seed)
    model = MLP(784, 10, ModelConfig(hidden=list(hidden), activation=activation, init="xavier_normal"))
    opt = build_optimizer(model.parameters(), OptimizerConfig(name=optimizer, lr=0.05, momentum=0.9 if optimizer == "sgd" else 0.0))
    x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
    return model, opt, x, y


@pytest.mark.parametrize(("activation", "optimizer"), [("sigmoid", "sgd"), ("tanh", "adam"), ("relu", "rmsprop"), ("relu", "adagrad")])
def test_numpy_and_torch_backends_give_the_same_statistics(activation, optimizer):
    model, opt, x, y = setup(activation, optimizer)
    twin, twin_opt = copy.deepcopy(model), None
    twin_opt = build_optimizer(twin.parameters(), OptimizerConfig(name=optimizer, lr=0.05, momentum=0.9 if optimizer == "sgd" else 0.0))
    for _ in range(2):  # the second step has optimizer state to report
        numpy_layers = probed_step(model, opt, x, y, prefer_numpy=True)
        torch_layers = probed_step(twin, twin_opt, x, y, prefer_numpy=False)
    # The same sampled elements, and sums accumulated in float64 on both: they agree to rounding.
    for a, b in zip(numpy_layers, torch_layers):
        for key in ("grad", "act"):
            assert a[key] == b[key], key
        for key in LAYER_FIELDS:
            if a[key] is None or b[key] is None:
                assert a[key] is b[key] is None, key
            else:
                assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-15), key


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_statistics_match_a_direct_computation(prefer_numpy):
    model, opt, x, y = setup("tanh", "sgd", hidden=(64, 64), batch=48)
    before = [m.weight.detach().clone() for m in model.linears]
    hidden = torch.tanh(x @ model.linears[0].weight.detach().T + model.linears[0].bias.detach())
    layers = probed_step(model, opt, x, y, prefer_numpy)
    fc1, fc2 = layers[0], layers[1]
    grad = model.linears[0].weight.grad.abs().flatten()
    assert grad.numel() > QUANTILE_SAMPLE  # the quartiles come from a sample, the ends stay exact
    assert fc1["grad"][0] == pytest.approx(grad.min().item(), rel=1e-6)
    assert fc1["grad"][4] == pytest.approx(grad.max().item(), rel=1e-6)
    quartiles = torch.quantile(grad, torch.tensor([0.25, 0.5, 0.75])).tolist()
    assert fc1["grad"][1:4] == pytest.approx(quartiles, rel=0.25)  # a 512-element sample of 50,176
    assert fc1["grad_norm"] == pytest.approx(model.linears[0].weight.grad.norm().item(), rel=1e-5)
    assert fc1["weight_norm"] == pytest.approx(model.linears[0].weight.detach().norm().item(), rel=1e-5)
    update = model.linears[0].weight.detach() - before[0]
    assert fc1["update_norm"] == pytest.approx(update.norm().item(), rel=1e-4)
    assert fc1["update_ratio"] == pytest.approx(update.norm().item() / model.linears[0].weight.detach().norm().item(), rel=1e-4)
    assert fc1["act_mean"] == pytest.approx(hidden.mean().item(), abs=1e-6)
    assert fc1["act_std"] == pytest.approx(hidden.std().item(), rel=1e-4)
    assert fc1["saturation"] == pytest.approx((hidden.abs() >= 0.99).float().mean().item())
    assert fc1["dead"] == pytest.approx((hidden.abs() >= 0.99).all(dim=0).float().mean().item())
    assert fc2["act"][0] == pytest.approx(hidden.min().item(), rel=1e-6)  # fc2's input is fc1's activation
    assert fc2["act"][4] == pytest.approx(hidden.max().item(), rel=1e-6)
    assert layers[-1]["saturation"] is None and layers[-1]["act_mean"] is None  # the output feeds no activation


def test_adam_moments_and_effective_step():
    model, opt, x, y = setup("relu", "adam")
    probed_step(model, opt, x, y)
    layers = probed_step(model, opt, x, y)
    state = opt.state[model.linears[1].weight]
    group = opt.param_groups[0]
    v_hat = state["exp_avg_sq"] / (1 - group["betas"][1] ** float(state["step"]))
    fc2 = layers[1]
    assert fc2["exp_avg_norm"] == pytest.approx(state["exp_avg"].norm().item(), rel=1e-5)
    assert fc2["exp_avg_sq_rms"] == pytest.approx(v_hat.mean().sqrt().item(), rel=1e-4)
    assert fc2["effective_lr"] == pytest.approx((group["lr"] / (v_hat.sqrt() + group["eps"])).median().item(), rel=1e-6)
    assert fc2["momentum_norm"] is None


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_a_nan_gradient_blanks_that_layers_summary_only(prefer_numpy):
    model, opt, x, y = setup()
    probe = Probe(model, opt, layers=model.named_layers(), prefer_numpy=prefer_numpy)
    probe.attach()
    out = model(x)
    probe.detach()
    torch.nn.functional.cross_entropy(out, y).backward()
    model.linears[1].weight.grad[3, 5] = math.nan
    probe.before_step()
    [(_, layers, _, _)] = probe.read([probe.collect(1)])
    assert layers[1]["grad"] == [None] * 5 and layers[1]["grad_norm"] is None
    assert None not in layers[0]["grad"] and None not in layers[2]["grad"]


def test_records_of_a_block_are_read_back_together_in_order():
    model, opt, x, y = setup()
    probe = Probe(model, opt, layers=model.named_layers())
    records = []
    for step in (1, 2, 3):
        probe.attach()
        out = model(x)
        probe.detach()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(out, y).backward()
        probe.before_step()
        opt.step()
        records.append(probe.collect(step))
    read = probe.read(records)
    assert [step for step, *_ in read] == [1, 2, 3]
    assert read[0][1][0]["weight_norm"] != read[2][1][0]["weight_norm"]  # each record kept its own step's numbers
