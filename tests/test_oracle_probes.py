"""Oracle tests: every statistic a probe records, computed a second, independent way with plain torch.

The oracle never calls nntui's reductions: it reads autograd's .grad directly, records layer inputs and
activation outputs with its own forward hooks, copies the weights before and after optimizer.step(), and
reads optimizer.state and param_groups. Models have several same-shaped layers, so a statistic taken from
the wrong layer (a buffer shared by shape, an index off by one) shows up as a mismatch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nntui.engine.models import MLP
from nntui.engine.probes import Probe, find_layers
from nntui.presets import ModelConfig

# Exact figures (min, max, norms, sums, counts) are float32 data reduced in float64 on both sides: they
# agree to rounding. The float32 difference w_before - w_after may round where the oracle's float64 one
# does not (relative 6e-8 per element), hence 1e-6 rather than 1e-12.
EXACT = 1e-6
# Quartiles of tensors over 512 elements come from a fixed 512-element sample. A sample quantile's rank
# in the population has standard error sqrt(q (1 - q) / 512) <= 0.022; 0.09 is four of those, so a
# correct probe passes (deterministically: the seeds are fixed) while a value taken from another tensor or
# another quartile lands far outside (neighbouring quartiles are 0.25 apart in rank).
RANK_TOLERANCE = 0.09
SATURATED = {"sigmoid": lambda a: (a <= 0.01) | (a >= 0.99), "tanh": lambda a: a.abs() >= 0.99}
ACTIVATION_KINDS = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu", nn.LeakyReLU: "relu"}


class Oracle:
    """Records, with its own hooks, what one probed training step did to each layer."""

    def __init__(self, model: nn.Module, layers: dict[str, nn.Module]) -> None:
        self.model, self.layers = model, layers
        self.inputs: dict[str, torch.Tensor] = {}
        self.own_outputs: dict[str, torch.Tensor] = {}
        self.acts: dict[str, tuple[str, torch.Tensor]] = {}
        self._last: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        handles = []
        names = {id(m): n for n, m in self.layers.items()}

        def on_layer(module, args, output):
            name = names[id(module)]
            self.inputs.setdefault(name, args[0].detach().clone())
            self.own_outputs.setdefault(name, output)
            self._last = name

        def on_activation(module, args, output):
            if self._last is not None and self._last not in self.acts:
                self.acts[self._last] = (ACTIVATION_KINDS[type(module)], output.detach().clone())
            self._last = None

        for module in self.model.modules():
            if id(module) in names:
                handles.append(module.register_forward_hook(on_layer))
            elif type(module) in ACTIVATION_KINDS:
                handles.append(module.register_forward_hook(on_activation))
        try:
            out = self.model(x)
        finally:
            for h in handles:
                h.remove()
        # a layer no activation module follows: its own output (mean and std only), unless it is the network's
        for name, own in self.own_outputs.items():
            if name not in self.acts and own is not out:
                self.acts[name] = ("output", own.detach().clone())
        return out


def train_probed(model, opt, layers, batches, probe_steps, prefer_numpy, loss_fn=nn.functional.cross_entropy, schedule=None):
    """Trains on batches, probing at probe_steps; per probed step the probe's numbers (read back once at
    the end, as the trainer does) and the oracle's record of that step."""
    probe = Probe(model, opt, layers=layers, prefer_numpy=prefer_numpy)
    records, oracles = [], []
    for step, (x, y) in enumerate(batches, 1):
        probed = step in probe_steps
        oracle = Oracle(model, layers)
        if probed:
            probe.attach()
        try:
            out = oracle.forward(x) if probed else model(x)
        finally:
            if probed:
                probe.detach()
        opt.zero_grad(set_to_none=True)
        loss_fn(out, y).backward()
        if probed:
            oracle.grads = {n: m.weight.grad.detach().clone() for n, m in layers.items()}
            oracle.before = {n: m.weight.detach().clone() for n, m in layers.items()}
            oracle.groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items() if k != "params"} for g in opt.param_groups]
            probe.before_step()
        opt.step()
        if probed:
            oracle.after = {n: m.weight.detach().clone() for n, m in layers.items()}
            oracle.state = {n: {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in opt.state[m.weight].items()} for n, m in layers.items()}
            records.append(probe.collect(step))
            oracles.append(oracle)
        if schedule is not None:
            schedule.step()
    return list(zip(probe.read(records), oracles))


# -- the oracle's figures


