"""Text charts drawn by nntui itself: line plots and per-layer box rows, in Unicode or plain ASCII.

Why not plotext: a plotext figure costs 50-200 ms of Python per frame and its axes move with every
new point. These figures cost about a millisecond, their axes only change when the data crosses a
round tick, variants differ by marker (not colour alone) and the legend sits under the plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.text import Text

from nntui.tui.widgets.scale import Axis, linear_axis, log_axis

BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] of a 2x4 cell


@dataclass
class Series:
    """One curve. kind: "line" (marker per cell, joined), "points" (marker per point), "dots" (fine, braille)."""

    xs: list[float]
    ys: list[float]
    marker: str = "•"
    style: str = ""
    kind: str = "line"
    label: str = ""


@dataclass
class LineFigure:
    title: str
    series: list[Series] = field(default_factory=list)
    x_max: float = 0.0  # the x axis runs 0..x_max (a run's total steps keeps it still) unless x_min is set
    x_min: float = 0.0
    y_log: bool = False
    y_fixed: tuple[float, float] | None = None  # e.g. accuracy 0..100
    y_fit: list[list[float]] = field(default_factory=list)  # groups of values the y range should show (per variant)
    vlines: list[float] = field(default_factory=list)
    hlines: list[tuple[float, str]] = field(default_factory=list)  # (y, style)
    x_label: str = "step"
    x_integer: bool = True
    draw_order: tuple[str, ...] = ("dots", "line", "points")  # later kinds draw over earlier ones
    y_format: str = ""  # "sci": 1.0e-03 labels
    legend: list[tuple[str, str, str]] = field(default_factory=list)  # (marker, style, text)


def robust_range(groups: list[list[float]], log: bool) -> tuple[float, float, bool]:
    """(lo, hi, clipped): one exploding group (1.9e8 next to 2.3) must not flatten the others."""
    spans = []
    for values in groups:
        finite = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
        if finite:
            spans.append((min(finite), max(finite)))
    if not spans:
        return (1e-3, 1.0, False) if log else (0.0, 1.0, False)
    lo = min(s[0] for s in spans)
    highs = sorted(s[1] for s in spans)
    hi, clipped = highs[-1], False
    jump = 1e3 if log else 20  # a log axis shows a few decades well; a linear one does not
    if len(highs) > 1 and highs[-2] > 0 and hi / highs[-2] > jump:
        hi, clipped = highs[-2] * (3 if log else 1.5), True
    if hi <= lo:
        hi = lo * 10 if log else lo + (abs(lo) * 0.1 or 1.0)
    return lo, hi, clipped


class Canvas:
    """A grid of cells; braille dots for fine curves, one character per cell for markers."""

    def __init__(self, width: int, height: int, ascii_only: bool) -> None:
        self.width, self.height, self.ascii = width, height, ascii_only
        self.chars: list[list[str]] = [[" "] * width for _ in range(height)]
        self.styles: list[list[str]] = [[""] * width for _ in range(height)]
        self.dots: list[list[int]] = [[0] * width for _ in range(height)]

    def put(self, col: int, row: int, char: str, style: str) -> None:
        if 0 <= col < self.width and 0 <= row < self.height:
            self.chars[row][col], self.styles[row][col] = char, style

    def dot(self, fx: float, fy: float, style: str) -> None:
        """fx, fy in cells (0..width, 0..height from the top), fractional."""
        col, row = int(fx), int(fy)
        if not (0 <= col < self.width and 0 <= row < self.height):
            return
        if self.ascii:
            if self.chars[row][col] == " ":
                self.put(col, row, ".", style)
            return
        sub_c, sub_r = min(1, int((fx - col) * 2)), min(3, int((fy - row) * 4))
        self.dots[row][col] |= BRAILLE_BITS[sub_r][sub_c]
        if self.chars[row][col] == " " or ord(self.chars[row][col][0]) & 0xFF00 == 0x2800:
            self.put(col, row, chr(0x2800 + self.dots[row][col]), style)

    def line(self, c0: float, r0: float, c1: float, r1: float, char: str, style: str) -> None:
        steps = max(1, int(max(abs(c1 - c0), abs(r1 - r0))))
        for k in range(steps + 1):
            t = k / steps
            self.put(int(c0 + (c1 - c0) * t), int(r0 + (r1 - r0) * t), char, style)

    def rows(self) -> list[Text]:
        """One Text per row, one span per run of equal style (a span per cell would cost 10x)."""
        out = []
        for chars, styles in zip(self.chars, self.styles):
            text = Text("".join(chars))
            start = 0
            for end in range(1, len(styles) + 1):
                if end == len(styles) or styles[end] != styles[start]:
                    if styles[start]:
                        text.stylize(styles[start], start, end)
                    start = end
            out.append(text)
        return out


def render_line_figure(fig: LineFigure, width: int, height: int, ascii_only: bool = False) -> list[Text]:
    """The figure as `height` lines of `width` cells: title, plot with y ticks, x ticks, legend."""
    lines: list[Text] = [Text(fig.title if len(fig.title) <= width else fig.title[: width - 1] + "…", style="bold")]
    legend = _legend(fig.legend, width)
    plot_rows = height - 1 - 2 - len(legend)
    if plot_rows < 3 or width < 16:
        return (lines + [Text("(too small to plot)", style="dim")])[:height]
    if fig.y_fixed:
        lo, hi, clipped = fig.y_fixed[0], fig.y_fixed[1], False
    else:
        lo, hi, clipped = robust_range(fig.y_fit or [s.ys for s in fig.series], fig.y_log)
    want = max(2, plot_rows // 3)
    y_axis = log_axis(lo, hi, want) if fig.y_log else linear_axis(lo, hi, want, fig.y_format, fixed=bool(fig.y_fixed))
    label_w = max(len(label) for _, label in y_axis.ticks)
    plot_w = width - label_w - 1
    x_axis = linear_axis(fig.x_min, max(fig.x_max, fig.x_min + (1 if fig.x_integer else 1e-9)), max(2, plot_w // 12), integer=fig.x_integer, fixed=True)
    canvas = Canvas(plot_w, plot_rows, ascii_only)

    def col(x: float) -> float:
        return (x - x_axis.lo) / (x_axis.hi - x_axis.lo) * (plot_w - 1)

    def row(y: float) -> float | None:
        if y is None or not math.isfinite(y) or (fig.y_log and y <= 0):
            return None
        t = y_axis.position(y)
        return (1 - t) * (plot_rows - 1)

    for x in fig.vlines:
        c = int(round(col(x)))
        for r in range(plot_rows):
            canvas.put(c, r, ":" if ascii_only else "┆", "grey37")
    for y, style in fig.hlines:
        r = row(y)
        if r is not None and 0 <= r <= plot_rows - 1:
            for c in range(plot_w):
                canvas.put(c, int(round(r)), "-" if ascii_only else "╌", style)
    over = "^" if ascii_only else "↑"
    for kind in fig.draw_order:
        for s in (s for s in fig.series if s.kind == kind):
            previous = None
            for x, y in zip(s.xs, s.ys):
                r = row(y)
                if r is None:
                    previous = None
                    continue
                c = col(x)
                if r < 0 and kind == "dots":
                    continue
                if r < 0:  # above the range (a diverged variant): an arrow on the top edge
                    canvas.put(int(round(c)), 0, over, s.style)
                    previous = None
                    continue
                r = min(r, plot_rows - 1)
                if kind == "dots":
                    canvas.dot(c + 0.5, r + 0.5, s.style)
                elif kind == "points":
                    canvas.put(int(round(c)), int(round(r)), s.marker, s.style + " bold")
                else:
                    if previous is not None:
                        canvas.line(previous[0], previous[1], round(c), round(r), s.marker, s.style)
                    else:
                        canvas.put(int(round(c)), int(round(r)), s.marker, s.style)
                    previous = (round(c), round(r))
    tick_rows = {}
    for value, label in y_axis.ticks:
        r = int(round((1 - y_axis.position(value)) * (plot_rows - 1)))
        tick_rows.setdefault(r, label)
    for r, text in enumerate(canvas.rows()):
        label = tick_rows.get(r, "")
        axis_char = ("+" if label else "|") if ascii_only else ("┤" if label else "│")
        line = Text(label.rjust(label_w), style="grey62")
        line.append(axis_char, "grey50")
        line.append_text(text)
        lines.append(line)
    lines.append(_x_axis_line(x_axis, col, label_w, plot_w, ascii_only))
    lines.append(_x_labels(x_axis, col, label_w, plot_w, fig.x_label))
    if clipped:  # say so where it is seen: the title line
        note = f"  {over} off scale"
        lines[0] = Text(lines[0].plain[: max(0, width - len(note))], style="bold")
        lines[0].append(note, style="bold red")
    lines.extend(legend)
    return lines[:height]


def _x_axis_line(axis: Axis, col, label_w: int, plot_w: int, ascii_only: bool) -> Text:
    chars = ["-" if ascii_only else "─"] * plot_w
    for value, _ in axis.ticks:
        c = int(round(col(value)))
        if 0 <= c < plot_w:
            chars[c] = "+" if ascii_only else "┴"
    return Text(" " * label_w + ("+" if ascii_only else "└") + "".join(chars), style="grey50")


def _x_labels(axis: Axis, col, label_w: int, plot_w: int, name: str) -> Text:
    cells = [" "] * (plot_w + 1)
    taken = -1
    for value, label in axis.ticks:
        start = int(round(col(value))) + 1 - len(label) // 2
        start = max(start, 0, taken + 2)
        if start + len(label) > plot_w + 1:
            start = plot_w + 1 - len(label)
            if start <= taken + 1:
                continue
        cells[start:start + len(label)] = list(label)
        taken = start + len(label) - 1
    room = plot_w + 1 - (taken + 2)
    text = "".join(cells)
    if name and room >= len(name) + 1:
        text = text[: plot_w + 1 - len(name)] + name
    return Text(" " * label_w + text, style="grey62")


def _legend(entries: list[tuple[str, str, str]], width: int) -> list[Text]:
    """Every mark's entry, on as many lines as it takes (under the plot: it never covers data)."""
    lines: list[Text] = []
    text = Text()
    for marker, style, label in entries:
        entry = Text.assemble((marker, style + " bold"), f" {label}"[: max(1, width - 3)])
        if text.cell_len and text.cell_len + 2 + entry.cell_len > width:
            lines.append(text)
            text = Text()
        if text.cell_len:
            text.append("  ")
        text.append_text(entry)
    if text.cell_len:
        lines.append(text)
    return lines


