"""Watching a run log another process writes: what to say when it stops growing before its run_finished."""

from __future__ import annotations

import time

from nntui.record import events as ev
from nntui.record.runlog import writer_gone
from nntui.tui.snapshot import FINISHED

STALE_S = 30  # this long without new events is worth saying


class WatchNotes:
    def _watch_note(self) -> str:
        """What to say when a followed log stops growing before its run_finished (and how many lines were unreadable)."""
        skipped = self.state.skipped_lines
        note = self._writer_note()
        return f"{note} · {skipped} unreadable lines skipped" if note and skipped else note or (f"{skipped} unreadable lines skipped" if skipped else "")

    def _writer_note(self) -> str:
        if self.snapshot.status in FINISHED:
            return ""
        if self.snapshot.status == "waiting":
            if self._log_has_events():
                return ""  # written to, just not read yet (an old finished run at the start of its replay)
            idle = max(time.monotonic() - self._last_event_at, self.reader.silent_for())
            return f"nothing written for {idle:.0f} s: the run's writer may have failed before its first event" if idle >= STALE_S else ""
        if writer_gone(self.state.writer_pid, self.state.writer_host):
            if not self.writer_note.startswith("writer"):
                message = (f"the process that wrote this run (pid {self.state.writer_pid}) exited without finishing it: "
                           "it crashed or was killed; the dashboard shows everything it wrote")
                self.state.apply(ev.Alert(None, 0, "error", message))
            return "writer gone"
        idle = time.monotonic() - self._last_event_at
        return f"no new events for {idle:.0f} s" if idle >= STALE_S else ""

    def _log_has_events(self) -> bool:
        try:
            return self.reader.path.stat().st_size > 0
        except OSError:
            return False
