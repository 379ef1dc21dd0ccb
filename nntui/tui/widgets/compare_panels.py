"""Panels of the compare view: layers of every run side by side, and the loss of repeated seeds as a
mean with a min–max band. They draw a Snapshot whose variants are labelled run/variant."""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot, VariantView
from nntui.tui.widgets.common import (
    MISSING, Plot, ViewOptions, decade_ticks, fmt, fmt_pct, log10, log_floor, step_axis, stride, variant_color,
)


def _style(index: int, selected: bool) -> str:
    return variant_color(index).replace("orange", "dark_orange") + (" bold" if selected else "")


class LayersComparePanel(Vertical):
    """Median |weight grad| per layer (first → last) of every run/variant on one log plot, and a table of
    the same medians with each hidden layer's saturation and dead share."""

    def compose(self) -> ComposeResult:
        yield Plot(id="cmp-grad-plot")
        yield Static(id="cmp-layer-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        self.query_one("#cmp-grad-plot", Plot).draw(lambda plt: self._plot(plt, snap, view))
        self.query_one("#cmp-layer-table", Static).update(self._table(snap, view))

    def _plot(self, plt, snap: Snapshot, view: ViewOptions) -> None:
        plt.title("median |weight grad| per layer, first → last (latest probe)")
        probed = [(i, v) for i, v in enumerate(snap.variants) if v.layer_stats]
        if not probed:
            return
        medians = [(i, v, [layer["grad"][2] for layer in v.layer_stats]) for i, v in probed]
        floor = log_floor([m for _, _, ms in medians for m in ms])
        logged = []
        selected = snap.variant(view.selected)
        for i, v, ms in medians:
            ys = [log10(m, floor) if m is not None else log10(floor, floor) for m in ms]
            logged.extend(ys)
            xs = list(range(1, len(ys) + 1))
            plt.plot(xs, ys, color=variant_color(i) + ("+" if v is selected else ""), marker="hd" if v is selected else "dot")
            plt.scatter(xs, ys, color=variant_color(i) + "+", marker="●" if v is selected else "•")
        deepest = max(len(ms) for _, _, ms in medians)
        plt.xticks(list(range(1, deepest + 1)), [f"L{k}" for k in range(1, deepest + 1)])
        plt.xlim(0.5, deepest + 0.5)
        ticks, labels = decade_ticks(min(logged), max(logged))
        plt.yticks(ticks, labels)
        plt.ylim(ticks[0], ticks[-1])

    def _table(self, snap: Snapshot, view: ViewOptions) -> Table:
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
        table.add_column("run/variant", no_wrap=True, overflow="ellipsis", max_width=26)
        table.add_column("median |grad| L1 → Ln", no_wrap=True, overflow="ellipsis", ratio=3)
        table.add_column("sat %", no_wrap=True, overflow="ellipsis", ratio=1, min_width=6)
        table.add_column("dead %", no_wrap=True, overflow="ellipsis", ratio=1, min_width=6)
        selected = snap.variant(view.selected)
        for i, v in enumerate(snap.variants):
            hidden = [layer for layer in v.layer_stats if layer.get("saturation") is not None or layer.get("dead") is not None]  # the output layer has none
            table.add_row(
                Text(("▶ " if v is selected else "  ") + v.name, style=_style(i, v is selected)),
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


class BandLossPanel(Vertical):
    """Seeds run: per variant the mean smoothed train loss over the seeds with a min–max band, and the
    final figures as mean ± std with each seed's verdict."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="band-plots"):
            yield Plot(id="band-plot")
        yield Static(id="band-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        groups = group_by_variant(snap)
        self.query_one("#band-plot", Plot).draw(lambda plt: self._plot(plt, groups, view))
        self.query_one("#band-table", Static).update(self._table(groups, snap))

    def _plot(self, plt, groups: dict[str, list[VariantView]], view: ViewOptions) -> None:
        plt.title("train loss (EMA): ─ mean over seeds, · min–max band, ● mean test" + ("  (log y)" if view.log_y else ""))
        plt.xlabel("step")
        y = (lambda ys: [log10(v, 1e-12) for v in ys]) if view.log_y else (lambda ys: ys)
        last = 0.0
        for i, (name, views) in enumerate(groups.items()):
            series = [v.train_loss_ema for v in views if v.train_loss_ema[0]]
            if not series:
                continue
            b = band(series)
            color = variant_color(i)
            plt.plot(b.xs, y(b.low), color=color, marker="dot")
            plt.plot(b.xs, y(b.high), color=color, marker="dot")
            plt.plot(b.xs, y(b.mean), color=color + "+", marker="hd", label=f"{name} ({len(series)} seeds)")
            last = max(last, b.xs[-1] if b.xs else 0)
            tests = _mean_test_points(views)
            if tests:
                plt.scatter([s for s, _ in tests], y([m for _, m in tests]), color=color + "+", marker="●")
        step_axis(plt, last)

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
