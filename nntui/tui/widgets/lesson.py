"""Lesson panel: what to look for, and the live verdicts."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from nntui.tui.snapshot import FINISHED, Snapshot
from nntui.tui.widgets.common import ViewOptions
from nntui.tui.widgets.header import verdict_mark

ALERT_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


class LessonPanel(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static(id="lesson-text")

    def update_view(self, snap: Snapshot, view: ViewOptions) -> None:
        parts: list[Text] = [Text(snap.title or snap.preset or "waiting for the run to start…", style="bold")]
        # the outcome first: at 80x24 the lesson text would push it below the fold
        if snap.finding:
            mark, style = verdict_mark(snap.finding_reproduced, view.ascii_only, snap.status in FINISHED)
            parts.append(Text.assemble((f"{mark} ", style), ("finding: ", "bold"), snap.finding))
        for level, message in [a for a in snap.alerts if a[0] == "error"][-2:]:
            parts.append(Text(message, style=ALERT_STYLE[level]))
        if snap.lesson:
            parts.append(Text(" ".join(snap.lesson.split())))  # reflow the preset's hard-wrapped text
        parts.append(Text("\nverdicts", style="bold underline"))
        any_verdict = False
        for v in snap.variants:
            if v.verdict:
                mark, style = verdict_mark(v.reproduced, view.ascii_only, snap.status in FINISHED)
                parts.append(Text.assemble((f"{mark} ", style), v.verdict))
                any_verdict = True
        any_verdict = any_verdict or bool(snap.finding)
        if not any_verdict:
            parts.append(Text("none yet (verdicts come at epoch ends)", style="dim"))
        if snap.alerts:
            parts.append(Text("\nalerts", style="bold underline"))
            for level, message in snap.alerts[-5:]:
                parts.append(Text(message, style=ALERT_STYLE.get(level, "")))
        if snap.notes:
            parts.append(Text("\nnotes", style="bold underline"))
            parts.extend(Text(note, style="dim") for note in snap.notes)
        key = tuple((p.plain, tuple(p.spans), str(p.style)) for p in parts)
        if key != getattr(self, "_shown", None):  # verdicts change at epoch ends: no relayout in between
            self._shown = key
            self.query_one("#lesson-text", Static).update(Group(*parts))
