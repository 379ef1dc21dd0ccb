"""Running the dashboard from the CLI: the live run under the app, then its summary; cleanup on quit."""

from __future__ import annotations

import shutil
import sys

from nntui.tui.app import Starter, make_app


def finish_run(run) -> dict:
    """Stop the training thread (after its current step), wait for the log and summary, re-raise its error."""
    if not run.detached:  # after a hang-up training goes on to the end, headless
        run.request_stop()
    if run.thread is not None:
        if run.thread.is_alive():
            print("nntui: stopping after the current step; saving the log and summary…", file=sys.stderr)
        run.thread.join()
    if run.error is not None:
        raise run.error
    return run.state.summary


class DashboardCrashed(RuntimeError):
    """The dashboard itself failed (Textual printed the traceback); the run was stopped cleanly."""


def run_dashboard(run=None, *, starter: Starter | None = None, preset: str = "") -> dict:
    """Train `run` (or the one `starter` prepares once the dashboard is up) under the dashboard; returns the
    summary (status "interrupted" on quit)."""
    app = make_app(run, starter=starter, preset=preset)
    try:
        app.run()
    finally:
        app.quitting = True
        if app.start_thread is not None and app.start_thread.is_alive():
            print("nntui: stopping: waiting for the set-up to finish…", file=sys.stderr)
            app.start_thread.join()
        if app.live_run is not None:
            summary = finish_run(app.live_run)
    if app.start_error is not None:
        raise app.start_error
    if app.live_run is None:  # quit while setting up: nothing was trained, leave no run directory behind
        if app.prepared_run is not None:
            app.prepared_run.log.close()
            shutil.rmtree(app.prepared_run.run_dir, ignore_errors=True)
        return {"status": "interrupted"}
    if app.return_code not in (0, None):
        raise DashboardCrashed(f"the dashboard failed; the run was saved in {app.live_run.run_dir}")
    from nntui.report import print_summary
    from rich.console import Console

    print_summary(summary, Console(highlight=False))
    return summary
