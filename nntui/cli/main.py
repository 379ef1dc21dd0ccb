"""Command line: parse options, build the preset, pick a sink, map errors to exit codes.

Exit codes: 0 finished (a diverged variant is a result), 2 bad input, 130 interrupted, 1 a bug.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from nntui.cli.common import (
    EXIT_INTERRUPTED, DataDirOpt, DatasetOpt, DeviceOpt, JsonOpt, OutOpt, SeedOpt, SetOpt, fail, out_console,
)
from nntui.cli.check import check_command
from nntui.cli.compare import compare_command
from nntui.cli.export import export_command
from nntui.cli.lr_find import lr_find_command
from nntui.cli.terminal import HANGUP_CHOICES, RunInterrupted, StopSignals, install_tolerant_output
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
    from nntui.preset_durations import MEASURED_ON, PRESET_SECONDS, preset_duration
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
    from rich.text import Text

    table = Table(title="nntui presets — run one with `nntui run NAME`", caption=f"takes: headless wall time measured once on {MEASURED_ON}")
    table.add_column("preset", style="bold")
    table.add_column("what it shows")
    table.add_column("variants")
    table.add_column("takes", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(Text(row["name"]), Text(row["title"]), Text(", ".join(row["variants"])), preset_duration(row["name"]))
    Console().print(table)


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
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, max=1_000_000, help="Epochs per variant.")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, max=10**12, help="Stop each variant after N steps.")] = None,
    seed: SeedOpt = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Run once per seed, e.g. 0,1,2 (or 0-4), into one run directory; judged across seeds.")] = None,
    out: OutOpt = Path("runs"),
    overrides: SetOpt = None,
    variant: Annotated[Optional[list[str]], typer.Option("--variant", help="Train only this variant (repeatable).")] = None,
    from_lr_find: Annotated[Optional[Path], typer.Option("--from-lr-find", help="Take cyclic-LR bounds set to \"auto\" from this lr_find.json (or run directory) instead of a new range test.")] = None,
    on_hangup: Annotated[str, typer.Option("--on-hangup", help="When the terminal hangs up (SSH dropped): continue (train to the end without a view) or stop (end as interrupted).")] = "continue",
) -> None:
    """Train a preset's variants side by side, with the live dashboard or headless."""
    from nntui.report import stderr_console

    if on_hangup not in HANGUP_CHOICES:
        raise fail(f"--on-hangup {on_hangup!r}: choose continue or stop")
    console = out_console(as_json)
    the_run = None
    prepared: dict = {}  # the dashboard's set-up thread puts the run here
    dashboard = _use_dashboard(headless, as_json) and seeds is None
    err = stderr_console()
    # plain writes: a signal can land mid-import, where printing through rich would import again
    signals = StopSignals(on_hangup, say=(lambda text: None) if dashboard else (lambda text: sys.stderr.write(text + "\n")),
                          raise_before_run=not dashboard)
    option_values = dict(dataset=dataset, data_dir=data_dir, device=device, out=out, epochs=epochs, max_steps=max_steps, seed=seed, variants=variant or [], from_lr_find=from_lr_find)
    try:
        with signals:
            if dashboard:
                from nntui.tui.launch import run_dashboard

                # the dashboard paints first; the preset, torch, the data and the models load behind it
                summary = run_dashboard(starter=_dashboard_starter(preset, overrides or [], option_values, signals, prepared), preset=Path(preset).stem)
                the_run = prepared.get("run")
            else:
                from nntui.presets import load_preset
                from nntui.runner import RunOptions, prepare_run

                resolved = load_preset(preset, overrides or [])
                options = RunOptions(**option_values)
                if seeds is not None:
                    summary = _run_seeds(preset, overrides or [], options, seeds, as_json, console, signals)
                else:
                    the_run = prepare_run(resolved, options)
                    summary = _run_headless(the_run, signals, as_json, console, err)
    except RunInterrupted as exc:
        where = f"; the record is in {exc.run_dir}" if getattr(exc, "run_dir", None) else "; nothing was recorded"
        raise fail(f"interrupted ({exc}) before training began{where}", code=EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, the record was still closed
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except NntuiError as exc:
        the_run = the_run or prepared.get("run")
        if the_run is not None and the_run.failure:
            raise fail(_failure_line(the_run), code=1) from None
        raise fail(str(exc), code=exc.exit_code) from None
    except Exception:  # the training thread's crash, re-raised by the dashboard
        the_run = the_run or prepared.get("run")
        if the_run is not None and the_run.failure:
            raise fail(_failure_line(the_run), code=1) from None
        raise
    if summary.get("status") == "failed":
        raise fail(_failure_line(the_run) if the_run is not None else f"a seed failed; see {summary.get('run_dir')}", code=1)
    if summary.get("status") == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


def _failure_line(the_run) -> str:
    where = f"; the traceback is in {the_run.crash_log}" if the_run.crash_log else ""
    return f"the run failed: {the_run.failure}{where}; what was recorded is in {the_run.run_dir}"


def _dashboard_starter(preset: str, overrides: list[str], option_values: dict, signals: StopSignals, prepared: dict):
    def start(on_phase):
        from nntui.presets import load_preset

        resolved = load_preset(preset, overrides)
        on_phase("importing PyTorch")
        from nntui.runner import RunOptions, prepare_run

        # handing the run to the signals also applies a hang-up or stop request that came during set-up
        prepared["run"] = signals.run = prepare_run(resolved, RunOptions(**option_values), on_phase=on_phase)
        return prepared["run"]

    return start


def _run_headless(the_run, signals: StopSignals, as_json: bool, console: Console, err: Console) -> dict:
    from nntui.report import HeadlessProgress, print_summary

    signals.run = the_run
    for note in the_run.notes:
        err.print(note, markup=False, highlight=False)
    err.print(f"run directory: {the_run.run_dir}", markup=False, highlight=False)
    progress = HeadlessProgress(the_run.state, err)
    the_run.listeners.append(progress.on_event)
    with progress:
        try:
            summary = the_run.execute()
        except KeyboardInterrupt:
            summary = the_run.state.summary
        except Exception:
            summary = the_run.state.summary
            if not summary:
                raise
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary, console)
    return summary


class _SeedsStop:
    requested = False

    def request_stop(self, reason: str = "") -> None:
        self.requested = True

    def detach_view(self) -> None:
        pass


def _run_seeds(preset: str, overrides: list[str], options, seeds_text: str, as_json: bool, console: Console, signals: StopSignals) -> dict:
    from nntui.cli.compare import print_seeds_summary
    from nntui.report import stderr_console
    from nntui.seeds import parse_seeds, run_seeds

    seeds = parse_seeds(seeds_text)
    if options.seed is not None:
        raise NntuiError("--seed and --seeds together: pass one of them")
    err = stderr_console()
    signals.run = stopper = _SeedsStop()  # the first signal: no new seed starts; a second Ctrl-C stops at once
    summary = run_seeds(preset, overrides, options, seeds, lambda line: err.print(line, highlight=False, markup=False), lambda: stopper.requested)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_seeds_summary(summary, console)
    return summary


app.command("lr-find")(lr_find_command)
app.command("watch")(watch_command)
app.command("check")(check_command)
app.command("compare")(compare_command)
app.command("export")(export_command)


def main() -> None:
    install_tolerant_output()  # a closed pipe or gone terminal must not stop a run
    try:
        app()
    except NntuiError as exc:  # raised outside a command's own handler
        fail(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # a second Ctrl-C after the command's own handler: the record is closed already
        sys.exit(130)


if __name__ == "__main__":
    main()
