"""`nntui compare RUN_DIR RUN_DIR…`: runs side by side (the compare view in a terminal; a table of the
final figures headless; one JSON object with --json). Also the seeds run's headless table."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from nntui.cli.common import JsonOpt, fail

MISSING = "—"


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return MISSING if x is None else format(x, spec)


def _pct(x: float | None) -> str:
    return MISSING if x is None else f"{x:.1%}"


def compare_json(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    runs = []
    for s in summaries:
        run = {k: s.get(k) for k in ("run_dir", "preset", "title", "dataset", "device", "status", "finding", "reproduced")}
        for key in ("seeds", "reproduced_in"):
            if key in s:
                run[key] = s[key]
        run["variants"] = s.get("variants", [])
        runs.append(run)
    return {"runs": runs}


def _sci(x: float | None) -> str:
    return MISSING if x is None else f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")


def compare_table(summaries: list[dict[str, Any]], labels: list[str]) -> Table:
    """One row per run/variant; a variant that did not complete says how it ended after its name."""
    table = Table(title="final figures (|grad|: median of the first / last layer)", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    longest = max((len(v["name"]) for s in summaries for v in s.get("variants", [])), default=7)
    table.add_column("run", overflow="fold", min_width=min(16, max(map(len, labels), default=3)))
    table.add_column("variant", overflow="fold", min_width=min(14, longest))
    for col in ("steps", "train", "test", "acc", "|grad|"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", justify="left" if col == "|grad|" else "right")
    for s, label in zip(summaries, labels):
        for v in s.get("variants", []):
            layers = v.get("layers") or []
            grads = f"{_sci(layers[0].get('grad_median'))}/{_sci(layers[-1].get('grad_median'))}" if layers else MISSING
            test = _fmt(v.get("test_loss"))
            if v.get("test_loss_std") is not None:
                test += f"±{v['test_loss_std']:.4f}"
            name = v["name"] if v.get("status") in ("completed", None) else f"{v['name']} ({v['status']})"
            table.add_row(label, name, str(v.get("steps", "")), _fmt(v.get("train_loss")), test, _pct(v.get("test_accuracy")), grads)
    return table


def seeds_table(summary: dict[str, Any]) -> Table:
    """A seeds run: per variant the mean ± std over the seeds and each seed's verdict mark."""
    seeds = summary.get("seeds", [])
    table = Table(title=f"{summary.get('preset')} over seeds {', '.join(map(str, seeds))} — {summary.get('status')}; mean ± std",
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    for col in ("variant", "status", "train", "test loss", "test acc", "held"):
        table.add_column(col, overflow="ellipsis", no_wrap=True, min_width=max((len(v["name"]) for v in summary.get("variants", [])), default=7) if col == "variant" else None,
                         justify="right" if col in ("train", "test loss", "test acc") else "left")
    for v in summary.get("variants", []):
        marks = "".join({True: "✓", False: "✗"}.get(s["reproduced"], "·") for s in v.get("seed_verdicts", []))
        acc = MISSING if v.get("test_accuracy") is None else f"{v['test_accuracy']:.1%} ± {v.get('test_accuracy_std') or 0:.1%}"
        table.add_row(
            v["name"], v.get("status", ""), f"{_fmt(v.get('train_loss'))} ± {_fmt(v.get('train_loss_std'))}",
            f"{_fmt(v.get('test_loss'))} ± {_fmt(v.get('test_loss_std'))}", acc, f"{v.get('reproduced_in', 0)}/{len(seeds)} {marks}",
        )
    return table


def print_seeds_summary(summary: dict[str, Any], console: Console) -> None:
    console.print(seeds_table(summary))
    for run in summary.get("seed_runs", []):
        mark = {True: "✓", False: "✗"}.get(run.get("reproduced"), "·")
        console.print(f"  seed {run['seed']}: {mark} {run.get('finding') or run.get('status')}", highlight=False)
    if summary.get("finding"):
        mark = {True: "[green]✓[/]", False: "[red]✗[/]"}.get(summary.get("reproduced"), "·")
        console.print(f"{mark} {summary['finding']}")
    console.print(f"run directory: {summary['run_dir']}  (nntui watch {summary['run_dir']}: mean and band per variant)", highlight=False)


def compare_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories (runs/<id>), of any presets; a --seeds run or an nntui.watch run too.")],
    as_json: JsonOpt = False,
    headless: Annotated[bool, typer.Option("--headless", metavar="", help="No dashboard: print a table of the final figures.")] = False,
) -> None:
    """Compare runs side by side: every run/variant's loss on one plot, layers side by side, the selected one's optimizer."""
    from nntui.errors import NntuiError
    from nntui.record.runs import check_run_dir, run_summary, short_labels

    try:
        for path in run_dirs:
            check_run_dir(path)
        if not as_json and not headless and not os.environ.get("NNTUI_HEADLESS") and sys.stdout.isatty() and sys.stdin.isatty():
            from nntui.tui.compare_app import make_compare_app

            app = make_compare_app(run_dirs)
            app.run()
            if app.return_code not in (0, None):
                raise typer.Exit(1)
            return
        summaries = [run_summary(path) for path in run_dirs]
    except NntuiError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(json.dumps(compare_json(summaries), indent=2))
        return
    console = Console(highlight=False)
    labels = short_labels(run_dirs, [s.get("preset", "") for s in summaries])
    console.print(compare_table(summaries, labels))
    for s, label, path in zip(summaries, labels, run_dirs):
        mark = {True: "✓", False: "✗"}.get(s.get("reproduced"), "·")
        console.print(f"{label} = {path}" + (f": {mark} {s['finding']}" if s.get("finding") else ""), highlight=False, soft_wrap=True)
