"""`nntui.watch`: the dashboard's run directory for your own training loop.

    with nntui.watch(model, optimizer, name="my-cnn") as run:
        for x, y in batches:
            ...; optimizer.step()
            run.log(loss=loss)

Steps are the optimizer's steps (its step hooks). On probed steps a forward pre-hook attaches the
probe (forward hooks exist for that one forward pass only), the step pre-hook snapshots the weights and
the post-hook reduces the step's statistics on the device. Logged losses stay in a device buffer;
one read-back per block of steps (or every few seconds on slow loops) turns them into events.
Under torch.distributed only rank 0 records; it reads its own, already all-reduced, gradients.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import torch

from nntui.engine.probes import Probe, ProbeRecord, find_layers
from nntui.record import events as ev
from nntui.record.runlog import SUMMARY_FILE, RunLog, create_run_dir, write_json_atomic
from nntui.record.state import RunState, build_summary
from nntui.verdicts.health import check_health

BLOCK_STEPS = 50  # steps per loss read-back
FLUSH_SECONDS = 5.0  # a slow loop still shows up live: read back at least this often
LESSON = ("Your own training loop, recorded by nntui.watch. No lecture verdict here: the health checks above judge "
          "any model (`nntui check RUN_DIR` prints them; it exits 1 when one fails).")


def is_writer_rank() -> bool:
    """Rank 0 of a torch.distributed job (or no job at all); torchrun's RANK counts before init."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") in ("", "0")


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module) or inner is model:
            return model
        model = inner


def _optimizer_text(optimizer: torch.optim.Optimizer, scheduler: Any) -> str:
    text = type(optimizer).__name__
    return f"{text} + {type(scheduler).__name__}" if scheduler is not None else text


