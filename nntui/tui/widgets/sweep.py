"""LR range test panel: loss against log10(LR) as the sweep runs, the suggestions as they are found."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot
from nntui.tui.widgets.common import MISSING, ViewOptions
from nntui.tui.widgets.plotext_plot import Plot, decade_ticks

# suggestion -> (mark on the plot, colour); base_lr / max_lr are the cyclic bounds
MARKS = {"steepest": ("S", "green"), "valley": ("V", "cyan"), "minimum": ("M", "red"), "fall_start": ("F", "magenta")}
BOUNDS = {"base_lr": "yellow", "max_lr": "orange"}


def _lr(x: float | None) -> str:
    return MISSING if x is None else f"{x:.2g}"


def sweep_of(snap: Snapshot) -> dict[str, Any] | None:
    """The sweep to show: a running one, else the last one."""
    if not snap.sweeps:
        return None
    running = [s for s in snap.sweeps if not s["stopped"]]
    return running[-1] if running else snap.sweeps[-1]


class SweepPanel(Vertical):
    DEFAULT_CSS = """
    SweepPanel #sweep-plot { height: 1fr; }
    SweepPanel #sweep-table { height: auto; max-height: 5; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Plot(id="sweep-plot")
        yield Static(id="sweep-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        sweep = sweep_of(snap)
        self.query_one("#sweep-plot", Plot).draw(lambda plt: self._plot(plt, sweep))
        self.query_one("#sweep-table", Static).update(self._table(sweep))

    def _plot(self, plt, sweep: dict[str, Any] | None) -> None:
        if sweep is None:
            plt.title("LR range test: none in this run")
            return
        done = len(sweep["lrs"])
        state = "running" if not sweep["stopped"] else sweep["stopped"]
        plt.title(f"LR range test · {sweep['variant']} · {done}/{sweep['num_iter']} · {state}")
        plt.xlabel("learning rate")
        raw = [(math.log10(lr), v) for lr, v in zip(sweep["lrs"], sweep["losses"]) if v is not None and math.isfinite(v)]
        if not raw:
            return
        smooth = [(math.log10(lr), v) for lr, v in zip(sweep["lrs"], sweep["smoothed"]) if v is not None and math.isfinite(v)]
        ceiling = 4 * min(v for _, v in smooth) + 1 if smooth else None  # the blow-up would flatten the rest
        clip = (lambda v: min(v, ceiling)) if ceiling else (lambda v: v)
        plt.scatter([x for x, _ in raw], [clip(v) for _, v in raw], color="gray", marker="dot")
        if smooth:
            plt.plot([x for x, _ in smooth], [clip(v) for _, v in smooth], color="blue", marker="hd", label="EMA")
        centred = [(math.log10(lr), v) for lr, v in zip(sweep["lrs"], sweep["centred"]) if v is not None]
        if centred:
            plt.plot([x for x, _ in centred], [clip(v) for _, v in centred], color="white", marker="hd", label="centred")
        xs = [x for x, _ in raw]
        lo_x, hi_x = math.log10(sweep["start_lr"] or 10 ** min(xs)), math.log10(sweep["end_lr"] or 10 ** max(xs))
        plt.xlim(lo_x, hi_x)
        plt.xticks(*decade_ticks(lo_x, hi_x))
        for name, (mark, color) in MARKS.items():
            lr = sweep["suggestions"].get(name)
            if lr:
                x = math.log10(lr)
                y = min(raw, key=lambda p: abs(p[0] - x))[1] if not centred else min(centred, key=lambda p: abs(p[0] - x))[1]
                plt.scatter([x], [clip(y)], marker=mark, color=color)
        for name, color in BOUNDS.items():
            lr = sweep["cyclic"].get(name)
            if lr:
                plt.vline(math.log10(lr), color)

    def _table(self, sweep: dict[str, Any] | None) -> Text:
        if sweep is None:
            return Text("no LR range test in this run", style="dim")
        s = sweep["suggestions"]
        text = Text()
        final = bool(sweep["stopped"])
        text.append("suggestions" + ("" if final else " so far") + ": ", style="bold")
        for name, (mark, color) in MARKS.items():
            text.append(f"{mark} {name} {_lr(s.get(name))}  ", style=color)
        cyclic = sweep["cyclic"]
        if cyclic:
            text.append("\ncyclic bounds: ", style="bold")
            stability = cyclic.get("stability") or {}
            for name, color in BOUNDS.items():
                band = stability.get(name) or {}
                spread = f" (±noise: {band['decades']:.2f} dec)" if "decades" in band else ""
                text.append(f"{name} {_lr(cyclic.get(name))}{spread}  ", style=color.replace("orange", "dark_orange"))
            for band in stability.values():
                if band.get("warning"):
                    text.append(f"\n⚠ {band['warning']}", style="bold yellow")
        if sweep["stop_reason"]:
            text.append(f"\nstopped: {sweep['stop_reason']}", style="dim")
        return text
