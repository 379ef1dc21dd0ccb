"""`nntui watch RUN_DIR`: the dashboard on a run directory, followed live or replayed when finished."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nntui.cli.common import fail


def watch_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `nntui run` (runs/<id>), finished or still being written.")],
) -> None:
    """Open the dashboard on a run directory: follows it live while another process writes it, or replays it."""
    from nntui.errors import NntuiError

    try:
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
