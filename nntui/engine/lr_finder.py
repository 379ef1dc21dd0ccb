"""The LR range test: an exponential LR sweep, one LR per batch, on the trainer's own step.

The sweep drives VariantRun's public step API; the run's state is saved before and restored in `finally`,
so the caller's run continues as if the test never happened. Losses stay in a device buffer and are read
back once per block; each block becomes an lr_sweep_points event (the one event stream), and divergence is
detected per block. After each step the loss on one fixed reference batch of training rows is measured too:
the same model at the same LR without the batch-to-batch sampling noise, so the suggestions hold still.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import torch

from nntui.engine.data import Dataset
from nntui.engine.determinism import SeededDropout
from nntui.engine.lr_suggest import LR_FIND_FILE, MIN_POINTS, LRFindResult, Suggestion, analyse, load_bounds, save_result, suggest, usable_points  # noqa: F401  (re-exported)
from nntui.record import events as ev
from nntui.errors import NntuiError
from nntui.presets import ScheduleConfig, TrainConfig
from nntui.engine.train import Emit, VariantRun, cpu_threads_for

DEFAULT_NUM_ITER = 300
READ_BLOCK = 25  # steps between loss read-backs (divergence is noticed at most this late)
REFERENCE_ROWS = 256  # the fixed batch the curve is read from: no sampling noise between steps; 256 rows cost ~8 training batches of forward pass



# ---------------------------------------------------------------- the sweep

def exponential_lrs(start_lr: float, end_lr: float, num_iter: int) -> list[float]:
    """LR of batch i: start · (end/start)^(i/(n-1)); the first batch uses start, the last end."""
    if num_iter < 2:
        return [start_lr] * num_iter
    ratio = math.log(end_lr / start_lr)
    return [start_lr * math.exp(ratio * i / (num_iter - 1)) for i in range(num_iter)]


class _SweepSchedule:
    """Stands in for the run's Schedule during the sweep: sets the next batch's LR after each step."""

    def __init__(self, optimizer: torch.optim.Optimizer, lrs: list[float]) -> None:
        self.optimizer = optimizer
        self.lrs = lrs
        self.i = 0
        self._set(lrs[0])

    def _set(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def after_batch(self) -> None:
        self.i += 1
        if self.i < len(self.lrs):
            self._set(self.lrs[self.i])

    def after_epoch(self, test_loss: float | None) -> None:
        pass


def reference_loss(run: VariantRun, x: torch.Tensor, y: torch.Tensor, dropouts: list[torch.nn.Module]) -> torch.Tensor:
    """The training loss on a fixed batch, left on the device: train mode, as the step's own loss (BatchNorm
    normalises by this batch, not by running statistics that lag behind a sweep), but without dropout's noise.
    The BatchNorm running statistics it moves are restored with the rest of the state after the sweep."""
    for m in dropouts:
        m.eval()
    try:
        with torch.no_grad():
            return run.loss_fn(run.model(x), y)
    finally:
        for m in dropouts:
            m.train()


def range_test(
    run: VariantRun,
    start_lr: float = 1e-8,
    end_lr: float = 10.0,
    num_iter: int = DEFAULT_NUM_ITER,
    smooth: float = 0.05,
    diverge: float = 5.0,
    emit: Emit | None = None,
    stop: threading.Event | None = None,
    block: int = READ_BLOCK,
    preset: str = "",
) -> LRFindResult:
    """Sweep the LR exponentially from start_lr to end_lr, one batch per LR, on `run`'s own training step.

    Emits lr_sweep_started, one lr_sweep_points per read-back block, lr_sweep_finished (without its file)."""
    check_sweep_args(start_lr, end_lr, num_iter, smooth, diverge)
    emit = emit or (lambda event: None)
    lrs = exponential_lrs(start_lr, end_lr, num_iter)
    saved = run.save_state()
    threads, previous_threads = cpu_threads_for([run]), torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)  # as the trainer does: small CPU steps run fastest on one thread
    flush_denormal = torch.set_flush_denormal(True)  # as the trainer does: denormal math is far slower on CPUs
    losses: list[float] = []
    reference: list[float] = []
    smoothed: list[float] = []
    x_ref, y_ref = run.data.x_train[:REFERENCE_ROWS], run.data.y_train[:REFERENCE_ROWS]
    dropouts = [m for m in run.model.modules() if isinstance(m, (torch.nn.Dropout, SeededDropout))]
    stopped, reason = "completed", ""
    emit(ev.LRSweepStarted(run.name, start_lr, end_lr, num_iter, preset, run.data.name, str(run.device)))
    try:
        run.schedule = _SweepSchedule(run.optimizer, lrs)
        run.loss_buffer = torch.zeros(num_iter, device=run.device)
        reference_buffer = torch.zeros(num_iter, device=run.device)
        run.model.train()
        best = math.inf
        done = 0
        while done < num_iter and stopped == "completed":
            if stop is not None and stop.is_set():
                stopped, reason = "interrupted", f"asked to stop after {done} steps"
                break
            n = min(block, num_iter - done)
            for i in range(done, done + n):
                run.train_step(i)
                reference_buffer[i] = reference_loss(run, x_ref, y_ref, dropouts)
            both = torch.cat([run.loss_buffer[done : done + n], reference_buffer[done : done + n]]).tolist()  # the block's one read-back
            chunk = both[:n]
            for k, loss in enumerate(chunk):
                losses.append(loss)
                reference.append(both[n + k])
                if not math.isfinite(loss):
                    smoothed.append(loss)
                    stopped, reason = "non-finite", f"loss became {loss} at lr {lrs[done + k]:.3g} (step {done + k + 1})"
                    break
                value = loss if not smoothed else smooth * loss + (1 - smooth) * smoothed[-1]
                smoothed.append(value)
                best = min(best, value)
                if len(smoothed) > 1 and value > diverge * best:
                    stopped = "diverged"
                    reason = f"smoothed loss {value:.3g} > {diverge:g} × best {best:.3g} at lr {lrs[done + k]:.3g} (step {done + k + 1})"
                    break
            so_far = suggest(lrs[: len(losses)], losses, smoothed, reference)[0]
            emit(ev.LRSweepPoints(run.name, done, lrs[done : len(losses)], losses[done:], smoothed[done:],
                                  {name: s.lr for name, s in so_far.items()}, reference[done:]))
            done = len(losses)
    finally:
        run.restore_state(saved)
        if flush_denormal:
            torch.set_flush_denormal(False)
        if threads is not None:
            torch.set_num_threads(previous_threads)
    lrs = lrs[: len(losses)]
    found = analyse(lrs, losses, smoothed, reference)
    result = LRFindResult(
        lrs=lrs, losses=losses, smoothed=smoothed, suggestions=found.suggestions, base_lr=found.base_lr, max_lr=found.max_lr,
        start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, smooth=smooth, diverge=diverge, stopped=stopped,
        stop_reason=reason, variant=run.name, preset=preset, dataset=run.data.name, device=str(run.device),
        centred=found.centred, noise=found.noise, stability=found.stability, reference=reference, read_from="reference",
    )
    return result


def finished_event(result: LRFindResult, file: Path | None) -> ev.LRSweepFinished:
    data = result.to_dict()
    return ev.LRSweepFinished(result.variant, result.steps, result.stopped, result.stop_reason, data["suggestions"],
                              data["cyclic"], data["centred"], str(file) if file else "")


MAX_NUM_ITER = 1_000_000  # the sweep keeps a few floats per batch; beyond this it is no range test


def check_sweep_args(start_lr: float, end_lr: float, num_iter: int, smooth: float, diverge: float) -> None:
    if not (start_lr > 0 and math.isfinite(start_lr)):
        raise NntuiError(f"--start-lr must be a positive number (got {start_lr})")
    if not (end_lr > start_lr and math.isfinite(end_lr)):
        raise NntuiError(f"--end-lr ({end_lr}) must be above --start-lr ({start_lr})")
    if not MIN_POINTS * 2 <= num_iter <= MAX_NUM_ITER:
        raise NntuiError(f"--num-iter must be from {MIN_POINTS * 2} to {MAX_NUM_ITER:,} (got {num_iter}); a few hundred is typical")
    if not 0 < smooth < 1:
        raise NntuiError(f"--smooth must be between 0 and 1 (got {smooth}); it is the weight of the newest loss")
    if not (diverge > 1 and math.isfinite(diverge)):
        raise NntuiError(f"--diverge must be above 1 (got {diverge}); the sweep stops when the smoothed loss exceeds it × the best")


# ---------------------------------------------------------------- suggestions

def finder_config(cfg: TrainConfig) -> TrainConfig:
    """The config the sweep trains: no schedule (the sweep sets the LR itself), no checkpoints."""
    cfg = cfg.model_copy(deep=True)
    cfg.schedule = ScheduleConfig()
    cfg.keep_best = False
    cfg.checkpoint = False
    return cfg


def lr_find_for_config(name: str, cfg: TrainConfig, data: Dataset, device: torch.device, **sweep: Any) -> LRFindResult:
    """A fresh model built from `cfg` (same seed, same initial weights as the run's), swept."""
    run = VariantRun(name, "", finder_config(cfg), data, device, None)
    return range_test(run, **sweep)


def needs_bounds(cfg: TrainConfig) -> bool:
    s = cfg.schedule
    return (s.name == "cyclic" and (s.base_lr == "auto" or s.max_lr == "auto")) or (s.name == "one_cycle" and s.max_lr == "auto")


def _finder_key(cfg: TrainConfig, data: Dataset) -> str:
    c = finder_config(cfg).model_dump(mode="json")
    c.pop("epochs"), c.pop("max_steps")
    return json.dumps([c, data.name, len(data.x_train)], sort_keys=True)


def resolve_auto_bounds(
    configs: dict[str, TrainConfig],
    datasets: dict[str, Dataset],
    device: torch.device,
    run_dir: Path,
    from_lr_find: Path | None = None,
    emit: Emit | None = None,
    stop: threading.Event | None = None,
    preset: str = "",
) -> tuple[dict[str, TrainConfig], list[str]]:
    """Fill schedule base_lr/max_lr = "auto" from an LR range test (one per distinct model/data) or a saved lr_find.json.

    The test runs on a fresh copy of each variant's model, its events go to `emit`; results are saved as
    lr_find.json in the run directory. A stop request ends the sweep and leaves the configs unresolved (empty notes).
    """
    todo = [name for name, cfg in configs.items() if needs_bounds(cfg)]
    if not todo:
        return configs, []
    notes: list[str] = []
    out = dict(configs)
    cache: dict[str, tuple[float, float, str]] = {}
    saved_bounds = load_bounds(from_lr_find) if from_lr_find is not None else None
    for name in todo:
        cfg = configs[name].model_copy(deep=True)
        if saved_bounds is not None:
            base_lr, max_lr = saved_bounds
            source = f"from {from_lr_find}"
        else:
            key = _finder_key(cfg, datasets[name])
            if key not in cache:
                result = lr_find_for_config(name, cfg, datasets[name], device, emit=emit, stop=stop, preset=preset)
                if result.stopped == "interrupted":
                    return configs, []
                file = run_dir / (LR_FIND_FILE if not cache else f"lr_find-{len(cache) + 1}.json")
                if emit is not None:
                    emit(finished_event(result, file))
                if result.base_lr is None or result.max_lr is None:
                    raise NntuiError(f"variant {name!r}: the LR range test found no usable minimum ({result.stop_reason or 'the loss never fell'}); set schedule.base_lr and max_lr by hand")
                save_result(result, file)
                cache[key] = (result.base_lr, result.max_lr, f"LR range test ({result.steps} steps, {file.name})")
            base_lr, max_lr, source = cache[key]
        if cfg.schedule.name == "cyclic":
            if cfg.schedule.base_lr == "auto":
                cfg.schedule.base_lr = base_lr
            if cfg.schedule.max_lr == "auto":
                cfg.schedule.max_lr = max_lr
            if not cfg.schedule.base_lr < cfg.schedule.max_lr:
                raise NntuiError(f"variant {name!r}: schedule.base_lr {cfg.schedule.base_lr:.3g} is not below max_lr {cfg.schedule.max_lr:.3g}; set them by hand")
            notes.append(f"{name}: cyclic LR bounds base_lr={cfg.schedule.base_lr:.3g}, max_lr={cfg.schedule.max_lr:.3g} {source}")
        else:
            cfg.schedule.max_lr = max_lr
            notes.append(f"{name}: one-cycle max_lr={max_lr:.3g} {source}")
        out[name] = cfg
    return out, notes