def assert_five_numbers(got: list, values: torch.Tensor, what: str) -> None:
    """min and max exactly; quartiles exactly (as torch.quantile) up to 512 elements, by rank above."""
    flat = values.detach().double().flatten()
    assert None not in got, what
    assert got[0] == pytest.approx(flat.min().item(), rel=EXACT, abs=0), f"{what}: min"
    assert got[4] == pytest.approx(flat.max().item(), rel=EXACT, abs=0), f"{what}: max"
    quartiles = torch.quantile(flat, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    if flat.numel() <= 512:
        assert got[1:4] == pytest.approx(quartiles, rel=EXACT, abs=1e-30), f"{what}: quartiles"
        return
    n = flat.numel()
    for q, value in zip((0.25, 0.5, 0.75), got[1:4]):
        below = (flat < value).sum().item() / n  # ties (zero gradients of dead units) count on both sides
        at_or_below = (flat <= value).sum().item() / n
        assert below <= q + RANK_TOLERANCE and at_or_below >= q - RANK_TOLERANCE, f"{what}: q{q} = {value} sits at rank {below:.3f}..{at_or_below:.3f}"


def expected_activation(kind: str, act: torch.Tensor) -> dict:
    a = act.detach().double().reshape(act.shape[0], -1)
    out = {"act_mean": a.mean().item(), "act_std": a.std().item(), "saturation": None, "dead": None}
    if kind in SATURATED:
        sat = SATURATED[kind](a)
        out["saturation"] = sat.double().mean().item()
        out["dead"] = sat.all(dim=0).double().mean().item()
    elif kind == "relu":
        out["dead"] = (a <= 0).all(dim=0).double().mean().item()
    return out


def expected_optimizer(opt, name: str, oracle: Oracle) -> dict:
    state, group = oracle.state[name], oracle.groups[0]
    out = {"momentum_norm": None, "exp_avg_norm": None, "exp_avg_sq_rms": None, "effective_lr": None}
    if "momentum_buffer" in state and state["momentum_buffer"] is not None:
        out["momentum_norm"] = state["momentum_buffer"].double().norm().item()
    if "exp_avg" in state:
        out["exp_avg_norm"] = state["exp_avg"].double().norm().item()
    v = state.get("exp_avg_sq", state.get("square_avg"))
    if v is not None:
        v = v.double()
        if "exp_avg_sq" in state:
            v = v / (1 - group["betas"][1] ** float(state["step"]))
        out["exp_avg_sq_rms"] = v.mean().sqrt().item()
        steps = (group["lr"] / (v.sqrt() + group["eps"])).flatten().sort().values
        out["effective_lr"] = steps[(steps.numel() - 1) // 2].item()  # the lower median
    return out


def assert_histogram(got: dict, grad: torch.Tensor, what: str) -> None:
    """The bucket counts equal np.histogram's of every |grad| element, on the edges the record describes."""
    assert (got["log2_min"], len(got["counts"])) == (-40, 49), what
    edges = [2.0 ** k for k in range(-40, 8)]
    # [0, 2^-40): underflow (zeros too); [2^6, 2^7) the last bin; [2^7, inf]: overflow (np.histogram closes the last bin)
    want, _ = np.histogram(grad.abs().double().flatten().numpy(), bins=[0.0, *edges, math.inf])
    assert got["counts"] == want.tolist(), what
    assert sum(got["counts"]) == grad.numel(), what


def check_step(layers_read, groups_read, opt_layers, oracle: Oracle, opt) -> None:
    assert [layer["name"] for layer in layers_read] == list(oracle.layers)
    for layer in layers_read:
        name = layer["name"]
        grad, before, after = oracle.grads[name], oracle.before[name], oracle.after[name]
        assert_five_numbers(layer["grad"], grad.abs(), f"{name} |grad W|")
        assert_histogram(layer["grad_hist"], grad, f"{name} |grad W| histogram")
        assert_five_numbers(layer["act"], oracle.inputs[name], f"{name} input")
        update = after.double() - before.double()
        exact = {
            "weight_norm": after.double().norm().item(),
            "grad_norm": grad.double().norm().item(),
            "update_norm": update.norm().item(),
            "update_ratio": update.norm().item() / after.double().norm().item(),
            **expected_optimizer(opt, name, oracle),
        }
        kind, act = oracle.acts.get(name, (None, None))
        exact.update(expected_activation(kind, act) if act is not None else {"act_mean": None, "act_std": None, "saturation": None, "dead": None})
        for key, want in exact.items():
            if want is None:
                assert layer[key] is None, f"{name} {key}: {layer[key]} where none is expected"
            else:
                assert layer[key] == pytest.approx(want, rel=EXACT, abs=1e-12), f"{name} {key}"
        opt_row = next(row for row in opt_layers if row["name"] == name)
        for key in ("momentum_norm", "exp_avg_norm", "exp_avg_sq_rms", "effective_lr"):
            assert opt_row[key] == layer[key], f"{name} {key} in optimizer_state"
    for got, want in zip(groups_read, oracle.groups, strict=True):
        assert got["lr"] == pytest.approx(want["lr"], rel=1e-12)
        assert got["weight_decay"] == pytest.approx(want["weight_decay"], rel=1e-12)
        for key in ("momentum", "betas", "alpha"):
            assert (key in got) == (key in want), key
            if key in got:
                assert got[key] == pytest.approx(want[key], rel=1e-12), key


# -- models


def mlp(activation="sigmoid", hidden=(64, 64, 64), inputs=784, **cfg) -> tuple[MLP, dict[str, nn.Module]]:
    model = MLP(inputs, 10, ModelConfig(hidden=list(hidden), activation=activation, init="xavier_normal", **cfg))
    return model, dict(zip(model.layer_names, model.linears))


def batches(n: int, shape=(784,), batch: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, *shape, generator=g), torch.randint(0, 10, (batch,), generator=g)) for _ in range(n)]


