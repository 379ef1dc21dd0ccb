"""Formatting, thinning and plot helpers shared by the panels (plain Python, no torch)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from textual_plotext import PlotextPlot

# Named 16-colour plotext colours, so plots read the same without truecolor.
PALETTE = ["cyan", "orange", "magenta", "green", "yellow", "blue", "red", "white"]
STATUS_STYLE = {
    "running": "bold green", "paused": "bold yellow", "diverged": "bold red", "done": "bold cyan",
    "completed": "cyan", "interrupted": "bold yellow", "pending": "dim", "waiting": "dim", "starting": "dim",
    "stopped": "bold red",
}
MISSING = "—"


@dataclass
class ViewOptions:
    selected: int = 0
    log_y: bool = False
    grad_history: bool = False


def variant_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def fmt(x: float | None, spec: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return MISSING
    return format(x, spec)


def fmt_sci(x: float | None) -> str:
    return fmt(x, ".1e")


def fmt_pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.1f}%"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return MISSING
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def stride(xs: list[float], ys: list[float], n: int = 400) -> tuple[list[float], list[float]]:
    """Every k-th point: keeps the noise visible (averaging would smooth the raw loss)."""
    if len(xs) <= n:
        return xs, ys
    k = math.ceil(len(xs) / n)
    return xs[::k], ys[::k]


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
