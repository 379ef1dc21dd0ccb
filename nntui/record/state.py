"""RunState: what a run looks like so far, rebuilt from events, with bounded memory.

Fed live by the trainer or by a run log being replayed; the dashboard and the report read only this.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nntui.record import events as ev

EMA_ALPHA = 0.05  # weight of the newest point in the smoothed train loss
FINAL_LOSS_WINDOW = 50  # steps averaged for the reported final train loss
MAX_VARIANTS = 256  # a log naming more is not one nntui wrote: further names are skipped


class BoundedSeries:
    """(x, y) points kept under `capacity` by averaging neighbours and doubling the stride when full."""

    def __init__(self, capacity: int = 2048) -> None:
        self.capacity = capacity
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.stride = 1
        self._sum = 0.0
        self._n = 0

    def __len__(self) -> int:
        return len(self.xs)

    def append(self, x: float, y: float) -> None:
        # The last point is the bucket being filled, so the newest value is always visible.
        if self._n == 0:
            self.xs.append(x)
            self.ys.append(y)
            self._sum, self._n = y, 1
        else:
            self._sum += y
            self._n += 1
            self.xs[-1], self.ys[-1] = x, self._sum / self._n
        if self._n >= self.stride:
            self._n = 0
            if len(self.xs) >= self.capacity:
                self.xs = self.xs[1::2]
                self.ys = [(a + b) / 2 for a, b in zip(self.ys[0::2], self.ys[1::2])]
                self.stride *= 2

    def last(self) -> float | None:
        return self.ys[-1] if self.ys else None


@dataclass
class VariantState:
    name: str
    description: str = ""
    layers: list[str] = field(default_factory=list)
    steps_per_epoch: int = 0
    total_steps: int = 0
    epochs: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"  # pending | running | completed | diverged | interrupted
    step: int = 0
    epoch: float = 0.0
    elapsed: float = 0.0
    first_loss: float | None = None
    train_loss: BoundedSeries = field(default_factory=BoundedSeries)
    train_loss_ema: BoundedSeries = field(default_factory=BoundedSeries)
    recent_losses: deque = field(default_factory=lambda: deque(maxlen=FINAL_LOSS_WINDOW))
    lr: BoundedSeries = field(default_factory=BoundedSeries)
    test_loss: list[tuple[int, float]] = field(default_factory=list)  # per epoch
    test_accuracy: list[tuple[int, float]] = field(default_factory=list)
    subset_loss: BoundedSeries = field(default_factory=lambda: BoundedSeries(512))
    subset_accuracy: BoundedSeries = field(default_factory=lambda: BoundedSeries(512))
    layer_stats: list[dict[str, Any]] = field(default_factory=list)  # latest probe
    layer_stats_step: int = 0
    grad_median_history: dict[str, BoundedSeries] = field(default_factory=dict)
    first_layer_stats: list[dict[str, Any]] = field(default_factory=list)  # first probe
    grad_nonfinite_since: dict[str, int] = field(default_factory=dict)  # layer -> first probe whose gradient turned non-finite
    _grad_finite_seen: set = field(default_factory=set)
    optimizer: dict[str, Any] = field(default_factory=dict)  # latest OptimizerState as dict
    predictions: dict[str, Any] | None = None
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> latest
    verdict: str = ""
    reproduced: bool | None = None
    finish_reason: str = ""
    _ema: float | None = None

    @property
    def steps_per_second(self) -> float:
        return self.step / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def final_train_loss(self) -> float | None:
        return sum(self.recent_losses) / len(self.recent_losses) if self.recent_losses else None

    @property
    def last_test_loss(self) -> float | None:
        return self.test_loss[-1][1] if self.test_loss else None

    @property
    def last_test_accuracy(self) -> float | None:
        return self.test_accuracy[-1][1] if self.test_accuracy else None

    @property
    def eta_seconds(self) -> float | None:
        if self.status != "running" or self.step == 0 or not self.total_steps:
            return None
        return (self.total_steps - self.step) / max(self.steps_per_second, 1e-9)


@dataclass
class SweepState:
    """An LR range test as its events tell it: the curve so far and the suggestions (provisional until finished)."""

    variant: str
    start_lr: float = 0.0
    end_lr: float = 0.0
    num_iter: int = 0
    lrs: list[float] = field(default_factory=list)
    losses: list[float | None] = field(default_factory=list)
    smoothed: list[float | None] = field(default_factory=list)
    reference: list[float | None] = field(default_factory=list)  # loss on the sweep's fixed reference batch
    suggestions: dict[str, float | None] = field(default_factory=dict)  # name -> lr
    cyclic: dict[str, Any] = field(default_factory=dict)  # base_lr, max_lr, rule, stability (once finished)
    centred: list[float | None] = field(default_factory=list)
    stopped: str = ""  # "" while running, else the sweep's stop status
    stop_reason: str = ""
    file: str = ""

    @property
    def running(self) -> bool:
        return not self.stopped


class RunState:
    """Thread-safe: the trainer thread applies events while the UI thread reads under `lock`."""

    def __init__(self, max_alerts: int = 200) -> None:
        self.lock = threading.RLock()
        self.version = 0
        self.preset = ""
        self.title = ""
        self.lesson = ""
        self.dataset = ""
        self.device = ""
        self.task = "classification"
        self.run_dir = ""
        self.notes: list[str] = []
        self.status = "waiting"  # waiting | running | completed | diverged | interrupted | failed
        self.variants: dict[str, VariantState] = {}
        self.alerts: deque[ev.Alert] = deque(maxlen=max_alerts)
        self.finding = ""
        self.finding_reproduced: bool | None = None
        self.samples: dict[str, tuple[list[float], list[float]]] = {}
        self.summary: dict[str, Any] = {}
        self.writer_pid, self.writer_host = 0, ""  # the process writing the run log
        self.error = ""  # status "failed": what went wrong
        self.skipped_lines = 0  # log lines (or events) that could not be read: shown, not fatal
        self.sweeps: dict[str, SweepState] = {}  # LR range tests by variant, in the order they ran

    def apply(self, event: ev.Event) -> None:
        """Apply one event; one that does not fit the state so far (a hand-edited or foreign log) is counted in skipped_lines."""
        with self.lock:
            handler = getattr(self, f"_on_{event.type}", None)
            if handler is not None:
                try:
                    handler(event)
                except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, ZeroDivisionError, RecursionError):
                    self.skipped_lines += 1
            self.version += 1

    def _on_skipped(self, e: ev.Skipped) -> None:
        self.skipped_lines += max(0, e.lines)

    def _on_run_started(self, e: ev.RunStarted) -> None:
        self.preset, self.title, self.lesson = e.preset, e.title, e.lesson
        self.dataset, self.device, self.task, self.run_dir = e.dataset, e.device, e.task, e.run_dir
        self.notes = list(e.notes)
        self.writer_pid, self.writer_host = e.pid, e.host
        self.status = "running"
        for info in e.variants[:MAX_VARIANTS]:
            known = {k: info[k] for k in ("description", "layers", "steps_per_epoch", "total_steps", "epochs", "config") if k in info}
            self.variants[info["name"]] = VariantState(name=info["name"], **known)

    def _variant(self, name: str) -> VariantState:
        if name not in self.variants:
            if len(self.variants) >= MAX_VARIANTS:
                raise ValueError(f"more than {MAX_VARIANTS} variants")
            self.variants[name] = VariantState(name=name)
        return self.variants[name]

    def _on_steps(self, e: ev.Steps) -> None:
        v = self._variant(e.variant)
        if v.status == "pending":
            v.status = "running"
        for i, loss in enumerate(e.losses):
            step = e.first_step + i
            if v.first_loss is None:
                v.first_loss = loss
            v._ema = loss if v._ema is None else (1 - EMA_ALPHA) * v._ema + EMA_ALPHA * loss
            v.train_loss.append(step, loss)
            v.train_loss_ema.append(step, v._ema)
            v.recent_losses.append(loss)
        last = e.first_step + len(e.losses) - 1
        v.step = max(v.step, last)
        v.epoch, v.elapsed = e.epoch, e.elapsed
        v.lr.append(last, e.lr)

    def _on_eval(self, e: ev.Eval) -> None:
        v = self._variant(e.variant)
        if e.split == "test":
            v.test_loss.append((e.step, e.loss))
            if e.accuracy is not None:
                v.test_accuracy.append((e.step, e.accuracy))
        else:
            v.subset_loss.append(e.step, e.loss)
            if e.accuracy is not None:
                v.subset_accuracy.append(e.step, e.accuracy)

    def _on_layer_stats(self, e: ev.LayerStats) -> None:
        v = self._variant(e.variant)
        if not v.first_layer_stats:
            v.first_layer_stats = e.layers
        v.layer_stats, v.layer_stats_step = e.layers, e.step
        for layer in e.layers:
            series = v.grad_median_history.setdefault(layer["name"], BoundedSeries(512))
            if layer["grad"][2] is not None:
                series.append(e.step, layer["grad"][2])
            if layer.get("grad_norm") is not None:
                v._grad_finite_seen.add(layer["name"])
            elif layer["name"] in v._grad_finite_seen:  # None from the start: a layer without a gradient
                v.grad_nonfinite_since.setdefault(layer["name"], e.step)

    def _on_optimizer_state(self, e: ev.OptimizerState) -> None:
        self._variant(e.variant).optimizer = {"step": e.step, "groups": e.groups, "layers": e.layers}

    def _on_predictions(self, e: ev.Predictions) -> None:
        self._variant(e.variant).predictions = {"step": e.step, "x": e.x, "y": e.y, "lower": e.lower, "upper": e.upper}

    def _on_sample(self, e: ev.Sample) -> None:
        self.samples[e.split] = (e.x, e.y)

    def _on_checkpoint(self, e: ev.Checkpoint) -> None:
        self._variant(e.variant).checkpoints[e.kind] = {"step": e.step, "epoch": e.epoch, "path": e.path, "test_loss": e.test_loss}

    def _on_alert(self, e: ev.Alert) -> None:
        self.alerts.append(e)

    def _on_verdict(self, e: ev.Verdict) -> None:
        if e.variant is None:
            self.finding, self.finding_reproduced = e.text, e.reproduced
        else:
            v = self._variant(e.variant)
            v.verdict, v.reproduced = e.text, e.reproduced

    def _on_variant_finished(self, e: ev.VariantFinished) -> None:
        v = self._variant(e.variant)
        v.status, v.step, v.epoch, v.finish_reason = e.status, e.step, e.epoch, e.reason

    def _on_lr_sweep_started(self, e: ev.LRSweepStarted) -> None:
        self.sweeps[e.variant] = SweepState(e.variant, e.start_lr, e.end_lr, e.num_iter)
        if not self.preset:  # a range test runs before run_started: the header can name the run already
            self.preset, self.dataset, self.device = e.preset, e.dataset, e.device
        if self.status == "waiting":
            self.status = "sweeping"

    def _on_lr_sweep_points(self, e: ev.LRSweepPoints) -> None:
        sweep = self.sweeps.setdefault(e.variant, SweepState(e.variant))
        del sweep.lrs[e.first_index :], sweep.losses[e.first_index :], sweep.smoothed[e.first_index :], sweep.reference[e.first_index :]
        sweep.lrs.extend(e.lrs)
        sweep.losses.extend(e.losses)
        sweep.smoothed.extend(e.smoothed)
        sweep.reference.extend(e.reference)
        sweep.suggestions = dict(e.suggestions)

    def _on_lr_sweep_finished(self, e: ev.LRSweepFinished) -> None:
        sweep = self.sweeps.setdefault(e.variant, SweepState(e.variant))
        sweep.suggestions = {name: s.get("lr") for name, s in e.suggestions.items()}
        sweep.cyclic, sweep.centred, sweep.file = dict(e.cyclic), list(e.centred), e.file
        sweep.stopped, sweep.stop_reason = e.stopped, e.stop_reason

    def _on_run_finished(self, e: ev.RunFinished) -> None:
        self.status = e.status
        self.summary = e.summary
        if e.status == "failed" and isinstance(e.summary.get("error"), str):
            self.error = e.summary["error"][: ev.MAX_TEXT]


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def build_summary(state: RunState) -> dict[str, Any]:
    """The summary object of the CLI contract (README: the --json summary), from the state alone."""
    with state.lock:
        variants = []
        for v in state.variants.values():
            variants.append(
                {
                    "name": v.name,
                    "status": v.status,
                    "steps": v.step,
                    "epochs": round(v.epoch, 3),
                    "train_loss": _finite_or_none(v.final_train_loss),
                    "first_loss": _finite_or_none(v.first_loss),
                    "test_loss": _finite_or_none(v.last_test_loss),
                    "test_accuracy": v.last_test_accuracy,
                    "steps_per_second": round(v.steps_per_second, 1),
                    "verdict": v.verdict,
                    "reproduced": v.reproduced,
                    "reason": v.finish_reason,
                    "checkpoints": dict(v.checkpoints),
                    "layers": [
                        {
                            "name": layer["name"],
                            "grad_median": layer["grad"][2],
                            "act_saturation": layer.get("saturation"),
                            "dead_fraction": layer.get("dead"),
                            "update_ratio": layer.get("update_ratio"),
                        }
                        for layer in v.layer_stats
                    ],
                }
            )
        return {
            "preset": state.preset,
            "title": state.title,
            "dataset": state.dataset,
            "device": state.device,
            "status": state.status,
            "run_dir": state.run_dir,
            "finding": state.finding,
            "reproduced": state.finding_reproduced,
            "notes": list(state.notes),
            "variants": variants,
            **({"error": state.error} if state.error else {}),
        }
