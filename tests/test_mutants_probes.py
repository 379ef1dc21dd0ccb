"""The probe around a real optimizer step (nntui/engine/probes/probe.py, capture.py) on a tiny network with
same-shaped layers, every recorded field against plain torch (weights before/after step(), autograd .grad,
optimizer.state, the activations recomputed by hand), through both backends (issue 15, item 5:
scripts/mutation.sh probes runs these per mutant; in-process, a few milliseconds each)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch._dynamo  # noqa: F401 (an optimizer's first __init__ imports it, 2 s: once at collection, not per mutant)
from torch import nn

from nntui.engine.probes import Probe, param_groups
from nntui.engine.probes.capture import Capture, find_layers


def tiny_net() -> nn.Sequential:
    """0: tanh after it; 2: relu after it; 4: no activation module (its own output); 5: the network's output."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 3))


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, 5, generator=g) * 3, torch.randint(0, 3, (6,), generator=g)


def hand_forward(net: nn.Sequential, x: torch.Tensor):
    """Per probed layer: (its input, (kind, activation) or None), recomputed without hooks."""
    with torch.no_grad():
        h0 = torch.tanh(net[0](x))
        h1 = torch.relu(net[2](h0))
        h2 = net[4](h1)
    return [(x, ("tanh", h0)), (h0, ("relu", h1)), (h1, ("output", h2)), (h2, None)]


def five(t: torch.Tensor) -> list[float]:
    flat = t.detach().double().flatten()
    return [flat.min().item(), *torch.quantile(flat, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist(), flat.max().item()]


def probed_step(net, opt, x, y, prefer_numpy, after_step=None, before_step=True):
    probe = Probe(net, opt, prefer_numpy=prefer_numpy)
    probe.attach()
    out = net(x)
    probe.detach()
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(out, y).backward()
    if before_step:
        probe.before_step()
    opt.step()
    if after_step:
        after_step()
    return probe, probe.collect(7)


LAYERS = (0, 2, 4, 5)
ACT_KEYS = ("act_mean", "act_std", "saturation", "dead")


def check_layers(layers, net, reference, before, grads, opt_expected):
    """reference: hand_forward before the step (the forward pass saw those weights)."""
    assert [layer["name"] for layer in layers] == ["0", "2", "4", "5"]
    for i, (layer, (inp, act)) in enumerate(zip(layers, reference)):
        w, g = net[LAYERS[i]].weight.detach(), grads[i]
        update = (w - before[i]).double().norm().item()
        assert layer["weight_norm"] == pytest.approx(w.double().norm().item(), rel=1e-6)
        assert layer["update_norm"] == pytest.approx(update, rel=1e-5, abs=1e-12)
        assert layer["update_ratio"] == pytest.approx(update / w.double().norm().item(), rel=1e-5, abs=1e-12)
        if g is None:
            assert layer["grad"] == [None] * 5 and layer["grad_norm"] is None and layer["grad_hist"] is None
        else:
            assert layer["grad_norm"] == pytest.approx(g.double().norm().item(), rel=1e-6)
            assert layer["grad"] == pytest.approx(five(g.abs()), rel=1e-6)
            assert sum(layer["grad_hist"]["counts"]) == g.numel()
        for key, value in opt_expected[i].items():
            assert layer[key] == (None if value is None else pytest.approx(value, rel=1e-5)), (layer["name"], key)
        assert layer["act"] == pytest.approx(five(inp), rel=1e-6)
        if act is None:
            assert [layer[k] for k in ACT_KEYS] == [None] * 4
            continue
        kind, a = act
        assert layer["act_mean"] == pytest.approx(a.mean().item(), abs=1e-6)
        assert layer["act_std"] == pytest.approx(a.std().item(), rel=1e-5)
        saturated = a.abs() >= 0.99 if kind == "tanh" else None
        dead = saturated if kind == "tanh" else (a <= 0 if kind == "relu" else None)
        assert layer["saturation"] == (None if saturated is None else pytest.approx(saturated.float().mean().item()))
        assert layer["dead"] == (None if dead is None else pytest.approx(dead.all(dim=0).float().mean().item()))


def weights(net):
    return [net[i].weight.detach().clone() for i in LAYERS]


def no_opt_state():
    return [{"momentum_norm": None, "exp_avg_norm": None, "exp_avg_sq_rms": None, "effective_lr": None} for _ in LAYERS]


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_an_sgd_momentum_step_matches_plain_torch(prefer_numpy):
    net, (x, y) = tiny_net(), batch()
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9, weight_decay=0.01, nesterov=True)
    reference, before = hand_forward(net, x), weights(net)
    probe, record = probed_step(net, opt, x, y, prefer_numpy)
    [(step, layers, groups, opt_layers)] = probe.read([record])
    assert step == 7 and groups == [{"lr": 0.5, "weight_decay": 0.01, "momentum": 0.9, "nesterov": True}]
    expected = no_opt_state()
    for i, e in zip(LAYERS, expected):
        e["momentum_norm"] = opt.state[net[i].weight]["momentum_buffer"].norm().item()
    check_layers(layers, net, reference, before, [net[i].weight.grad for i in LAYERS], expected)
    assert opt_layers == [{"name": layer["name"], **{k: layer[k] for k in expected[0]}} for layer in layers]
    assert any(layer["dead"] for layer in layers) or any(layer["saturation"] for layer in layers)  # not all zero


