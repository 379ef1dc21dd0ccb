"""Per-layer statistics on probed steps.

The reductions over weights, gradients, updates and activations run on the device, batched across
layers (foreach norms, one sort for every five-number summary, stacked activations), and leave one
flat tensor per probe (a ProbeRecord). The trainer reads a block's records back in one transfer; the
little arithmetic left (means, stds, ratios, interpolation: a few numbers per layer) is done on the
host, where a float costs nanoseconds instead of a kernel launch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nntui.models import MLP

QUARTILES = (0.25, 0.5, 0.75)
QUANTILE_SAMPLE = 512  # quartiles of bigger tensors come from a fixed sample of this many elements; min and max stay exact
# |x - centre| >= threshold counts as saturated (sigmoid: outside (0.01, 0.99); tanh: outside (-0.99, 0.99))
SATURATION = {"sigmoid": (0.5, 0.49), "tanh": (0.0, 0.99)}
ACT_FIELDS = ("act_mean", "act_std", "saturation", "dead")
OPT_FIELDS = ("momentum_norm", "exp_avg_norm", "exp_avg_sq_rms", "effective_lr")
LAYER_FIELDS = (*ACT_FIELDS, "weight_norm", "grad_norm", "update_norm", "update_ratio", *OPT_FIELDS)
_CACHE_LIMIT = 64
_cache: dict[tuple, Any] = {}


def _cached(key: tuple, make):
    value = _cache.get(key)
    if value is None:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        value = _cache[key] = make()
    return value


def _nan(device: torch.device) -> torch.Tensor:
    return _cached(("nan", device), lambda: torch.full((1,), math.nan, device=device))


def _sample_index(n: int, device: torch.device) -> torch.Tensor:
    """The same QUANTILE_SAMPLE positions of an n-element tensor at every probe (seeded, sorted)."""
    make = lambda: torch.randperm(n, generator=torch.Generator().manual_seed(n))[:QUANTILE_SAMPLE].sort().values.to(device)  # noqa: E731
    return _cached(("sample", n, device), make)


def _quartile_ranks(sizes: tuple[int, ...]) -> tuple[list[int], list[float]]:
    """Flat positions (row * QUANTILE_SAMPLE + rank) below and above each quartile of each row of m sorted
    values, interleaved, and the interpolation weights (linear, as torch.quantile)."""

    def make():
        positions, weights = [], []
        for row, m in enumerate(sizes):
            for q in QUARTILES:
                rank = q * (m - 1)
                below = math.floor(rank)
                positions += [row * QUANTILE_SAMPLE + below, row * QUANTILE_SAMPLE + math.ceil(rank)]
                weights.append(rank - below)
        return positions, weights

    return _cached(("ranks", sizes), make)


def _sort_rows(x: torch.Tensor) -> torch.Tensor:
    if x.device.type == "cpu":  # numpy's sort is several times faster than torch's on CPU; both put NaN last
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return x.sort(dim=1).values


def five_number_parts(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor, tuple[int, ...]]:
    """Device side of five-number summaries: exact minima and maxima (0-d tensors: mins then maxs), and
    the sorted-sample values around each quartile; plus each tensor's sample size for five_numbers_from."""
    device = tensors[0].device
    flats = [t.detach().reshape(-1).float() if t.numel() else _nan(device) for t in tensors]
    samples = []
    for f in flats:
        if f.numel() > QUANTILE_SAMPLE:
            f = f.index_select(0, _sample_index(f.numel(), device))
        elif f.numel() < QUANTILE_SAMPLE:  # pad with +inf, which sorts after every real value
            f = torch.cat([f, torch.full((QUANTILE_SAMPLE - f.numel(),), math.inf, device=device)])
        samples.append(f)
    sizes = tuple(min(f.numel(), QUANTILE_SAMPLE) for f in flats)
    positions, _ = _quartile_ranks(sizes)
    index = _cached(("positions", sizes, device), lambda: torch.tensor(positions, device=device))
    around_quartiles = _sort_rows(torch.stack(samples)).take(index)
    mins, maxs = zip(*(torch.aminmax(f) for f in flats))  # aminmax propagates NaN
    return [*mins, *maxs], around_quartiles, sizes