OPTIMIZERS = {
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4, foreach=True),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.85, 0.995), foreach=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01, foreach=False),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9),
}
MLPS = {
    "sigmoid-3-same": dict(activation="sigmoid"),
    "tanh-batchnorm-before": dict(activation="tanh", batchnorm="before"),
    "relu-batchnorm-after-dropout": dict(activation="relu", batchnorm="after", dropout=0.3),
    "relu-dropout-after-activation": dict(activation="relu", dropout=[0.2, 0.5, 0.0], dropout_position="after_activation"),
    "leaky-small-exact-quartiles": dict(activation="leaky_relu", hidden=(16, 16, 16), inputs=20),
}


@pytest.mark.parametrize("prefer_numpy", [True, False], ids=["numpy", "torch"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("model_name", list(MLPS))
def test_every_mlp_statistic_matches_the_oracle(model_name, optimizer, prefer_numpy):
    torch.manual_seed(0)
    cfg = dict(MLPS[model_name])
    model, layers = mlp(**cfg)
    opt = OPTIMIZERS[optimizer](model.parameters())
    data = batches(4, shape=(cfg.get("inputs", 784),))
    for (step, layers_read, groups, opt_layers), oracle in train_probed(model, opt, layers, data, {1, 3, 4}, prefer_numpy):
        check_step(layers_read, groups, opt_layers, oracle, opt)


@pytest.mark.parametrize("prefer_numpy", [True, False], ids=["numpy", "torch"])
def test_same_shaped_layers_get_their_own_gradient_summaries(prefer_numpy):
    """The lecture's boxplot: fc2 and fc3 (both 64x64) must differ as their gradients do."""
    torch.manual_seed(0)
    model, layers = mlp("sigmoid")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    [((_, read, _, _), oracle)] = train_probed(model, opt, layers, batches(1), {1}, prefer_numpy)
    fc2, fc3 = read[1], read[2]
    assert fc2["grad"] != fc3["grad"]
    assert fc2["grad"][4] == pytest.approx(oracle.grads["fc2"].abs().max().item(), rel=EXACT)
    assert fc3["grad"][4] == pytest.approx(oracle.grads["fc3"].abs().max().item(), rel=EXACT)


@pytest.mark.parametrize("prefer_numpy", [True, False], ids=["numpy", "torch"])
def test_a_per_batch_schedule_records_the_lr_each_probed_step_used(prefer_numpy):
    torch.manual_seed(0)
    model, layers = mlp("relu")
    opt = torch.optim.SGD([{"params": model.layers[0].parameters(), "lr": 0.2}, {"params": model.layers[1:].parameters()}],
                          lr=0.1, momentum=0.5)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step)
    for (step, _, groups, _), oracle in train_probed(model, opt, layers, batches(3), {1, 3}, prefer_numpy, schedule=schedule):
        assert [g["lr"] for g in groups] == pytest.approx([0.2 * 0.5 ** (step - 1), 0.1 * 0.5 ** (step - 1)])
        assert [g["momentum"] for g in groups] == [0.5, 0.5]


# -- any model: a small CNN (two same-shaped convs, one followed by a functional ReLU), find_layers, hooks


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(),
                                      nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(nn.functional.relu(self.features(x)).flatten(1))  # features.4: no activation module


@pytest.mark.parametrize("prefer_numpy", [True, False], ids=["numpy", "torch"])
@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam"])
def test_every_cnn_statistic_matches_the_oracle(optimizer, prefer_numpy):
    torch.manual_seed(0)
    model = SmallCNN()
    layers = find_layers(model)
    assert list(layers) == ["features.0", "features.2", "features.4", "head"]
    opt = OPTIMIZERS[optimizer](model.parameters())
    probed = train_probed(model, opt, layers, batches(3, shape=(1, 8, 8), batch=16), {1, 3}, prefer_numpy)
    for (step, layers_read, groups, opt_layers), oracle in probed:
        check_step(layers_read, groups, opt_layers, oracle, opt)
        kinds = {name: kind for name, (kind, _) in oracle.acts.items()}
        assert kinds == {"features.0": "relu", "features.2": "tanh", "features.4": "output"}
        assert layers_read[2]["dead"] is None and layers_read[2]["act_std"] is not None


def test_find_layers_takes_every_weight_of_two_or_more_dimensions_by_module_path():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 8), nn.LayerNorm(8), nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2))
    assert {name: type(m) for name, m in find_layers(model).items()} == {"0": nn.Embedding, "2": nn.Linear, "4": nn.Conv1d}
    assert list(find_layers(model, ["4", "0"])) == ["4", "0"]
    with pytest.raises(ValueError, match="no layer named 'fc9'.*0, 2, 4"):
        find_layers(model, ["fc9"])
    assert list(find_layers(nn.Linear(3, 2))) == ["Linear"]


