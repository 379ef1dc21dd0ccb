"""plotext figures for the panels not yet moved to nntui's own charts (LR sweep, compare): the helpers the
dashboard's panels used before (see widgets/chart.py for why the main panels moved)."""

from __future__ import annotations

import math
from collections.abc import Callable

from textual_plotext import PlotextPlot


def log10(x: float, floor: float) -> float:
    return math.log10(max(x, floor))


def decade_ticks(lo: float, hi: float, max_ticks: int = 7) -> tuple[list[float], list[str]]:
    """Ticks at whole powers of ten between log10 values lo and hi, labelled 1e-5 style."""
    a, b = math.floor(lo), math.ceil(hi)
    if a == b:
        a, b = a - 1, b + 1
    step = max(1, math.ceil((b - a) / max_ticks))
    ticks = list(range(a, b + 1, step))
    return [float(t) for t in ticks], [f"1e{t}" for t in ticks]


def log_floor(values: list[float]) -> float:
    """Clamp for log plots: three decades under the smallest positive value (zeros would squash the plot)."""
    positive = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not positive:
        return 1e-12
    return 10 ** (math.floor(math.log10(min(positive))) - 3)


class Plot(PlotextPlot):
    """A PlotextPlot redrawn only on demand: `draw(fn)` clears the figure, lets fn plot, refreshes."""

    def draw(self, plot: Callable[[object], None]) -> None:
        plt = self.plt
        plt.clear_figure()
        plot(plt)
        self.refresh()


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions (1, 2, 2.5, 5 × 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    t = first
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 12))
        t += step
    return ticks


def tick_label(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 10_000 or abs(x) < 1e-2:
        return f"{x:.0e}".replace("e+0", "e").replace("e-0", "e-")
    return f"{x:g}"


def step_axis(plt, xmax: float, count: int = 5) -> None:
    """Integer step ticks 0..xmax (plotext's defaults are fractional)."""
    if xmax <= 0:
        return
    ticks = [t for t in nice_ticks(0, xmax, count) if float(t).is_integer()]
    plt.xticks(ticks, [f"{int(t)}" for t in ticks])
