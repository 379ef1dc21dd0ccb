"""Which modules are layers, and what they saw in one forward pass (hooks that exist only during it).

A layer is any module with a weight of two or more dimensions (Linear, Conv1d/2d/3d, Embedding, ...),
named by its module path. Its activation is the output of the first activation module (ReLU, Sigmoid,
Tanh, ...) that runs after it and before the next layer; a layer followed by none (a functional
activation, a residual sum) reports its own output instead, unless that output is the network's output.
"""

from __future__ import annotations

import torch
from torch import nn

# What each activation module's output is judged by: sigmoid/tanh saturate; rectifiers have dead units.
ACTIVATION_KINDS: dict[type, str] = {
    nn.Sigmoid: "sigmoid", nn.Tanh: "tanh",
    **{t: "relu" for t in (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish)},
}
OWN_OUTPUT = "output"  # a layer's own output: mean and std only


def find_layers(model: nn.Module, names: list[str] | None = None) -> dict[str, nn.Module]:
    """Every module with a weight of >= 2 dimensions, by module path (the model itself: its class name);
    names picks some of them, in that order."""
    found = {}
    for path, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2:
            found[path or type(module).__name__] = module
    if names is None:
        return found
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ValueError(f"no layer named {', '.join(map(repr, unknown))}; the model's layers are: {', '.join(found) or 'none'}")
    return {n: found[n] for n in names}


class Capture:
    """Forward hooks on the layers, the activation modules and the model, removed by finish()."""

    def __init__(self, model: nn.Module, layers: list[nn.Module]) -> None:
        n = len(layers)
        self.inputs: list[torch.Tensor | None] = [None] * n
        self.own_outputs: list[torch.Tensor | None] = [None] * n
        self.activations: list[tuple[str, torch.Tensor] | None] = [None] * n
        self.network_output = None
        self._last: int | None = None
        index = {id(m): i for i, m in enumerate(layers)}
        self._handles = [m.register_forward_hook(self._on_layer(i)) for i, m in enumerate(layers)]
        self._handles += [m.register_forward_hook(self._on_activation(kind)) for m in model.modules()
                          if id(m) not in index and (kind := ACTIVATION_KINDS.get(type(m)))]
        self._handles.append(model.register_forward_hook(self._on_model))

    def _on_layer(self, i: int):
        def hook(module, args, output):
            if self.own_outputs[i] is None:  # a layer called twice in one pass: its first call
                x = args[0] if args else None
                self.inputs[i] = x.detach() if isinstance(x, torch.Tensor) and x.is_floating_point() else None
                self.own_outputs[i] = output if isinstance(output, torch.Tensor) else None
            self._last = i
        return hook

    def _on_activation(self, kind: str):
        def hook(module, args, output):
            i, self._last = self._last, None
            if i is not None and self.activations[i] is None and isinstance(output, torch.Tensor):
                self.activations[i] = (kind, output.detach())
        return hook

    def _on_model(self, module, args, output):
        self.network_output = output

    def finish(self) -> tuple[list[torch.Tensor | None], list[tuple[str, torch.Tensor] | None]]:
        """(inputs, (kind, activation) or None) per layer; the hooks are gone afterwards."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        activations = list(self.activations)
        for i, own in enumerate(self.own_outputs):
            if activations[i] is None and own is not None and own is not self.network_output:
                activations[i] = (OWN_OUTPUT, own.detach())
        inputs = self.inputs
        self.inputs, self.own_outputs, self.activations, self.network_output = [], [], [], None
        return inputs, activations
