"""`nntui lr-find`: the LR range test from the command line: a plot, a table of suggestions, lr_find.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from nntui.cli.common import DataDirOpt, DatasetOpt, DeviceOpt, OutOpt, SeedOpt, SetOpt, fail
from nntui.errors import NntuiError

DEFAULT_PRESET = "batchnorm"
MARKS = {"steepest": ("S", "green"), "valley": ("V", "cyan"), "min_div_10": ("m", "yellow"), "minimum": ("M", "red")}


def lr_find_command(
    preset: Annotated[str, typer.Argument(help="A preset name or a .toml preset file (default: the BatchNorm net).")] = DEFAULT_PRESET,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Which variant's model and optimizer to sweep (default: the first).")] = None,
    start_lr: Annotated[float, typer.Option("--start-lr", help="First LR of the sweep.")] = 1e-8,
    end_lr: Annotated[float, typer.Option("--end-lr", help="Last LR of the sweep.")] = 10.0,
    num_iter: Annotated[Optional[int], typer.Option("--num-iter", help="Batches in the sweep, one LR each (default 300).")] = None,
    epochs: Annotated[Optional[float], typer.Option("--epochs", help="Sweep length in epochs instead of --num-iter (the lecture uses 2).")] = None,
    smooth: Annotated[float, typer.Option("--smooth", help="Weight of the newest loss in the smoothed curve.")] = 0.05,
    diverge: Annotated[float, typer.Option("--diverge", help="Stop when the smoothed loss exceeds this many times the best.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result object on stdout (plot, table and progress go to stderr).")] = False,
    dataset: DatasetOpt = None,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    out: OutOpt = Path("runs"),
    overrides: SetOpt = None,
) -> None:
    """LR range test: sweep the LR exponentially, one batch each, and suggest LRs (and cyclic-LR bounds)."""
    from nntui.report import stderr_console

    err = stderr_console()
    out_console = err if as_json else Console(highlight=False)
    try:
        result, path = _run(preset, variant, start_lr, end_lr, num_iter, epochs, smooth, diverge, dataset, data_dir, device, seed, out, overrides or [], err)
    except NntuiError as exc:
        raise fail(str(exc)) from None
    data = result.to_dict()
    out_console.print(plot_renderable(data, width=min(out_console.width, 110), color=out_console.is_terminal))
    out_console.print(suggestion_table(data))
    for warning in stability_warnings(data):
        out_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    if result.stopped != "completed":
        out_console.print(f"stopped early: {result.stop_reason}", highlight=False)
    out_console.print(f"saved {path}", highlight=False)
    if as_json:
        print(json.dumps({**data, "path": str(path)}, indent=2))


def _run(preset, variant, start_lr, end_lr, num_iter, epochs, smooth, diverge, dataset, data_dir, device, seed, out, overrides, err):
    import os
    import socket
    import time

    from nntui.engine.data import load_dataset
    from nntui.engine.lr_finder import DEFAULT_NUM_ITER, LR_FIND_FILE, check_sweep_args, finished_event, lr_find_for_config, save_result
    from nntui.engine.train import batch_size_for
    from nntui.presets import load_preset
    from nntui.record import events as ev
    from nntui.record.runlog import RunLog, create_run_dir
    from nntui.runner import RunOptions, apply_options, resolve_device

    if num_iter is not None and epochs is not None:
        raise NntuiError("give --num-iter or --epochs, not both")
    if epochs is not None and not (0 < epochs <= 1000):
        raise NntuiError(f"--epochs must be a positive number up to 1000 (got {epochs})")
    resolved = load_preset(preset, overrides)
    name = variant or next(iter(resolved.configs))
    configs = apply_options(resolved, RunOptions(dataset=dataset, data_dir=data_dir, device=device, out=out, seed=seed, variants=[name]))
    cfg = configs[name]
    torch_device, note = resolve_device(device)
    data = load_dataset(cfg.data.name, data_dir, cfg.data.normalize, seed=cfg.seed).to(torch_device).limit_train(cfg.data.train_limit)
    n_train = len(data.x_train)
    batch = batch_size_for(cfg, n_train, name)  # bad combinations fail here, before anything is written
    for line in (note, data.note):
        if line:
            err.print(line, highlight=False)
    if epochs is not None:
        num_iter = max(1, round(epochs * math.ceil(n_train / batch)))
    num_iter = num_iter or DEFAULT_NUM_ITER
    check_sweep_args(start_lr, end_lr, num_iter, smooth, diverge)
    run_dir = create_run_dir(out, f"{resolved.name}-lr-find")
    err.print(f"run directory: {run_dir}  (watch it: nntui watch {run_dir})", highlight=False)
    err.print(f"LR range test on {resolved.name} / {name}: {num_iter} batches, lr {start_lr:g} → {end_lr:g}", highlight=False)
    log = RunLog(run_dir)  # the sweep's events: `nntui watch` shows the sweep like any run
    log.append(ev.RunStarted(
        preset=resolved.name, title=f"LR range test: {resolved.name} / {name}", lesson=resolved.preset.lesson.strip(),
        dataset=data.name, device=str(torch_device), task=data.task, run_dir=str(run_dir), variants=[],
        started_at=time.time(), notes=[line for line in (note, data.note) if line], pid=os.getpid(), host=socket.gethostname(),
    ))
    status = "failed"
    try:
        with _progress(err, num_iter) as progress:
            def emit(event) -> None:
                log.append(event)
                if event.type == "lr_sweep_points":
                    progress(event.first_index + len(event.lrs), num_iter)

            result = lr_find_for_config(name, cfg, data, torch_device, emit=emit, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter,
                                        smooth=smooth, diverge=diverge, preset=resolved.name)
        result.extra["run_dir"] = str(run_dir)
        path = run_dir / LR_FIND_FILE
        save_result(result, path)
        log.append(finished_event(result, path))
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary = {"preset": resolved.name, "kind": "lr-find", "run_dir": str(run_dir), "status": status}
        log.append(ev.RunFinished(status, time.time(), summary))
        log.close()
    return result, path


class _progress:
    """A rich progress bar on a terminal, nothing otherwise (the sweep takes seconds)."""

    def __init__(self, console: Console, total: int) -> None:
        self.console, self.total = console, total
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.console.is_terminal:
            from rich.progress import Progress

            self.bar = Progress(console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("lr range test", total=self.total)
        return self.update

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


def _fmt_lr(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}"


def suggestion_table(data: dict[str, Any]):
    from rich.table import Table

    table = Table(title=f"LR range test — {data['preset']} / {data['variant']} on {data['dataset']} ({data['steps']} steps, {data['stopped']})")
    table.add_column("suggestion", style="bold")
    table.add_column("lr", justify="right")
    table.add_column("rule")
    for name, s in data["suggestions"].items():
        mark = MARKS.get(name, ("", ""))[0]
        table.add_row(f"{name} {mark}".strip(), _fmt_lr(s["lr"]), s["rule"] + (f" ({s['note']})" if s.get("note") else ""))
    cyclic = data["cyclic"]
    stability = cyclic.get("stability") or {}
    rules = {"base_lr": "LR where the loss starts to fall (at 33 batches/decade) / 6 (lecture)", "max_lr": "LR at the loss minimum / 10 (lecture)"}
    for bound, rule in rules.items():
        band = stability.get(bound)
        if band:
            lo, hi = band["band"]
            verdict = "ok" if band["reliable"] else "NOT RELIABLE"
            rule += f"; ±1 noise sd moves it over {_fmt_lr(lo)}…{_fmt_lr(hi)} ({band['decades']:.2f} decades, {verdict})"
        table.add_row(f"cyclic {bound}", _fmt_lr(cyclic[bound]), rule, style="magenta" if not band or band["reliable"] else "bold yellow")
    return table


def stability_warnings(data: dict[str, Any]) -> list[str]:
    return [band["warning"] for band in (data["cyclic"].get("stability") or {}).values() if band.get("warning")]


def plot_renderable(data: dict[str, Any], width: int, color: bool):
    from rich.text import Text

    text = plot_text(data, width=width, color=color)
    return Text.from_ansi(text) if color else Text(text)


def plot_text(data: dict[str, Any], width: int = 100, height: int = 22, color: bool = True) -> str:
    """Smoothed (and raw) loss against log10(LR), the suggestions marked with letters."""
    import plotext as plt

    pairs = [(math.log10(lr), raw, sm) for lr, raw, sm in zip(data["lrs"], data["losses"], data["smoothed"]) if raw is not None and sm is not None]
    plt.clear_figure()
    plt.plotsize(max(40, width), height)
    if not color:
        plt.theme("clear")
    plt.title("LR range test: loss vs learning rate (log scale)")
    plt.xlabel("learning rate")
    plt.ylabel("loss")
    if pairs:
        xs, raw, sm = zip(*pairs)
        top = min(max(sm) * 1.05, 4 * min(sm) + 1) if sm else None
        plt.plot(xs, [min(r, top) for r in raw] if top else raw, color="gray", marker="dot", label="raw")
        plt.plot(xs, sm, color="blue", marker="hd", label="smoothed")
        reference = [(math.log10(lr), v) for lr, v in zip(data["lrs"], data.get("reference") or []) if v is not None]
        if reference:  # the fixed batch's loss, which the minimum and the fall start are read off
            plt.plot([x for x, _ in reference], [min(v, top) if top else v for _, v in reference], color="green", marker="braille", label="reference batch")
        lo, hi = math.floor(min(xs)), math.ceil(max(xs))
        ticks = list(range(lo, hi + 1))
        plt.xticks(ticks, [f"1e{t}" for t in ticks])
        for name, s in data["suggestions"].items():
            if name not in MARKS or s["lr"] is None or s["index"] is None:
                continue
            mark, col = MARKS[name]
            x = math.log10(s["lr"])
            y = min(pairs, key=lambda p: abs(p[0] - x))[2]  # on the smoothed curve at the nearest swept LR
            plt.scatter([x], [y], marker=mark, color=col, label=f"{mark} {name} {s['lr']:.2g}")
    text = plt.build()
    plt.clear_figure()
    return text if color else plt.uncolorize(text)
