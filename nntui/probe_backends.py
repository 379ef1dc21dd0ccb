"""The array operations a probe's reductions need, on two backends with one interface.

On a GPU the reductions are torch kernels, launched asynchronously and batched across layers (foreach
norms). On a CPU, torch's per-call dispatch (~5-10 us) is most of the cost of the ~40 small reductions
of a probe; numpy works on the same memory (no copy) at about a microsecond per call, so CPU probes run
on numpy views of the tensors. Both give the same numbers (tests/test_probes.py compares them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

_CACHE_LIMIT = 128


class _Cache:
    def __init__(self) -> None:
        self._values: dict[tuple, Any] = {}

    def get(self, key: tuple, make):
        value = self._values.get(key)
        if value is None:
            if len(self._values) >= _CACHE_LIMIT:
                self._values.clear()
            value = self._values[key] = make()
        return value


class TorchOps:
    """Device tensors in, device tensors out; nothing is read back."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._cache = _Cache()

    def array(self, t: torch.Tensor) -> torch.Tensor:
        return t.detach()

    def nan(self) -> torch.Tensor:
        return self._cache.get(("nan",), lambda: torch.full((1,), math.nan, device=self.device))

    def index(self, key: tuple, make_values) -> torch.Tensor:
        """A cached index vector (made once from make_values(), a list or a CPU tensor of ints)."""
        return self._cache.get(key, lambda: torch.as_tensor(make_values(), device=self.device))

    def norms(self, xs: list) -> list:
        return list(torch._foreach_norm(xs)) if xs else []

    def sums_of(self, xs: list) -> list:
        """Sums of non-negative tensors (their 1-norms)."""
        return list(torch._foreach_norm(xs, 1)) if xs else []

    def sub_(self, xs: list, ys: list) -> None:
        torch._foreach_sub_(xs, ys)

    def copy_(self, xs: list, ys: list) -> None:
        torch._foreach_copy_(xs, ys)

    def empty_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x)

    def abs(self, xs: list) -> list:
        return list(torch._foreach_abs(xs))

    def inverse_root(self, vs: list, scales: list[float], eps: list[float], lrs: list[float]) -> tuple[list, list]:
        """(v * scale, lr / (sqrt(v * scale) + eps)) per tensor."""
        v_hat = torch._foreach_mul(vs, scales)
        steps = torch._foreach_sqrt(v_hat)
        torch._foreach_add_(steps, eps)
        torch._foreach_reciprocal_(steps)
        torch._foreach_mul_(steps, lrs)
        return list(v_hat), list(steps)

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
        return x.sum(dim=axes)

    def norm(self, x, axes):  # axes: all but the first
        return torch.linalg.vector_norm(x, dim=axes)

    def amin(self, x, axis: int):
        return x.amin(dim=axis)

    def amax(self, x, axis: int):
        return x.amax(dim=axis)

    def count(self, x, axes):
        return x.sum(dim=axes).float()

    def nan_like_rows(self, x):
        return torch.full_like(x, math.nan)

    def scalars(self, xs: list):
        return torch.stack(xs).float() if xs else torch.empty(0, device=self.device)

    def concat(self, xs: list):
        return torch.cat([x.float() for x in xs])

    def to_list(self, xs: list) -> list[float]:
        return torch.cat(xs).tolist()  # one device-to-host transfer


class NumpyOps:
    """numpy views of CPU tensors: the same operations as TorchOps at a fraction of the call overhead."""

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self._cache = _Cache()

    def array(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy()

    def nan(self) -> np.ndarray:
        return self._cache.get(("nan",), lambda: np.full(1, np.nan, dtype=np.float32))

    def index(self, key: tuple, make_values) -> np.ndarray:
        return self._cache.get(key, lambda: np.asarray(make_values(), dtype=np.int64))

    def norms(self, xs: list) -> list:
        return [math.sqrt(np.dot(f, f)) for f in (x.reshape(-1) for x in xs)]

    def sums_of(self, xs: list) -> list:
        return [float(x.sum(dtype=np.float64)) for x in xs]

    def sub_(self, xs: list, ys: list) -> None:
        for x, y in zip(xs, ys):
            np.subtract(x, y, out=x)

    def copy_(self, xs: list, ys: list) -> None:
        for x, y in zip(xs, ys):
            np.copyto(x, y)

    def empty_like(self, x: np.ndarray) -> np.ndarray:
        return np.empty_like(x)

    def abs(self, xs: list) -> list:
        """Into buffers reused from probe to probe: warm in the cache, no fresh pages. Valid until the next call."""
        return [np.abs(x, out=self._cache.get(("abs", x.shape, x.dtype.str), lambda x=x: np.empty_like(x))) for x in xs]

    def inverse_root(self, vs: list, scales: list[float], eps: list[float], lrs: list[float]) -> tuple[list, list]:
        v_hat = [v * s for v, s in zip(vs, scales)]
        return v_hat, [lr / (np.sqrt(v) + e) for v, e, lr in zip(v_hat, eps, lrs)]

    def flat(self, x):
        return x.reshape(-1)

    def take(self, x, index):
        return np.take(x, index)

    def pad(self, x, size: int):
        return np.concatenate([x, np.full(size - x.size, np.inf, dtype=x.dtype)])

    def stack(self, xs: list):
        return np.stack(xs)

    def sort_rows(self, x):
        return np.sort(x, axis=1)  # NaN sorts last

    def minmax(self, x) -> tuple:
        return x.min(), x.max()  # propagate NaN

    def sum(self, x, axes):
        return x.sum(axis=axes)

    def norm(self, x, axes):
        rows = x.reshape(x.shape[0], -1)  # axes are all but the first
        return np.sqrt(np.einsum("ij,ij->i", rows, rows))

    def amin(self, x, axis: int):
        return x.min(axis=axis)

    def amax(self, x, axis: int):
        return x.max(axis=axis)

    def count(self, x, axes):
        return np.count_nonzero(x, axis=axes)

    def nan_like_rows(self, x):
        return np.full_like(x, np.nan)

    def scalars(self, xs: list):
        return np.asarray(xs, dtype=np.float64)

    def concat(self, xs: list):
        return np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1) for x in xs])

    def to_list(self, xs: list) -> list[float]:
        return np.concatenate(xs).tolist()


_numpy_ops = NumpyOps()
_torch_ops: dict[torch.device, TorchOps] = {}


def ops_for(device: torch.device, prefer_numpy: bool = True) -> TorchOps | NumpyOps:
    """numpy on the CPU (unless told otherwise), torch kernels elsewhere."""
    if device.type == "cpu" and prefer_numpy:
        return _numpy_ops
    if device not in _torch_ops:
        _torch_ops[device] = TorchOps(device)
    return _torch_ops[device]
