"""Formatting, thinning and plot helpers shared by the panels (plain Python, no torch)."""

from __future__ import annotations

import math
import locale
import os
from dataclasses import dataclass

from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from nntui.tui.widgets.chart import BoxFigure, LineFigure, render_box_figure, render_line_figure

# Named 16-colour colours, so plots read the same without truecolor; markers tell variants apart without colour.
PALETTE = ["cyan", "dark_orange", "magenta", "green", "yellow", "blue", "red", "white"]
MARKERS = "•+x∘*#%@"
ASCII_MARKERS = "*+xo#%@&"
STATUS_STYLE = {
    "running": "bold green", "paused": "bold yellow", "diverged": "bold red", "done": "bold cyan",
    "completed": "cyan", "interrupted": "bold yellow", "pending": "dim", "waiting": "dim", "starting": "dim",
    "stopped": "bold red", "setting up": "bold yellow", "replay": "bold magenta", "failed": "bold red",
}
MISSING = "—"


@dataclass
class ViewOptions:
    selected: int = 0
    log_y: bool = False
    grad_history: bool = False
    ascii_only: bool = False


def variant_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def variant_marker(index: int, ascii_only: bool = False) -> str:
    return (ASCII_MARKERS if ascii_only else MARKERS)[index % len(MARKERS)]


def ascii_terminal(environ=os.environ) -> bool:
    """A Linux console or a non-UTF-8 locale cannot show braille or box drawing: draw in ASCII."""
    if environ.get("NNTUI_ASCII"):
        return environ["NNTUI_ASCII"] not in ("0", "")
    if environ.get("TERM") == "linux":
        return True
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(name)
        if value:
            return not any(tag in value.upper().replace("-", "") for tag in ("UTF8",))
    return "utf" not in locale.getpreferredencoding(False).lower()


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


class Chart(Widget):
    """A figure drawn as text lines; a redraw repaints only the lines that changed (fewer bytes per frame)."""

    DEFAULT_CSS = "Chart { height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.figure: LineFigure | BoxFigure | None = None
        self.ascii_only = False
        self._strips: list[Strip] = []

    def show(self, figure: LineFigure | BoxFigure) -> None:
        self.figure = figure
        self._render_figure()

    def on_resize(self) -> None:
        self._strips = []
        self._render_figure()
        self.refresh()

    def _render_figure(self) -> None:
        width, height = self.size
        if self.figure is None or width <= 0 or height <= 0:
            return
        draw = render_box_figure if isinstance(self.figure, BoxFigure) else render_line_figure
        lines = draw(self.figure, width, height, self.ascii_only)
        console = self.app.console
        strips = [Strip(list(text.render(console)), text.cell_len).adjust_cell_length(width) for text in lines]
        strips += [Strip.blank(width)] * (height - len(strips))
        old = self._strips
        self._strips = strips
        if len(old) != len(strips):
            self.refresh()
            return
        for y, (a, b) in enumerate(zip(old, strips)):
            if a.text != b.text or list(a) != list(b):
                self.refresh(Region(0, y, width, 1))

    def render_line(self, y: int) -> Strip:
        if y < len(self._strips):
            return self._strips[y].apply_style(self.rich_style)
        return Strip.blank(self.size.width, self.rich_style)

    def text(self) -> str:
        return "\n".join(strip.text for strip in self._strips)
