"""What every command shares: the option declarations, the one-line error, the exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

EXIT_INTERRUPTED = 130

DatasetOpt = Annotated[Optional[str], typer.Option("--dataset", help="auto, mnist-5k (embedded), mnist, fashion-mnist or noisy-line.")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Folder with the dataset files (default: $NNTUI_DATA_DIR or ~/.cache/nntui).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N (the N-th GPU).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Where run directories go.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key for every variant, e.g. --set optimizer.lr=0.01.")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", min=0, max=2**63 - 1, help="Random seed (init, data order, dropout).")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print one JSON summary on stdout (progress goes to stderr).")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` (the message is text, never markup: it may hold names from a preset) on stderr."""
    Console(file=sys.stderr, highlight=False, soft_wrap=True).print(Text.assemble(("error:", "bold red"), " ", message))
    return typer.Exit(code=code)


def out_console(as_json: bool) -> Console:
    from nntui.report import stderr_console

    return stderr_console() if as_json else Console(highlight=False)
