"""The LR range test: an exponential LR sweep, one LR per batch, on the trainer's own step.

The model, optimizer, batching position and RNG states are snapshotted before the sweep and
restored in `finally`, so the caller's run continues as if the test never happened.
Losses stay in a device buffer and are read back once per block; divergence is detected per block.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nntui.engine.data import Dataset
from nntui.engine.lr_suggest import LR_FIND_FILE, MIN_POINTS, LRFindResult, Suggestion, load_bounds, save_result, suggest, usable_points  # noqa: F401  (re-exported)
from nntui.errors import NntuiError
from nntui.presets import ScheduleConfig, TrainConfig
from nntui.engine.train import VariantRun, cpu_threads_for

DEFAULT_NUM_ITER = 300
READ_BLOCK = 25  # steps between loss read-backs (divergence is noticed at most this late)

Progress = Callable[[int, int], None]  # (steps done, steps planned)


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


def _snapshot(run: VariantRun) -> dict[str, Any]:
    device = run.device
    return {
        "model": copy.deepcopy(run.model.state_dict()),
        "optimizer": copy.deepcopy(run.optimizer.state_dict()),
        "training": run.model.training,
        "schedule": run.schedule,
        "loss_buffer": run.loss_buffer,
        "step": run.step,
        "pos": run.pos,
        "perm": run.perm,
        "generator": run.generator.get_state(),
        "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def _restore(run: VariantRun, saved: dict[str, Any]) -> None:
    run.model.load_state_dict(saved["model"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.model.train(saved["training"])
    run.schedule = saved["schedule"]
    run.loss_buffer = saved["loss_buffer"]
    run.step, run.pos, run.perm = saved["step"], saved["pos"], saved["perm"]
    run.generator.set_state(saved["generator"])
    torch.set_rng_state(saved["cpu_rng"])
    if saved["cuda_rng"] is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"], run.device)


def range_test(
    run: VariantRun,
    start_lr: float = 1e-8,
    end_lr: float = 10.0,
    num_iter: int = DEFAULT_NUM_ITER,
    smooth: float = 0.05,
    diverge: float = 5.0,
    progress: Progress | None = None,
    block: int = READ_BLOCK,
) -> LRFindResult:
    """Sweep the LR exponentially from start_lr to end_lr, one batch per LR, on `run`'s own training step."""
    check_sweep_args(start_lr, end_lr, num_iter, smooth, diverge)
    lrs = exponential_lrs(start_lr, end_lr, num_iter)
    saved = _snapshot(run)
    threads, previous_threads = cpu_threads_for([run]), torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)  # as the trainer does: small CPU steps run fastest on one thread
    losses: list[float] = []
    smoothed: list[float] = []
    stopped, reason = "completed", ""
    try:
        run.schedule = _SweepSchedule(run.optimizer, lrs)
        run.loss_buffer = torch.zeros(num_iter, device=run.device)
        run.model.train()
        best = math.inf
        done = 0
        while done < num_iter and stopped == "completed":
            n = min(block, num_iter - done)
            for i in range(done, done + n):
                if run.pos >= run.steps_per_epoch:
                    run.pos = 0  # the next batch draws a new permutation, as at an epoch end
                run._train_step(i, probe=False)
            chunk = run.loss_buffer[done : done + n].tolist()  # the block's one read-back
            for k, loss in enumerate(chunk):
                losses.append(loss)
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
            done += n
            if progress is not None:
                progress(min(done, num_iter), num_iter)
    finally:
        _restore(run, saved)
        if threads is not None:
            torch.set_num_threads(previous_threads)
    lrs = lrs[: len(losses)]
    suggestions, base_lr, max_lr = suggest(lrs, smoothed)
    return LRFindResult(
        lrs=lrs, losses=losses, smoothed=smoothed, suggestions=suggestions, base_lr=base_lr, max_lr=max_lr,
        start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, smooth=smooth, diverge=diverge, stopped=stopped,
        stop_reason=reason, variant=run.name, dataset=run.data.name, device=str(run.device),
    )


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


def lr_find_for_config(
    name: str, cfg: TrainConfig, data: Dataset, device: torch.device, progress: Progress | None = None, **sweep: Any
) -> LRFindResult:
    """A fresh model built from `cfg` (same seed, same initial weights as the run's), swept."""
    run = VariantRun(name, "", finder_config(cfg), data, device, None)
    return range_test(run, progress=progress, **sweep)


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
    progress: Progress | None = None,
) -> tuple[dict[str, TrainConfig], list[str]]:
    """Fill schedule base_lr/max_lr = "auto" from an LR range test (one per distinct model/data) or a saved lr_find.json.

    The test runs on a fresh copy of each variant's model; results are saved as lr_find.json in the run directory.
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
                result = lr_find_for_config(name, cfg, datasets[name], device, progress=progress)
                if result.base_lr is None or result.max_lr is None:
                    raise NntuiError(f"variant {name!r}: the LR range test found no usable minimum ({result.stop_reason or 'the loss never fell'}); set schedule.base_lr and max_lr by hand")
                file = run_dir / (LR_FIND_FILE if not cache else f"lr_find-{len(cache) + 1}.json")
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
