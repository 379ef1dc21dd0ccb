"""Starting a live run behind the dashboard: the app paints first, a thread imports torch, loads the data and
builds the models (set-up phases shown in the header), then training starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

Starter = Callable[[Callable[[str], None]], object]  # (on_phase) -> a prepared Run


class LiveStart:
    def start_run(self) -> None:
        self.start_thread = threading.Thread(target=self._prepare_and_start, name="nntui-setup", daemon=True)
        self.start_thread.start()

    def _prepare_and_start(self) -> None:
        """Import torch, load the data, build the models (and a range test) off the UI thread, then train."""
        started = time.monotonic()

        def on_phase(phase: str) -> None:
            self.phase = f"{phase} ({time.monotonic() - started:.1f} s)"

        try:
            run = self.starter(on_phase)
        except BaseException as exc:  # the CLI reports it (a bad input: one line, exit 2)
            self.start_error = exc
            self.call_from_thread(self.exit)
            return
        self.phase = ""
        self.prepared_run, self.run_dir = run, Path(run.run_dir)
        if self.quitting:
            return  # run_dashboard removes the unused run directory
        self.live_run, self.state = run, run.state
        run.start()
