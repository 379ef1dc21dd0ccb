"""Per-layer statistics on probed steps: computed on the device, moved to the host in one transfer.

Hooks are attached only for the probed step's forward pass and always removed afterwards.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nntui.models import MLP

QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_QUANTILE_ELEMENTS = 1 << 18  # torch.quantile sorts; subsample large tensors first
SATURATION = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99)}  # outside (lo, hi) counts as saturated
LAYER_FIELDS = (
    "act_mean", "act_std", "saturation", "dead", "weight_norm", "grad_norm", "update_norm", "update_ratio",
    "momentum_norm", "exp_avg_norm", "exp_avg_sq_rms", "effective_lr",
)


def _five_numbers(x: torch.Tensor) -> torch.Tensor:
    flat = x.detach().reshape(-1).float()
    if flat.numel() > MAX_QUANTILE_ELEMENTS:
        flat = flat[:: math.ceil(flat.numel() / MAX_QUANTILE_ELEMENTS)]
    q = torch.tensor(QUANTILES, device=flat.device, dtype=flat.dtype)
    return torch.quantile(flat, q)


class Probe:
    def __init__(self, model: MLP, optimizer: torch.optim.Optimizer) -> None:
        self.model = model
        self.optimizer = optimizer
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._inputs: dict[int, torch.Tensor] = {}
        self._outputs: dict[int, torch.Tensor] = {}
        self._weights_before: list[torch.Tensor] = []
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

    def collect(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """After optimizer.step(): (layer stats, param-group state, per-layer optimizer state)."""
        device = self.model.linears[0].weight.device
        nan = self._nan.to(device)
        rows = []
        for i, linear in enumerate(self.model.linears):
            w = linear.weight.detach()
            grad = linear.weight.grad
            grad_abs = grad.detach().abs() if grad is not None else torch.full_like(w, float("nan"))
            inputs = self._inputs.get(i)
            act_q = _five_numbers(inputs) if inputs is not None else nan.expand(5)
            mean, std, saturation, dead = self._activation_stats(i, nan)
            update = w - self._weights_before[i] if self._weights_before else torch.zeros_like(w)
            update_norm = update.norm()
            w_std = w.float().std()
            update_ratio = update.float().std() / w_std.clamp_min(1e-12)
            opt = self._optimizer_layer_state(linear.weight, nan)
            rows.append(torch.cat([
                _five_numbers(grad_abs),
                act_q,
                torch.stack([mean, std, saturation, dead, w.norm(), grad_abs.norm(), update_norm, update_ratio, *opt]).float(),
            ]))
        values = torch.stack(rows).cpu().tolist()  # the probe's one device-to-host transfer
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
        return layers, param_groups(self.optimizer), opt_layers

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
        dead = saturated.all(dim=0).float().mean() if out.dim() > 1 else saturated.float().mean()
        return out.mean(), out.std() if out.numel() > 1 else nan, saturation, dead

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
        return [momentum_norm, exp_avg_norm, second.mean().sqrt(), (group["lr"] / denom).mean()]


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
