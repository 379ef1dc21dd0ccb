"""Gradients panel: per-layer boxes of |weight gradient| on a log axis, or the median per layer over time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot, VariantView
from nntui.tui.widgets.chart import BoxFigure, LineFigure, Series
from nntui.tui.widgets.common import MISSING, Chart, ViewOptions, fmt_sci, variant_color, variant_marker
from nntui.tui.widgets.loss import step_range


def grad_boxes(v: VariantView) -> BoxFigure:
    return BoxFigure(f"|weight grad| per layer, step {v.layer_stats_step}", [layer["name"] for layer in v.layer_stats],
                     [layer["grad"] for layer in v.layer_stats])


def grad_history(v: VariantView, snap: Snapshot, view: ViewOptions) -> LineFigure:
    fig = LineFigure("median |weight grad| per layer", y_log=True, x_max=step_range(snap))
    for i, (name, (xs, ys)) in enumerate(v.grad_median_history.items()):
        marker, color = variant_marker(i, view.ascii_only), variant_color(i)
        fig.series.append(Series(xs, ys, marker=marker, style=color))
        fig.legend.append((marker, color, name))
    fig.y_fit = [[y for s in fig.series for y in s.ys]]
    return fig


class GradientsPanel(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Chart(id="grad-plot")
        yield Static(id="grad-summary")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        v = snap.variant(view.selected)
        plot = self.query_one("#grad-plot", Chart)
        summary = self.query_one("#grad-summary", Static)
        if v is None or not v.layer_stats:
            plot.show(BoxFigure("|gradient| per layer: waiting for the first probe", [], []))
            summary.update("")
            return
        plot.show(grad_history(v, snap, view) if view.grad_history else grad_boxes(v))
        medians = [layer["grad"][2] for layer in v.layer_stats]
        parts = [f"{layer['name']} {fmt_sci(m)}" for layer, m in zip(v.layer_stats, medians)]
        ratio = medians[-1] / medians[0] if medians[0] and medians[-1] is not None else None
        ratio_text = f"last/first {ratio:,.0f}×" if ratio is not None and ratio >= 10 else (f"last/first {ratio:.2g}×" if ratio else MISSING)
        summary.update(f"median |grad| @ step {v.layer_stats_step}: " + " · ".join(parts) + f" · {ratio_text}   [dim]h: {'boxplots' if view.grad_history else 'history'}[/]")
