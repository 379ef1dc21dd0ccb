"""`nntui watch [RUN_DIR]`: the dashboard on a run directory, followed live or replayed when finished."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nntui.cli.common import fail

RUNS_DIR = Path("runs")


def newest_run(runs: Path = RUNS_DIR) -> Path:
    """The most recently started run directory under `runs` (by its events.jsonl's creation order)."""
    from nntui.errors import NntuiError
    from nntui.record.runlog import EVENTS_FILE

    candidates = [p for p in runs.iterdir() if (p / EVENTS_FILE).is_file()] if runs.is_dir() else []
    if not candidates:
        raise NntuiError(f"no runs under ./{runs}; pass a run directory, or start one (`nntui run PRESET`, or nntui.watch in your script)")
    return max(candidates, key=lambda p: ((p / EVENTS_FILE).stat().st_mtime, p.name))


def watch_command(
    run_dir: Annotated[Optional[Path], typer.Argument(help="A run directory written by `nntui run` or nntui.watch (runs/<id>), finished or still being written; default: the newest under ./runs.")] = None,
) -> None:
    """Open the dashboard on a run directory: follows it live while another process writes it, or replays it."""
    from nntui.errors import NntuiError

    try:
        if run_dir is None:
            run_dir = newest_run()
        from nntui.record.runs import is_seeds_run

        if is_seeds_run(run_dir):  # a --seeds run: its seeds folded into a mean and a band per variant
            from nntui.tui.compare_app import make_compare_app

            app = make_compare_app([run_dir])
        else:
            from nntui.tui.app import make_app

            app = make_app(run_dir=run_dir)
    except NntuiError as exc:
        raise fail(str(exc)) from None
    app.run()
    if app.return_code not in (0, None):
        raise typer.Exit(1)
