"""Loss panel: train loss (raw, faint; EMA), test loss for all variants; accuracy or the fitted curves."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot, VariantView
from nntui.tui.widgets.common import (
    STATUS_STYLE, Plot, ViewOptions, decade_ticks, fmt, fmt_pct, log10, step_axis, stride, tick_label, variant_color,
)

MAX_EPOCH_MARKS = 8


def epoch_marks(v: VariantView, last_step: float) -> list[int]:
    if not v.steps_per_epoch:
        return []
    count = int(last_step // v.steps_per_epoch)
    every = max(1, -(-count // MAX_EPOCH_MARKS))
    return [k * v.steps_per_epoch for k in range(every, count + 1, every)]


class LossPanel(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(id="loss-plots"):
            yield Plot(id="loss-plot")
            yield Plot(id="metric-plot")
        yield Static(id="loss-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        self.query_one("#loss-plot", Plot).draw(lambda plt: self._plot_loss(plt, snap, view))
        metric = self.query_one("#metric-plot", Plot)
        if snap.task == "regression":
            metric.draw(lambda plt: self._plot_fit(plt, snap, view))
        else:
            metric.draw(lambda plt: self._plot_accuracy(plt, snap))
        self.query_one("#loss-table", Static).update(self._table(snap, view))

    def _plot_loss(self, plt, snap: Snapshot, view: ViewOptions) -> None:
        points = max(100, 2 * self.query_one("#loss-plot").size.width)  # braille: two dots per cell
        plt.title("loss: · raw, ─ EMA, ● test" + ("  (log y)" if view.log_y else ""))
        plt.xlabel("step  (│ epoch)")
        # log y by hand: plotext's own log scale fails on its padded axis range
        y = (lambda ys: [log10(v, 1e-12) for v in ys]) if view.log_y else (lambda ys: ys)
        plotted: list[float] = []
        last_step = 0.0
        for i, v in enumerate(snap.variants):
            color = variant_color(i)
            xs, ys = stride(*v.train_loss, points)
            if xs:
                plotted.extend(ys := y(ys))
                plt.plot(xs, ys, color=color, marker="dot")
                last_step = max(last_step, xs[-1])
            ex, ey = stride(*v.train_loss_ema, points)
            if ex:
                plt.plot(ex, y(ey), color=color + "+", marker="hd", label=v.name)
            if v.test_loss:
                plt.scatter([s for s, _ in v.test_loss], y([loss for _, loss in v.test_loss]), color=color + "+", marker="●")
        if snap.variants and last_step:
            for mark in epoch_marks(snap.variants[0], last_step):
                plt.vline(mark, "gray")
        step_axis(plt, last_step)
        if view.log_y and plotted:
            lo, hi = min(plotted), max(plotted)
            if hi - lo < 1.5:  # less than two decades: 1, 2, 5 steps read better than 1e0 alone
                ticks = [math.log10(m * 10.0**k) for k in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in (1, 2, 5)
                         if lo <= math.log10(m * 10.0**k) <= hi]
                plt.yticks(ticks, [tick_label(10**t) for t in ticks])
            else:
                plt.yticks(*decade_ticks(lo, hi))

    def _plot_accuracy(self, plt, snap: Snapshot) -> None:
        plt.title("test accuracy %")
        plt.ylim(0, 100)
        plt.yticks([0, 25, 50, 75, 100])
        last_step = 0.0
        for i, v in enumerate(snap.variants):
            last_step = max(last_step, v.step)
            color = variant_color(i)
            xs, ys = v.subset_accuracy
            if xs:
                plt.plot(xs, [100 * y for y in ys], color=color, marker="hd")
            if v.test_accuracy:
                plt.scatter([s for s, _ in v.test_accuracy], [100 * a for _, a in v.test_accuracy], color=color + "+", marker="●")
        step_axis(plt, last_step, 4)

    def _plot_fit(self, plt, snap: Snapshot, view: ViewOptions) -> None:
        plt.title("fit: points vs curves")
        train = snap.samples.get("train")
        if train:
            plt.scatter(*train, color="gray", marker="·")
        test = snap.samples.get("test")
        if test:
            plt.scatter(*test, color="white", marker="x")
        selected = snap.variant(view.selected)
        for i, v in enumerate(snap.variants):
            p = v.predictions
            if not p:
                continue
            color = variant_color(i)
            plt.plot(p["x"], p["y"], color=color + "+", marker="hd", label=v.name)
            if v is selected and p.get("lower") and p.get("upper"):
                plt.plot(p["x"], p["lower"], color=color, marker="dot")
                plt.plot(p["x"], p["upper"], color=color, marker="dot")

    def _table(self, snap: Snapshot, view: ViewOptions) -> Table:
        table = Table(box=None, padding=(0, 1), expand=True, show_edge=False)
        table.add_column("variant", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("step", justify="right", no_wrap=True)
        table.add_column("train", justify="right", no_wrap=True)
        table.add_column("test", justify="right", no_wrap=True)
        if snap.task != "regression":
            table.add_column("acc", justify="right", no_wrap=True)
        selected = snap.variant(view.selected)
        for i, v in enumerate(snap.variants):
            name = Text(("▶ " if v is selected else "  ") + v.name, style=variant_color(i).replace("orange", "dark_orange") + (" bold" if v is selected else ""))
            row = [name, Text(v.status, style=STATUS_STYLE.get(v.status, "")), f"{v.step}/{v.total_steps}", fmt(v.last_train_loss), fmt(v.last_test_loss)]
            if snap.task != "regression":
                row.append(fmt_pct(v.last_test_accuracy))
            table.add_row(*row)
        return table
