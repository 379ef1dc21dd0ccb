"""`nntui export RUN_DIR --format csv|tensorboard --out DIR`: a run's series out to other tools."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nntui.cli.common import fail


class ExportFormat(str, Enum):
    csv = "csv"
    tensorboard = "tensorboard"


def export_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (runs/<id>); a --seeds run exports each seed into DIR/seed-N.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv: one file per series with a step column; tensorboard: event files (needs nntui[tensorboard]).")] = ExportFormat.csv,
    out: Annotated[Path, typer.Option("--out", help="Folder to write into (created if missing).")] = Path("export"),
) -> None:
    """Export a run's losses, evaluations, per-layer statistics and optimizer state as CSV or TensorBoard files."""
    from nntui.errors import NntuiError
    from nntui.record.export import export_csv, export_tensorboard
    from nntui.record.runs import check_run_dir, is_seeds_run, seed_dirs

    export = export_csv if fmt is ExportFormat.csv else export_tensorboard
    console = Console(highlight=False, soft_wrap=True)  # paths stay whole, to copy
    try:
        check_run_dir(run_dir)
        jobs = [(path, out / path.name) for _, path in seed_dirs(run_dir)] if is_seeds_run(run_dir) else [(run_dir, out)]
        notes: list[str] = []
        for source, target in jobs:
            result = export(source, target)
            counts = ", ".join(f"{k} {n}" for k, n in result.rows.items())
            console.print(f"{source} → {target}: {counts}")
            notes.extend(n for n in result.notes if n not in notes)
    except NntuiError as exc:
        raise fail(str(exc)) from None
    for note in notes:
        console.print(f"note: {note}")
    if fmt is ExportFormat.tensorboard:
        console.print(f"view with: tensorboard --logdir {out}")
