"""The statistics a probe records, in two halves: reductions over the big tensors, run through an ops
object (TorchOps on a GPU, NumpyOps on a CPU; batched across layers: one sort for every five-number
summary, one pass over stacked activations), and the little arithmetic that finishes them on the host
(a few numbers per layer) after one read-back. Imports no torch: the CPU probe worker runs it too.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

QUARTILES = (0.25, 0.5, 0.75)
QUANTILE_SAMPLE = 512  # quartiles of bigger tensors come from a fixed sample of this many elements; min and max stay exact
# |x - centre| >= threshold counts as saturated (sigmoid: outside (0.01, 0.99); tanh: outside (-0.99, 0.99))
SATURATION = {"sigmoid": (0.5, 0.49), "tanh": (0.0, 0.99)}
ACT_FIELDS = ("act_mean", "act_std", "saturation", "dead")
# effective_lr: the median over the layer's weights of lr / (sqrt(v_hat) + eps), the step per unit of
# first moment (Adam family, RMSprop, Adagrad). A median, not a mean: weights that never get a gradient
# (MNIST's border pixels: v = 0) have steps of lr / eps and would dominate a mean by orders of magnitude.
OPT_FIELDS = ("momentum_norm", "exp_avg_norm", "exp_avg_sq_rms", "effective_lr")
# |grad W| histogram per layer, one bin per power of two, recorded as "grad_hist": {"log2_min": -40,
# "counts": [...49]}: counts[0] below 2**-40 (~9e-13; zeros included), counts[k] for 1 <= k <= 47 in
# [2**(log2_min + k - 1), 2**(log2_min + k)), counts[-1] at or above 2**7 (128) or not finite. Powers of
# two because a float's exponent bits are its bin: one shift per element, ten times cheaper than a search.
GRAD_HIST_LOG2_MIN, GRAD_HIST_BINS = -40, 47
GRAD_HIST_COUNTS = GRAD_HIST_BINS + 2
LAYER_FIELDS = (*ACT_FIELDS, "weight_norm", "grad_norm", "update_norm", "update_ratio", *OPT_FIELDS)


@dataclass
class ProbeLayout:
    """Where each number sits in a probe's flat vector of reductions.

    Order: weight norms (one per layer), optimizer-state norms, second-moment sums, step medians, gradient
    norms, update norms, minima then maxima of |grad| and inputs (2 x 2 x layers), sorted-sample values
    around the quartiles (2 x layers x 6), then per group of stacked activations its sums, norms,
    saturated counts and dead counts (each one per layer of the group), and last the |grad| histogram
    counts (GRAD_HIST_COUNTS per layer).
    """

    layers: int
    opt_slots: list[tuple[int, int]]  # per layer: index among optimizer norms of (momentum, first moment), -1 if none
    second: list[tuple[int, int]]  # per layer with a second moment: (layer, elements)
    quantile_sizes: tuple[int, ...] = ()
    # (layers stacked together, batch, units, activation kind: capture.ACTIVATION_KINDS' values or "output")
    act_groups: list[tuple[list[int], int, int, str]] = field(default_factory=list)


# -- device side


def sample_positions(n: int) -> np.ndarray:
    """The same QUANTILE_SAMPLE positions of an n-element tensor at every probe (seeded, sorted)."""
    return np.sort(np.random.default_rng(n).permutation(n)[:QUANTILE_SAMPLE])


@functools.lru_cache(maxsize=64)
def quartile_ranks(sizes: tuple[int, ...]) -> tuple[list[int], list[float]]:
    """Flat positions (row * QUANTILE_SAMPLE + rank) below and above each quartile of each row of m sorted
    values, interleaved, and the interpolation weights (linear, as torch.quantile)."""
    positions, weights = [], []
    for row, m in enumerate(sizes):
        for q in QUARTILES:
            rank = q * (m - 1)
            below = math.floor(rank)
            positions += [row * QUANTILE_SAMPLE + below, row * QUANTILE_SAMPLE + math.ceil(rank)]
            weights.append(rank - below)
    return positions, weights


def five_number_parts(ops, abs_grads: list, inputs: list) -> tuple[list, Any, tuple[int, ...]]:
    """Reductions for the five-number summaries of each |gradient| and each layer input: exact minima and
    maxima (all minima, then all maxima), the sorted-sample values around each quartile, and each row's
    sample size (for five_numbers_from). An empty tensor counts as a NaN."""
    flats = [ops.flat(x) for x in [*abs_grads, *inputs]]
    flats = [f if len(f) else ops.nan() for f in flats]
    samples = []
    for f in flats:
        n = len(f)
        if n > QUANTILE_SAMPLE:
            f = ops.take(f, ops.index(("sample", n), lambda n=n: sample_positions(n)))
        elif n < QUANTILE_SAMPLE:
            f = ops.pad(f, QUANTILE_SAMPLE)  # +inf sorts after every real value
        samples.append(f)
    sizes = tuple(min(len(f), QUANTILE_SAMPLE) for f in flats)
    positions, _ = quartile_ranks(sizes)
    around_quartiles = ops.take(ops.sort_rows(ops.stack(samples)), ops.index(("positions", sizes), lambda: positions))
    mins, maxs = zip(*(ops.minmax(f) for f in flats))
    return [*mins, *maxs], around_quartiles, sizes


def activation_parts(ops, stacked, kind: str):
    """Reductions of stacked (layers, batch, units) activations: per layer the sum and L2 norm about the
    activation's centre, the saturated count and the dead-unit count (field by field).

    Saturated: a sigmoid/tanh output in its flat tails. Dead: a unit saturated (ReLU family: not positive)
    on every example of the batch. A layer's own output (kind "output") has neither.
    """
    centre, threshold = SATURATION.get(kind, (0.0, None))
    shifted = stacked - centre if centre else stacked  # moments about the centre: little cancellation
    total = ops.sum(shifted, (1, 2))
    norm = ops.norm(shifted, (1, 2))
    if threshold is None:
        saturated = ops.nan_like_rows(total)
        dead = ops.count(ops.amax(shifted, 1) <= 0, 1) if kind == "relu" else ops.nan_like_rows(total)
    else:
        distance = abs(shifted)
        saturated = ops.count(distance >= threshold, (1, 2))
        dead = ops.count(ops.amin(distance, 1) >= threshold, 1)
    return ops.concat([total, norm, saturated, dead])


def reduce_step(ops, layout: ProbeLayout, state_norms: list, grads: list, updates: list, inputs: list, outputs: list):
    """Every reduction of a probed step after the mutable state's (state_norms: weight and optimizer-state
    norms, second-moment sums), as one flat vector in ProbeLayout's order; fills in the layout's sample
    sizes and activation groups. outputs: per layer (kind, its activation as a (batch, units) array), or None."""
    abs_grads = ops.abs(grads)
    ends, around_quartiles, layout.quantile_sizes = five_number_parts(ops, abs_grads, inputs)
    groups: dict[tuple, list[int]] = {}
    for i, found in enumerate(outputs):
        if found is not None and found[1].ndim == 2 and found[1].shape[0] > 0:
            groups.setdefault((found[0], *found[1].shape), []).append(i)
    act_parts = []
    for (kind, batch, units), members in groups.items():  # same kind and shape: one pass for all of them
        act_parts.append(activation_parts(ops, ops.stack([outputs[i][1] for i in members]), kind))
        layout.act_groups.append((members, batch, units, kind))
    histograms = ops.histograms(abs_grads, GRAD_HIST_LOG2_MIN, GRAD_HIST_BINS)
    return ops.concat([ops.scalars([*state_norms, *ops.norms(grads + updates), *ends]), around_quartiles, *act_parts, histograms])


# -- host side


def five_numbers_from(ends: list[float], around: list[float], sizes: tuple[int, ...]) -> list[list[float]]:
    """[min, q1, median, q3, max] per tensor from five_number_parts' numbers; NaN anywhere gives a NaN row."""
    _, weights = quartile_ranks(sizes)
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


