"""Panels of the compare view: layers of every run side by side, and the loss of repeated seeds as a
mean with a min–max band. They draw a Snapshot whose variants are labelled run/variant."""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot, VariantView
from nntui.tui.widgets.chart import LineFigure, Series
from nntui.tui.widgets.common import MISSING, Chart, ViewOptions, fmt, fmt_pct, stride, variant_color, variant_marker


def _style(index: int, selected: bool) -> str:
    return variant_color(index) + (" bold" if selected else "")


def layers_figure(snap: Snapshot, view: ViewOptions) -> LineFigure:
    """Median |weight grad| per layer position (1 = first) of every run/variant, on a log axis."""
    probed = [(i, v) for i, v in enumerate(snap.variants) if v.layer_stats]
    deepest = max((len(v.layer_stats) for _, v in probed), default=1)
    fig = LineFigure("median |weight grad| per layer, first → last (latest probe)", y_log=True,
                     x_min=1, x_max=max(deepest, 2), x_label="layer", legend=[])
    selected = snap.variant(view.selected)
    for i, v in probed:
        xs = [k for k, layer in enumerate(v.layer_stats, 1) if layer["grad"][2] is not None and layer["grad"][2] > 0]
        ys = [v.layer_stats[k - 1]["grad"][2] for k in xs]
        marker = variant_marker(i, view.ascii_only)
        fig.series.append(Series(xs, ys, marker=marker, style=_style(i, v is selected)))
        fig.series.append(Series(xs, ys, marker=marker, style=_style(i, True), kind="points"))
        fig.legend.append((marker, variant_color(i), v.name))
        fig.y_fit.append(ys)
    return fig


class LayersComparePanel(VerticalScroll):
    """Median |weight grad| per layer (first → last) of every run/variant on one log plot, and a table of
    the same medians with each hidden layer's saturation and dead share."""

    def compose(self) -> ComposeResult:
        yield Chart(id="cmp-grad-plot")
        yield Static(id="cmp-layer-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        self.query_one("#cmp-grad-plot", Chart).show(layers_figure(snap, view))
        self.query_one("#cmp-layer-table", Static).update(self._table(snap, view))

    def _table(self, snap: Snapshot, view: ViewOptions) -> Table:
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
        table.add_column("run/variant", no_wrap=True, overflow="ellipsis", max_width=26)
        table.add_column("median |grad| L1 → Ln", no_wrap=True, overflow="ellipsis", ratio=3)
        table.add_column("sat %", no_wrap=True, overflow="ellipsis", ratio=1, min_width=6)
        table.add_column("dead %", no_wrap=True, overflow="ellipsis", ratio=1, min_width=6)
        selected = snap.variant(view.selected)
        for i, v in enumerate(snap.variants):
            hidden = [layer for layer in v.layer_stats if layer.get("saturation") is not None or layer.get("dead") is not None]  # the output layer has none
            pointer = (">" if view.ascii_only else "▶") if v is selected else " "
            table.add_row(
                Text(f"{pointer}{variant_marker(i, view.ascii_only)} {v.name}", style=_style(i, v is selected)),
                " ".join(fmt(layer["grad"][2], ".0e") for layer in v.layer_stats) or MISSING,
                " ".join(_pct(layer.get("saturation")) for layer in hidden) or MISSING,
                " ".join(_pct(layer.get("dead")) for layer in hidden) or MISSING,
            )
        return table


def _pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.0f}"


@dataclass
class Band:
    xs: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]


def interpolate(xs: list[float], ys: list[float], x: float) -> float | None:
    """y at x on the polyline (xs ascending); None outside it."""
    if not xs or x < xs[0] or x > xs[-1]:
        return None
    k = bisect.bisect_left(xs, x)
    if xs[k] == x:
        return ys[k]
    x0, x1, y0, y1 = xs[k - 1], xs[k], ys[k - 1], ys[k]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def band(series: list[tuple[list[float], list[float]]], points: int = 300) -> Band:
    """Mean, min and max over the series at the longest one's steps (each series counts where it has data)."""
    longest = max(series, key=lambda s: s[0][-1] if s[0] else 0)[0]
    xs = stride(longest, longest, points)[0]
    out = Band([], [], [], [])
    for x in xs:
        values = [y for s in series if (y := interpolate(s[0], s[1], x)) is not None]
        if values:
            out.xs.append(x)
            out.mean.append(statistics.fmean(values))
            out.low.append(min(values))
            out.high.append(max(values))
    return out


