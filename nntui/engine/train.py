"""The trainer: a preset's variants trained side by side, interleaved in short blocks of steps.

Losses, probe statistics and the evaluation at a block's end stay on the device and come back in one
transfer per block; nothing is read back per step.
"""

from __future__ import annotations

import copy
import math
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from nntui.record import events as ev
from nntui.engine.checkpoints import save_checkpoint
from nntui.engine.data import Dataset
from nntui.engine.evaluation import evaluate, evaluate_on_device  # noqa: F401 (evaluate: public here too)
from nntui.engine.determinism import DROPOUT_SEED_OFFSET, epoch_order, pin_matmul_precision, seed_dropout
from nntui.errors import NntuiError
from nntui.engine.models import MLP
from nntui.engine.optim import Schedule, build_optimizer, build_schedule, l1_l2_penalty
from nntui.presets import TrainConfig
from nntui.engine.probes import Probe, ProbeRecord

BLOCK_STEPS = 50  # steps between loss read-backs (and between switches to the next variant)
PREDICTION_POINTS = 100
SMALL_STEP_MACS = 1 << 26  # multiply-adds per training step up to which one CPU thread is fastest

Emit = Callable[[ev.Event], None]


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "variant"


def loss_function(task: str):
    return F.cross_entropy if task == "classification" else F.mse_loss


def batch_size_for(cfg: TrainConfig, n_train: int, variant: str) -> int:
    """The batch size a variant trains with (checked: BatchNorm needs two examples per batch)."""
    size = n_train if cfg.batch_size == "full" else min(cfg.batch_size, n_train)
    if cfg.model.batchnorm != "none" and size < 2:
        raise NntuiError(f"variant {variant!r}: batch_size {cfg.batch_size} with BatchNorm; batch norm needs at least 2 examples per batch, set batch_size to 2 or more")
    return size