def five_numbers_from(ends: list[float], around: list[float], sizes: tuple[int, ...]) -> list[list[float]]:
    """[min, q1, median, q3, max] per tensor from five_number_parts' numbers; NaN anywhere gives a NaN row."""
    _, weights = _quartile_ranks(sizes)
    rows = []
    for i in range(len(sizes)):
        lo, hi = ends[i], ends[len(sizes) + i]
        if math.isnan(lo) or math.isnan(hi):
            rows.append([math.nan] * 5)
            continue
        middle = []
        for j in range(len(QUARTILES)):
            k = i * len(QUARTILES) + j
            below, above = around[2 * k], around[2 * k + 1]
            middle.append(below + (above - below) * weights[k] if weights[k] else below)
        rows.append([lo, *middle, hi])
    return rows


def activation_parts(outputs: torch.Tensor, activation: str) -> torch.Tensor:
    """(layers, 4) device reductions of stacked (layers, batch, units) activations: sum and L2 norm about the
    activation's centre, the saturated count, the dead-unit count. activation_stats_from finishes them.

    Saturated: a sigmoid/tanh output in its flat tails. Dead: a unit saturated (ReLU family: not positive)
    on every example of the batch.
    """
    centre, threshold = SATURATION.get(activation, (0.0, None))
    shifted = outputs - centre if centre else outputs  # moments about the centre: little cancellation
    total = shifted.sum(dim=(1, 2))
    norm = torch.linalg.vector_norm(shifted, dim=(1, 2))
    if threshold is None:
        saturated = torch.full_like(total, math.nan)
        dead = (shifted.amax(dim=1) <= 0).sum(dim=1)
    else:
        distance = shifted.abs()
        saturated = (distance >= threshold).sum(dim=(1, 2))
        dead = (distance.amin(dim=1) >= threshold).sum(dim=1)
    return torch.stack([total, norm, saturated.to(total.dtype), dead.to(total.dtype)], dim=1)


def activation_stats_from(parts: list[float], batch: int, units: int, activation: str) -> list[float]:
    """[mean, std (unbiased), saturated fraction, dead fraction] from one layer's activation_parts."""
    total, norm, saturated, dead = parts
    centre = SATURATION.get(activation, (0.0, None))[0]
    count = batch * units
    std = math.sqrt(max(norm * norm - total * total / count, 0.0) / (count - 1)) if count > 1 else math.nan
    return [total / count + centre, std, saturated / count, dead / units]


@dataclass
class ProbeLayout:
    """Where each number sits in a ProbeRecord's flat tensor (fixed for a model and optimizer state)."""

    layers: int
    opt_slots: list[tuple[int, int]]  # per layer: index among optimizer norms of (momentum, first moment), -1 if none
    second: list[tuple[int, int, float]]  # per layer with a second moment: (layer, elements, lr)
    quantile_sizes: tuple[int, ...]
    act_groups: list[tuple[list[int], int, int]]  # (layers stacked together, batch, units)
    activation: str


@dataclass
class ProbeRecord:
    """One probed step's statistics, still on the device."""

    step: int
    values: torch.Tensor  # flat; decoded by ProbeLayout
    layout: ProbeLayout
    groups: list[dict[str, Any]]


