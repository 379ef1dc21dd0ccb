"""Typed events: the one stream that the run log, the RunState, the report and the dashboard read.

Every event is a plain dataclass of JSON-friendly values (no tensors), so readers never need torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass
class Event:
    type: ClassVar[str] = "event"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EVENT_TYPES[cls.type] = cls

    def to_dict(self) -> dict[str, Any]:
        # Shallow: fields hold only JSON values, and asdict's deep copy is most of a probe's logging cost.
        return {"type": self.type, **self.__dict__}

    def to_json(self) -> str:
        # orjson: ~15x faster than json on a probe's hundred floats; it writes NaN and inf as null.
        return orjson.dumps(self.to_dict()).decode()


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event; unknown keys are ignored so newer logs stay readable by older readers."""
    cls = EVENT_TYPES.get(data.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {data.get('type')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class VariantInfo:
    name: str
    description: str
    layers: list[str]
    steps_per_epoch: int
    total_steps: int
    epochs: int
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunStarted(Event):
    type: ClassVar[str] = "run_started"
    preset: str
    title: str
    lesson: str
    dataset: str
    device: str
    task: str  # "classification" | "regression"
    run_dir: str
    variants: list[dict[str, Any]]  # VariantInfo as dicts
    started_at: float
    notes: list[str] = field(default_factory=list)
    pid: int = 0  # the writing process, so `nntui watch` on the same host can tell a crashed writer from a slow one
    host: str = ""


@dataclass
class Steps(Event):
    """A block of consecutive training steps of one variant (losses read back once per block)."""

    type: ClassVar[str] = "steps"
    variant: str
    first_step: int  # 1-based step number of losses[0]
    losses: list[float]
    lr: float
    epoch: float  # fractional epochs done at the block's end
    elapsed: float  # seconds of training time of this variant so far


@dataclass
class Eval(Event):
    type: ClassVar[str] = "eval"
    variant: str
    step: int
    epoch: float
    split: str  # "test" (full test split, each epoch) | "test_subset" (periodic, for live curves)
    loss: float
    accuracy: float | None


@dataclass
class LayerStats(Event):
    """Per-Linear-layer statistics at one probed step. Five-number summaries are [min, q1, median, q3, max]."""

    type: ClassVar[str] = "layer_stats"
    variant: str
    step: int
    layers: list[dict[str, Any]]


@dataclass
class OptimizerState(Event):
    type: ClassVar[str] = "optimizer_state"
    variant: str
    step: int
    groups: list[dict[str, Any]]  # lr, momentum / betas, weight_decay
    layers: list[dict[str, Any]]  # per layer: momentum_norm, exp_avg_norm, exp_avg_sq_mean, effective_lr


@dataclass
class Predictions(Event):
    """Regression fits on a grid (noisy-line presets): mean and, with MC dropout, an interval."""

    type: ClassVar[str] = "predictions"
    variant: str
    step: int
    x: list[float]
    y: list[float]
    lower: list[float] | None = None
    upper: list[float] | None = None


@dataclass
class Alert(Event):
    type: ClassVar[str] = "alert"
    variant: str | None
    step: int
    level: str  # "info" | "warning" | "error"
    message: str


@dataclass
class Verdict(Event):
    type: ClassVar[str] = "verdict"
    variant: str | None  # None: the preset's overall finding
    step: int
    reproduced: bool | None  # None: too early to say
    text: str


@dataclass
class Checkpoint(Event):
    """Weights saved into the run directory: "best" (lowest test loss so far) or "last"."""

    type: ClassVar[str] = "checkpoint"
    variant: str
    step: int
    epoch: float
    kind: str
    path: str
    test_loss: float | None


@dataclass
class VariantFinished(Event):
    type: ClassVar[str] = "variant_finished"
    variant: str
    status: str  # "completed" | "diverged" | "interrupted"
    step: int
    epoch: float
    reason: str = ""


@dataclass
class RunFinished(Event):
    type: ClassVar[str] = "run_finished"
    status: str  # "completed" | "diverged" | "interrupted"
    finished_at: float
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample(Event):
    """Data points of a regression dataset, so that watchers can draw them without the dataset."""

    type: ClassVar[str] = "sample"
    split: str
    x: list[float]
    y: list[float]


@dataclass
class LRSweepStarted(Event):
    """An LR range test begins: `nntui lr-find`, or before a run whose cyclic / one-cycle bounds are "auto"."""

    type: ClassVar[str] = "lr_sweep_started"
    variant: str
    start_lr: float
    end_lr: float
    num_iter: int  # planned batches, one LR each
    preset: str = ""
    dataset: str = ""
    device: str = ""


@dataclass
class LRSweepPoints(Event):
    """One read-back block of the sweep, with the suggestions read off the curve so far."""

    type: ClassVar[str] = "lr_sweep_points"
    variant: str
    first_index: int  # 0-based sweep index of lrs[0]
    lrs: list[float]
    losses: list[float]  # raw; null where not finite
    smoothed: list[float]  # the EMA the sweep's divergence stop watches
    suggestions: dict[str, float | None] = field(default_factory=dict)  # provisional: name -> lr


@dataclass
class LRSweepFinished(Event):
    type: ClassVar[str] = "lr_sweep_finished"
    variant: str
    steps: int
    stopped: str  # "completed" | "diverged" | "non-finite" | "interrupted"
    stop_reason: str
    suggestions: dict[str, dict[str, Any]]  # name -> {lr, loss, index, rule, note?}
    cyclic: dict[str, Any]  # base_lr, max_lr, rule, stability (per bound: band, decades, reliable, warning?)
    centred: list[float | None] = field(default_factory=list)  # the curve the suggestions were read from
    file: str = ""  # the lr_find.json written