def test_hooks_exist_only_between_attach_and_detach():
    model = SmallCNN()
    probe = Probe(model, torch.optim.SGD(model.parameters(), lr=0.1), layers=find_layers(model, ["features.2", "head"]))
    assert probe.layer_names == ["features.2", "head"]
    hooked = lambda: sum(len(m._forward_hooks) for m in model.modules())  # noqa: E731
    assert hooked() == 0
    probe.attach()
    assert hooked() > 0
    model(torch.randn(2, 1, 8, 8))
    probe.detach()
    assert hooked() == 0


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam"])
def test_numpy_and_torch_reductions_agree_to_rounding_on_a_cnn(optimizer):
    """Both backends accumulate in float64 and take the same sample: equal up to summation order."""
    results = []
    for prefer_numpy in (True, False):
        torch.manual_seed(0)
        model = SmallCNN()
        opt = OPTIMIZERS[optimizer](model.parameters())
        results.append(train_probed(model, opt, find_layers(model), batches(2, shape=(1, 8, 8), batch=16), {1, 2}, prefer_numpy))
    for ((_, a_layers, _, _), _), ((_, b_layers, _, _), _) in zip(*results):
        for a, b in zip(a_layers, b_layers):
            for key, value in a.items():
                if isinstance(value, float):
                    assert value == pytest.approx(b[key], rel=1e-9, abs=1e-15), (a["name"], key)
                else:
                    assert value == b[key], (a["name"], key)


@pytest.mark.parametrize("prefer_numpy", [True, False], ids=["numpy", "torch"])
def test_histogram_buckets_edges_zeros_and_non_finite_gradients(prefer_numpy):
    """Values on the edges, zeros, and an infinite gradient land where the format says."""
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 8, bias=False))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    probe = Probe(model, opt, prefer_numpy=prefer_numpy)
    model(torch.randn(3, 4)).sum().backward()
    special = torch.tensor([0.0, 2.0 ** -41, 2.0 ** -40, -(2.0 ** -39), -5e-7, 127.9, 128.0, -1e5], dtype=torch.float32)
    model[0].weight.grad.view(-1)[: len(special)] = special
    model[2].weight.grad.view(-1)[0] = math.inf
    probe.before_step()
    opt.step()
    [(_, layers, _, _)] = probe.read([probe.collect(1)])
    counts = layers[0]["grad_hist"]["counts"]
    rest = model[0].weight.grad.view(-1)[len(special):]
    assert_histogram(layers[0]["grad_hist"], model[0].weight.grad, "special values")
    assert counts[0] >= 2 and counts[1] >= 1 and counts[-1] >= 2 and sum(counts) == 32
    assert counts[-1] == 2 + int((rest.abs() >= 128).sum()) and counts[2] >= 1
    assert layers[1]["grad_hist"] is None  # a non-finite gradient norm: no histogram (five numbers are None too)
