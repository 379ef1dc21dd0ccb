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
from nntui.cli.lr_find import lr_find_command
from nntui.cli.watch import watch_command
from nntui.errors import NntuiError

app = typer.Typer(rich_markup_mode="rich", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Watch neural networks fail to train, and learn, in the terminal.")

@app.command("list")
def list_presets(as_json: JsonOpt = False) -> None:
    """List the presets: one lecture experiment each."""
    from nntui.presets import available_presets, load_preset

    rows = []
    for name in available_presets():
        preset = load_preset(name).preset
        rows.append({"name": name, "title": preset.title, "variants": [v.name for v in preset.variants], "lesson": preset.lesson.strip()})
    if as_json:
        print(json.dumps({"presets": rows}, indent=2))
        return
    from rich.table import Table

    table = Table(title="nntui presets — run one with `nntui run NAME`")
    table.add_column("preset", style="bold")
    table.add_column("what it shows")
    table.add_column("variants")
    for row in rows:
        table.add_row(row["name"], row["title"], ", ".join(row["variants"]))
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
    headless: Annotated[bool, typer.Option("--headless", help="No dashboard: progress on stderr, a table at the end.")] = False,
    as_json: JsonOpt = False,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "auto",
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="Epochs per variant.")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop each variant after N steps.")] = None,
    seed: SeedOpt = None,
    out: OutOpt = Path("runs"),
    overrides: SetOpt = None,
    variant: Annotated[Optional[list[str]], typer.Option("--variant", help="Train only this variant (repeatable).")] = None,
    from_lr_find: Annotated[Optional[Path], typer.Option("--from-lr-find", help="Take cyclic-LR bounds set to \"auto\" from this lr_find.json (or run directory) instead of a new range test.")] = None,
) -> None:
    """Train a preset's variants side by side, with the live dashboard or headless."""
    console = out_console(as_json)
    option_values = dict(dataset=dataset, data_dir=data_dir, device=device, out=out, epochs=epochs, max_steps=max_steps, seed=seed, variants=variant or [], from_lr_find=from_lr_find)
    try:
        if _use_dashboard(headless, as_json):
            from nntui.tui.launch import run_dashboard

            # the dashboard paints first; the preset, torch, the data and the models load behind it
            summary = run_dashboard(starter=_dashboard_starter(preset, overrides or [], option_values), preset=Path(preset).stem)
            raise typer.Exit(EXIT_INTERRUPTED if summary.get("status") == "interrupted" else 0)
        from nntui.presets import load_preset
        from nntui.runner import RunOptions

        resolved = load_preset(preset, overrides or [])
        summary = _run_headless(resolved, RunOptions(**option_values), as_json, console)
    except NntuiError as exc:
        raise fail(str(exc)) from None
    if summary.get("status") == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


def _dashboard_starter(preset: str, overrides: list[str], option_values: dict):
    def start(on_phase):
        from nntui.presets import load_preset

        resolved = load_preset(preset, overrides)
        on_phase("importing PyTorch")
        from nntui.runner import RunOptions, prepare_run

        return prepare_run(resolved, RunOptions(**option_values), on_phase=on_phase)

    return start


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


app.command("lr-find")(lr_find_command)
app.command("watch")(watch_command)


def main() -> None:
    try:
        app()
    except NntuiError as exc:  # raised outside a command's own handler
        Console(file=sys.stderr, highlight=False).print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
