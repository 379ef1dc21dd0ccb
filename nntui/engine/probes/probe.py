"""Probes: per-layer statistics of a training step, taken without stalling the training loop.

At a probed step forward hooks keep the layers' inputs and activations and the weights are snapshotted
around optimizer.step(); collect() then runs every reduction on the device, batched across layers, into
one flat tensor (a ProbeRecord). Nothing is read back per probe: the trainer reads a block's records at
once (read()), and the host finishes the few numbers per layer (see stats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from torch import nn

from nntui.engine.probes.capture import Capture, find_layers
from nntui.engine.probes.torch_ops import ops_for
from nntui.engine.probes.stats import LAYER_FIELDS, OPT_FIELDS, ProbeLayout, decode, reduce_step

__all__ = ["LAYER_FIELDS", "Probe", "ProbeRecord", "find_layers", "param_groups"]


@dataclass
class ProbeRecord:
    """One probed step's statistics as a flat tensor on the device (ProbeLayout says where each number sits)."""

    step: int
    groups: list[dict[str, Any]]
    layout: ProbeLayout
    values: Any  # a device tensor, or a numpy array for CPU probes


class Probe:
    """Per-layer statistics of any model's probed steps: attach() before the forward pass, detach() after it,
    before_step() just before optimizer.step(), collect(step) just after it, read(records) once per block.

    layers: name -> module (find_layers(model) when not given): each layer's weight is the tensor whose
    |grad| summary, norms and optimizer state are recorded (a conv weight counts as one flat tensor).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, layers: dict[str, nn.Module] | None = None,
                 prefer_numpy: bool = True) -> None:
        self.model = model
        self.optimizer = optimizer
        self.layers = dict(layers) if layers is not None else find_layers(model)
        if not self.layers:
            raise ValueError(f"{type(model).__name__} has no layer to probe (no module with a weight of 2 or more dimensions)")
        self.layer_names = list(self.layers)
        self.prefer_numpy = prefer_numpy  # on the CPU; False runs the torch kernels there too (tests compare both)
        self._capture: Capture | None = None
        self._inputs: list[torch.Tensor | None] = []
        self._outputs: list[tuple[str, torch.Tensor] | None] = []
        self._before: list = []  # weight snapshots, allocated once and reused
        self._have_before = False
        self._groups: list[dict[str, Any]] = []
        self._step_lr: dict[int, float] = {}
        self._views: tuple[tuple[int, ...], Any, list] | None = None  # (weights' data pointers, ops, their arrays)

    # -- forward capture: hooks that exist only during a probed step's forward pass

    def attach(self) -> None:
        if self._capture is None:
            self._capture = Capture(self.model, list(self.layers.values()))

    def detach(self) -> None:
        if self._capture is not None:
            self._inputs, self._outputs = self._capture.finish()
            self._capture = None

    # -- around the optimizer step

    def _params(self) -> list[torch.Tensor]:
        return [module.weight for module in self.layers.values()]

    def _weight_arrays(self):
        """(ops, the weights as that backend's arrays), made once while the weights stay where they are."""
        params = self._params()
        key = tuple(p.data_ptr() for p in params)
        if self._views is None or self._views[0] != key:
            ops = ops_for(params[0].device, self.prefer_numpy)
            weights = [ops.array(p) for p in params]
            self._views = (key, ops, weights)
            self._before = [ops.empty_like(w) for w in weights]
        return self._views[1], self._views[2]

    def before_step(self) -> None:
        # skips autograd's bookkeeping, a good part of each small op's cost; a block, not a decorator: mutmut skips those
        with torch.inference_mode():
            ops, weights = self._weight_arrays()
            ops.copy_(self._before, weights)
            self._have_before = True
            # The hyperparameters this step uses: a per-batch schedule moves the LR on right after it.
            self._groups = param_groups(self.optimizer)
            self._step_lr = {id(g): self._groups[i]["lr"] for i, g in enumerate(self.optimizer.param_groups)}

    def collect(self, step: int) -> ProbeRecord:
        """After optimizer.step(): this step's statistics, reduced on the device; nothing is read back here."""
        with torch.inference_mode():
            ops, weights = self._weight_arrays()
            params = self._params()
            n = len(params)
            grads = [ops.array(w.grad if w.grad is not None else torch.full_like(w, math.nan)) for w in params]
            states = [self.optimizer.state.get(p) or {} for p in params]
            opt_tensors, opt_slots = _momentum_tensors(states)
            second, v_hats, steps = self._second_moments(ops, params, states)
            state_norms = [*ops.norms([*weights, *(ops.array(t) for t in opt_tensors)]), *ops.sums_of(v_hats), *ops.medians(steps)]
            inputs = [ops.array(x) if x is not None else ops.nan() for x in self._inputs[:n]]
            inputs += [ops.nan()] * (n - len(inputs))
            outputs = [(found[0], ops.array(found[1].reshape(found[1].shape[0], -1))) if found is not None and found[1].ndim >= 1 else None
                       for found in self._outputs[:n]]
            outputs += [None] * (n - len(outputs))
            if self._have_before:
                ops.sub_(self._before, weights)  # the snapshot becomes minus the update (the sign does not matter)
                updates = self._before
            else:
                updates = [ops.array(torch.zeros_like(w)) for w in params]
            layout = ProbeLayout(n, opt_slots, second)
            values = reduce_step(ops, layout, state_norms, grads, updates, inputs, outputs)
            self._have_before = False
            self._inputs, self._outputs = [], []
            return ProbeRecord(step, self._groups or param_groups(self.optimizer), layout, values)

    def _second_moments(self, ops, params: list[torch.Tensor], states: list[dict]) -> tuple[list[tuple[int, int]], list, list]:
        """Per layer whose optimizer keeps a second moment v (Adam family: exp_avg_sq, bias-corrected;
        RMSprop: square_avg; Adagrad: sum): (layer, elements), v_hat and the effective per-weight step
        lr / (sqrt(v_hat) + eps). Adadelta's square_avg is no such step: it is left out."""
        group_of = {id(p): g for g in self.optimizer.param_groups for p in g["params"]}
        found, vs, scales, eps, lrs = [], [], [], [], []
        for i, (param, s) in enumerate(zip(params, states)):
            v = s.get("exp_avg_sq", s.get("square_avg", s.get("sum")))
            group = group_of.get(id(param))
            if not isinstance(v, torch.Tensor) or group is None or "acc_delta" in s:
                continue
            scale: Any = 1.0
            if "exp_avg_sq" in s and "betas" in group:
                step = s.get("step", 1.0)
                if isinstance(step, torch.Tensor) and step.device.type != "cpu":
                    scale = 1 / (1 - group["betas"][1] ** step.clamp(min=1).to(torch.float64))  # no host read (fused/capturable)
                else:
                    scale = 1 / (1 - group["betas"][1] ** max(float(step), 1.0))
            found.append((i, v.numel()))
            vs.append(ops.array(v))
            scales.append(scale)
            eps.append(float(group.get("eps", 1e-10)))
            lrs.append(float(self._step_lr.get(id(group), group["lr"])))
        if not vs:
            return [], [], []
        v_hats, steps = ops.inverse_root(vs, scales, eps, lrs)
        return found, v_hats, steps

    # -- back on the host

    def read(self, records: list[ProbeRecord], flat: list[float] | None = None) -> list[tuple[int, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]]:
        """(step, layer stats, param-group state, per-layer optimizer state) per record, from one
        device-to-host transfer for all of them; `flat`: their values already read back (by the trainer,
        in its block's one transfer)."""
        if not records:
            return []
        if flat is None:
            flat = self._weight_arrays()[0].to_list([r.values for r in records])
        out, start = [], 0
        for record in records:
            size = len(record.values)
            layers = decode(flat[start : start + size], record.layout, self.layer_names)
            start += size
            opt_layers = [{"name": layer["name"], **{k: layer[k] for k in OPT_FIELDS}} for layer in layers]
            out.append((record.step, layers, record.groups, opt_layers))
        return out


def _momentum_tensors(states: list[dict]) -> tuple[list[torch.Tensor], list[tuple[int, int]]]:
    """Momentum buffers and first moments whose norms are wanted, and per layer where they sit (-1: none)."""
    tensors: list[torch.Tensor] = []
    slots = []
    for s in states:
        pair = []
        for key in ("momentum_buffer", "exp_avg"):
            buf = s.get(key)
            pair.append(len(tensors) if isinstance(buf, torch.Tensor) else -1)
            if isinstance(buf, torch.Tensor):
                tensors.append(buf)
        slots.append((pair[0], pair[1]))
    return tensors, slots


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
