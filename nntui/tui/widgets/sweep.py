"""LR range test panel: loss against log10(LR) as the sweep runs, the suggestions as they are found."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot
from nntui.tui.widgets.chart import LineFigure, Series
from nntui.tui.widgets.common import MISSING, Chart, ViewOptions, update_static

# suggestion -> (mark on the plot, colour); base_lr / max_lr are the cyclic bounds (vertical lines)
MARKS = {"steepest": ("S", "green"), "valley": ("V", "cyan"), "minimum": ("M", "red"), "fall_start": ("F", "magenta")}
BOUNDS = {"base_lr": "yellow", "max_lr": "dark_orange"}


def _lr(x: float | None) -> str:
    return MISSING if x is None else f"{x:.2g}"


def sweep_of(snap: Snapshot) -> dict[str, Any] | None:
    """The sweep to show: a running one, else the last one."""
    if not snap.sweeps:
        return None
    running = [s for s in snap.sweeps if not s["stopped"]]
    return running[-1] if running else snap.sweeps[-1]


def _finite(lrs: list[float], values: list[float | None]) -> list[tuple[float, float]]:
    return [(math.log10(lr), v) for lr, v in zip(lrs, values) if v is not None and math.isfinite(v) and lr > 0]


def sweep_figure(sweep: dict[str, Any] | None) -> LineFigure:
    """Loss against log10(LR): raw batches (dots), the sweep's EMA, the centred curve the suggestions come from."""
    if sweep is None:
        return LineFigure("LR range test: none in this run", x_label="log10 learning rate")
    state = "running" if not sweep["stopped"] else sweep["stopped"]
    lo = math.log10(sweep["start_lr"]) if sweep["start_lr"] > 0 else -8.0
    hi = math.log10(sweep["end_lr"]) if sweep["end_lr"] > 0 else 1.0
    fig = LineFigure(f"LR range test · {sweep['variant']} · {len(sweep['lrs'])}/{sweep['num_iter']} · {state}",
                     x_min=lo, x_max=hi, x_label="log10 learning rate")
    raw, ema, centred = (_finite(sweep["lrs"], sweep[k] or [None] * len(sweep["lrs"])) for k in ("losses", "smoothed", "centred"))
    if not raw:
        return fig
    head = sorted(v for _, v in (ema or raw)[:10])
    ceiling = 1.5 * head[len(head) // 2]  # the plateau and a half: the blow-up would flatten everything else
    clip = lambda pts: ([x for x, _ in pts], [min(v, ceiling) for _, v in pts])  # noqa: E731
    fig.series.append(Series(*clip(raw), kind="dots", style="grey50"))
    if ema:
        fig.series.append(Series(*clip(ema), marker="·", style="blue"))
        fig.legend.append(("·", "blue", "EMA"))
    if centred:
        fig.series.append(Series(*clip(centred), marker="•", style="white"))
        fig.legend.append(("•", "white", "centred"))
    fig.y_fit = [clip(ema or raw)[1], clip(centred)[1]]
    curve = centred or ema or raw
    for name, (mark, color) in MARKS.items():
        lr = sweep["suggestions"].get(name)
        if lr:
            x = math.log10(lr)
            y = min(curve, key=lambda p: abs(p[0] - x))[1]
            fig.series.append(Series([x], [min(y, ceiling)], marker=mark, style=color + " bold", kind="points"))
            fig.legend.append((mark, color, name))
    fig.vlines = [math.log10(sweep["cyclic"][b]) for b in BOUNDS if sweep["cyclic"].get(b)]
    return fig


class SweepPanel(Vertical):
    DEFAULT_CSS = """
    SweepPanel #sweep-plot { height: 1fr; }
    SweepPanel #sweep-table { height: auto; max-height: 6; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Chart(id="sweep-plot")
        yield Static(id="sweep-table")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        sweep = sweep_of(snap)
        self.query_one("#sweep-plot", Chart).show(sweep_figure(sweep))
        table = self._table(sweep)
        update_static(self.query_one("#sweep-table", Static), table, table.plain.count("\n") + 1)

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
            text.append("\ncyclic bounds (│): ", style="bold")
            stability = cyclic.get("stability") or {}
            for name, color in BOUNDS.items():
                band = stability.get(name) or {}
                spread = f" (±noise: {band['decades']:.2f} dec)" if "decades" in band else ""
                text.append(f"{name} {_lr(cyclic.get(name))}{spread}  ", style=color)
            for band in stability.values():
                if band.get("warning"):
                    text.append(f"\n⚠ {band['warning']}", style="bold yellow")
        if sweep["stop_reason"]:
            text.append(f"\nstopped: {sweep['stop_reason']}", style="dim")
        return text


def follow_sweep(app) -> None:
    """While an LR range test is all the run has shown, its panel takes the loss panel's place (or tab);
    when training starts, the loss panel comes back and a note gives the bounds. `app`: the Dashboard."""
    snap = app.snapshot
    phase = bool(snap.sweeps) and not any(v.step for v in snap.variants)
    if phase == app.sweep_phase:
        return
    app.sweep_phase = phase
    app.screen.set_class(phase, "-sweeping")
    if phase and app.active_panel == "loss":
        app.action_show_panel("sweep")
    elif not phase and app.active_panel == "sweep":
        app.action_show_panel("loss")
    cyclic = snap.sweeps[-1]["cyclic"] if snap.sweeps else {}
    if not phase and cyclic.get("max_lr"):
        app.notify(f"LR range test: base_lr {cyclic['base_lr']:.2g}, max_lr {cyclic['max_lr']:.2g} (6: the sweep)")
    app.redraw(view_changed=True)
