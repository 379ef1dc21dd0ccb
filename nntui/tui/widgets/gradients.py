"""Gradients panel: per-layer boxplots of |weight gradient| (log scale), or the median per layer over time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot
from nntui.tui.widgets.common import MISSING, Plot, ViewOptions, decade_ticks, fmt_sci, log10, log_floor, step_axis, stride, variant_color


def boxplot_log(plt, names: list[str], summaries: list[list[float]]) -> None:
    """Boxplots of five-number summaries [min, q1, median, q3, max] drawn on log10 values."""
    floor = log_floor([s[1] for s in summaries] + [s[2] for s in summaries])
    logged = [[log10(x, floor) for x in s] for s in summaries]
    # plotext wants quintuples as [max, q3, median, q1, min]
    plt.box(names, [list(reversed(s)) for s in logged], quintuples=True, colors=["cyan", "red+"], width=0.3)
    lo, hi = min(s[0] for s in logged), max(s[4] for s in logged)
    ticks, labels = decade_ticks(lo, hi)
    plt.yticks(ticks, labels)
    plt.ylim(ticks[0], ticks[-1])


class GradientsPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Plot(id="grad-plot")
        yield Static(id="grad-summary")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        v = snap.variant(view.selected)
        plot = self.query_one("#grad-plot", Plot)
        summary = self.query_one("#grad-summary", Static)
        if v is None or not v.layer_stats:
            plot.draw(lambda plt: plt.title("|gradient| per layer: waiting for the first probe"))
            summary.update("")
            return
        layers = v.layer_stats
        if view.grad_history:
            plot.draw(lambda plt: self._plot_history(plt, v))
        else:
            plot.draw(lambda plt: self._plot_boxes(plt, v))
        medians = [layer["grad"][2] for layer in layers]
        parts = [f"{layer['name']} {fmt_sci(m)}" for layer, m in zip(layers, medians)]
        ratio = medians[-1] / medians[0] if medians[0] > 0 else None
        ratio_text = f"last/first {ratio:,.0f}×" if ratio is not None and ratio >= 10 else (f"last/first {ratio:.2g}×" if ratio else MISSING)
        summary.update(f"median |grad| @ step {v.layer_stats_step}: " + " · ".join(parts) + f" · {ratio_text}   [dim]h: {'boxplots' if view.grad_history else 'history'}[/]")

    def _plot_boxes(self, plt, v) -> None:
        plt.title(f"|weight grad| per layer, step {v.layer_stats_step}")
        boxplot_log(plt, [layer["name"] for layer in v.layer_stats], [layer["grad"] for layer in v.layer_stats])

    def _plot_history(self, plt, v) -> None:
        plt.title("median |weight grad| per layer")
        plt.xlabel("step")
        all_values = [y for _, ys in v.grad_median_history.values() for y in ys]
        floor = log_floor(all_values)
        logged = []
        for i, (name, (xs, ys)) in enumerate(v.grad_median_history.items()):
            xs, ys = stride(xs, ys, 300)
            ly = [log10(y, floor) for y in ys]
            logged.extend(ly)
            plt.plot(xs, ly, color=variant_color(i) + "+", marker="hd", label=name)
        if logged:
            ticks, labels = decade_ticks(min(logged), max(logged))
            plt.yticks(ticks, labels)
            plt.ylim(ticks[0], ticks[-1])
        step_axis(plt, max((xs[-1] for xs, _ in v.grad_median_history.values() if xs), default=0))
