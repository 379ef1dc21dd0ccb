"""Activations panel: per-layer boxes of the hidden activations, with saturation % and dead-ReLU %."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot
from nntui.tui.widgets.chart import BoxFigure
from nntui.tui.widgets.common import Chart, ViewOptions, fmt, fmt_pct, TextTable, update_static


class ActivationsPanel(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Chart(id="act-plot")
        yield Static(id="act-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        v = snap.variant(view.selected)
        plot = self.query_one("#act-plot", Chart)
        table_widget = self.query_one("#act-table", Static)
        if v is None or not v.layer_stats:
            plot.show(BoxFigure("activations: waiting for the first probe", [], [], log=False))
            table_widget.update("")
            return
        # "act" is a layer's input: fc2's input is h1, the first hidden layer's activation (fc1's is the data)
        hidden = [(f"h{i}", layer["act"]) for i, layer in enumerate(v.layer_stats[1:], 1) if _known(layer["act"])]
        plot.show(BoxFigure(f"hidden activations, step {v.layer_stats_step}", [n for n, _ in hidden], [a for _, a in hidden], log=False, style="green"))
        table = TextTable()
        for col in ("act", "mean", "std", "sat", "dead"):
            table.add_column(col, justify="left" if col == "act" else "right", no_wrap=True)
        for i, layer in enumerate(v.layer_stats, 1):
            sat, dead = layer.get("saturation"), layer.get("dead")
            if layer.get("act_mean") is None and sat is None and dead is None:
                continue  # the output layer has no activation
            table.add_row(
                f"h{i}", fmt(layer.get("act_mean"), ".3f"), fmt(layer.get("act_std"), ".3f"),
                _warn(fmt_pct(sat), sat is not None and sat > 0.5), _warn(fmt_pct(dead), dead is not None and dead > 0.5),
            )
        update_static(table_widget, table.to_text(), len(v.layer_stats))


def _known(values: list[float | None] | None) -> bool:
    return bool(values) and all(x is not None for x in values)


def _warn(text: str, bad: bool) -> str:
    return f"[bold red]{text}[/]" if bad else text
