"""Formatting, thinning and plot helpers shared by the panels (plain Python, no torch)."""

from __future__ import annotations

import math
import locale
import os
from dataclasses import dataclass

from rich.text import Text
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
        self._keys: list[tuple] = []

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
        lines += [Text()] * (height - len(lines))
        keys = [(text.plain, tuple(text.spans), str(text.style)) for text in lines]
        console = self.app.console
        resized = len(keys) != len(self._keys) or not self._strips or self._strips[0].cell_length != width
        strips = []
        for y, (text, key) in enumerate(zip(lines, keys)):
            if not resized and key == self._keys[y]:
                strips.append(self._strips[y])  # unchanged: no new strip, no repaint
                continue
            strips.append(Strip(list(text.render(console)), text.cell_len).adjust_cell_length(width))
            if not resized:
                self.refresh(Region(0, y, width, 1))
        self._strips, self._keys = strips, keys
        if resized:
            self.refresh()

    def render_line(self, y: int) -> Strip:
        if y < len(self._strips):
            return self._strips[y].apply_style(self.rich_style)
        return Strip.blank(self.size.width, self.rich_style)

    def text(self) -> str:
        return "\n".join(strip.text for strip in self._strips)


def update_static(widget, renderable, rows: int) -> None:
    """Static.update without a relayout while the row count stays (a relayout costs more than the table)."""
    widget.update(renderable, layout=getattr(widget, "_nntui_rows", None) != rows)
    widget._nntui_rows = rows


class TextTable:
    """A borderless table as one Text: what rich's Table drew here, at a tenth of its cost per frame."""

    def __init__(self, gap: int = 2, bold_header: bool = True) -> None:
        self.gap, self.bold_header = gap, bold_header
        self.columns: list[tuple[str, str]] = []
        self.rows: list[list[Text]] = []

    def add_column(self, name: str, justify: str = "left", **_: object) -> None:
        self.columns.append((name, justify))

    def add_row(self, *cells: str | Text) -> None:
        self.rows.append([cell if isinstance(cell, Text) else Text.from_markup(cell) for cell in cells])

    def to_text(self) -> Text:
        header = [Text(name, style="bold" if self.bold_header else "") for name, _ in self.columns]
        widths = [max(c.cell_len for c in column) for column in zip(header, *self.rows)]
        lines = []
        for cells in [header, *self.rows]:
            line = Text()
            for i, (cell, (_, justify), width) in enumerate(zip(cells, self.columns, widths)):
                pad = " " * (width - cell.cell_len)
                if i:
                    line.append(" " * self.gap)
                line.append_text(Text(pad) + cell if justify == "right" else cell + Text(pad))
            lines.append(line)
        return Text("\n").join(lines)
