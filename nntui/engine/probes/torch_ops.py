"""The array operations a probe's reductions need, as torch kernels (TorchOps), and which backend a
device gets: torch on a GPU, where kernels are launched asynchronously and batched across layers
(foreach norms); numpy on a CPU (numpy_ops.NumpyOps), where torch's per-call dispatch (~5-10 us) is
most of the cost of a probe's ~40 small reductions. Both give the same numbers (tests compare them): sums
and norms accumulate in float64 on every device but MPS, which has none.
"""

from __future__ import annotations

import math
import torch

from nntui.engine.probes.numpy_ops import NumpyOps, OpsCache

class TorchOps:
    """Device tensors in, device tensors out; nothing is read back."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self._cache = OpsCache()

    def array(self, t: torch.Tensor) -> torch.Tensor:
        return t.detach()

    def nan(self) -> torch.Tensor:
        return self._cache.get(("nan",), lambda: torch.full((1,), math.nan, device=self.device))

    def index(self, key: tuple, make_values) -> torch.Tensor:
        """A cached index vector (made once from make_values(), a list or a CPU tensor of ints)."""
        return self._cache.get(key, lambda: torch.as_tensor(make_values(), dtype=torch.long, device=self.device))

    def norms(self, xs: list) -> list:
        return list(torch._foreach_norm(xs, 2, dtype=self.dtype)) if xs else []

    def sums_of(self, xs: list) -> list:
        """Sums of non-negative tensors (their 1-norms)."""
        return list(torch._foreach_norm(xs, 1, dtype=self.dtype)) if xs else []

    def sub_(self, xs: list, ys: list) -> None:
        torch._foreach_sub_(xs, ys)

    def copy_(self, xs: list, ys: list) -> None:
        torch._foreach_copy_(xs, ys)

    def medians(self, xs: list) -> list:
        """Lower medians (the element of rank (n - 1) // 2; torch.median's choice too), as device tensors."""
        return [x.reshape(-1).kthvalue((x.numel() - 1) // 2 + 1).values for x in xs]

    def empty_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x)

    def abs(self, xs: list) -> list:
        return list(torch._foreach_abs(xs))

    def inverse_root(self, vs: list, scales: list, eps: list[float], lrs: list[float]) -> tuple[list, list]:
        """(v * scale, lr / (sqrt(v * scale) + eps)) per tensor; a scale may be a device tensor."""
        v_hat = [v.to(self.dtype) * s for v, s in zip(vs, scales)]
        steps = torch._foreach_sqrt(v_hat)
        torch._foreach_add_(steps, eps)
        torch._foreach_reciprocal_(steps)
        torch._foreach_mul_(steps, lrs)
        return list(v_hat), list(steps)

    def histograms(self, xs: list, log2_min: int, bins: int):
        """As NumpyOps.histograms, on the device: exponent bits, clamped to the bins, then index_add_
        (bincount would read its maximum back to size its output)."""
        counts = torch.zeros(len(xs), bins + 2, dtype=self.dtype, device=self.device)
        one = torch.ones((), dtype=self.dtype, device=self.device)
        for row, x in zip(counts, xs):
            int_type, shift, bias = FLOAT_LAYOUT[x.dtype]
            # int32 at least: index_add_ takes no int16 index (float16 / bfloat16 tensors)
            index = (x.reshape(-1).view(int_type) >> shift).int() - (log2_min + bias - 1)
            row.index_add_(0, index.clamp_(0, bins + 1), one.expand(index.numel()))
        return counts.reshape(-1)

    def flat(self, x):
        return x.reshape(-1)

    def take(self, x, index):
        return x.take(index)

    def pad(self, x, size: int):
        return torch.cat([x, torch.full((size - x.numel(),), math.inf, device=x.device)])

    def stack(self, xs: list):
        return torch.stack(xs)

    def sort_rows(self, x):
        return x.sort(dim=1).values  # NaN sorts last

    def minmax(self, x) -> tuple:
        return tuple(torch.aminmax(x))  # propagates NaN

    def sum(self, x, axes):
        return x.sum(dim=axes, dtype=self.dtype)

    def norm(self, x, axes):  # axes: all but the first
        return torch.linalg.vector_norm(x, dim=axes, dtype=self.dtype)

    def amin(self, x, axis: int):
        return x.amin(dim=axis)

    def amax(self, x, axis: int):
        return x.amax(dim=axis)

    def count(self, x, axes):
        return x.sum(dim=axes, dtype=self.dtype)

    def nan_like_rows(self, x):
        return torch.full_like(x, math.nan)

    def scalars(self, xs: list):
        return torch.stack([x.to(self.dtype) for x in xs]) if xs else torch.empty(0, dtype=self.dtype, device=self.device)

    def concat(self, xs: list):
        return torch.cat([x.to(self.dtype) for x in xs])

    def to_list(self, xs: list) -> list[float]:
        return torch.cat(xs).tolist()  # one device-to-host transfer


FLOAT_LAYOUT = {torch.float32: (torch.int32, 23, 127), torch.float64: (torch.int64, 52, 1023),
                torch.float16: (torch.int16, 10, 15), torch.bfloat16: (torch.int16, 7, 127)}
_numpy_ops = NumpyOps()
_torch_ops: dict[torch.device, TorchOps] = {}


def ops_for(device: torch.device, prefer_numpy: bool = True) -> TorchOps | NumpyOps:
    """numpy on the CPU (unless told otherwise), torch kernels elsewhere."""
    if device.type == "cpu" and prefer_numpy:
        return _numpy_ops
    if device not in _torch_ops:
        _torch_ops[device] = TorchOps(device)
    return _torch_ops[device]
