"""NumpyOps: a probe's array operations on numpy arrays (CPU tensors are viewed, not copied).

numpy costs about a microsecond per call where torch's dispatch costs 5-10: most of a CPU probe's time.
Sums and norms accumulate in float64, as TorchOps does, so both backends give the same figures.
No torch import: these reductions run on numpy views of CPU tensors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_CACHE_LIMIT = 128
# per float dtype: the same-sized integer, the exponent's shift and bias
FLOAT_LAYOUT = {"f4": (np.int32, 23, 127), "f8": (np.int64, 52, 1023), "f2": (np.int16, 10, 15)}


class OpsCache:
    """Index vectors and buffers made once and reused at every probe (the same few keys)."""

    def __init__(self) -> None:
        self._values: dict[tuple, Any] = {}

    def get(self, key: tuple, make):
        value = self._values.get(key)
        if value is None:
            if len(self._values) >= _CACHE_LIMIT:
                self._values.clear()
            value = self._values[key] = make()
        return value


class NumpyOps:
    """numpy views of CPU tensors: the same operations as TorchOps at a fraction of the call overhead."""

    def __init__(self) -> None:
        self._cache = OpsCache()

    def array(self, t) -> np.ndarray:
        """A CPU tensor's memory as an array (no copy)."""
        return t.detach().numpy()

    def nan(self) -> np.ndarray:
        return self._cache.get(("nan",), lambda: np.full(1, np.nan, dtype=np.float32))

    def index(self, key: tuple, make_values) -> np.ndarray:
        return self._cache.get(key, lambda: np.asarray(make_values(), dtype=np.int64))

    def norms(self, xs: list) -> list:
        # einsum, not np.dot: a float64 dot goes to a threaded BLAS, 1000x slower on a busy machine
        return [math.sqrt(np.einsum("i,i->", f, f)) for f in (x.reshape(-1).astype(np.float64) for x in xs)]

    def sums_of(self, xs: list) -> list:
        return [float(x.sum(dtype=np.float64)) for x in xs]

    def sub_(self, xs: list, ys: list) -> None:
        for x, y in zip(xs, ys):
            np.subtract(x, y, out=x)

    def copy_(self, xs: list, ys: list) -> None:
        for x, y in zip(xs, ys):
            np.copyto(x, y)

    def medians(self, xs: list) -> list:
        """Lower medians (the element of rank (n - 1) // 2), found by selection, not a full sort."""
        return [float(np.partition(f, k)[k]) for f, k in ((x.reshape(-1), (x.size - 1) // 2) for x in xs)]

    def empty_like(self, x: np.ndarray) -> np.ndarray:
        return np.empty_like(x)

    def abs(self, xs: list) -> list:
        """Into buffers reused from probe to probe: warm in the cache, no fresh pages. Valid until the next call.
        One buffer per position in xs: same-shaped layers must not share one (each would overwrite the last)."""
        return [np.abs(x, out=self._cache.get(("abs", i, x.shape, x.dtype.str), lambda x=x: np.empty_like(x)))
                for i, x in enumerate(xs)]

    def inverse_root(self, vs: list, scales: list[float], eps: list[float], lrs: list[float]) -> tuple[list, list]:
        v_hat = [v.astype(np.float64) * s for v, s in zip(vs, scales)]
        return v_hat, [lr / (np.sqrt(v) + e) for v, e, lr in zip(v_hat, eps, lrs)]

    def histograms(self, xs: list, log2_min: int, bins: int):
        """Per non-negative tensor: counts below 2**log2_min, in each [2**k, 2**(k+1)) up to 2**(log2_min + bins),
        and at or above that or not finite, read off the floats' exponent bits."""
        rows = []
        for x in xs:
            int_type, shift, bias = FLOAT_LAYOUT[x.dtype.str[1:]]
            exponents = np.bincount(x.reshape(-1).view(int_type) >> shift, minlength=1 << (8 * np.dtype(int_type).itemsize - 1 - shift))
            lo, hi = log2_min + bias, log2_min + bias + bins
            rows += [[exponents[:lo].sum()], exponents[lo:hi], [exponents[hi:].sum()]]
        return np.concatenate(rows).astype(np.float64)

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
        return x.sum(axis=axes, dtype=np.float64)

    def norm(self, x, axes):
        rows = x.reshape(x.shape[0], -1).astype(np.float64)  # axes are all but the first
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
