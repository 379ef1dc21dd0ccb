"""The same seed, the same run on any device: batch order and dropout masks drawn on CPU generators,
matmul precision pinned.

CPU (mt19937) and CUDA (Philox) generators give different numbers for one seed, so everything random
in training is drawn on the CPU and copied to the device: a permutation once per epoch, a dropout
mask per dropout layer and step (pinned memory, non-blocking: the copy does not wait for the GPU).
Initial weights are made on the CPU already. What still differs between devices is floating-point
rounding (other kernels, other summation orders), so CPU and GPU runs drift apart slowly.
"""

from __future__ import annotations

import torch
from torch import nn

DROPOUT_SEED_OFFSET = 0x9E3779B9  # a dropout stream apart from the batch order's stream of the same seed


def pin_matmul_precision() -> None:
    """Full float32 matmuls and convolutions: no TF32 on Ampere and newer GPUs (it rounds inputs to 10 bits)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on `device`; to a GPU through pinned memory without waiting."""
    if device.type == "cpu":
        return t
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def epoch_order(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """A permutation of range(n) from the CPU generator (the same on every device), on `device`."""
    return to_device(torch.randperm(n, generator=generator), device)


class SeededDropout(nn.Module):
    """nn.Dropout with its masks drawn from a CPU generator: the same masks on every device."""

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__()
        self.p = p
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0
        mask = torch.empty(x.shape).bernoulli_(1 - self.p, generator=self.generator).div_(1 - self.p)
        return x * to_device(mask, x.device).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def seed_dropout(model: nn.Module, generator: torch.Generator) -> int:
    """Replace every nn.Dropout in `model` with a SeededDropout drawing from `generator`; how many."""
    found = [(parent, name, child.p) for parent in model.modules() for name, child in parent.named_children() if type(child) is nn.Dropout]
    for parent, name, p in found:
        setattr(parent, name, SeededDropout(p, generator))
    return len(found)
