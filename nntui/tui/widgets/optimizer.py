"""Optimizer panel: param groups, the LR schedule so far, per-layer update:data ratio and moments."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot
from nntui.tui.widgets.common import MISSING, Plot, ViewOptions, decade_ticks, fmt_sci, log10, nice_ticks, step_axis, stride

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
    return " · ".join(parts)


def _moment(layer: dict) -> str:
    if layer.get("exp_avg_norm") is not None:
        return f"m {fmt_sci(layer['exp_avg_norm'])}"
    if layer.get("momentum_norm") is not None:
        return fmt_sci(layer["momentum_norm"])
    return MISSING


class OptimizerPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="opt-table")
        with Horizontal(id="opt-plots"):
            yield Plot(id="lr-plot")
            yield Plot(id="ratio-plot")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        v = snap.variant(view.selected)
        lr_plot = self.query_one("#lr-plot", Plot)
        ratio_plot = self.query_one("#ratio-plot", Plot)
        if v is None:
            lr_plot.draw(lambda plt: plt.title("learning rate: waiting"))
            ratio_plot.draw(lambda plt: plt.title("update:data: waiting"))
            return
        lr_plot.draw(lambda plt: self._plot_lr(plt, v))
        ratio_plot.draw(lambda plt: self._plot_ratio(plt, v))
        self.query_one("#opt-table", Static).update(self._table(v))

    def _plot_lr(self, plt, v) -> None:
        plt.title("learning rate")
        xs, ys = stride(*v.lr, 300)
        if not xs:
            return
        plt.plot(xs, ys, color="yellow+", marker="hd")
        lo, hi = min(ys), max(ys)
        if hi > lo:
            ticks = nice_ticks(lo, hi, 3)
            plt.yticks(ticks, [fmt_sci(t) for t in ticks])
        else:
            plt.yticks([lo], [fmt_sci(lo)])
        step_axis(plt, xs[-1], 4)

    def _plot_ratio(self, plt, v) -> None:
        plt.title("update:data (─ 1e-3)")
        layers = [layer for layer in v.layer_stats if layer.get("update_ratio")]
        guide = math.log10(GUIDE_RATIO)
        if not layers:
            return
        values = [log10(layer["update_ratio"], 1e-30) for layer in layers]
        lo, hi = min(min(values), guide) - 0.5, max(max(values), guide) + 0.5
        ticks, labels = decade_ticks(lo, hi, 5)
        positions = list(range(1, len(layers) + 1))
        for x, val in zip(positions, values):
            plt.plot([x, x], [ticks[0], val], color="cyan", marker="│")
        plt.scatter(positions, values, color="cyan+", marker="●")
        plt.hline(guide, "red+")
        plt.xticks(positions, [layer["name"] for layer in layers])
        plt.xlim(0.5, len(layers) + 0.5)
        plt.yticks(ticks, labels)
        plt.ylim(ticks[0], ticks[-1])

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
        table = Table(box=None, padding=(0, 0, 0, 1), show_edge=False)
        table.add_column("layer", no_wrap=True)
        for name in shown:
            table.add_column(name, justify="right", no_wrap=True)
        for i, layer in enumerate(v.layer_stats):
            table.add_row(layer["name"], *[cells[name][i] for name in shown])
        return Group(*lines, table)


def _ratio_text(ratio: float | None) -> str:
    text = fmt_sci(ratio)
    if ratio is not None and ratio > 0 and abs(math.log10(ratio / GUIDE_RATIO)) > 1:
        return f"[yellow]{text}[/]"  # more than 10x off the guide
    return text