def adam_expected(net, opt, lr, layers=LAYERS):
    expected = no_opt_state()[: len(layers)]
    for i, e in zip(layers, expected):
        state, group = opt.state[net[i].weight], opt.param_groups[0]
        v_hat = state["exp_avg_sq"].double() / (1 - group["betas"][1] ** state["step"].item())
        steps = (lr / (v_hat.sqrt() + group["eps"])).flatten()
        e.update(exp_avg_norm=state["exp_avg"].norm().item(), exp_avg_sq_rms=v_hat.mean().sqrt().item(),
                 effective_lr=steps.sort().values[(steps.numel() - 1) // 2].item())
    return expected


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_an_adam_step_under_a_per_batch_schedule_reports_the_step_it_took(prefer_numpy):
    net, (x, y) = tiny_net(), batch()
    opt = torch.optim.Adam(net.parameters(), lr=0.1, betas=(0.8, 0.9), eps=1e-3)
    schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    for _ in range(2):  # the second step: bias correction of step 2, an LR the schedule already moved once
        reference, before = hand_forward(net, x), weights(net)
        lr = opt.param_groups[0]["lr"]
        probe, record = probed_step(net, opt, x, y, prefer_numpy, after_step=schedule.step)
        assert isinstance(record.values, np.ndarray) is prefer_numpy  # numpy on the CPU unless told otherwise
        if lr == 0.1:  # step 1's bias correction too
            [(_, layers, _, _)] = probe.read([record])
            check_layers(layers, net, reference, before, [net[i].weight.grad for i in LAYERS], adam_expected(net, opt, lr))
    assert lr == pytest.approx(0.01) and opt.param_groups[0]["lr"] == pytest.approx(0.001)
    [(_, layers, groups, _)] = probe.read([record])
    assert groups == [{"lr": pytest.approx(0.01), "weight_decay": 0.0, "betas": [0.8, 0.9]}]
    check_layers(layers, net, reference, before, [net[i].weight.grad for i in LAYERS], adam_expected(net, opt, lr))


@pytest.mark.parametrize("prefer_numpy", [True, False])
@pytest.mark.parametrize("name", ["rmsprop", "adagrad", "adadelta"])
def test_second_moments_of_rmsprop_and_adagrad_not_adadelta(prefer_numpy, name):
    net, (x, y) = tiny_net(), batch()
    make = {"rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.02, alpha=0.7, eps=1e-4, momentum=0.5),
            "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.3),  # eps: torch's default 1e-10
            "adadelta": lambda p: torch.optim.Adadelta(p, lr=1.0)}
    opt = make[name](net.parameters())
    reference, before = hand_forward(net, x), weights(net)
    probe, record = probed_step(net, opt, x, y, prefer_numpy)
    [(_, layers, groups, _)] = probe.read([record])
    expected = no_opt_state()
    if name != "adadelta":
        group = opt.param_groups[0]
        for i, e in zip(LAYERS, expected):
            state = opt.state[net[i].weight]
            v = state["square_avg" if name == "rmsprop" else "sum"].double()
            steps = (group["lr"] / (v.sqrt() + group["eps"])).flatten()
            e.update(exp_avg_sq_rms=v.mean().sqrt().item(), effective_lr=steps.sort().values[(steps.numel() - 1) // 2].item())
            if name == "rmsprop":
                e["momentum_norm"] = state["momentum_buffer"].norm().item()
    check_layers(layers, net, reference, before, [net[i].weight.grad for i in LAYERS], expected)
    if name == "rmsprop":
        assert groups == [{"lr": 0.02, "weight_decay": 0.0, "momentum": 0.5, "alpha": 0.7}]


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_a_frozen_layer_has_no_gradient_and_a_step_without_snapshot_no_update(prefer_numpy):
    net, (x, y) = tiny_net(), batch()
    net[2].weight.requires_grad_(False)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    reference = hand_forward(net, x)
    probe, record = probed_step(net, opt, x, y, prefer_numpy, before_step=False)
    [(_, layers, groups, _)] = probe.read([record])
    after = weights(net)  # no snapshot before the step: the update reads as none
    check_layers(layers, net, reference, after, [net[i].weight.grad for i in LAYERS], no_opt_state())
    assert layers[0]["update_norm"] == 0.0 and layers[0]["update_ratio"] == 0.0
    assert groups == [{"lr": 0.5, "weight_decay": 0.0, "momentum": 0.0}]


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_records_of_a_block_read_back_together_and_weights_replaced_between_them(prefer_numpy):
    net, (x, y) = tiny_net(), batch()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    probe, records, norms = Probe(net, opt, prefer_numpy=prefer_numpy), [], []
    for step in (1, 2, 3):
        if step == 3:  # a new tensor (a checkpoint loaded by assignment): the probe must read it, not the old one
            net[0].weight = nn.Parameter(torch.full((4, 5), 2.0))
            opt.param_groups[0]["params"][0] = net[0].weight
        probe.attach()
        out = net(x)
        probe.detach()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(out, y).backward()
        before = net[0].weight.detach().clone()
        probe.before_step()
        opt.step()
        norms.append((net[0].weight.detach().norm().item(), (net[0].weight.detach() - before).norm().item()))
        records.append(probe.collect(step))
    read = probe.read(records)
    assert probe.read([]) == []
    assert [step for step, *_ in read] == [1, 2, 3]
    assert [v for r in read for v in (r[1][0]["weight_norm"], r[1][0]["update_norm"])] == pytest.approx([v for n in norms for v in n], rel=1e-5)
    flat = [v for r in records for v in (r.values.tolist())]
    assert probe.read(records, flat) == read


def test_layers_are_modules_with_a_matrix_weight_by_path_and_a_choice_of_them():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2), nn.Embedding(3, 2))
    assert list(find_layers(net)) == ["0", "3", "4"]
    assert list(find_layers(net, ["4", "0"])) == ["4", "0"]
    with pytest.raises(ValueError, match=r"no layer named '9', 'x'; the model's layers are: 0, 3, 4"):
        find_layers(net, ["0", "9", "x"])
    assert list(find_layers(nn.Linear(3, 2))) == ["Linear"]
    with pytest.raises(ValueError, match="no layer named 'a'; the model's layers are: none"):
        find_layers(nn.ReLU(), ["a"])
    with pytest.raises(ValueError, match="ReLU has no layer to probe"):
        Probe(nn.ReLU(), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))


class Shared(nn.Module):
    """One layer called twice, an integer input, an activation applied functionally, a residual."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.embed, self.fc, self.act, self.head = nn.Embedding(5, 3), nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2)

    def forward(self, tokens):
        e = self.embed(tokens)
        h = self.act(self.fc(e))
        h = torch.relu(self.fc(h)) + h
        return self.head(h)


def test_capture_takes_first_calls_skips_integer_inputs_and_never_the_networks_output():
    net = Shared()
    tokens = torch.tensor([0, 3, 4, 1])
    capture = Capture(net, [net.embed, net.fc, net.head])
    net(tokens)
    inputs, activations = capture.finish()
    with torch.no_grad():
        e = net.embed(tokens)
        h = torch.sigmoid(net.fc(e))
    assert inputs[0] is None and torch.equal(inputs[1], e)  # an index tensor is no input to summarise
    assert torch.equal(inputs[2], torch.relu(net.fc(h)) + h)
    assert activations[0][0] == "output" and torch.equal(activations[0][1], e)  # no activation module after it
    assert activations[1][0] == "sigmoid" and torch.equal(activations[1][1], h)  # its first call's
    assert activations[2] is None  # the network's output
    assert not any(m._forward_hooks for m in net.modules())  # every hook removed
    assert capture.inputs == [] and capture.activations == []
    net(tokens)  # no hook left to fire


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_chosen_layers_in_their_order_and_a_collect_without_forward_or_snapshot(prefer_numpy):
    net, (x, y) = tiny_net(), batch()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    probe = Probe(net, opt, layers={"second": net[2], "first": net[0]}, prefer_numpy=prefer_numpy)
    probe.attach()
    probe.attach()  # a second attach adds no second set of hooks
    out = net(x)
    probe.detach()
    probe.detach()  # and a second detach keeps what the first one took
    nn.functional.cross_entropy(out, y).backward()
    reference, before = hand_forward(net, x), weights(net)
    probe.before_step()
    opt.step()
    first, after_first = probe.collect(1), weights(net)
    opt.step()  # no forward pass, no snapshot: no activations, no update
    second = probe.collect(2)
    (_, layers, _, _), (_, again, _, _) = probe.read([first, second])
    assert [layer["name"] for layer in layers] == ["second", "first"]
    w2, w0 = net[2].weight.detach(), net[0].weight.detach()
    assert layers[0]["act"] == pytest.approx(five(reference[1][0]), rel=1e-6)  # net[2]'s input: net[0]'s activation
    assert layers[1]["act"] == pytest.approx(five(x), rel=1e-6)
    assert layers[0]["act_mean"] == pytest.approx(reference[1][1][1].mean().item(), abs=1e-6)
    assert layers[1]["act_std"] == pytest.approx(reference[0][1][1].std().item(), rel=1e-5)
    assert again[0]["weight_norm"] == pytest.approx(w2.double().norm().item(), rel=1e-6)
    assert again[1]["weight_norm"] == pytest.approx(w0.double().norm().item(), rel=1e-6)
    assert layers[1]["update_norm"] == pytest.approx((after_first[0] - before[0]).norm().item(), rel=1e-5)
    for layer in again:
        assert layer["update_norm"] == 0.0 and layer["act"] == [None] * 5
        assert [layer[k] for k in ACT_KEYS] == [None] * 4


def test_the_first_activation_module_after_a_layer_is_its_activation():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.ReLU(), nn.Linear(4, 2), nn.Sigmoid())
    x = torch.randn(5, 3)
    capture = Capture(net, [net[0], net[3]])
    net(x)
    inputs, activations = capture.finish()
    with torch.no_grad():
        h = torch.tanh(net[0](x))
        assert activations[0][0] == "tanh" and torch.equal(activations[0][1], h)
        assert torch.equal(inputs[1], torch.relu(h))
        assert activations[1][0] == "sigmoid" and torch.equal(activations[1][1], torch.sigmoid(net[3](torch.relu(h))))


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_adam_with_a_frozen_first_layer_and_no_snapshot_uses_the_groups_lr(prefer_numpy):
    net, (x, y) = tiny_net(), batch()
    net[0].weight.requires_grad_(False)  # no gradient, no Adam state: the layers after it still have theirs
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.05)
    reference = hand_forward(net, x)
    probe, record = probed_step(net, opt, x, y, prefer_numpy, before_step=False)
    [(_, layers, _, _)] = probe.read([record])
    expected = adam_expected(net, opt, 0.05, LAYERS[1:])
    check_layers(layers, net, reference, weights(net), [net[i].weight.grad for i in LAYERS], [no_opt_state()[0], *expected])


@pytest.mark.parametrize("prefer_numpy", [True, False])
def test_an_integer_input_has_no_summary_and_a_dead_unit_counts(prefer_numpy):
    net = Shared()
    with torch.no_grad():
        net.fc.bias[1] = -50.0  # this sigmoid unit sits at 0 on every example: saturated, dead
    tokens = torch.tensor([0, 3, 4, 1, 2, 2])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    probe = Probe(net, opt, prefer_numpy=prefer_numpy)
    probe.attach()
    out = net(tokens)
    probe.detach()
    out.sum().backward()
    probe.before_step()
    opt.step()
    [(_, layers, _, _)] = probe.read([probe.collect(1)])
    with torch.no_grad():
        h = torch.sigmoid(net.fc(net.embed(tokens)))
    assert [layer["name"] for layer in layers] == ["embed", "fc", "head"]
    assert layers[0]["act"] == [None] * 5 and layers[0]["grad_norm"] > 0
    dead = ((h <= 0.01) | (h >= 0.99)).all(dim=0).float().mean().item()
    assert dead == pytest.approx(1 / 3) and layers[1]["dead"] == pytest.approx(dead)
