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
from nntui.tui.widgets.common import Chart

LAG_S = 0.5  # an answer later than this: the terminal is behind
GIVE_UP_S = 30.0  # no answer ever: a terminal that does not answer DSR; pace by nothing
SLOW_RTT_S = 1.0  # answers this late, SLOW_ANSWERS times running: a thin link; switch to low-bandwidth frames
SLOW_ANSWERS = 2
COLOUR_BYTES_PER_CELL = 14  # a colour frame's cost (SGR per segment): colour only where a full one drains in 1 s
SAMPLE_MIN_BYTES = 1024  # in flight before a probe: enough to time the link, not only its latency
LATENCY_SAMPLE_BYTES = 256  # in flight before a probe: so little that the answer times the latency alone
KEY_QUIET_S = 0.12  # a key's (or the start's) frames are held until none came for this long (its relayouts follow within ~0.1 s)
KEY_HOLD_MAX_S = 0.4
LOW_BANDWIDTH_KEYS = "1-6 panel  tab variant  l log  h history  ? help  q quit"


class LinkPacing:
    _probe_sent: float | None = None
    _probe_answers = 0
    _pacing_off = False
    link_rtt: float | None = None  # the last probe's round trip (frames before it included), seconds
    link_bytes_per_s: float | None = None  # the last measured throughput (None: not measured, or faster than timed)
    _latency: float | None = None  # the quickest round trip seen with almost nothing in flight
    _bytes_out = 0  # written to the terminal so far
    _bytes_at_probe = 0  # written before the last probe
    _in_flight = 0  # written between the last two probes: what the last probe's answer waited for
    _link_free_at = 0.0  # periodic frames wait until then: a slow link stays idle as long as it was busy
    _slow_answers = 0
    _measured_slow = False
    low_bandwidth_filter: LowBandwidth | None = None
    low_bandwidth_auto = True  # False when NNTUI_LOW_BANDWIDTH decided
    ascii_requested = False  # ASCII for the terminal's sake, whatever the link
    _held_regions: list[Region] | None = None  # while a key's frames are held: the regions they would paint
    _held_at = _last_held = 0.0
    _frame_released = False

    def setup_link(self, ascii_requested: bool) -> None:
        """Install the ASCII and low-bandwidth filters. NNTUI_LOW_BANDWIDTH forces the latter on or off; unset, an
        SSH session starts in it (the first frames are the largest) until the link is measured fast enough for colour."""
        self.ascii_requested = ascii_requested
        forced = low_bandwidth_setting()
        self.low_bandwidth_auto = forced is None
        self.low_bandwidth_filter = LowBandwidth(enabled=False)
        self.ascii_filter = AsciiOnly(enabled=False)
        self._filters.append(self.ascii_filter)
        self._low_bandwidth_at_start = forced if forced is not None else ssh_session()
        self._filters.append(self.low_bandwidth_filter)

    def start_link(self) -> None:
        """On mount: the glyphs and frames chosen at set-up, and the byte count the link is timed by."""
        self.show_ascii(self.ascii_requested)
        self.set_low_bandwidth(self._low_bandwidth_at_start)
        self.count_output()

    @property
    def low_bandwidth(self) -> bool:
        return self.low_bandwidth_filter is not None and self.low_bandwidth_filter.enabled

    def set_low_bandwidth(self, on: bool) -> None:
        """Switch low-bandwidth frames on or off (on mount, or when the link is measured slow or fast)."""
        if self.low_bandwidth_filter is None or self.low_bandwidth_filter.enabled == on:
            return
        self.low_bandwidth_filter.enabled = on
        self.hold_frames()  # the switch restyles everything: one frame, not one per change
        self.show_ascii(on or self.ascii_requested)
        self.screen.set_class(on, "-low-bandwidth")
        self._show_footer(not on)
        self.animation_level = "none" if on else "full"  # the tabs' sliding underline: several repaints per key
        self.screen.refresh(repaint=True)  # once, in the new style; later frames repaint only what changed

    def show_ascii(self, on: bool) -> None:
        """ASCII glyphs (1 byte a cell instead of 3): for terminals without Unicode, and on thin links."""
        self.view.ascii_only = self.ascii_filter.enabled = on
        self.screen.set_class(on, "-ascii")
        for chart in self.query(Chart):
            chart.ascii_only = on
        if self.is_mounted(self.screen):
            self._view_changed()

    def _show_footer(self, on: bool) -> None:
        """Textual's footer rebuilds itself (a relayout and a repaint) whenever the keys change, even hidden:
        on a thin link it is unmounted and a fixed key line stands in."""
        footers = self.query(Footer)
        if on and not footers:
            self.mount(Footer(compact=True), before="#low-bandwidth-keys")
        elif not on:
            footers.remove()

    # -- one frame per change

    def hold_frames(self) -> None:
        """On a thin link a change's frames go out as one: a key's effects (the panel shown, its content, the
        tabs, the header, the relayout that follows a new size), the start, a range test's panel coming and
        going. Frames are not sent but their regions kept until none came for KEY_QUIET_S (or KEY_HOLD_MAX_S
        passed), then those regions are painted once, as they are by then."""
        if not self.low_bandwidth or self._held_regions is not None:
            return
        self._held_regions = []
        self._held_at = self._last_held = time.monotonic()
        self.set_timer(KEY_QUIET_S, self._release_when_quiet, name="key-frame")

    def _release_when_quiet(self) -> None:
        now = time.monotonic()
        if now - self._last_held < KEY_QUIET_S and now - self._held_at < KEY_HOLD_MAX_S:
            self.set_timer(KEY_QUIET_S, self._release_when_quiet, name="key-frame")
            return
        regions, self._held_regions = self._held_regions, None
        if regions:
            self._frame_released = True
            self.screen.refresh(*regions)

    def _display(self, screen, renderable) -> None:
        if renderable is None:
            return super()._display(screen, renderable)
        if self._frame_released:
            self._frame_released = False  # the held regions' own frame goes out
        elif self._held_regions is None:
            self.hold_frames()  # on a thin link: whatever makes this frame (a key, the start) makes more within ms
        if self._held_regions is not None:
            self._held_regions.extend(_regions_of(renderable, screen.size))
            self._last_held = time.monotonic()
            return
        super()._display(screen, renderable)
        self._send_probe()

    # -- measuring the link

    def _pacing_possible(self) -> bool:
        return not (self._pacing_off or self.is_headless or self._driver is None or not hasattr(self._driver, "_writer_thread"))

    def count_output(self) -> None:
        """Count the bytes written to the terminal (what a probe's answer waited for)."""
        if not self._pacing_possible() or getattr(self._driver, "_nntui_counted", False):
            return
        write = self._driver.write

        def counted(data: str) -> None:
            self._bytes_out += len(data.encode("utf-8", "replace"))
            write(data)

        self._driver.write = counted
        self._driver._nntui_counted = True

    def _send_probe(self) -> None:
        """Ask where the cursor is right after a frame: the answer times how long the terminal took to draw it."""
        if self._probe_sent is not None or not self._pacing_possible():
            return
        self._driver.write("\x1b[6n")
        self._probe_sent = time.monotonic()
        self._in_flight = self._bytes_out - self._bytes_at_probe
        self._bytes_at_probe = self._bytes_out

    def link_behind(self) -> bool:
        """True while the terminal has not drawn what was sent LAG_S ago, or while a slow link rests."""
        if not self._pacing_possible():
            return False
        now = time.monotonic()
        if self._probe_sent is None:
            return now < self._link_free_at
        waited = now - self._probe_sent
        if self._probe_answers == 0 and waited > GIVE_UP_S:
            self._pacing_off = True
            return False
        return waited > LAG_S

    def on_cursor_position(self, event: events.CursorPosition) -> None:
        if self._probe_sent is None:
            return
        now = time.monotonic()
        rtt = self.link_rtt = now - self._probe_sent
        self._probe_sent = None
        self._probe_answers += 1
        self._link_free_at = now + rtt if rtt > LAG_S / 2 else 0.0  # a slow link: idle as long as it was busy
        if self._in_flight < LATENCY_SAMPLE_BYTES:
            self._latency = rtt if self._latency is None else min(self._latency, rtt)
        elif self._in_flight >= SAMPLE_MIN_BYTES:
            busy = rtt - (self._latency or 0.0)
            self.link_bytes_per_s = self._in_flight / busy if busy > 0.02 else None  # None: too fast to time
            fast = self.link_bytes_per_s is None or self.link_bytes_per_s >= self._colour_bytes_per_s()
            if fast and self.low_bandwidth_auto and not self._measured_slow:
                self.set_low_bandwidth(False)
        self._slow_answers = self._slow_answers + 1 if rtt > SLOW_RTT_S else 0
        if self.low_bandwidth_auto and self._slow_answers >= SLOW_ANSWERS:
            self._measured_slow = True  # no way back to colour: a link that lagged would lag again
            self.set_low_bandwidth(True)
        if self._bytes_out > self._bytes_at_probe:  # frames went out behind that probe: time them too
            self._send_probe()

    def _colour_bytes_per_s(self) -> float:
        width, height = self.size
        return width * height * COLOUR_BYTES_PER_CELL


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


def ssh_session(environ=os.environ) -> bool:
    """A terminal reached over SSH: its link may be thin (sshd sets these for the session's shell)."""
    return any(environ.get(name) for name in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"))


def low_bandwidth_setting(environ=os.environ) -> bool | None:
    """NNTUI_LOW_BANDWIDTH=1 forces low-bandwidth frames, =0 forbids them; unset: decided by the measured link."""
    value = environ.get("NNTUI_LOW_BANDWIDTH")
    if value is None or value == "":
        return None
    return value not in ("0", "no", "false")