# ---------------------------------------------------------------- per-layer box rows


@dataclass
class BoxFigure:
    """One row per layer: whiskers min..max, box q1..q3, median; a shared (log) axis below."""

    title: str
    names: list[str]
    summaries: list[list[float | None]]  # [min, q1, median, q3, max] per row (a single value: all five equal)
    log: bool = True
    guide: float | None = None  # a reference value drawn as a column (update:data 1e-3)
    guide_label: str = ""
    style: str = "cyan"


def render_box_figure(fig: BoxFigure, width: int, height: int, ascii_only: bool = False) -> list[Text]:
    lines: list[Text] = [Text(fig.title[:width], style="bold")]
    values = [v for s in fig.summaries for v in s if v is not None and math.isfinite(v) and (v > 0 or not fig.log)]
    if fig.guide is not None:
        values.append(fig.guide)
    if not values or width < 20 or height < 4:
        return (lines + [Text("no data yet" if not values else "(too small)", style="dim")])[:height]
    name_w = min(8, max(len(n) for n in fig.names))
    plot_w = width - name_w - 2
    lo, hi = min(values), max(values)
    axis = log_axis(lo, hi, max(2, plot_w // 10)) if fig.log else linear_axis(lo, hi, max(2, plot_w // 10))

    def col(v: float | None) -> int | None:
        if v is None or not math.isfinite(v) or (fig.log and v <= 0):
            return None
        return int(round(axis.position(v) * (plot_w - 1)))

    whisker, box, median, guide_char = ("-", "=", "|", ":") if ascii_only else ("─", "▒", "┃", "┆")
    rows_room = height - 3
    for name, summary in list(zip(fig.names, fig.summaries))[:max(0, rows_room)]:
        cells = [(" ", "")] * plot_w
        g = col(fig.guide)
        if g is not None:
            cells[g] = (guide_char, "red")
        lo_c, q1, med, q3, hi_c = (col(v) for v in summary)
        if None not in (lo_c, hi_c):
            for c in range(lo_c, hi_c + 1):
                cells[c] = (whisker, fig.style)
        if None not in (q1, q3):
            for c in range(q1, q3 + 1):
                cells[c] = (box, fig.style)
        if med is not None:
            single = lo_c == hi_c
            cells[med] = ("o" if ascii_only else "●", fig.style + " bold") if single else (median, "bold white")
        line = Text(name[:name_w].rjust(name_w) + " ", style="bold")
        line.append("|" if ascii_only else "│", "grey50")
        row = Canvas(plot_w, 1, ascii_only)
        row.chars[0], row.styles[0] = [c for c, _ in cells], [st for _, st in cells]
        line.append_text(row.rows()[0])
        lines.append(line)
    lines.append(_x_axis_line(axis, lambda v: axis.position(v) * (plot_w - 1), name_w + 1, plot_w, ascii_only))
    lines.append(_x_labels(axis, lambda v: axis.position(v) * (plot_w - 1), name_w + 1, plot_w, fig.guide_label))
    return lines[:height]
