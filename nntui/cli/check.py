"""`nntui check RUN_DIR`: health checks of any run, for people and for CI (exit 1 when a check fails)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from nntui.cli.common import JsonOpt, fail

MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red"), "n/a": ("·", "dim")}


def parse_fail_on(raw: str | None) -> list[str]:
    """Check ids from a comma-separated list of ids or titles ("vanishing-gradients", "dead units")."""
    from nntui.errors import NntuiError
    from nntui.verdicts.health import CHECKS

    if not raw:
        return list(CHECKS)
    by_name = {k: k for k in CHECKS} | {title.replace(" ", "-").replace(":", "-"): k for k, title in CHECKS.items()}
    chosen = []
    for part in (p.strip().lower().replace(" ", "-").replace("_", "-") for p in raw.split(",")):
        if not part:
            continue
        if part not in by_name:
            raise NntuiError(f"--fail-on {part!r} is not a check; choose from {', '.join(CHECKS)}")
        chosen.append(by_name[part])
    return chosen


def load_state(run_dir: Path):
    from nntui.errors import NntuiError
    from nntui.record.runlog import RunLogReader
    from nntui.record.state import RunState

    reader = RunLogReader(run_dir)  # NntuiError for a missing directory or log
    try:
        events = reader.read_all()
    finally:
        reader.close()
    if not events:
        raise NntuiError(f"{run_dir} has no events yet; pass a run directory written by `nntui run` or nntui.watch")
    state = RunState()
    for event in events:
        state.apply(event)
    return state


def check_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (runs/<id>) from `nntui run` or nntui.watch, finished or still running.")],
    fail_on: Annotated[Optional[str], typer.Option("--fail-on", help="Comma-separated checks that fail the command (default: all), e.g. vanishing-gradients,non-finite.")] = None,
    variant: Annotated[Optional[list[str]], typer.Option("--variant", help="Check only this variant (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Health checks of a run: vanishing/exploding gradients, non-finite values, saturated and dead units,
    update:data ratio, a loss that stops falling. Exit 0 healthy, 1 a check failed, 2 bad input."""
    from nntui.errors import NntuiError
    from nntui.verdicts.health import check_health

    try:
        selected = parse_fail_on(fail_on)
        state = load_state(run_dir)
        unknown = [name for name in variant or [] if name not in state.variants]
        if unknown:
            raise NntuiError(f"--variant {unknown[0]!r} is not in {run_dir}; variants: {', '.join(state.variants)}")
        report = check_health(state, variant or None)
    except NntuiError as exc:
        raise fail(str(exc)) from None
    failing = [(row["name"], c) for row in report["variants"] for c in row["checks"] if c["status"] == "fail" and c["id"] in selected]
    report["fail_on"] = selected
    report["run_dir"], report["status"] = str(run_dir), state.status
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report, state.status, failing, len(state.variants) > 1)
    if failing:
        raise typer.Exit(1)


def _print_report(report: dict, status: str, failing: list, several: bool) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    for row in report["variants"]:
        console.print(f"[bold]{escape(row['name'])}[/]" + ("" if status not in ("running", "waiting") else " [dim](run still going)[/]"))
        for c in row["checks"]:
            mark, style = MARKS[c["status"]]
            console.print(f"  [{style}]{mark}[/] {c['title']}: {escape(c['text'])}")
    if failing:
        names = ", ".join(f"{c['title']} ({escape(name)})" if several else c["title"] for name, c in failing)
        console.print(f"[bold red]unhealthy:[/] {names}")
    else:
        console.print("[green]healthy[/]: no selected check failed")
