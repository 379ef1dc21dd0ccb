"""Three-line header: what runs where; how far the selected variant is; the run's verdict or newest alert."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from nntui.tui.snapshot import FINISHED, Snapshot
from nntui.tui.widgets.common import STATUS_STYLE, ViewOptions, fmt_duration, variant_color, variant_marker

RUN_STATUS_WORD = {"waiting": "starting", "completed": "done"}
ALERT_LEVELS = ("error", "warning")


OWN_MODEL = "(your own model)"  # the title nntui.watch gives its runs


def status_word(snap: Snapshot, paused: bool) -> str:
    if snap.status == "running" and paused:
        return "paused"
    return RUN_STATUS_WORD.get(snap.status, snap.status)


def verdict_mark(reproduced: bool | None, ascii_only: bool = False, run_over: bool = False) -> tuple[str, str]:
    """✓ / ✗, or for no verdict: "…" while the run goes on, "?" (inconclusive) once it is over."""
    if reproduced is None:
        if run_over:
            return "?", "yellow"
        return ("..." if ascii_only else "…"), "dim"
    if ascii_only:
        return ("OK", "green") if reproduced else ("NO", "red")
    return ("✓", "green") if reproduced else ("✗", "red")


def outcome_line(snap: Snapshot, view: ViewOptions, note: str = "") -> Text:
    """The newest alert (diverged, stopped, writer gone) else the finding: always on the first screen."""
    alerts = [(level, message) for level, message in snap.alerts if level in ALERT_LEVELS]
    if alerts:
        level, message = alerts[-1]
        more = f" (+{len(alerts) - 1} more: 5)" if len(alerts) > 1 else ""
        return Text.assemble(("! " if level == "error" else "! ", "bold red" if level == "error" else "bold yellow"), message, (more, "dim"))
    if snap.finding:
        mark, style = verdict_mark(snap.finding_reproduced, view.ascii_only, snap.status in FINISHED)
        return Text.assemble((f"{mark} ", style + " bold"), snap.finding)
    if note:
        return Text(note, style="yellow")
    if snap.title.endswith(OWN_MODEL):  # nntui.watch: no lecture, the health checks judge it
        return Text("no lecture verdict (your own model): health checks on 5 Lesson", style="dim")
    return Text("verdict: none yet (verdicts come at epoch ends)", style="dim")


class StatusHeader(Static):
    def update_view(self, snap: Snapshot, view: ViewOptions, *, paused: bool, mode: str, note: str = "", phase: str = "") -> None:
        word = "stopped" if note.startswith("writer") else status_word(snap, paused)
        if phase and snap.status == "waiting":
            word = "setting up"
        replaying = note.startswith("replay")
        if replaying:
            word, mode, note = "replay", note, ""
        badge = f" {word.upper()} "
        top = Text.assemble(
            ("nntui ", "bold"), (snap.preset or "…", "bold cyan"),
            f" · {snap.dataset or '…'} · {snap.device or '…'}",
            (f" · {mode}", "dim") if mode != "live" else "",
        )
        room = self.app.size.width - 2 - len(badge) - 1
        top.truncate(max(10, room), overflow="ellipsis")
        top.append(" ")
        top.append(badge, style="reverse " + STATUS_STYLE.get(word, ""))
        v = snap.variant(view.selected)
        if v is None:
            bottom = Text(f"setting up: {phase}…" if phase else "waiting for the first events…", style="dim")
        else:
            index = view.selected % len(snap.variants)
            pointer = ">" if view.ascii_only else "▶"
            rate = v.steps_per_second
            # the ETA first among the figures: it must not be the part cut off on a narrow terminal
            eta = "" if word in ("stopped", "done") or mode == "replay" else f"ETA {fmt_duration(v.eta_seconds)} · "
            bottom = Text.assemble(
                f"{pointer}{variant_marker(index, view.ascii_only)} ", (v.name, variant_color(index) + " bold"),
                f" {index + 1}/{len(snap.variants)} · ", (f"{note} · " if word == "stopped" else "", "bold red"), eta,
                f"step {v.step}/{v.total_steps} · " if v.total_steps else f"step {v.step} · ",
                f"ep {v.epoch:.1f}/{v.epochs} · " if v.epochs else f"ep {v.epoch:.1f} · ",
                f"{rate:.0f}" if rate >= 100 else f"{rate:.1f}", " steps/s",
            )
            if v.status not in ("running", "pending", "completed"):
                bottom.append(f" · {v.status}", style=STATUS_STYLE.get(v.status, ""))
        if note and word != "stopped":
            bottom.append(f" · {note}", style="yellow")
        third = outcome_line(snap, view, note if note.startswith("writer") else "")
        width = max(10, self.app.size.width - 2)  # the header spans the screen (padding 1 each side)
        for line in (top, bottom, third):
            line.truncate(width, overflow="ellipsis")  # three lines at any width: cut, never wrapped
        text = Text("\n").join([top, bottom, third])
        self.update(text, layout=False)  # fixed height: no relayout