class Watch:
    """A watched training run; use `nntui.watch(...)`, as a context manager."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, name: str | None = None, *,
                 out: str | Path = "runs", probe_every: int = 50, layers: list[str] | None = None, scheduler: Any = None,
                 total_steps: int | None = None, steps_per_epoch: int | None = None, block_steps: int = BLOCK_STEPS,
                 quiet: bool = False) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"nntui.watch: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if probe_every < 1 or block_steps < 1:
            raise ValueError("nntui.watch: probe_every and block_steps must be at least 1")
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.name = name or type(unwrap(model)).__name__
        self.out, self.probe_every, self.layers, self.block_steps = Path(out), probe_every, layers, block_steps
        self.total_steps, self.steps_per_epoch, self.quiet = total_steps, steps_per_epoch, quiet
        self.active = False  # recording (rank 0, inside the block)
        self.run_dir: Path | None = None
        self.state = RunState()
        self.step = 0  # optimizer steps done
        self.status = "running"
        self.reason = ""
        self._handles: list[Any] = []
        self._log: RunLog | None = None
        self._probe: Probe | None = None
        self._records: list[ProbeRecord] = []
        self._captured_step = 0  # the step whose forward pass the probe holds
        self._capturing = False
        self._logged: list[tuple[int, Any]] = []  # (step, detached loss tensor or number), read back per block
        self._forward_hooks: list[Any] = []  # armed only for a probed step's forward pass
        self._block_first = 1
        self._log_offset: int | None = None  # 1 when losses are logged before optimizer.step(), else 0
        self._last_flush = 0.0
        self._started = 0.0
        self.summary: dict[str, Any] = {}

    # -- lifecycle

    def __enter__(self) -> Watch:
        if not is_writer_rank():
            return self  # other ranks: no hooks, no files; log() does nothing
        inner = unwrap(self.model)
        self._probe = Probe(inner, self.optimizer, layers=find_layers(inner, self.layers))  # ValueError: no such layer / none
        self.run_dir = create_run_dir(self.out, self.name)
        self._log = RunLog(self.run_dir)
        self._started = self._last_flush = time.perf_counter()
        self._handles = [
            self.optimizer.register_step_pre_hook(self._before_step),
            self.optimizer.register_step_post_hook(self._after_step),
        ]
        self._arm()  # step 1 is probed
        self.active = True
        self._emit(self._start_event(inner))
        if not self.quiet:
            print(f"nntui: watching {self.name} — run `nntui watch {self.run_dir}` in another terminal", file=sys.stderr, flush=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.active:
            return False
        try:
            self._flush(final=True)
        finally:
            if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
                status, reason = "interrupted", "KeyboardInterrupt"
            elif exc_type is not None:
                status, reason = "failed", f"{exc_type.__name__}: {exc}"
            elif self.status == "diverged":
                status, reason = "diverged", self.reason
            else:
                status, reason = "completed", ""
            self._finish(status, reason)
        return False  # exceptions go on to the caller

    def _finish(self, status: str, reason: str) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._disarm()
        if self._capturing:
            self._probe.detach()
            self._capturing = False
        self.active = False
        self._emit(ev.VariantFinished(self.name, status, self.step, self._epoch(), reason))
        self.state.status = status
        summary = build_summary(self.state)
        summary["health"] = check_health(self.state)
        if status == "failed":
            summary["error"] = reason
        self._emit(ev.RunFinished(status, time.time(), summary))
        write_json_atomic(self.run_dir / SUMMARY_FILE, summary)
        self._log.close()
        self.status = status
        self.summary = summary

    def _start_event(self, inner: torch.nn.Module) -> ev.RunStarted:
        param = next(inner.parameters(), None)
        device = str(param.device) if param is not None else "cpu"
        info = ev.VariantInfo(
            name=self.name, description=f"{type(inner).__name__} · {_optimizer_text(self.optimizer, self.scheduler)}",
            layers=list(self._probe.layer_names), steps_per_epoch=self.steps_per_epoch or 0,
            total_steps=self.total_steps or 0,
            epochs=-(-self.total_steps // self.steps_per_epoch) if self.total_steps and self.steps_per_epoch else 0,
            config={"model": type(inner).__name__, "optimizer": type(self.optimizer).__name__,
                    "scheduler": type(self.scheduler).__name__ if self.scheduler is not None else None,
                    "probe_every": self.probe_every, "layers": list(self._probe.layer_names)},
        )
        world = torch.distributed.get_world_size() if torch.distributed.is_available() and torch.distributed.is_initialized() else 1
        notes = [f"recorded by nntui.watch from {Path(sys.argv[0]).name if sys.argv and sys.argv[0] else 'python'}"]
        if world > 1:
            notes.append(f"distributed: {world} processes; rank 0 records its own losses and its all-reduced gradients")
        return ev.RunStarted(
            preset=self.name, title=f"{self.name} (your own model)", lesson=LESSON, dataset="", device=device,
            task="classification", run_dir=str(self.run_dir), variants=[vars(info)], started_at=time.time(),
            notes=notes, pid=os.getpid(), host=socket.gethostname(),
        )

    def _emit(self, event: ev.Event) -> None:
        self._log.append(event)
        self.state.apply(event)

    # -- hooks (rank 0 only)

    def _probed(self, step: int) -> bool:
        return step == 1 or step % self.probe_every == 0

    def _arm(self) -> None:
        """Model hooks for the next step's forward pass (a probed step); none on other steps."""
        if not self._forward_hooks:
            self._forward_hooks = [self.model.register_forward_pre_hook(self._before_forward),
                                   self.model.register_forward_hook(self._after_forward)]

    def _disarm(self) -> None:
        for handle in self._forward_hooks:
            handle.remove()
        self._forward_hooks = []

    def _before_forward(self, module, args) -> None:
        nxt = self.step + 1
        if (self._capturing or self._captured_step == nxt or not self._probed(nxt) or self.status != "running"
                or not torch.is_grad_enabled() or not module.training):
            return  # evaluation passes and the other forwards of a step are not captured
        self._probe.attach()
        self._capturing = True

    def _after_forward(self, module, args, output) -> None:
        if self._capturing:
            self._probe.detach()
            self._capturing = False
            self._captured_step = self.step + 1
            self._disarm()

    def _before_step(self, optimizer, args, kwargs) -> None:
        if self._probed(self.step + 1) and self.status == "running":
            self._probe.before_step()

    def _after_step(self, optimizer, args, kwargs) -> None:
        self.step += 1
        if self.status != "running":
            return
        if self._probed(self.step):
            self._records.append(self._probe.collect(self.step))
        if self._probed(self.step + 1):
            self._arm()
        if self._log_offset is None and self.step >= self._block_first + 2 * self.block_steps:
            self._flush()  # nothing logged: the probes' statistics still go out, block by block

    # -- logging

    def log(self, loss: Any) -> None:
        """This step's training loss: a tensor (kept on its device, no host sync) or a number."""
        if not self.active or self.status != "running":
            return
        if self._log_offset is None:
            self._log_offset = 1 if self.step == 0 else 0
        step = self.step + self._log_offset
        if step >= self._block_first + self.block_steps or (
                step > self._block_first and time.perf_counter() - self._last_flush >= FLUSH_SECONDS):
            self._flush(upto=step - 1)
            if self.status != "running":
                return
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise ValueError(f"run.log(loss=...): expected a scalar, got a tensor of shape {tuple(loss.shape)}")
            self._logged.append((step, loss.detach()))  # stays on its device until the block's read-back
        else:
            self._logged.append((step, float(loss)))

    def log_eval(self, test_loss: Any, test_accuracy: Any = None, split: str = "test") -> None:
        """An evaluation at the current step (read back at once: evaluations are rare)."""
        if not self.active:
            return
        values = [test_loss] if test_accuracy is None else [test_loss, test_accuracy]
        numbers = [float(v) for v in values]
        accuracy = numbers[1] if len(numbers) > 1 else None
        self._emit(ev.Eval(self.name, self.step, self._epoch(), split, numbers[0], accuracy))

    # -- read-back

    def _epoch(self) -> float:
        return self.step / self.steps_per_epoch if self.steps_per_epoch else 0.0

    def _flush(self, upto: int | None = None, final: bool = False) -> None:
        """Events for steps block_first..upto (default: all done): one read-back of losses and probes."""
        last = self.step if upto is None else upto
        n = min(max(last - self._block_first + 1, 0), self.block_steps)
        end = self._block_first + n
        taken = [item for item in self._logged if item[0] < end]
        self._logged = [item for item in self._logged if item[0] >= end]
        losses, counts = _per_step(taken, self._block_first, n)
        records = [r for r in self._records if r.step <= self._block_first + n - 1] if not final else self._records
        self._records = [r for r in self._records if r not in records]
        probed = self._probe.read(records)
        elapsed = time.perf_counter() - self._started
        means = [total / c if c else None for total, c in zip(losses, counts)]
        bad = next((i for i, x in enumerate(means) if x is not None and not math.isfinite(x)), None)
        if bad is not None:
            means = means[:bad]
            self.status = "diverged"
            self.reason = f"loss became {'nan' if math.isnan(losses[bad]) else 'inf'} at step {self._block_first + bad}"
        stop_step = self._block_first + bad if bad is not None else math.inf
        for step, layers, groups, opt_layers in probed:
            if step <= stop_step:
                self._emit(ev.LayerStats(self.name, step, layers))
                self._emit(ev.OptimizerState(self.name, step, self._with_scheduler(groups), opt_layers))
        lr = float(self.optimizer.param_groups[0]["lr"])
        start = None
        for i, x in enumerate([*means, None]):  # runs of logged steps: a Steps event each
            if x is not None and start is None:
                start = i
            elif x is None and start is not None:
                self._emit(ev.Steps(self.name, self._block_first + start, means[start:i], lr, self._epoch(), elapsed))
                start = None
        if bad is not None:
            self._emit(ev.Alert(self.name, self._block_first + bad, "error", f"{self.name}: {self.reason}; nntui stopped recording (diverged)"))
        self._block_first += n
        self._last_flush = time.perf_counter()

    def _with_scheduler(self, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.scheduler is None or not groups:
            return groups
        first = dict(groups[0])
        first["scheduler"] = type(self.scheduler).__name__
        last_lr = getattr(self.scheduler, "_last_lr", None)
        if last_lr:
            first["scheduler_lr"] = float(last_lr[0])
        return [first, *groups[1:]]


def _per_step(logged: list[tuple[int, Any]], first: int, n: int) -> tuple[list[float], list[int]]:
    """Sums and counts of the logged losses per step first..first+n-1, from one read-back of the tensors."""
    tensors = [value.reshape(()) if value.dtype in (torch.float32, torch.float64) else value.reshape(()).float()
               for _, value in logged if isinstance(value, torch.Tensor)]
    values = iter(torch.stack(tensors).tolist() if tensors else [])  # the block's one device-to-host transfer
    sums, counts = [0.0] * n, [0] * n
    for step, value in logged:
        i = step - first
        if 0 <= i < n:
            sums[i] += next(values) if isinstance(value, torch.Tensor) else value
            counts[i] += 1
        elif isinstance(value, torch.Tensor):
            next(values)
    return sums, counts


def watch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, name: str | None = None, **options: Any) -> Watch:
    """Record a training loop you wrote as an nntui run (see Watch for the options); use it in a `with` block."""
    return Watch(model, optimizer, name, **options)
