"""Per-layer statistics on probed steps: computed on the device, moved to the host in one transfer.

Hooks are attached only for the probed step's forward pass and always removed afterwards.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from nntui.models import MLP

QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
QUANTILE_SAMPLE = 1 << 12  # quartiles of bigger tensors come from a fixed random sample of this size (min, max stay exact)
SATURATION = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99)}  # outside (lo, hi) counts as saturated
LAYER_FIELDS = (
    "act_mean", "act_std", "saturation", "dead", "weight_norm", "grad_norm", "update_norm", "update_ratio",
    "momentum_norm", "exp_avg_norm", "exp_avg_sq_rms", "effective_lr",
)
_CACHE_LIMIT = 64
_sample_cache: dict[tuple[int, str], torch.Tensor] = {}
_position_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def _cached(cache: dict, key, make):
    value = cache.get(key)
    if value is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        value = cache[key] = make()
    return value


def _sample_index(n: int, device: torch.device) -> torch.Tensor:
    """The same QUANTILE_SAMPLE positions of an n-element tensor at every probe (seeded, sorted)."""
    make = lambda: torch.randperm(n, generator=torch.Generator().manual_seed(n))[:QUANTILE_SAMPLE].sort().values.to(device)  # noqa: E731
    return _cached(_sample_cache, (n, str(device)), make)


def _positions(sizes: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row of m sorted values: the indices below and above rank q*(m-1), and the weight between (as torch.quantile)."""

    def make():
        ranks = torch.tensor(QUANTILES, dtype=torch.float64).unsqueeze(0) * (torch.tensor(sizes, dtype=torch.float64).unsqueeze(1) - 1)
        below, above = ranks.floor(), ranks.ceil()
        return below.long().to(device), above.long().to(device), (ranks - below).float().to(device)

    return _cached(_position_cache, (sizes, str(device)), make)


def five_numbers(tensors: list[torch.Tensor | None]) -> torch.Tensor:
    """[min, q1, median, q3, max] of each tensor as one (len, 5) tensor, from one batched sort.

    Linear interpolation as torch.quantile; a NaN anywhere gives a NaN row; None gives a NaN row.
    """
    flats = [t.detach().reshape(-1).float() if t is not None and t.numel() > 0 else None for t in tensors]
    present = [f for f in flats if f is not None]
    if not present:
        return torch.full((len(tensors), 5), float("nan"))
    device = present[0].device
    placeholder = torch.full((1,), float("nan"), device=device)
    samples, sampled_rows = [], []
    for i, f in enumerate(flats):
        if f is None:
            f = placeholder
        elif f.numel() > QUANTILE_SAMPLE:
            sampled_rows.append(i)
            f = f.index_select(0, _sample_index(f.numel(), device))
        samples.append(f)
    padded = torch.nn.utils.rnn.pad_sequence(samples, batch_first=True, padding_value=math.inf)
    if device.type == "cpu":  # numpy's sort is several times faster than torch's on CPU; both put NaN last
        ordered = torch.from_numpy(np.sort(padded.numpy(), axis=1))
    else:
        ordered = padded.sort(dim=1).values  # NaN sorts last, after the +inf padding
    below, above, weight = _positions(tuple(len(s) for s in samples), device)
    q = torch.lerp(ordered.gather(1, below), ordered.gather(1, above), weight)
    if sampled_rows:  # exact ends of sampled tensors (aminmax propagates NaN)
        ends = torch.stack([torch.stack(torch.aminmax(flats[i])) for i in sampled_rows])
        q[torch.tensor(sampled_rows, device=device).unsqueeze(1), torch.tensor([0, 4], device=device)] = ends
    bad = ordered[:, -1:].isnan() | q[:, 0:1].isnan() | q[:, 4:5].isnan()  # a NaN sorts to the row's end
    return q.masked_fill(bad, float("nan"))


def _std(x: torch.Tensor) -> torch.Tensor:
    """torch.std (unbiased); two-pass for big tensors, where it is several times faster than torch's Welford kernel on CPU."""
    x = x.float()
    n = x.numel()
    if n <= QUANTILE_SAMPLE or n < 2:
        return x.std()
    return torch.linalg.vector_norm(x - x.mean()) / math.sqrt(n - 1)


