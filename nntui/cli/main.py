"""Command line: parse options, build the preset, pick a sink, map errors to exit codes.

Exit codes: 0 finished (a diverged variant is a result), 2 bad input, 130 interrupted, 1 a bug.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from nntui.cli.common import (
    EXIT_INTERRUPTED, DataDirOpt, DatasetOpt, DeviceOpt, JsonOpt, OutOpt, SeedOpt, SetOpt, fail, out_console,
)
from nntui.cli.compare import compare_command
from nntui.cli.export import export_command
from nntui.cli.lr_find import lr_find_command
from nntui.cli.watch import watch_command
from nntui.errors import NntuiError

app = typer.Typer(rich_markup_mode="rich", no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  help="Watch neural networks fail to train, and learn, in the terminal.")


def _print_version(value: bool) -> None:
    if value:
        from nntui import __version__

        print(f"nntui {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", metavar="", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Watch neural networks fail to train, and learn, in the terminal."""

@app.command("list")
def list_presets(as_json: JsonOpt = False) -> None:
    """List the presets: one lecture experiment each."""
    from nntui.presets import available_presets, load_preset

    rows = []
    for name in available_presets():
        preset = load_preset(name).preset
        rows.append({"name": name, "title": preset.title, "variants": [v.name for v in preset.variants], "lesson": preset.lesson.strip(),
                     "estimated_seconds": PRESET_SECONDS.get(name)})
    if as_json:
        print(json.dumps({"presets": rows}, indent=2))
        return
    from rich.table import Table

    table = Table(title="nntui presets — run one with `nntui run NAME`")
    table.add_column("preset", style="bold")
    table.add_column("what it shows")
    table.add_column("variants")
    table.add_column("takes", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(row["name"], row["title"], ", ".join(row["variants"]), _duration(row["estimated_seconds"]))
    Console().print(table)


class _Interrupts:
    """First Ctrl-C / SIGTERM: finish the step, save, exit 130. Second Ctrl-C: stop at once."""

    def __init__(self, on_first, console: Console) -> None:
        self.on_first = on_first
        self.console = console
        self.count = 0
        self._previous = {}

    def __enter__(self) -> _Interrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, _frame) -> None:
        self.count += 1
        if self.count == 1:
            self.on_first()
            self.console.print("[yellow]stopping after the current step; the log and summary are being saved (Ctrl-C again to quit at once)[/]")
            return
        raise KeyboardInterrupt


def _use_dashboard(headless: bool, as_json: bool) -> bool:
    if headless or as_json or os.environ.get("NNTUI_HEADLESS"):
        return False
    return sys.stdout.isatty() and sys.stdin.isatty()


@app.command()
def run(
    preset: Annotated[str, typer.Argument(help="A preset name (see `nntui list`) or a .toml preset file.")],
    headless: Annotated[bool, typer.Option("--headless", metavar="", help="No dashboard: progress on stderr, a table at the end.")] = False,
    as_json: JsonOpt = False,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "auto",
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs per variant.")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop each variant after N steps.")] = None,
    seed: SeedOpt = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Run once per seed, e.g. 0,1,2 (or 0-4), into one run directory; judged across seeds.")] = None,
    out: OutOpt = Path("runs"),
    overrides: SetOpt = None,
    variant: Annotated[Optional[list[str]], typer.Option("--variant", help="Train only this variant (repeatable).")] = None,
    from_lr_find: Annotated[Optional[Path], typer.Option("--from-lr-find", help="Take cyclic-LR bounds set to \"auto\" from this lr_find.json (or run directory) instead of a new range test.")] = None,
) -> None:
    """Train a preset's variants side by side, with the live dashboard or headless."""
    from nntui.presets import load_preset
    from nntui.runner import RunOptions, prepare_run

    console = out_console(as_json)
    try:
        resolved = load_preset(preset, overrides or [])
        options = RunOptions(dataset=dataset, data_dir=data_dir, device=device, out=out, epochs=epochs, max_steps=max_steps, seed=seed, variants=variant or [], from_lr_find=from_lr_find)
        if seeds is not None:
            summary = _run_seeds(preset, overrides or [], options, seeds, as_json, console)
            raise typer.Exit(EXIT_INTERRUPTED if summary.get("status") == "interrupted" else 0)
        if _use_dashboard(headless, as_json):
            from nntui.tui.app import run_dashboard

            the_run = prepare_run(resolved, options)
            summary = run_dashboard(the_run)
            raise typer.Exit(EXIT_INTERRUPTED if summary.get("status") == "interrupted" else 0)
        summary = _run_headless(resolved, options, as_json, console)
    except NntuiError as exc:
        raise fail(str(exc)) from None
    if summary.get("status") == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


def _run_headless(resolved, options, as_json: bool, console: Console) -> dict:
    from nntui.report import HeadlessProgress, print_summary, stderr_console
    from nntui.runner import prepare_run

    err = stderr_console()
    the_run = prepare_run(resolved, options)
    for note in the_run.notes:
        err.print(note, highlight=False)
    err.print(f"run directory: {the_run.run_dir}", highlight=False)
    progress = HeadlessProgress(the_run.state, err)
    the_run.listeners.append(progress.on_event)
    with _Interrupts(the_run.request_stop, err), progress:
        try:
            summary = the_run.execute()
        except KeyboardInterrupt:
            summary = the_run.state.summary
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary, console)
    return summary


def _run_seeds(preset: str, overrides: list[str], options, seeds_text: str, as_json: bool, console: Console) -> dict:
    from nntui.cli.compare import print_seeds_summary
    from nntui.report import stderr_console
    from nntui.seeds import parse_seeds, run_seeds

    seeds = parse_seeds(seeds_text)
    if options.seed is not None:
        raise NntuiError("--seed and --seeds together: pass one of them")
    err = stderr_console()
    stop = []
    with _Interrupts(lambda: stop.append(True), err):
        summary = run_seeds(preset, overrides, options, seeds, lambda line: err.print(line, highlight=False), lambda: bool(stop))
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_seeds_summary(summary, console)
    return summary


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"~{seconds:.0f} s" if seconds < 90 else f"~{seconds / 60:.0f} min"


# Headless wall time of each preset, measured once (see README: "How long a preset takes").
PRESET_SECONDS: dict[str, float] = {}

app.command("lr-find")(lr_find_command)
app.command("watch")(watch_command)
app.command("compare")(compare_command)
app.command("export")(export_command)


def main() -> None:
    try:
        app()
    except NntuiError as exc:  # raised outside a command's own handler
        Console(file=sys.stderr, highlight=False).print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