def group_by_variant(snap: Snapshot) -> dict[str, list[VariantView]]:
    """seed-N/variant labels grouped by variant, in the first seed's order."""
    groups: dict[str, list[VariantView]] = {}
    for v in snap.variants:
        groups.setdefault(v.name.split("/", 1)[-1], []).append(v)
    return groups


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    known = [x for x in values if x is not None]
    if not known:
        return None, None
    return statistics.fmean(known), statistics.pstdev(known) if len(known) > 1 else 0.0


def band_figure(groups: dict[str, list[VariantView]], view: ViewOptions) -> LineFigure:
    fig = LineFigure("train loss (EMA): line mean over seeds, dots min–max band, (n) mean test" + ("  [log y]" if view.log_y else ""),
                     y_log=view.log_y)
    for i, (name, views) in enumerate(groups.items()):
        series = [v.train_loss_ema for v in views if v.train_loss_ema[0]]
        if not series:
            continue
        b = band(series)
        color, marker = variant_color(i), variant_marker(i, view.ascii_only)
        fig.series.append(Series(b.xs, b.low, kind="dots", style=color))
        fig.series.append(Series(b.xs, b.high, kind="dots", style=color))
        fig.series.append(Series(b.xs, b.mean, marker=marker, style=color + " bold"))
        tests = _mean_test_points(views)
        if tests:
            fig.series.append(Series([s for s, _ in tests], [m for _, m in tests], marker=str(i + 1)[-1], style=color, kind="points"))
        fig.legend.append((marker, color, f"{name} ({i + 1}, {len(series)} seeds)"))
        fig.y_fit.append(b.low + b.high + [m for _, m in tests])
        fig.x_max = max(fig.x_max, max((v.total_steps for v in views), default=0), b.xs[-1] if b.xs else 0)
    return fig


class BandLossPanel(VerticalScroll):
    """Seeds run: per variant the mean smoothed train loss over the seeds with a min–max band, and the
    final figures as mean ± std with each seed's verdict."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="band-plots"):
            yield Chart(id="band-plot")
        yield Static(id="band-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        groups = group_by_variant(snap)
        self.query_one("#band-plot", Chart).show(band_figure(groups, view))
        self.query_one("#band-table", Static).update(self._table(groups, snap))

    def _table(self, groups: dict[str, list[VariantView]], snap: Snapshot) -> Table:
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
        for col in ("variant", "seeds", "train", "test ± std", "acc ± std", "held"):
            table.add_column(col, no_wrap=True, justify="left" if col in ("variant", "held") else "right")
        for i, (name, views) in enumerate(groups.items()):
            train, _ = _mean_std([v.last_train_loss for v in views])
            test, test_std = _mean_std([v.last_test_loss for v in views])
            acc, acc_std = _mean_std([v.last_test_accuracy for v in views])
            marks = "".join({True: "✓", False: "✗"}.get(v.reproduced, "·") for v in views)
            held = sum(v.reproduced is True for v in views)
            table.add_row(
                Text(name, style=_style(i, False)), str(len(views)), fmt(train),
                f"{fmt(test)} ± {fmt(test_std)}",
                MISSING if acc is None else f"{fmt_pct(acc)} ± {fmt_pct(acc_std)}",
                f"{held}/{len(views)} {marks}",
            )
        return table


def _mean_test_points(views: list[VariantView]) -> list[tuple[int, float]]:
    by_step: dict[int, list[float]] = {}
    for v in views:
        for step, loss in v.test_loss:
            by_step.setdefault(step, []).append(loss)
    return [(s, statistics.fmean(ls)) for s, ls in sorted(by_step.items())]


def selected_summary(snap: Snapshot, view: ViewOptions) -> str:
    v = snap.variant(view.selected)
    if v is None:
        return "waiting for the runs' first events…"
    return f"▶ {v.name} ({view.selected % len(snap.variants) + 1}/{len(snap.variants)}) · {v.status} · step {v.step} · test {fmt(v.last_test_loss)}"
