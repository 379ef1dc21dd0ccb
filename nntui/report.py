"""Headless output: live progress per variant on stderr, a final table with verdicts. Reads plain numbers only."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from nntui.record.state import RunState


def _fmt(x: Any, spec: str = ".4f") -> str:
    return "—" if x is None else format(x, spec)


class HeadlessProgress:
    """A rich progress bar per variant on a terminal; otherwise a plain line per variant every few seconds."""

    def __init__(self, state: RunState, console: Console, interval: float = 5.0) -> None:
        self.state = state
        self.console = console
        self.interval = interval
        self.live = console.is_terminal
        self._tasks: dict[str, int] = {}
        self._last_line = 0.0
        self._progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), TextColumn("{task.fields[info]}", markup=False), TimeRemainingColumn(),
            console=console, transient=False, refresh_per_second=4,
        ) if self.live else None

    def __enter__(self) -> HeadlessProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()

    def on_event(self, event: Any) -> None:
        if event.type == "steps":
            self.update()
        elif event.type == "variant_finished":
            self.update(force=True, only=event.variant)
        elif event.type == "alert" and event.level != "info":
            self.console.print(f"! {event.message}", style="yellow" if self.live else None, markup=False, highlight=False)

    def update(self, force: bool = False, only: str | None = None) -> None:
        with self.state.lock:
            rows = [
                (v.name, v.step, v.total_steps, v.final_train_loss, v.steps_per_second, v.status)
                for v in self.state.variants.values()
                if only is None or v.name == only
            ]
        if self._progress is not None:
            for name, step, total, loss, sps, status in rows:
                if name not in self._tasks:
                    self._tasks[name] = self._progress.add_task(name, total=total or None, info="")
                info = f"step {step:>6}  loss {_fmt(loss)}  {sps:7.0f} steps/s  {status}"
                self._progress.update(self._tasks[name], completed=step, info=info)
            return
        now = time.monotonic()
        if force or now - self._last_line >= self.interval:
            self._last_line = now if not force else self._last_line
            for name, step, total, loss, sps, status in rows:
                if force or status == "running":
                    self.console.print(f"{name}: step {step}/{total} loss {_fmt(loss)} {sps:.0f} steps/s {status}", markup=False, highlight=False)


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=Text(f"{summary['preset']} on {summary['dataset']} ({summary['device']}) — {summary['status']}"), show_lines=False)
    for col in ("variant", "status", "steps", "train loss", "test loss", "test acc", "steps/s"):
        table.add_column(col, overflow="fold")
    for v in summary["variants"]:
        acc = "—" if v["test_accuracy"] is None else f"{v['test_accuracy']:.1%}"
        table.add_row(
            Text(v["name"]), v["status"], str(v["steps"]), _fmt(v["train_loss"]), _fmt(v["test_loss"]), acc,
            f"{v['steps_per_second']:.0f}",
        )
    return table


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """The final table, verdicts and finding; every text from the run is printed as text, never as markup."""
    console.print(summary_table(summary))
    for v in summary["variants"]:
        if v["verdict"]:
            console.print(f"  {v['verdict']}", markup=False, highlight=False)
    if summary.get("finding"):
        mark = {True: ("✓", "green"), False: ("✗", "red")}.get(summary.get("reproduced"), ("·", ""))
        console.print(Text.assemble(mark, " ", summary["finding"]))
    if summary.get("error"):
        console.print(f"failed: {summary['error']}", style="red", markup=False, highlight=False)
    console.print(f"run directory: {summary['run_dir']}", markup=False, highlight=False)


def stderr_console() -> Console:
    tty = sys.stderr.isatty()
    return Console(file=sys.stderr, width=None if tty else 120, soft_wrap=not tty)  # no wrapping inside log lines
