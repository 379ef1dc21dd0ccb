"""Stepping through a finished run: the moments are its probes and evaluations; the state at a moment is
the run log's events up to it, applied to a fresh RunState."""

from __future__ import annotations

from nntui.record import events as ev
from nntui.record.state import RunState
from nntui.tui.snapshot import take_snapshot

MOMENT_TYPES = ("layer_stats", "eval")
JUMP = 10  # moments per jump


class Replay:
    def __init__(self, events: list[ev.Event]) -> None:
        self.events = events
        # one moment per step that has a probe or an evaluation (several variants' at one step count once each)
        self.moments: list[int] = []
        for i, event in enumerate(events):
            if event.type in MOMENT_TYPES:
                key = (getattr(event, "variant", None), getattr(event, "step", None))
                if self.moments and self._key(self.moments[-1]) == key:
                    self.moments[-1] = i
                else:
                    self.moments.append(i)
        self.position = len(self.moments) - 1
        self.state = RunState()
        self._applied = 0  # events applied to self.state

    def _key(self, index: int) -> tuple:
        event = self.events[index]
        return getattr(event, "variant", None), getattr(event, "step", None)

    def __len__(self) -> int:
        return len(self.moments)

    def move(self, delta: int | None = None, *, to: int | None = None) -> RunState:
        """Move by `delta` moments or `to` one (clamped); returns the state at the new position."""
        target = to if to is not None else self.position + (delta or 0)
        self.position = max(0, min(len(self.moments) - 1, target))
        return self.state_at(self.position)

    def state_at(self, position: int) -> RunState:
        end = self.moments[position] + 1 if self.moments else len(self.events)
        if end < self._applied:  # backwards: rebuild from the start
            self.state, self._applied = RunState(), 0
        for event in self.events[self._applied:end]:
            self.state.apply(event)
        self._applied = end
        return self.state

    def describe(self) -> str:
        """What the current moment is, for the position indicator."""
        if not self.moments:
            return "no probes"
        event = self.events[self.moments[self.position]]
        what = "probe" if event.type == "layer_stats" else f"{getattr(event, 'split', 'eval').replace('_', ' ')} eval"
        return f"{self.position + 1}/{len(self.moments)} · {getattr(event, 'variant', '')} step {event.step} {what}"


class ReplayControls:
    """The dashboard's replay keys: step, jump, start, end through a finished run's moments."""


    def _replay_note(self) -> str:
        if self.replay is None:
            return ""
        return f"replay {self.replay.describe()}"

    def action_replay_step(self, delta: int) -> None:
        if self.mode != "replay":
            self.notify("stepping works in `nntui watch` of a finished run", severity="warning")
            return
        if self.replay is None:
            self.replay = Replay(list(self._events))
            if not len(self.replay):
                self.replay = None
                self.notify("this run has no probes or evaluations to step through", severity="warning")
                return
        self._show_moment(self.replay.move(delta))

    def action_replay_to(self, position: int) -> None:
        if self.mode != "replay":
            return
        if self.replay is None:
            self.action_replay_step(0)
            if self.replay is None:
                return
        self._show_moment(self.replay.move(to=position if position >= 0 else len(self.replay) - 1))

    def _show_moment(self, state: RunState) -> None:
        self.snapshot = take_snapshot(state)
        self.redraw(view_changed=True)
