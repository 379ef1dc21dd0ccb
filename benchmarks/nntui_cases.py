"""nntui's own trainer, timed end to end: (c) default probes, (d) probes every step, (e) with the dashboard.

Steps per second are taken from the wall clock between two Steps events (one per block of steps), so
everything nntui does in steady state counts: probes, the run log, the RunState, evaluations,
verdicts, and in (e) the dashboard drawing in the same process.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

from nntui.record import events as ev
from nntui.presets import load_preset
from nntui.runner import Run, RunOptions, prepare_run

PRESET = "sigmoid-paralysis"
VARIANT = "3 layers"  # 784-100-100-100-10 sigmoid, SGD lr 1e-3


class StepClock:
    """Listener: starts the clock after `warmup` steps, asks the run to stop `seconds` later."""

    def __init__(self, run: Run, warmup: int, seconds: float) -> None:
        self.run, self.warmup, self.seconds = run, warmup, seconds
        self.start: tuple[float, int] | None = None
        self.last: tuple[float, int] | None = None

    def __call__(self, event: ev.Event) -> None:
        if not isinstance(event, ev.Steps):
            return
        now = time.perf_counter()
        step = event.first_step + len(event.losses) - 1
        if self.start is None:
            if step >= self.warmup:
                self.start = (now, step)
            return
        self.last = (now, step)
        if now - self.start[0] >= self.seconds:
            self.run.request_stop()

    def result(self) -> dict:
        if self.start is None or self.last is None:
            raise RuntimeError("the nntui run ended before the timing window closed; raise --seconds or lower --warmup")
        seconds = self.last[0] - self.start[0]
        steps = self.last[1] - self.start[1]
        return {"steps": steps, "seconds": round(seconds, 4), "steps_per_second": steps / seconds}


def make_run(batch_size: int, device: str, out: Path, probe_every: int | None = None, extra: list[str] | None = None) -> Run:
    overrides = [f"batch_size={batch_size}", *(extra or [])]
    if probe_every is not None:
        overrides.append(f"probe_every={probe_every}")
    resolved = load_preset(PRESET, overrides)
    options = RunOptions(dataset="mnist-5k", device=device, out=out, variants=[VARIANT])
    return prepare_run(resolved, options)


def nntui_loop(batch_size: int, device: str, seconds: float, warmup: int, probe_every: int | None = None, torch_probes: bool = False) -> dict:
    """(c) with probe_every=None (the preset's default), (d) with probe_every=1; torch_probes: the probes
    run torch kernels on a CPU too (the code path of a GPU) instead of numpy views."""
    with tempfile.TemporaryDirectory(prefix="nntui-bench-runs-") as out:
        run = make_run(batch_size, device, Path(out), probe_every)
        for variant_run in run.runs:
            variant_run.probe.prefer_numpy = not torch_probes
        clock = StepClock(run, warmup, seconds)
        run.listeners.append(clock)
        run.execute()
        result = clock.result()
        result["probe_every"] = run.configs[VARIANT].probe_every
        result["total_steps"] = run.runs[0].step  # warm-up included
        return result


def dashboard_available() -> str | None:
    """The app factory (e) attaches."""
    return "make_app"


def nntui_dashboard_loop(batch_size: int, device: str, seconds: float, warmup: int, size: tuple[int, int] = (160, 50)) -> dict:
    """(e) the trainer in its worker thread while the Textual dashboard runs headlessly in this process."""
    from nntui.tui import app as tui_app

    factory = getattr(tui_app, dashboard_available() or "")
    with tempfile.TemporaryDirectory(prefix="nntui-bench-runs-") as out:
        run = make_run(batch_size, device, Path(out))
        clock = StepClock(run, warmup, seconds)
        run.listeners.append(clock)
        app = factory(run)
        done = threading.Event()

        async def drive() -> None:
            async with app.run_test(headless=True, size=size) as pilot:
                if run.thread is None and run.status == "waiting":
                    run.start()  # the factory's app may start the run on mount; start it here otherwise
                while run.thread is None or run.thread.is_alive():
                    await pilot.pause(0.05)
                done.set()

        asyncio.run(drive())
        if run.thread is not None:
            run.thread.join()
        if run.error is not None:
            raise run.error
        result = clock.result()
        result["dashboard"] = f"nntui.tui.app.{dashboard_available()} via App.run_test(headless=True, size={size[0]}x{size[1]})"
        return result