class Probe:
    def __init__(self, model: MLP, optimizer: torch.optim.Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self._inputs: list[torch.Tensor | None] = []
        self._outputs: list[torch.Tensor | None] = []
        self._before: list[torch.Tensor] = []  # weight snapshots, allocated once and reused
        self._have_before = False
        self._groups: list[dict[str, Any]] = []
        self._step_lr: dict[int, float] = {}

    # -- forward capture: the model keeps its layers' inputs and activations for this one forward pass

    def attach(self) -> None:
        self.model.start_capture()

    def detach(self) -> None:
        self._inputs, self._outputs = self.model.stop_capture()

    # -- around the optimizer step

    def before_step(self) -> None:
        weights = self._weights()
        if not self._before:
            self._before = [torch.empty_like(w) for w in weights]
        torch._foreach_copy_(self._before, weights)
        self._have_before = True
        # The hyperparameters this step uses: a per-batch schedule moves the LR on right after it.
        self._groups = param_groups(self.optimizer)
        self._step_lr = {id(g): self._groups[i]["lr"] for i, g in enumerate(self.optimizer.param_groups)}

    def _weights(self) -> list[torch.Tensor]:
        return [linear.weight.detach() for linear in self.model.linears]

    def collect(self, step: int) -> ProbeRecord:
        """After optimizer.step(): this step's statistics as a ProbeRecord; nothing leaves the device."""
        weights = self._weights()
        n = len(weights)
        device = weights[0].device
        grads = [w.grad.detach() if w.grad is not None else torch.full_like(w, math.nan) for w in (lin.weight for lin in self.model.linears)]
        if self._have_before:
            torch._foreach_sub_(self._before, weights)  # the snapshot becomes -update (the sign does not matter below)
            deltas = self._before
        else:
            deltas = [torch.zeros_like(w) for w in weights]
        opt_tensors, opt_slots = self._optimizer_norm_inputs()
        scalars = list(torch._foreach_norm(weights + grads + deltas + opt_tensors))
        inputs = [x if x is not None else _nan(device) for x in self._inputs[:n]]
        inputs += [_nan(device)] * (n - len(inputs))
        ends, around_quartiles, sizes = five_number_parts([*torch._foreach_abs(grads), *inputs])
        act_parts, act_groups = self._activation_parts(n, device)
        second, second_parts = self._second_moment_parts()
        flat = torch.cat([torch.stack(scalars + ends + second_parts), around_quartiles, *act_parts])
        layout = ProbeLayout(n, opt_slots, second, sizes, act_groups, self.model.activation_name)
        self._have_before = False
        self._inputs, self._outputs = [], []
        return ProbeRecord(step, flat, layout, self._groups or param_groups(self.optimizer))

    def _activation_parts(self, n: int, device: torch.device) -> tuple[list[torch.Tensor], list[tuple[list[int], int, int]]]:
        """activation_parts per group of layers whose outputs share a shape (stacked: one pass for all)."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, out in enumerate(self._outputs[:n]):
            if out is not None and out.dim() == 2 and out.shape[0] > 0:
                groups.setdefault(tuple(out.shape), []).append(i)
        parts, layout = [], []
        for shape, members in groups.items():
            stacked = torch.stack([self._outputs[i] for i in members]).float()
            parts.append(activation_parts(stacked, self.model.activation_name).reshape(-1))
            layout.append((members, shape[0], shape[1]))
        return parts, layout

    # -- optimizer state: momentum, Adam's moments, the effective per-weight step

    def _optimizer_norm_inputs(self) -> tuple[list[torch.Tensor], list[tuple[int, int]]]:
        """Momentum buffers and first moments whose norms are wanted, and per layer where they sit (-1: none)."""
        tensors: list[torch.Tensor] = []
        slots = []
        for linear in self.model.linears:
            s = self.optimizer.state.get(linear.weight) or {}
            pair = []
            for key in ("momentum_buffer", "exp_avg"):
                buf = s.get(key)
                pair.append(len(tensors) if isinstance(buf, torch.Tensor) else -1)
                if isinstance(buf, torch.Tensor):
                    tensors.append(buf)
            slots.append((pair[0], pair[1]))
        return tensors, slots

    def _second_moment_parts(self) -> tuple[list[tuple[int, int, float]], list[torch.Tensor]]:
        """Per layer with a second moment v (Adam's bias-corrected): sum(v) and sum(lr / (sqrt(v) + eps)),
        each as 0-d tensors: sums first, then the step sums."""
        found, vs, scale, eps = [], [], [], []
        for i, linear in enumerate(self.model.linears):
            s = self.optimizer.state.get(linear.weight) or {}
            v = s.get("exp_avg_sq", s.get("square_avg", s.get("sum")))
            if not isinstance(v, torch.Tensor):
                continue
            group = next(g for g in self.optimizer.param_groups if any(p is linear.weight for p in g["params"]))
            correction = 1.0
            if "exp_avg_sq" in s:
                step = float(s["step"]) if "step" in s else 1.0  # a host tensor or number for foreach optimizers
                correction = 1 - group["betas"][1] ** max(step, 1.0)
            found.append((i, v.numel(), float(self._step_lr.get(id(group), group["lr"]))))
            vs.append(v)
            scale.append(1.0 / correction)
            eps.append(float(group.get("eps", 1e-10)))
        if not vs:
            return [], []
        v_hat = torch._foreach_mul(vs, scale)
        denominators = torch._foreach_sqrt(v_hat)
        torch._foreach_add_(denominators, eps)
        torch._foreach_reciprocal_(denominators)
        # v >= 0 and 1 / (sqrt(v) + eps) > 0: their 1-norms are their sums
        return found, [*torch._foreach_norm(v_hat, 1), *torch._foreach_norm(denominators, 1)]

    # -- back on the host

    def read(self, records: list[ProbeRecord]) -> list[tuple[int, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]]:
        """(step, layer stats, param-group state, per-layer optimizer state) per record, in one transfer."""
        if not records:
            return []
        flat = torch.cat([r.values for r in records]).tolist()  # the one device-to-host transfer
        out, start = [], 0
        for record in records:
            size = record.values.numel()
            layers = decode(flat[start : start + size], record.layout, self.model.layer_names)
            start += size
            opt_layers = [{"name": layer["name"], **{k: layer[k] for k in OPT_FIELDS}} for layer in layers]
            out.append((record.step, layers, record.groups, opt_layers))
        return out


def decode(values: list[float], layout: ProbeLayout, names: list[str]) -> list[dict[str, Any]]:
    """A ProbeRecord's numbers as per-layer dicts (non-finite values become None)."""
    n = layout.layers
    norms, rest = values[: 3 * n], values[3 * n :]
    n_opt = sum((a >= 0) + (b >= 0) for a, b in layout.opt_slots)
    opt_norms, rest = rest[:n_opt], rest[n_opt:]
    ends, rest = rest[: 4 * n], rest[4 * n :]
    n_second = len(layout.second)
    v_sums, step_sums, rest = rest[:n_second], rest[n_second : 2 * n_second], rest[2 * n_second :]
    around, rest = rest[: 6 * 2 * n], rest[6 * 2 * n :]
    fives = five_numbers_from(ends, around, layout.quantile_sizes)
    acts = [[math.nan] * 4 for _ in range(n)]
    for members, batch, units in layout.act_groups:
        for i in members:
            acts[i] = activation_stats_from(rest[:4], batch, units, layout.activation)
            rest = rest[4:]
    second = {i: (math.sqrt(v_sums[k] / count), lr * step_sums[k] / count) for k, (i, count, lr) in enumerate(layout.second)}
    layers = []
    for i, name in enumerate(names):
        weight_norm, grad_norm, update_norm = norms[i], norms[n + i], norms[2 * n + i]
        momentum, first = (opt_norms[j] if j >= 0 else math.nan for j in layout.opt_slots[i])
        row = [*acts[i], weight_norm, grad_norm, update_norm, update_norm / weight_norm if weight_norm > 0 else math.nan,
               momentum, first, *second.get(i, (math.nan, math.nan))]
        layer: dict[str, Any] = {"name": name, "grad": _finite(fives[i]), "act": _finite(fives[n + i])}
        layer.update(zip(LAYER_FIELDS, _finite(row)))
        layers.append(layer)
    return layers


def _finite(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def param_groups(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Hyperparameters per param group as plain numbers (no device values involved)."""
    groups = []
    for g in optimizer.param_groups:
        entry: dict[str, Any] = {"lr": float(g["lr"]), "weight_decay": float(g.get("weight_decay", 0.0))}
        if "betas" in g:
            entry["betas"] = [float(b) for b in g["betas"]]
        if "momentum" in g:
            entry["momentum"] = float(g["momentum"])
        if g.get("nesterov"):
            entry["nesterov"] = True
        if "alpha" in g:
            entry["alpha"] = float(g["alpha"])
        groups.append(entry)
    return groups
