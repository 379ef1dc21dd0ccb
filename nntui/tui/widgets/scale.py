"""Axes with round ticks: the range snaps to the outer ticks, so it changes only when data crosses one."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Axis:
    lo: float
    hi: float
    ticks: list[tuple[float, str]]
    log: bool = False

    def position(self, value: float) -> float:
        """0 at lo, 1 at hi (may fall outside for values off the axis)."""
        if self.log:
            a, b, v = math.log10(self.lo), math.log10(self.hi), math.log10(value)
        else:
            a, b, v = self.lo, self.hi, value
        return (v - a) / (b - a) if b > a else 0.5


def nice_step(span: float, count: int) -> float:
    raw = span / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)


def tick_label(x: float, fmt: str = "") -> str:
    if x == 0:
        return "0"
    if fmt == "sci":
        return f"{x:.2g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e")
    if abs(x) >= 10_000 or abs(x) < 1e-2:
        return f"{x:.0e}".replace("e+0", "e").replace("e-0", "e-")
    return f"{x:g}"


def linear_axis(lo: float, hi: float, count: int, fmt: str = "", *, integer: bool = False, fixed: bool = False) -> Axis:
    """About `count` round ticks; the axis runs from the tick at or below lo to the one at or above hi
    (fixed: exactly lo..hi, the ticks inside)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    step = nice_step(hi - lo, count)
    if integer:
        step = max(1.0, round(step))
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    if fixed:
        first, last = lo, hi
    values = []
    t = math.ceil(first / step - 1e-9) * step
    while t <= last + 1e-9 * step:
        values.append(round(t, 12))
        t += step
    labels = [str(int(v)) for v in values] if integer else distinct_labels(values, fmt)
    return Axis(first, last, list(zip(values, labels)))


def distinct_labels(values: list[float], fmt: str = "") -> list[str]:
    """Tick labels, with as many significant digits as it takes to tell neighbouring ticks apart
    (a near-constant series, e.g. an LR of 1e-3 ± 1e-4, must not read 0.001, 0.001, 0.001)."""
    labels = [tick_label(v, fmt) for v in values]
    digits = 2
    while len(set(labels)) < len(labels) and digits < 10:
        digits += 1
        labels = ["0" if v == 0 else _trimmed(f"{v:.{digits}g}") for v in values]
    return labels


def _trimmed(text: str) -> str:
    return text.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def log_axis(lo: float, hi: float, count: int) -> Axis:
    """Whole decades (1e-5 style); within two decades also the 2 and 5 between them."""
    lo, hi = max(lo, 1e-300), max(hi, 1e-300)
    a, b = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    if b <= a:
        b = a + 1
    if b - a <= 2:
        values = [m * 10.0**k for k in range(a, b + 1) for m in (1, 2, 5)]
        values = [v for v in values if 10.0**a <= v <= 10.0**b]
        ticks = [(v, tick_label(v)) for v in values]
        if len(ticks) > count + 2:
            ticks = [t for t in ticks if round(t[0] / 10 ** math.floor(math.log10(t[0]) + 1e-9)) == 1] or ticks
    else:
        every = max(1, math.ceil((b - a) / max(1, count)))
        ticks = [(10.0**k, f"1e{k}") for k in range(a, b + 1, every)]
    return Axis(10.0**a, 10.0**b, ticks, log=True)
