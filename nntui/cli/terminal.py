"""The process's ties to its terminal: stop signals, and output whose reader may go away.

Every way a run is told to stop ends the same way (the step finishes, the log and summary are saved,
exit 130). A hang-up (SSH dropped) by default only loses the view: training goes on, headless.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

HANGUP_CHOICES = ("continue", "stop")


class RunInterrupted(KeyboardInterrupt):
    """A stop request before training began (e.g. during the automatic LR range test)."""


class TolerantStream:
    """A text stream that never raises on write: a closed pipe or gone terminal drops output to
    /dev/null (so interpreter shutdown cannot fail either); a character the encoding lacks becomes '?'."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.lost = False

    def write(self, text: str) -> int:
        if self.lost:
            return len(text)
        try:
            return self._stream.write(text)
        except UnicodeEncodeError:
            encoding = getattr(self._stream, "encoding", None) or "ascii"
            return self.write(text.encode(encoding, "replace").decode(encoding, "replace"))
        except (OSError, ValueError):
            self.lose()
            return len(text)

    def flush(self) -> None:
        if self.lost:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self.lose()

    def lose(self) -> None:
        """From now on this stream's output goes nowhere (its reader is gone)."""
        self.lost = True
        silence_fd(_fileno(self._stream))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _fileno(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


def silence_fd(fd: int | None) -> None:
    """Point fd at /dev/null, so buffered and later writes to it succeed and vanish."""
    if fd is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
    except OSError:
        pass


_terminal_fds: set[int] = set()  # which of 0, 1, 2 were a terminal at start (after a hang-up isatty says no)


def install_tolerant_output() -> None:
    """Wrap sys.stdout/sys.stderr (once) so output trouble can never stop a run."""
    _terminal_fds.update(fd for fd in (0, 1, 2) if _isatty(fd))
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, TolerantStream):
            continue
        try:
            stream.reconfigure(errors="replace")
        except (AttributeError, ValueError, OSError):
            pass
        setattr(sys, name, TolerantStream(stream))


def detach_from_terminal() -> None:
    """The terminal hung up: reads and writes on it fail from now on, so point them at /dev/null
    (files and pipes the output was redirected to keep working)."""
    terminal = _terminal_fds | {fd for fd in (0, 1, 2) if _isatty(fd)}
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, TolerantStream) and _fileno(stream) in terminal:
            stream.lost = True
    for fd in terminal:
        silence_fd(fd)


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _start_up_guard(handler: Any) -> bool:
    """nntui/entry.py's handler for signals during the CLI's import (it remembers a hang-up)."""
    return hasattr(handler, "hung_up")


class StopSignals:
    """SIGINT / SIGTERM (and SIGHUP with on_hangup="stop"): the first asks the run to stop after its
    step; before training has begun it raises RunInterrupted; a second SIGINT stops at once.
    SIGHUP with on_hangup="continue": the terminal is gone, training goes on without it."""

    def __init__(self, on_hangup: str = "continue", say: Callable[[str], None] | None = None, raise_before_run: bool = True) -> None:
        self.on_hangup = on_hangup
        self.raise_before_run = raise_before_run  # False: set-up runs in another thread (the dashboard); stop it once it is ready
        self.say = say or (lambda text: sys.stderr.write(text + "\n"))  # no rich: a signal can land mid-import
        self._run: Any = None  # the Run, once it can stop after a step
        self.count = 0
        self.hung_up = False
        self.reason = ""
        self._previous: dict[int, Any] = {}

    @property
    def run(self) -> Any:
        return self._run

    @run.setter
    def run(self, run: Any) -> None:
        self._run = run
        if run is not None and self.hung_up and self.on_hangup == "continue":
            run.detach_view()  # hung up while the run was being set up: no view to open
        if run is not None and self.reason:
            run.request_stop(self.reason)  # asked to stop while it was being set up

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        if getattr(self._previous.get(signal.SIGHUP), "hung_up", False):  # hung up during start-up (nntui/entry.py)
            self._handle(signal.SIGHUP, None)
        self._previous_unraisable = sys.unraisablehook
        sys.unraisablehook = self._quiet_interrupt
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            if _start_up_guard(handler):  # nntui/entry.py's "interrupted while starting" is over: the defaults
                handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            # once asked to stop, the process is on its way out: a late Ctrl-C must not kill it mid-exit (-2, not 130)
            signal.signal(sig, signal.SIG_IGN if self.count and sig != signal.SIGHUP else handler)
        sys.unraisablehook = self._previous_unraisable

    def _quiet_interrupt(self, unraisable: Any) -> None:
        """A second Ctrl-C that lands in a finalizer cannot propagate: the first one's stop is on its way, so no
        "Exception ignored … Traceback" on the terminal."""
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._previous_unraisable(unraisable)

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            self.hung_up = True
            detach_from_terminal()
            if self.on_hangup == "continue":
                if self.run is not None:
                    self.run.detach_view()
                return
        self.count += 1
        if self.count > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.count > 1:
            return
        self.reason = name
        if self.run is None:
            if self.raise_before_run:
                raise RunInterrupted(name)
            return
        self.run.request_stop(name)
        if not self.hung_up:
            self.say(f"{name}: stopping after the current step; the log and summary are being saved (Ctrl-C again to quit at once)")
