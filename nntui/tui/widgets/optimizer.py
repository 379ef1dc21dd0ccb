"""Optimizer panel: param groups, the LR schedule so far, per-layer update:data ratio and moments."""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot
from nntui.tui.widgets.chart import BoxFigure, LineFigure, Series
from nntui.tui.widgets.common import MISSING, Chart, ViewOptions, fmt_sci, stride, TextTable, update_static
from nntui.tui.widgets.loss import step_range

GUIDE_RATIO = 1e-3  # the lecture's rule of thumb for update:data


def _group_text(group: dict) -> str:
    parts = [f"lr {fmt_sci(group.get('lr'))}"]
    if group.get("betas") is not None:
        b1, b2 = group["betas"]
        parts.append(f"betas ({b1:g}, {b2:g})")
    elif group.get("momentum") is not None:
        parts.append(f"mom {group['momentum']:g}")
    if group.get("weight_decay") is not None:
        parts.append(f"wd {group['weight_decay']:g}")
    if group.get("scheduler"):
        parts.append(group["scheduler"])  # nntui.watch(..., scheduler=)
    return " · ".join(parts)


def _moment(layer: dict) -> str:
    if layer.get("exp_avg_norm") is not None:
        return f"m {fmt_sci(layer['exp_avg_norm'])}"
    if layer.get("momentum_norm") is not None:
        return fmt_sci(layer["momentum_norm"])
    return MISSING


class OptimizerPanel(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static(id="opt-table")
        with Horizontal(id="opt-plots"):
            yield Chart(id="lr-plot")
            yield Chart(id="ratio-plot")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        v = snap.variant(view.selected)
        lr_plot = self.query_one("#lr-plot", Chart)
        ratio_plot = self.query_one("#ratio-plot", Chart)
        if v is None:
            lr_plot.show(LineFigure("learning rate: waiting"))
            ratio_plot.show(BoxFigure("update:data: waiting", [], []))
            return
        xs, ys = stride(*v.lr, 300)
        lr_plot.show(LineFigure("learning rate", [Series(xs, ys, marker="*" if view.ascii_only else "•", style="yellow")],
                                x_max=step_range(snap), y_format="sci"))
        layers = [layer for layer in v.layer_stats if layer.get("update_ratio")]
        ratio_plot.show(BoxFigure("update:data per layer", [layer["name"] for layer in layers],
                                  [[layer["update_ratio"]] * 5 for layer in layers], guide=GUIDE_RATIO,
                                  guide_label=(": " if view.ascii_only else "┆ ") + "1e-3 guide"))
        update_static(self.query_one("#opt-table", Static), self._table(v), len(v.layer_stats) + len(v.optimizer.get("groups", [])))

    def _table(self, v) -> Group:
        groups = v.optimizer.get("groups", [])
        lines = [Text(f"group {i}: " + _group_text(g) if len(groups) > 1 else _group_text(g)) for i, g in enumerate(groups)] or [Text("optimizer: waiting", style="dim")]
        columns = {
            "upd:data": lambda layer: _ratio_text(layer.get("update_ratio")),
            "|grad|": lambda layer: fmt_sci(layer.get("grad_norm")),
            "|mom|": _moment,
            "√v": lambda layer: fmt_sci(layer.get("exp_avg_sq_rms")),
            "eff lr (median)": lambda layer: fmt_sci(layer.get("effective_lr")),
        }
        cells = {name: [cell(layer) for layer in v.layer_stats] for name, cell in columns.items()}
        shown = [name for name, values in cells.items() if any(x != MISSING for x in values)]  # SGD has no moments
        table = TextTable(gap=1)
        table.add_column("layer", no_wrap=True)
        for name in shown:
            table.add_column(name, justify="right", no_wrap=True)
        for i, layer in enumerate(v.layer_stats):
            table.add_row(layer["name"], *[cells[name][i] for name in shown])
        return Group(*lines, table.to_text())


def _ratio_text(ratio: float | None) -> str:
    text = fmt_sci(ratio)
    if ratio is not None and ratio > 0 and abs(math.log10(ratio / GUIDE_RATIO)) > 1:
        return f"[yellow]{text}[/]"  # more than 10x off the guide
    return text
