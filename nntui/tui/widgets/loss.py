"""Loss panel: train loss (raw dots; EMA line, one marker per variant), test loss (the variant's number);
accuracy or the fitted curves; a table of the variants."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot, VariantView
from nntui.tui.widgets.chart import LineFigure, Series
from nntui.tui.widgets.common import STATUS_STYLE, Chart, TextTable, ViewOptions, update_static, fmt, fmt_pct, stride, variant_color, variant_marker

MAX_EPOCH_MARKS = 8


def epoch_marks(v: VariantView, last_step: float) -> list[int]:
    if not v.steps_per_epoch or last_step / v.steps_per_epoch > 4 * MAX_EPOCH_MARKS:
        return []  # hundreds of tiny epochs (full batch): marks would only clutter
    count = int(last_step // v.steps_per_epoch)
    every = max(1, -(-count // MAX_EPOCH_MARKS))
    return [k * v.steps_per_epoch for k in range(every, count + 1, every)]


def step_range(snap: Snapshot) -> float:
    """The x axis: the run's planned steps, so it stays still while the curves grow."""
    planned = max((v.total_steps for v in snap.variants), default=0)
    done = max((v.step for v in snap.variants), default=0)
    return max(planned, done, 1)


def legend(snap: Snapshot, view: ViewOptions) -> list[tuple[str, str, str]]:
    return [(variant_marker(i, view.ascii_only), variant_color(i), f"{v.name} ({i + 1})") for i, v in enumerate(snap.variants)]


def loss_figure(snap: Snapshot, view: ViewOptions, points: int = 200) -> LineFigure:
    fig = LineFigure(
        "loss: dots raw, line EMA, (n) test" + ("  [log y]" if view.log_y else ""), y_log=view.log_y,
        x_max=step_range(snap), legend=legend(snap, view),
    )
    for i, v in enumerate(snap.variants):
        color = variant_color(i)
        xs, ys = stride(*v.train_loss, points)
        fig.series.append(Series(xs, ys, kind="dots", style=color))
        ex, ey = stride(*v.train_loss_ema, points)
        fig.series.append(Series(ex, ey, marker=variant_marker(i, view.ascii_only), style=color + " bold"))
        if v.test_loss:
            fig.series.append(Series([s for s, _ in v.test_loss], [loss for _, loss in v.test_loss], marker=str(i + 1)[-1], style=color, kind="points"))
        fig.y_fit.append(ys + [loss for _, loss in v.test_loss])
    if snap.variants:
        fig.vlines = epoch_marks(snap.variants[0], fig.x_max)
    return fig


def accuracy_figure(snap: Snapshot, view: ViewOptions) -> LineFigure:
    fig = LineFigure("test accuracy %", y_fixed=(0.0, 100.0), x_max=step_range(snap), legend=legend(snap, view))
    for i, v in enumerate(snap.variants):
        color = variant_color(i)
        xs, ys = v.subset_accuracy
        fig.series.append(Series(xs, [100 * y for y in ys], marker=variant_marker(i, view.ascii_only), style=color))
        if v.test_accuracy:
            fig.series.append(Series([s for s, _ in v.test_accuracy], [100 * a for _, a in v.test_accuracy], marker=str(i + 1)[-1], style=color + " bold", kind="points"))
    return fig


def fit_figure(snap: Snapshot, view: ViewOptions) -> LineFigure:
    train, test = snap.samples.get("train"), snap.samples.get("test")
    xs = [x for split in (train, test) if split for x in split[0]]
    fig = LineFigure("fit: points vs curves", x_min=min(xs, default=0.0), x_max=max(xs, default=1.0), x_integer=False, x_label="x",
                     draw_order=("points", "dots", "line"))  # the fitted curves over the data points
    ascii_only = view.ascii_only
    if train:
        fig.series.append(Series(*train, marker="." if ascii_only else "·", style="grey62", kind="points"))
        fig.legend.append(("." if ascii_only else "·", "grey62", "train"))
    if test:
        fig.series.append(Series(*test, marker="x", style="white", kind="points"))
        fig.legend.append(("x", "white", "test"))
    fig.y_fit = [split[1] for split in (train, test) if split]
    selected = snap.variant(view.selected)
    for i, v in enumerate(snap.variants):
        p = v.predictions
        if not p:
            continue
        color, marker = variant_color(i), variant_marker(i, ascii_only)
        fig.series.append(Series(p["x"], p["y"], marker=marker, style=color + " bold"))
        fig.legend.append((marker, color, v.name))
        if v is selected and p.get("lower") and p.get("upper"):
            fig.series.append(Series(p["x"], p["lower"], kind="dots", style=color))
            fig.series.append(Series(p["x"], p["upper"], kind="dots", style=color))
            fig.legend.append(("." if ascii_only else "⠒", color, "band"))
    return fig


class LossPanel(VerticalScroll):
    def compose(self) -> ComposeResult:
        with Horizontal(id="loss-plots"):
            yield Chart(id="loss-plot")
            yield Chart(id="metric-plot")
        yield Static(id="loss-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        width = self.query_one("#loss-plot").size.width
        self.query_one("#loss-plot", Chart).show(loss_figure(snap, view, max(100, 2 * width)))
        metric = self.query_one("#metric-plot", Chart)
        metric.show(fit_figure(snap, view) if snap.task == "regression" else accuracy_figure(snap, view))
        update_static(self.query_one("#loss-table", Static), self._table(snap, view), len(snap.variants))

    def _table(self, snap: Snapshot, view: ViewOptions) -> Text:
        table = TextTable()
        table.add_column("variant", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("step", justify="right", no_wrap=True)
        table.add_column("train", justify="right", no_wrap=True)
        table.add_column("test", justify="right", no_wrap=True)
        if snap.task != "regression":
            table.add_column("acc", justify="right", no_wrap=True)
        selected = snap.variant(view.selected)
        for i, v in enumerate(snap.variants):
            pointer = (">" if view.ascii_only else "▶") if v is selected else " "
            name = Text(f"{pointer}{variant_marker(i, view.ascii_only)} {v.name}", style=variant_color(i) + (" bold" if v is selected else ""))
            row = [name, Text(v.status, style=STATUS_STYLE.get(v.status, "")), f"{v.step}/{v.total_steps}", fmt(v.last_train_loss), fmt(v.last_test_loss)]
            if snap.task != "regression":
                row.append(fmt_pct(v.last_test_accuracy))
            table.add_row(*row)
        return table.to_text()
