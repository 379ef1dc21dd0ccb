"""Two-line header: what runs where, and how far the selected variant is."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from nntui.tui.snapshot import Snapshot
from nntui.tui.widgets.common import STATUS_STYLE, ViewOptions, fmt_duration, variant_color

RUN_STATUS_WORD = {"waiting": "starting", "completed": "done"}


def status_word(snap: Snapshot, paused: bool) -> str:
    if snap.status == "running" and paused:
        return "paused"
    return RUN_STATUS_WORD.get(snap.status, snap.status)


class StatusHeader(Static):
    def update_view(self, snap: Snapshot, view: ViewOptions, *, paused: bool, mode: str, note: str = "") -> None:
        word = "stopped" if note.startswith("writer") else status_word(snap, paused)
        top = Text.assemble(
            ("nntui ", "bold"), (snap.preset or "…", "bold cyan"),
            f" · {snap.dataset or '…'} · {snap.device or '…'}",
            (f" · {mode}", "dim") if mode != "live" else "",
        )
        top.append("  ")
        top.append(f" {word.upper()} ", style="reverse " + STATUS_STYLE.get(word, ""))
        v = snap.variant(view.selected)
        if v is None:
            bottom = Text("waiting for the first events…", style="dim")
        else:
            index = view.selected % len(snap.variants)
            name_style = variant_color(index).replace("orange", "dark_orange") + " bold"
            rate = v.steps_per_second
            bottom = Text.assemble(
                "▶ ", (v.name, name_style), f" ({index + 1}/{len(snap.variants)})",
                f" · epoch {v.epoch:.1f}/{v.epochs} · step {v.step}/{v.total_steps}",
                f" · {rate:.0f}" if rate >= 100 else f" · {rate:.1f}", " steps/s",
                "" if word == "stopped" else f" · ETA {fmt_duration(v.eta_seconds)}",
            )
            if v.status not in ("running", "pending", "completed"):
                bottom.append(f" · {v.status}", style=STATUS_STYLE.get(v.status, ""))
        if note:
            bottom.append(f" · {note}", style="bold red" if word == "stopped" else "yellow")
        self.update(Text("\n").join([top, bottom]), layout=False)  # fixed height: no relayout