class VariantRun:
    """One variant's model, optimizer, schedule and position in its data stream."""

    def __init__(self, name: str, description: str, cfg: TrainConfig, data: Dataset, device: torch.device, checkpoint_dir: Path | None) -> None:
        self.name, self.description, self.cfg, self.data, self.device = name, description, cfg, data, device
        self.checkpoint_dir = checkpoint_dir
        self.file_stem = slug(name)  # the runner sets one unique within the run (checkpoints.file_stems)
        pin_matmul_precision()
        torch.manual_seed(cfg.seed)  # same seed, same initial weights across variants of one architecture (made on the CPU)
        self.model = MLP(data.input_dim, data.num_classes, cfg.model).to(device)
        # batch order and dropout masks from CPU generators: the same run on every device
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.dropout_generator = torch.Generator().manual_seed(cfg.seed + DROPOUT_SEED_OFFSET)
        seed_dropout(self.model, self.dropout_generator)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optimizer)
        n_train = len(data.x_train)
        self.batch_size = batch_size_for(cfg, n_train, name)
        self.steps_per_epoch = math.ceil(n_train / self.batch_size)
        if cfg.model.batchnorm != "none" and n_train % self.batch_size == 1:
            self.steps_per_epoch -= 1  # a last batch of one example cannot be batch-normalised: it sits that epoch out
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.schedule: Schedule = build_schedule(self.optimizer, cfg.schedule, self.steps_per_epoch, self.total_steps, cfg.optimizer.lr)
        self.loss_fn = loss_function(data.task)
        self.probe = Probe(self.model, self.optimizer, layers=self.model.named_layers())
        self.loss_buffer = torch.zeros(BLOCK_STEPS, device=device)
        self.step = 0
        self.pos = 0  # batches done in the current epoch
        self.perm: torch.Tensor | None = None
        self.elapsed = 0.0
        self.status = "running"
        self.reason = ""
        self.best_test_loss = math.inf
        self.subset = min(cfg.eval_subset, len(data.x_test))
        self.grid = [-1 + 2 * i / (PREDICTION_POINTS - 1) for i in range(PREDICTION_POINTS)]  # where a regression's curve is drawn
        self.model.train()

    @property
    def epoch(self) -> float:
        return self.step / self.steps_per_epoch

    @property
    def done(self) -> bool:
        return self.status != "running" or self.step >= self.total_steps

    def info(self) -> dict:
        return vars(ev.VariantInfo(
            name=self.name, description=self.description, layers=list(self.model.layer_names),
            steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps, epochs=self.cfg.epochs,
            config=self.cfg.model_dump(mode="json"),
        ))

    # -- the hot path

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.perm is None or self.pos == 0:
            self.perm = epoch_order(len(self.data.x_train), self.generator, self.device)  # one copy per epoch
        idx = self.perm[self.pos * self.batch_size : (self.pos + 1) * self.batch_size]
        # index_select: the same rows as x[idx], several times faster than advanced indexing on CPU
        return self.data.x_train.index_select(0, idx), self.data.y_train.index_select(0, idx)

    def _train_step(self, slot: int, probe: bool) -> None:
        x, y = self._next_batch()
        if probe:
            self.probe.attach()
        try:
            out = self.model(x)
        finally:
            if probe:
                self.probe.detach()
        loss = self.loss_fn(out, y)
        penalty = l1_l2_penalty(self.model, self.cfg.l1, self.cfg.l2)
        self.optimizer.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        if self.cfg.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm, foreach=True)
        if probe:
            self.probe.before_step()
        self.optimizer.step()
        self.schedule.after_batch()
        self.loss_buffer[slot] = loss.detach()
        self.step += 1
        self.pos += 1

    def steps_to_boundary(self) -> int:
        """Steps to where the block must end: a periodic evaluation, an epoch end with a test evaluation,
        or the end. Other epoch ends fall inside blocks (full-batch presets: 50 one-step epochs a block)."""
        cfg, per_epoch = self.cfg, self.steps_per_epoch
        next_test_epoch = -(-(self.step // per_epoch + 1) // cfg.test_every_epochs) * cfg.test_every_epochs
        return min(BLOCK_STEPS, self.total_steps - self.step, cfg.eval_every - self.step % cfg.eval_every, next_test_epoch * per_epoch - self.step)

    def run_block(self, emit: Emit, stop: threading.Event) -> None:
        """Train up to the next block boundary; the block's losses, probe statistics and, at its end, the
        evaluation come back to the host in one transfer."""
        cfg = self.cfg
        first = self.step + 1
        n = self.steps_to_boundary()
        lr = self.current_lr()
        started = time.perf_counter()
        done = 0
        records: list[ProbeRecord] = []
        epoch_end = False
        for slot in range(n):
            if stop.is_set():
                break
            step = self.step + 1
            probe = step == 1 or step % cfg.probe_every == 0
            self._train_step(slot, probe)
            if probe:
                records.append(self.probe.collect(step))
            done += 1
            epoch_end = self.pos == self.steps_per_epoch
            if epoch_end:
                self.pos = 0
                if slot < n - 1:  # no evaluation is due here (the block would end otherwise)
                    self.schedule.after_epoch(None)
        if done == 0:
            return
        ended = done == n
        last = self.step >= self.total_steps
        test = ended and (last or (epoch_end and round(self.epoch) % cfg.test_every_epochs == 0))
        subset = ended and not test and self.step % cfg.eval_every == 0
        if epoch_end and not test:
            self.schedule.after_epoch(None)
        losses, probed, evaluation, curve = self._read_block(done, records, test, subset)
        self.elapsed += time.perf_counter() - started
        bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        if bad is not None:
            self.status = "diverged"
            self.reason = f"loss became {'nan' if math.isnan(losses[bad]) else 'inf'} at step {first + bad}"
            losses = losses[:bad]
            self.step = first + bad
        for step, layers, groups, opt_layers in probed:
            if step <= self.step:  # nothing past a divergence
                emit(ev.LayerStats(self.name, step, layers))
                emit(ev.OptimizerState(self.name, step, groups, opt_layers))
        if losses:
            emit(ev.Steps(self.name, first, losses, lr, self.epoch, self.elapsed))
        if self.status == "diverged":
            emit(ev.Alert(self.name, self.step, "error", f"{self.name}: {self.reason}; variant stopped (diverged)"))
            return
        if subset:
            emit(ev.Eval(self.name, self.step, self.epoch, "test_subset", *evaluation))
        elif test:
            self._after_test(emit, evaluation, curve, epoch_end)

    def _read_block(self, done: int, records: list[ProbeRecord], test: bool, subset: bool):
        """The block's one device-to-host transfer: losses, probe vectors, evaluation and fitted curve
        concatenated on the device, then read back together.
        Returns (losses, decoded probes, (eval loss, accuracy) or None, (mean, lower, upper) or None)."""
        parts = [self.loss_buffer[:done]]
        parts += [torch.as_tensor(r.values, device=self.device) for r in records]  # numpy probes on the CPU: views, no copy
        sizes = [len(p) for p in parts]
        if test or subset:
            x, y = (self.data.x_test, self.data.y_test) if test else (self.data.x_test[: self.subset], self.data.y_test[: self.subset])
            parts.append(evaluate_on_device(self.model, x, y, self.data.task))
        curve_points = 0
        if test and self.data.task == "regression":
            parts.append(self.prediction_tensor())
            curve_points = len(parts[-1])
        flat = torch.cat(parts).tolist()  # the one host read of the block
        losses = flat[:done]
        probed = self.probe.read(records, flat[done : sum(sizes)])
        evaluation = None
        if test or subset:
            loss, acc = flat[sum(sizes) : sum(sizes) + 2]
            evaluation = (loss, acc if self.data.task == "classification" else None)
        curve = None
        if curve_points:
            values = flat[len(flat) - curve_points :]
            third = PREDICTION_POINTS
            curve = (values[:third], values[third : 2 * third] or None, values[2 * third :] or None)
        return losses, probed, evaluation, curve

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -- evaluation at boundaries

    def _after_test(self, emit: Emit, evaluation: tuple[float, float | None], curve, epoch_done: bool) -> None:
        """A full test-split evaluation at an epoch end (every test_every_epochs) or at the very end."""
        loss, acc = evaluation
        epoch = round(self.epoch)
        if not math.isfinite(loss):
            self.status, self.reason = "diverged", f"test loss became non-finite at epoch {epoch}"
            emit(ev.Alert(self.name, self.step, "error", f"{self.name}: {self.reason}; variant stopped (diverged)"))
            return
        emit(ev.Eval(self.name, self.step, self.epoch, "test", loss, acc))
        if curve is not None:
            emit(ev.Predictions(self.name, self.step, self.grid, *curve))
        if epoch_done:
            self.schedule.after_epoch(loss)
        if self.cfg.keep_best and loss < self.best_test_loss and self.checkpoint_dir is not None:
            self.best_test_loss = loss
            path = self.checkpoint_dir / f"best-{self.file_stem}.pt"
            save_checkpoint(path, self.model, self.name, self.step, epoch, loss)
            emit(ev.Checkpoint(self.name, self.step, self.epoch, "best", str(path), loss))

    @torch.no_grad()
    def prediction_tensor(self) -> torch.Tensor:
        """The fitted curve on the grid, on the device: the mean, then with mc_samples the 5 % and 95 %
        quantiles of the samples taken with dropout on."""
        grid = torch.tensor(self.grid, device=self.device).unsqueeze(1)
        was_training = self.model.training
        try:
            if self.cfg.mc_samples > 0:
                self.model.train()
                samples = self.model(grid.repeat(self.cfg.mc_samples, 1)).reshape(self.cfg.mc_samples, -1)
                q = torch.quantile(samples, torch.tensor([0.05, 0.95], device=self.device), dim=0)
                return torch.cat([samples.mean(0), q.reshape(-1)])
            self.model.eval()
            return self.model(grid).reshape(-1)
        finally:
            self.model.train(was_training)

    def finish(self, emit: Emit, interrupted: bool) -> None:
        if self.status == "running":
            self.status = "interrupted" if interrupted and self.step < self.total_steps else "completed"
        if self.cfg.checkpoint and self.checkpoint_dir is not None and self.status != "diverged":
            path = self.checkpoint_dir / f"last-{self.file_stem}.pt"
            save_checkpoint(path, self.model, self.name, self.step, self.epoch, None)
            emit(ev.Checkpoint(self.name, self.step, self.epoch, "last", str(path), None))
        emit(ev.VariantFinished(self.name, self.status, self.step, self.epoch, self.reason))

    def train_step(self, slot: int, probe: bool = False) -> None:
        """Public step (the LR range test's): the next batch, a new permutation once the epoch is used; loss into loss_buffer[slot]."""
        self.pos = 0 if self.pos >= self.steps_per_epoch else self.pos
        self._train_step(slot, probe)

    def save_state(self) -> dict:
        """Everything a detour (an LR range test) changes: weights, optimizer, schedule, data position, RNGs."""
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {"model": copy.deepcopy(self.model.state_dict()), "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "training": self.model.training, "schedule": self.schedule, "loss_buffer": self.loss_buffer, "step": self.step,
                "pos": self.pos, "perm": self.perm, "generator": self.generator.get_state(), "dropout_generator": self.dropout_generator.get_state(),
                "cpu_rng": torch.get_rng_state(), "cuda_rng": cuda}

    def restore_state(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.model.train(saved["training"])
        self.schedule, self.loss_buffer, self.step, self.pos, self.perm = (saved[k] for k in ("schedule", "loss_buffer", "step", "pos", "perm"))
        self.generator.set_state(saved["generator"])
        self.dropout_generator.set_state(saved["dropout_generator"])
        torch.set_rng_state(saved["cpu_rng"])
        if saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)


def requested_threads() -> int | None:
    """NNTUI_THREADS=N, checked; None when unset."""
    raw = os.environ.get("NNTUI_THREADS", "").strip()
    if not raw:
        return None
    limit = 4 * (os.cpu_count() or 1)  # more threads than that only contend for the cores
    if not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= limit:
        raise NntuiError(f"NNTUI_THREADS={raw[:20]!r}: expected a whole number of CPU threads from 1 to {limit} ({os.cpu_count()} CPUs here), e.g. NNTUI_THREADS=2")
    return int(raw)


def cpu_threads_for(runs: list[VariantRun]) -> int | None:
    """CPU intra-op threads for training: NNTUI_THREADS if set, else 1 for small steps; None keeps
    torch's setting (GPU, big steps, or OMP_NUM_THREADS set).

    On ~1 ms steps OpenMP's fork/join costs more than it saves, and its spin-waiting threads collapse
    throughput (10x and worse, measured) when the cores are shared with the dashboard, DataLoader
    workers or other jobs.
    """
    if not runs or any(r.device.type != "cpu" for r in runs):
        return None
    requested = requested_threads()
    if requested is not None:
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    macs = max(r.batch_size * sum(m.in_features * m.out_features for m in r.model.linears) for r in runs)
    return 1 if macs <= SMALL_STEP_MACS else None


class Trainer:
    """Round-robin over variants, one block each, until all are done or a stop is requested."""

    def __init__(self, runs: list[VariantRun], emit: Emit, on_epoch: Callable[[], None] | None = None) -> None:
        self.runs = runs
        self.emit = emit
        self.on_epoch = on_epoch or (lambda: None)
        self.stop = threading.Event()
        self.paused = threading.Event()

    def run(self) -> str:
        threads, previous = cpu_threads_for(self.runs), torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)  # in the training thread: OpenMP thread counts are per thread
        # Vanishing activations turn denormal, and denormal math is ~100x slower on CPUs.
        torch.set_flush_denormal(True)
        try:
            return self._run()
        finally:
            torch.set_flush_denormal(False)
            if threads is not None:
                torch.set_num_threads(previous)

    def _run(self) -> str:
        active = [r for r in self.runs if not r.done]
        while active and not self.stop.is_set():
            for run in list(active):
                self._wait_while_paused()
                if self.stop.is_set():
                    break
                epoch_before = int(run.epoch)
                run.run_block(self.emit, self.stop)
                if run.done:
                    active.remove(run)
                    run.finish(self.emit, interrupted=False)
                if int(run.epoch) != epoch_before or run.done:
                    self.on_epoch()
        for run in active:
            run.finish(self.emit, interrupted=True)
        if self.stop.is_set() and active:
            return "interrupted"
        return "diverged" if all(r.status == "diverged" for r in self.runs) else "completed"

    def _wait_while_paused(self) -> None:
        while self.paused.is_set() and not self.stop.is_set():
            time.sleep(0.05)
