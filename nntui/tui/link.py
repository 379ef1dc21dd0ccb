"""Pacing frames to the link: a slow terminal (SSH over a thin line) must get the newest frame, not a queue.

Textual's writes return as soon as the bytes are in the pty; on a slow link they then wait in socket
buffers, seconds or minutes of stale frames. So the app asks the terminal where its cursor is (DSR,
ESC [6n) after its frames: the answer comes only once the terminal has drawn everything before it. While
an answer is overdue the terminal is behind, and periodic redraws are skipped (dropped, never queued).
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.color import Color
from textual.filter import LineFilter
from textual.geometry import Region
from textual.widgets import Footer

from nntui.tui.ascii_filter import AsciiOnly

LAG_S = 0.5  # an answer later than this: the terminal is behind
GIVE_UP_S = 30.0  # no answer ever: a terminal that does not answer DSR; pace by nothing


class LinkPacing:
    _probe_sent: float | None = None
    _probe_answers = 0
    _pacing_off = False
    link_rtt: float | None = None  # the last probe's round trip (frames before it included), seconds
    _slow_answers = 0
    low_bandwidth_filter: LowBandwidth | None = None
    low_bandwidth_auto = True  # False when NNTUI_LOW_BANDWIDTH decided
    ascii_requested = False  # ASCII for the terminal's sake, whatever the link
    _held_regions: list[Region] | None = None  # while a key's frames are held: the regions they would paint

    def setup_low_bandwidth(self) -> None:
        """Install the (disabled) low-bandwidth filter; NNTUI_LOW_BANDWIDTH forces it on or off."""
        forced = low_bandwidth_setting()
        self.low_bandwidth_auto = forced is None
        self.low_bandwidth_filter = LowBandwidth(enabled=False)
        self.ascii_filter = AsciiOnly(enabled=False)
        self._filters.append(self.ascii_filter)
        self._low_bandwidth_at_start = bool(forced)
        self._filters.append(self.low_bandwidth_filter)

    @property
    def low_bandwidth(self) -> bool:
        return self.low_bandwidth_filter is not None and self.low_bandwidth_filter.enabled

    def set_low_bandwidth(self, on: bool) -> None:
        """Switch low-bandwidth frames on or off (on mount when forced, or when the link is measured slow)."""
        if self.low_bandwidth_filter is None or self.low_bandwidth_filter.enabled == on:
            return
        self.low_bandwidth_filter.enabled = on
        self.show_ascii(on or self.ascii_requested)
        self.screen.set_class(on, "-low-bandwidth")
        self._show_footer(not on)
        self.animation_level = "none" if on else "full"  # the tabs' sliding underline: several repaints per key
        self.screen.refresh(repaint=True)  # once, in the new style; later frames repaint only what changed

    def _show_footer(self, on: bool) -> None:
        """Textual's footer rebuilds itself (a relayout and a repaint) whenever the keys change, even hidden:
        on a thin link it is unmounted and a fixed key line stands in."""
        footers = self.query(Footer)
        if on and not footers:
            self.mount(Footer(compact=True), before="#low-bandwidth-keys")
        elif not on:
            footers.remove()

    def hold_frames_for_key(self) -> None:
        """On a thin link a key's effects (the panel shown, its content, the tabs, the header, the relayout that
        follows a new size) go out as one frame: for KEY_FRAME_S, frames are not sent but their regions kept,
        then those regions are painted once, as they are by then."""
        if not self.low_bandwidth or self._held_regions is not None:
            return
        self._held_regions = []

        def release() -> None:
            regions, self._held_regions = self._held_regions, None
            if regions:
                self.screen.refresh(*regions)

        self.set_timer(KEY_FRAME_S, release, name="key-frame")

    def _display(self, screen, renderable) -> None:
        if self._held_regions is not None and renderable is not None:
            self._held_regions.extend(_regions_of(renderable, screen.size))
            return
        super()._display(screen, renderable)

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
            self._slow_answers = self._slow_answers + 1 if self.link_rtt > SLOW_RTT_S else 0
            if self.low_bandwidth_auto and self._slow_answers >= SLOW_ANSWERS:
                self.set_low_bandwidth(True)


SLOW_RTT_S = 1.0  # answers this late, SLOW_ANSWERS times running: a thin link; switch to low-bandwidth frames
SLOW_ANSWERS = 2
KEY_FRAME_S = 0.25  # a key's updates land within this (measured: 2-5 relayouts within ~0.3 s under load)
LOW_BANDWIDTH_KEYS = "1-6 panel  tab variant  l log  h history  ? help  q quit"


class LowBandwidth(LineFilter):
    """Frames for a thin link: no colours (a colour run costs ~14 bytes of SGR per segment), bold/reverse/
    underline kept so focus and selection still show, neighbouring segments of one style merged."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        plain = [Segment(text, None if style is None else _without_colour(style), control) for text, style, control in segments]
        return list(Segment.simplify(plain))


@lru_cache(1024)
def _without_colour(style: Style) -> Style | None:
    bare = style.without_color
    return bare if bare else None


def _regions_of(update, size) -> list[Region]:
    """The screen regions a compositor update paints (a partial update: its line spans)."""
    spans = getattr(update, "spans", None)
    if spans is not None:
        return [Region(x1, y, x2 - x1, 1) for y, x1, x2 in spans]
    return [getattr(update, "region", None) or Region(0, 0, size.width, size.height)]


def low_bandwidth_setting(environ=os.environ) -> bool | None:
    """NNTUI_LOW_BANDWIDTH=1 forces low-bandwidth frames, =0 forbids them; unset: decided by the measured link."""
    value = environ.get("NNTUI_LOW_BANDWIDTH")
    if value is None or value == "":
        return None
    return value not in ("0", "no", "false")
