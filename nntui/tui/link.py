"""Pacing frames to the link: a slow terminal (SSH over a thin line) must get the newest frame, not a queue.

Textual's writes return as soon as the bytes are in the pty; on a slow link they then wait in socket
buffers, seconds or minutes of stale frames. So the app asks the terminal where its cursor is (DSR,
ESC [6n) after its frames: the answer comes only once the terminal has drawn everything before it. While
an answer is overdue the terminal is behind, and periodic redraws are skipped (dropped, never queued).
"""

from __future__ import annotations

import time

from textual import events

LAG_S = 0.5  # an answer later than this: the terminal is behind
GIVE_UP_S = 30.0  # no answer ever: a terminal that does not answer DSR; pace by nothing


class LinkPacing:
    _probe_sent: float | None = None
    _probe_answers = 0
    _pacing_off = False
    link_rtt: float | None = None  # the last probe's round trip (frames before it included), seconds

    def _pacing_possible(self) -> bool:
        return not (self._pacing_off or self.is_headless or self._driver is None or not hasattr(self._driver, "_writer_thread"))

    def link_behind(self) -> bool:
        """True while the terminal has not yet drawn what was sent LAG_S ago; sends the next probe when none is out."""
        if not self._pacing_possible():
            return False
        now = time.monotonic()
        if self._probe_sent is None:
            self._driver.write("\x1b[6n")
            self._probe_sent = now
            return False
        waited = now - self._probe_sent
        if self._probe_answers == 0 and waited > GIVE_UP_S:
            self._pacing_off = True
            return False
        return waited > LAG_S

    def on_cursor_position(self, event: events.CursorPosition) -> None:
        if self._probe_sent is not None:
            self.link_rtt = time.monotonic() - self._probe_sent
            self._probe_sent = None
            self._probe_answers += 1