class Probe:
    def __init__(self, model: MLP, optimizer: torch.optim.Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._inputs: dict[int, torch.Tensor] = {}
        self._outputs: dict[int, torch.Tensor] = {}
        self._weights_before: list[torch.Tensor] = []
        self._groups: list[dict[str, Any]] = []
        self._step_lr: dict[int, float] = {}
        nan = torch.tensor(float("nan"))
        self._nan = nan

    # -- forward capture

    def attach(self) -> None:
        self._inputs.clear()
        self._outputs.clear()
        for i, linear in enumerate(self.model.linears):
            self._handles.append(linear.register_forward_pre_hook(self._keep_input(i)))
            act = self.model.acts[i]
            if act is not None:
                self._handles.append(act.register_forward_hook(self._keep_output(i)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _keep_input(self, i: int):
        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            self._inputs[i] = args[0].detach()

        return hook

    def _keep_output(self, i: int):
        def hook(_module: nn.Module, _args: Any, output: torch.Tensor) -> None:
            self._outputs[i] = output.detach()

        return hook

    # -- around the optimizer step

    def before_step(self) -> None:
        self._weights_before = [linear.weight.detach().clone() for linear in self.model.linears]
        # The hyperparameters this step uses: a per-batch schedule moves the LR on right after it.
        self._groups = param_groups(self.optimizer)
        self._step_lr = {id(g): self._groups[i]["lr"] for i, g in enumerate(self.optimizer.param_groups)}

    def collect(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """After optimizer.step(): (layer stats, param-group state, per-layer optimizer state)."""
        device = self.model.linears[0].weight.device
        nan = self._nan.to(device)
        linears = self.model.linears
        n = len(linears)
        weights = [linear.weight.detach() for linear in linears]
        grads = [linear.weight.grad.detach() if linear.weight.grad is not None else torch.full_like(w, float("nan")) for linear, w in zip(linears, weights)]
        updates = torch._foreach_sub(weights, self._weights_before) if self._weights_before else [torch.zeros_like(w) for w in weights]
        # one batched sort for every five-number summary, foreach norms for every layer at once
        quantiles = five_numbers([g.abs() for g in grads] + [self._inputs.get(i) for i in range(n)])
        norms = [torch._foreach_norm(ts) for ts in (weights, grads, updates)]
        acts = self._activation_stats_batched(n, nan)
        scalars = []
        for i, linear in enumerate(linears):
            update_ratio = _std(updates[i]) / _std(weights[i]).clamp_min(1e-12)
            scalars += [*acts[i], norms[0][i], norms[1][i], norms[2][i], update_ratio, *self._optimizer_layer_state(linear.weight, nan)]
        per_layer = torch.stack(scalars).float().reshape(n, len(LAYER_FIELDS))
        rows = torch.cat([quantiles[:n], quantiles[n:], per_layer], dim=1)
        values = rows.cpu().tolist()  # the probe's one device-to-host transfer
        layers = []
        for name, row in zip(self.model.layer_names, values):
            clean = [v if math.isfinite(v) else None for v in row]
            layer = {"name": name, "grad": clean[0:5], "act": clean[5:10]}
            layer.update(zip(LAYER_FIELDS, clean[10:]))
            layers.append(layer)
        opt_layers = [{"name": l["name"], **{k: l[k] for k in ("momentum_norm", "exp_avg_norm", "exp_avg_sq_rms", "effective_lr")}} for l in layers]
        self._weights_before = []
        self._inputs.clear()
        self._outputs.clear()
        return layers, self._groups or param_groups(self.optimizer), opt_layers

    def _activation_stats_batched(self, n: int, nan: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """_activation_stats for every layer; layers whose outputs share a shape are stacked and done at once."""
        stats: list[tuple[torch.Tensor, ...]] = [(nan, nan, nan, nan)] * n
        groups: dict[tuple[int, ...], list[int]] = {}
        for i in range(n):
            out = self._outputs.get(i)
            if out is not None:
                groups.setdefault(tuple(out.shape), []).append(i)
        for shape, members in groups.items():
            if len(members) == 1 or len(shape) < 2 or shape[0] < 2:
                for i in members:
                    stats[i] = self._activation_stats(i, nan)
                continue
            out = torch.stack([self._outputs[i] for i in members]).float().flatten(2)  # (layers, batch, units)
            count = out[0].numel()
            mean = out.mean(dim=(1, 2))
            std = torch.linalg.vector_norm(out - mean[:, None, None], dim=(1, 2)) / math.sqrt(count - 1)  # two-pass, unbiased
            kind = self.model.activation_name
            if kind in SATURATION:
                lo, hi = SATURATION[kind]
                saturated = (out <= lo) | (out >= hi)
                saturation = saturated.sum(dim=(1, 2)) / count
            else:
                saturated = out <= 0
                saturation = nan.expand(len(members))
            dead = (saturated.sum(dim=1) == shape[0]).float().mean(dim=1)
            for j, i in enumerate(members):
                stats[i] = (mean[j], std[j], saturation[j], dead[j])
        return stats

    def _activation_stats(self, i: int, nan: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self._outputs.get(i)
        if out is None:
            return nan, nan, nan, nan
        out = out.float()
        kind = self.model.activation_name
        if kind in SATURATION:
            lo, hi = SATURATION[kind]
            saturated = (out <= lo) | (out >= hi)
            saturation = saturated.float().mean()
        else:  # relu family: zero (or negative) outputs are the dead ones
            saturated = out <= 0
            saturation = nan
        # all(dim=0) as a count: the same units, several times faster on CPU
        dead = (saturated.sum(dim=0) == out.shape[0]).float().mean() if out.dim() > 1 else saturated.float().mean()
        return out.mean(), _std(out) if out.numel() > 1 else nan, saturation, dead

    def _optimizer_layer_state(self, param: torch.Tensor, nan: torch.Tensor) -> list[torch.Tensor]:
        state = self.optimizer.state.get(param, {})
        group = next(g for g in self.optimizer.param_groups if any(p is param for p in g["params"]))
        momentum = state.get("momentum_buffer")
        momentum_norm = momentum.norm() if isinstance(momentum, torch.Tensor) else nan
        exp_avg = state.get("exp_avg")
        exp_avg_norm = exp_avg.norm() if exp_avg is not None else nan
        second = state.get("exp_avg_sq", state.get("square_avg", state.get("sum")))
        if second is None:
            return [momentum_norm, exp_avg_norm, nan, nan]
        if "exp_avg_sq" in state:
            step = float(state["step"]) if "step" in state else 1.0
            second = second / (1 - group["betas"][1] ** max(step, 1.0))
        denom = second.sqrt().add_(group.get("eps", 1e-10))
        lr = self._step_lr.get(id(group), group["lr"])
        return [momentum_norm, exp_avg_norm, second.mean().sqrt(), (lr / denom).mean()]


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