def activation_stats_from(total: float, norm: float, saturated: float, dead: float, batch: int, units: int, kind: str) -> list[float]:
    """[mean, std (unbiased), saturated fraction, dead fraction] of one layer from its activation_parts."""
    centre = SATURATION.get(kind, (0.0, None))[0]
    count = batch * units
    std = math.sqrt(max(norm * norm - total * total / count, 0.0) / (count - 1)) if count > 1 else math.nan
    return [total / count + centre, std, saturated / count, dead / units]


def decode(values: list[float], layout: ProbeLayout, names: list[str]) -> list[dict[str, Any]]:
    """A probe's flat numbers as per-layer dicts (non-finite values become None)."""
    n = layout.layers
    n_opt = sum((a >= 0) + (b >= 0) for a, b in layout.opt_slots)
    n_second = len(layout.second)
    parts, start = [], 0
    for size in (n, n_opt, n_second, n_second, n, n, 4 * n, 12 * n):
        parts.append(values[start : start + size])
        start += size
    weight_norms, opt_norms, v_sums, step_medians, grad_norms, update_norms, ends, around = parts
    fives = five_numbers_from(ends, around, layout.quantile_sizes)
    acts = [[math.nan] * 4 for _ in range(n)]
    for members, batch, units, kind in layout.act_groups:
        size = len(members)
        fields = [values[start + f * size : start + (f + 1) * size] for f in range(4)]
        for j, i in enumerate(members):
            acts[i] = activation_stats_from(*(f[j] for f in fields), batch, units, kind)
        start += 4 * size
    counts = values[start : start + GRAD_HIST_COUNTS * n]
    second = {i: (math.sqrt(v_sums[k] / count), step_medians[k]) for k, (i, count) in enumerate(layout.second)}
    layers = []
    for i, name in enumerate(names):
        weight_norm, update_norm = weight_norms[i], update_norms[i]
        momentum, first = (opt_norms[j] if j >= 0 else math.nan for j in layout.opt_slots[i])
        row = [*acts[i], weight_norm, grad_norms[i], update_norm, update_norm / weight_norm if weight_norm > 0 else math.nan,
               momentum, first, *second.get(i, (math.nan, math.nan))]
        layer: dict[str, Any] = {"name": name, "grad": _finite(fives[i]), "act": _finite(fives[n + i])}
        layer.update(zip(LAYER_FIELDS, _finite(row)))
        hist = counts[i * GRAD_HIST_COUNTS : (i + 1) * GRAD_HIST_COUNTS]
        layer["grad_hist"] = None if layer["grad_norm"] is None else {"log2_min": GRAD_HIST_LOG2_MIN, "counts": [int(c) for c in hist]}
        layers.append(layer)
    return layers


def _finite(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]
