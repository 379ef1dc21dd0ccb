"""`nntui run PRESET --seeds 0,1,2`: the preset once per seed, in one run directory (runs/<id>/seed-N/),
seeds in parallel processes when the cores allow, then one summary judged across the seeds."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from nntui.errors import NntuiError
from nntui.record.runlog import SUMMARY_FILE, create_run_dir, write_json_atomic
from nntui.record.runs import SEEDS_FILE, aggregate_seeds, read_summary

Report = Callable[[str], None]


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' -> the seeds, each once, in order."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        lo, dash, hi = part.partition("-") if not part.startswith("-") else (part, "", "")
        try:
            values = range(int(lo), int(hi) + 1) if dash else [int(part)]
        except ValueError:
            raise NntuiError(f"--seeds {text!r}: expected whole numbers separated by commas, e.g. --seeds 0,1,2 (or a range, 0-4)") from None
        seeds.extend(s for s in values if s not in seeds)
    if len(seeds) < 2:
        raise NntuiError(f"--seeds {text!r}: give at least two seeds (one seed is --seed N)")
    return seeds


def parallel_workers(n_seeds: int, cpu_count: int | None = None, threads_per_seed: int | None = None) -> int:
    """How many seeds train at once: as many as the cores hold at NNTUI_THREADS (default 1) threads each."""
    from nntui.engine.train import requested_threads

    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    threads = threads_per_seed if threads_per_seed is not None else (requested_threads() or 1)
    return max(1, min(n_seeds, cores // threads))


def train_seed(preset: str, overrides: list[str], options: Any, seed: int, run_dir: Path, threads: int | None,
               stop_requested: Callable[[], bool] | None = None) -> dict[str, Any]:
    """One seed's run, start to end (in a worker process, or in this one where `stop_requested` is
    polled: a stop asked for between two of its steps ends it as interrupted); returns its summary."""
    from nntui.presets import load_preset
    from nntui.runner import prepare_run

    if threads is not None and not os.environ.get("NNTUI_THREADS"):
        os.environ["NNTUI_THREADS"] = str(threads)  # parallel seeds share the cores instead of each taking all
    run = prepare_run(load_preset(preset, overrides), replace(options, seed=seed, run_dir=run_dir))
    in_worker = threads is not None
    if in_worker:  # Ctrl-C reaches the whole process group: finish the step and save, as a single run does
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: run.request_stop())
    done = threading.Event()
    if stop_requested is not None:
        def watch() -> None:
            while not done.wait(0.2):
                if stop_requested():
                    run.request_stop()
                    return

        threading.Thread(target=watch, name="nntui-seed-stop", daemon=True).start()
    try:
        return run.execute()
    except KeyboardInterrupt:
        return run.state.summary
    finally:
        done.set()


def run_seeds(preset: str, overrides: list[str], options: Any, seeds: list[int], report: Report,
              stop_requested: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Every seed's run under one directory; writes and returns the summary across seeds."""
    from nntui.presets import load_preset
    from nntui.runner import apply_options

    resolved = load_preset(preset, overrides)  # bad input fails here, before anything is written
    apply_options(resolved, options)
    top = create_run_dir(options.out, resolved.name)
    write_json_atomic(top / SEEDS_FILE, {"preset": resolved.name, "seeds": seeds, "started_at": time.time()})
    workers = parallel_workers(len(seeds))
    report(f"run directory: {top} — {len(seeds)} seeds, {workers} at a time ({os.cpu_count()} cores)"
           + ("" if workers > 1 else "; one after another") + f"; follow them live with: nntui watch {top}")
    summaries: dict[int, dict[str, Any]] = {}
    try:
        if workers == 1:
            for seed in seeds:
                if stop_requested():
                    break
                summaries[seed] = _finish(seed, top, report, lambda: train_seed(preset, overrides, options, seed, top / f"seed-{seed}", None, stop_requested))
        else:
            _run_parallel(preset, overrides, options, seeds, top, workers, summaries, report)
    finally:
        done = [s for s in seeds if s in summaries]
        if not done:
            _remove_if_empty(top)
    if not done:
        raise NntuiError("no seed finished; nothing to summarise")
    summary = aggregate_seeds(done, [summaries[s] for s in done], top)
    if len(done) < len(seeds):
        summary["status"] = "interrupted"
    write_json_atomic(top / SUMMARY_FILE, summary)
    return summary


def _run_parallel(preset, overrides, options, seeds, top, workers, summaries, report) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(train_seed, preset, overrides, options, seed, top / f"seed-{seed}", threads): seed for seed in seeds}
        pending = set(futures)
        while pending:
            try:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:  # the workers got it too and are saving; wait for them
                for future in pending:
                    future.cancel()
                continue
            for future in finished:
                seed = futures[future]
                if not future.cancelled():
                    summaries[seed] = _finish(seed, top, report, future.result)


def _finish(seed: int, top: Path, report: Report, result: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        summary = result()
    except NntuiError:
        raise
    except BaseException as exc:  # a seed that crashed: its own summary if it wrote one, else "failed"
        if isinstance(exc, KeyboardInterrupt):
            raise
        summary = read_summary(top / f"seed-{seed}") or {"status": "failed", "variants": [], "reproduced": None}
        summary["status"] = "failed"
        summary["error"] = f"{type(exc).__name__}: {exc}"
    summary.setdefault("run_dir", str(top / f"seed-{seed}"))
    mark = {True: "✓", False: "✗"}.get(summary.get("reproduced"), "·")
    report(f"seed {seed}: {summary.get('status')} {mark} {summary.get('finding') or ''}".rstrip())
    return summary


def _remove_if_empty(top: Path) -> None:
    for path in sorted(top.rglob("*"), reverse=True):
        if path.is_file() and path.name != SEEDS_FILE:
            return
    for path in sorted(top.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    top.rmdir()

