"""The dashboard app: one RunState, fed live by a Run (training thread) or by a run log (watch/replay).

The app paints first and starts the run (torch, data, models) in a worker thread. Panels redraw on a
timer, only when the state moved or the view changed, and never while the terminal lags behind.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.geometry import Size
from textual.screen import Screen
from textual.widgets import Footer, Static, Tab, Tabs
from textual.worker import get_current_worker

from nntui.record import events as ev
from nntui.record.runlog import RunLogReader
from nntui.record.state import RunState
from nntui.tui.link import LOW_BANDWIDTH_KEYS, LinkPacing
from nntui.tui.replay import JUMP, Replay, ReplayControls
from nntui.tui.setup import LiveStart, Starter
from nntui.tui.watching import WatchNotes
from nntui.tui.snapshot import FINISHED, Snapshot, take_snapshot
from nntui.tui.view_keys import ViewKeys
from nntui.tui.widgets.activations import ActivationsPanel
from nntui.tui.widgets.common import ViewOptions, ascii_terminal
from nntui.tui.widgets.gradients import GradientsPanel
from nntui.tui.widgets.header import StatusHeader, status_word
from nntui.tui.widgets.health import HealthText
from nntui.tui.widgets.help import HelpScreen
from nntui.tui.widgets.lesson import LessonPanel
from nntui.tui.widgets.loss import LossPanel
from nntui.tui.widgets.optimizer import OptimizerPanel
from nntui.tui.widgets.sweep import SweepPanel, follow_sweep

REFRESH_HZ = 1  # the timer: header, data checks and panel redraws (each panel at least once a second)
PLOT_DUTY = 0.05  # panels redraw at most this share of the time: the UI thread shares the GIL with training
MIN_PLOT_INTERVAL = 0.9  # seconds between panel redraws while data streams in (about 1 Hz)
GIL_SWITCH_S = 0.0005  # hand the GIL back to the training thread sooner than Python's 5 ms default
MIN_SIZE = (60, 16)  # below this: "please enlarge the terminal"
GRID_SIZE = (130, 38)  # from this size on: all panels at once, else one panel per tab

PANELS = [
    ("loss", "Loss", LossPanel),
    ("gradients", "Gradients", GradientsPanel),
    ("activations", "Activations", ActivationsPanel),
    ("optimizer", "Optimizer", OptimizerPanel),
    ("lesson", "Lesson", LessonPanel),
    ("sweep", "LR test", SweepPanel),  # in the grid only while an LR range test is all there is, in the loss panel's place
]

class Dashboard(ViewKeys, ReplayControls, LiveStart, LinkPacing, WatchNotes, App[None]):
    """Renders `state`; `run` (live) adds pause and stop, `reader` (watch) feeds the state from a log."""

    CSS_PATH = "app.tcss"
    TITLE = "nntui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("space", "toggle_pause", "pause"),
        Binding("tab,n", "next_variant", "variant", priority=True),
        Binding("shift+tab,p", "previous_variant", "prev", show=False, priority=True),
        Binding("l", "toggle_log", "log"),
        Binding("h", "toggle_history", "history", show=False),
        Binding("left,comma", "replay_step(-1)", "step", priority=True),
        Binding("right,full_stop", "replay_step(1)", "step", show=False, priority=True),
        Binding("shift+left,less_than_sign,pageup", f"replay_step(-{JUMP})", "jump", show=False),
        Binding("shift+right,greater_than_sign,pagedown", f"replay_step({JUMP})", "jump", show=False),
        Binding("home,g", "replay_to(0)", "start", show=False),
        Binding("end,G", "replay_to(-1)", "end", show=False),
        Binding("s", "screenshot", "svg", show=False),
        Binding("question_mark,f1", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        *[Binding(str(i), f"show_panel('{key}')", title, show=False) for i, (key, title, _) in enumerate(PANELS, 1)],
    ]

    def __init__(self, state: RunState, *, run=None, reader: RunLogReader | None = None, run_dir: Path | None = None,
                 starter: Starter | None = None, ascii_only: bool | None = None) -> None:
        super().__init__()
        self.state = state
        self.live_run = run
        self.starter = starter
        self.reader = reader
        self.run_dir = Path(run_dir) if run_dir else (Path(run.run_dir) if run is not None else None)
        self.view = ViewOptions(ascii_only=ascii_terminal() if ascii_only is None else ascii_only)
        self.setup_link(ascii_requested=self.view.ascii_only)
        self.paused = False
        self.layout_mode = ""
        self.active_panel = "loss"
        self.snapshot = Snapshot()  # the latest read of the state (the header shows it)
        self.panel_snapshot = Snapshot()  # what the panels show (redrawn less often)
        self._drawn: dict[str, int] = {}  # panel -> snapshot version drawn
        self._next_plot_time = 0.0
        self._frame_started: float | None = None
        self._last_event_at = time.monotonic()  # watch mode: when the log last grew
        self.writer_note = ""  # watch mode: why the run seems to have stopped, if it does
        self.sweep_phase = False  # an LR range test is running, or is all there is so far
        self.phase = "reading the preset" if starter is not None else ""  # set-up progress while the run is prepared
        self.start_error: BaseException | None = None
        self.start_thread: threading.Thread | None = None
        self.prepared_run = None
        self.quitting = False
        self._events: list[ev.Event] = []  # watch mode: everything read, for the replay
        self.replay: Replay | None = None
        self._bindings_mode = ""
        self.frames = self.dropped_frames = 0  # redraws made / skipped while the terminal lagged

    # -- layout

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        yield Tabs(*[Tab(f"{i} {title}", id=f"tab-{key}") for i, (key, title, _) in enumerate(PANELS, 1)], id="panel-tabs")
        with Container(id="panels"):
            for i, (key, title, cls) in enumerate(PANELS, 1):
                panel = cls(id=key, classes="panel")
                panel.border_title = f"{i} {title}"
                yield panel
        yield Static("please enlarge the terminal", id="too-small")
        yield Footer(compact=True)
        yield Static(LOW_BANDWIDTH_KEYS, id="low-bandwidth-keys")

    def on_mount(self) -> None:
        self.query_one("#loss").border_subtitle = "l: log y"
        self.query_one("#gradients").border_subtitle = "h: history"
        self.query_one("#lesson").mount(HealthText(id="health"), before=0)
        self.start_link()
        self._apply_layout()
        self.set_interval(1 / REFRESH_HZ, self.tick)
        if self.live_run is not None or self.starter is not None:
            # Training releases the GIL in every torch op and must win it back quickly each time.
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(GIL_SWITCH_S)
        if self.starter is not None:
            self.call_after_refresh(self.start_run)  # paint first: torch and the data load in a worker thread
        elif self.live_run is not None and self.live_run.thread is None:
            self.live_run.start()
        if self.reader is not None:
            self.follow_log()
        self.tick()

    def on_unmount(self) -> None:
        if getattr(self, "_switch_interval", None) is not None:
            sys.setswitchinterval(self._switch_interval)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout(event.size)

    def _apply_layout(self, size: Size | None = None) -> None:
        width, height = size or self.size
        if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
            mode = "too-small"
        elif width >= GRID_SIZE[0] and height >= GRID_SIZE[1]:
            mode = "grid"
        else:
            mode = "tabs"
        self.query_one("#too-small", Static).update(
            f"please enlarge the terminal\n\nthe dashboard needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}; this one is {width}x{height}"
        )
        if mode == self.layout_mode:
            self.redraw(view_changed=True)
            return
        screen = self.screen
        for name in ("too-small", "grid", "tabs"):
            screen.set_class(mode == name, f"-{name}")
        self.layout_mode = mode
        self._show_panel(self.active_panel)
        self.redraw(view_changed=True)

    def _show_panel(self, key: str) -> None:
        self.active_panel = key
        for panel in self.query(".panel"):
            panel.set_class(panel.id == key, "-active")
        self.query_one(f"#{key}").focus()  # arrows and page keys scroll the panel shown

    def visible_panels(self) -> list[str]:
        if self.layout_mode == "too-small":
            return []
        if self.layout_mode == "grid":  # the LR test panel stands in for the loss panel during a sweep
            return [key for key, _, _ in PANELS if key != ("loss" if self.sweep_phase else "sweep")]
        return [self.active_panel]

    @on(Tabs.TabActivated, "#panel-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        self._show_panel(event.tab.id.removeprefix("tab-"))
        self.redraw()

    # -- data

    @work(thread=True, exclusive=True, name="follow-log")
    def follow_log(self) -> None:
        """Apply the run log's events to the state as they are written (returns after run_finished)."""
        worker = get_current_worker()
        for batch in self.reader.follow(poll=0.2, stop=lambda: worker.is_cancelled):
            for event in batch:
                self.state.apply(event)
            self._events.extend(batch)
            if batch:
                self._last_event_at = time.monotonic()

    def _output_backlog(self) -> bool:
        """True while earlier frames still wait to be written (a slow link): a new frame would queue behind them."""
        writer = getattr(self._driver, "_writer_thread", None)
        queue = getattr(writer, "_queue", None)
        return queue is not None and queue.qsize() > 0

    def tick(self) -> None:
        if self.live_run is not None and (self.live_run.error is not None or self.live_run.view_closed.is_set()):
            self.exit()  # run_dashboard re-raises the training thread's error; a signal or hang-up closes the view
            return
        if self._output_backlog() or self.link_behind():
            self.dropped_frames += 1  # the terminal is behind: skip this frame rather than queue it
            return
        if self.mode != self._bindings_mode:
            self._bindings_mode = self.mode
            self.refresh_bindings()  # the footer shows the keys of this mode
        if self.replay is not None:
            self.redraw(panels=False)
            return
        changed = self.state.version != self.snapshot.version
        if changed:
            self.snapshot = take_snapshot(self.state)
            follow_sweep(self)
        if self.reader is not None:
            note = self._watch_note()
            changed = changed or note != self.writer_note
            self.writer_note = note
        stale = any(self._drawn.get(key) != self.snapshot.version for key in self.visible_panels())
        due = stale and (self.snapshot.status in FINISHED or time.monotonic() >= self._next_plot_time)
        if changed or due or self.phase:
            self.redraw(panels=due)

    def refresh_now(self) -> None:
        """Read the state and redraw every visible panel at once (tests, snapshots)."""
        self.snapshot = take_snapshot(self.replay.state if self.replay is not None else self.state)
        follow_sweep(self)
        self.redraw(view_changed=True)

    def redraw(self, view_changed: bool = False, panels: bool = True) -> None:
        """Header always; panels when `panels`, timed to keep to PLOT_DUTY."""
        if view_changed:
            self._drawn.clear()
        snap = self.snapshot
        self.frames += 1
        with self.batch_update():
            self.query_one(StatusHeader).update_view(snap, self.view, paused=self.paused, mode=self.mode,
                                                     note=self._replay_note() or self.writer_note, phase=self.phase)
            if not panels:
                return
            self.panel_snapshot = snap
            for key in self.visible_panels():
                if self._drawn.get(key) != snap.version:
                    self.query_one(f"#{key}").update_view(snap, self.view)
                    if key == "lesson":
                        for health in self.query(HealthText):
                            health.show(self.state, self.view.selected)
                    self._drawn[key] = snap.version
        if self._frame_started is None:
            self._frame_started = time.monotonic()
            self.call_after_refresh(self._frame_done)

    def _frame_done(self) -> None:
        """The frame's cost (update and render) sets when the next panel redraw may come."""
        started, self._frame_started = self._frame_started, None
        cost = time.monotonic() - started
        duty = PLOT_DUTY if self.live_run is not None else 0.5  # watching: no training in this process
        self._next_plot_time = started + max(MIN_PLOT_INTERVAL, cost / duty)

    @property
    def mode(self) -> str:
        if self.live_run is not None or self.starter is not None:
            return "live"
        if self.reader is None:
            return "view"
        return "watch" if self.state.status not in FINISHED else "replay"

    @property
    def status(self) -> str:
        return status_word(self.snapshot, self.paused)

    # -- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that do nothing in this mode stay out of the footer."""
        if action.startswith("replay_"):
            return self.mode == "replay"
        if action == "toggle_pause":
            return self.mode == "live"
        return True

    def _view_changed(self) -> None:
        self.redraw(view_changed=True)

    def screenshot_folder(self) -> Path:
        return self.run_dir or Path.cwd()

    def action_toggle_pause(self) -> None:
        if self.live_run is None:
            self.notify("pause works only for a live run (this is a run log)" if self.starter is None else "the run is still being set up",
                        severity="warning")
            return
        if self.snapshot.status in FINISHED:
            self.notify("training has finished")
            return
        self.paused = self.live_run.toggle_pause()
        self._view_changed()

    def action_toggle_history(self) -> None:
        self.view.grad_history = not self.view.grad_history
        self._view_changed()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        self.quitting = True
        if self.live_run is not None:
            self.live_run.request_stop()  # the trainer finishes its step; run_dashboard waits for it
        self.exit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in [
            ("Pause / resume training", "Pause or resume the training thread (live runs)", self.action_toggle_pause),
            ("Next variant", "Show the next variant in the panels", self.action_next_variant),
            ("Previous variant", "Show the previous variant in the panels", self.action_previous_variant),
            ("Toggle log scale", "Loss plot: log / linear y axis", self.action_toggle_log),
            ("Toggle gradient history", "Gradients: boxes / median per layer over time", self.action_toggle_history),
            ("Save SVG screenshot", "Save the screen as SVG into the run directory", self.action_screenshot),
            ("Dashboard help", "Keys and panels", self.action_help),
        ]:
            yield SystemCommand(title, help_text, action)


def make_app(run=None, *, run_dir: Path | None = None, state: RunState | None = None, starter: Starter | None = None,
             preset: str = "", ascii_only: bool | None = None) -> Dashboard:
    """The dashboard for a live `run` (or one `starter` prepares after the first paint), or for the run log in
    `run_dir` (followed live or replayed)."""
    if run is not None:
        return Dashboard(run.state, run=run, ascii_only=ascii_only)
    if starter is not None:
        state = RunState()
        state.preset = preset  # the header names the preset while the run is set up
        return Dashboard(state, starter=starter, ascii_only=ascii_only)
    if run_dir is not None:
        reader = RunLogReader(Path(run_dir))  # NntuiError for a bad run directory
        return Dashboard(state or RunState(), reader=reader, run_dir=Path(run_dir), ascii_only=ascii_only)
    return Dashboard(state or RunState(), ascii_only=ascii_only)
