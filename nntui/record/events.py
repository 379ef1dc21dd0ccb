"""Typed events: the one stream that the run log, the RunState, the report and the dashboard read.

Every event is a plain dataclass of JSON-friendly values (no tensors), so readers never need torch.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

EVENT_TYPES: dict[str, type[Event]] = {}
MAX_TEXT = 20_000  # characters kept of any text read back (a lesson is a few hundred)
INT_LIMIT = 2**63  # what the writer (orjson) can hold


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


def event_from_dict(data: Any) -> Event:
    """Rebuild an event; unknown keys are ignored so newer logs stay readable by older readers.

    Values are checked against the field types (ValueError when one does not fit: the line is skipped);
    long texts are cut to MAX_TEXT characters."""
    if not isinstance(data, dict):
        raise ValueError(f"an event is a JSON object, not {type(data).__name__}")
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None or cls is Skipped:
        raise ValueError(f"unknown event type {str(kind)[:40]!r}")
    hints = _field_types(cls)
    values = {}
    for name, tp in hints.items():
        if name in data:
            values[name] = _checked(data[name], tp, name)
    event = cls(**values)  # TypeError when a required field is missing
    check = _DEEP_CHECKS.get(cls.type)
    if check is not None:
        check(event)
    return event


_HINTS: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return _HINTS[cls]


def _checked(value: Any, tp: Any, where: str) -> Any:
    """value if it fits type tp (numbers: int where int, int or float where float; text cut to MAX_TEXT)."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _checked(value, option, where)
            except ValueError:
                continue
        raise ValueError(f"{where}: unexpected {type(value).__name__}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool) and -INT_LIMIT <= value < INT_LIMIT:
            return value
    elif tp is float:
        if _number(value) and value is not None:
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value[:MAX_TEXT]
    elif origin is list:
        if isinstance(value, list):
            (item,) = typing.get_args(tp) or (Any,)
            return value if item is Any else [_checked(v, item, where) for v in value]
    elif origin is dict or tp is dict:
        if isinstance(value, dict):
            return value
    raise ValueError(f"{where}: unexpected {type(value).__name__}")


def _number(value: Any) -> bool:
    """None or a finite number a float can hold (the writer turns NaN and inf into null)."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) if isinstance(value, float) else -INT_LIMIT <= value < INT_LIMIT


def _flat_records(records: list[Any], where: str, needs_name: bool = True) -> None:
    """Per-layer or per-group dicts: a text name, numbers (or null), flags, lists of numbers, records of those."""
    for record in records:
        if not isinstance(record, dict):
            raise ValueError(f"{where}: entries are objects")
        if needs_name and not isinstance(record.get("name"), str):
            raise ValueError(f"{where}: an entry has no name")
        for key, value in record.items():
            if key in ("name", "scheduler") and isinstance(value, str):  # scheduler: nntui.watch(scheduler=)'s class
                record[key] = value[:200]
            elif isinstance(value, list):
                if not all(_number(v) for v in value):
                    raise ValueError(f"{where}.{key}: not a list of numbers")
            elif isinstance(value, dict):  # a probe's histogram, {"log2_min": -40, "counts": [...]}: one level of numbers
                if not all(_number(v) or (isinstance(v, list) and all(_number(x) for x in v)) for v in value.values()):
                    raise ValueError(f"{where}.{key}: not a record of numbers")
            elif not (_number(value) or isinstance(value, bool)):
                raise ValueError(f"{where}.{key}: not a number")


def _check_layer_stats(e: Any) -> None:
    _flat_records(e.layers, "layers")
    if not all(isinstance(layer.get("grad"), list) and len(layer["grad"]) == 5 for layer in e.layers):
        raise ValueError("layers: grad is not a five-number summary")


def _check_optimizer_state(e: Any) -> None:
    _flat_records(e.groups, "groups", needs_name=False)
    _flat_records(e.layers, "layers")


def _check_run_started(e: Any) -> None:
    for info in e.variants:
        if not isinstance(info, dict) or not isinstance(info.get("name"), str):
            raise ValueError("variants: each needs a name")
        for key, tp in (("description", str), ("layers", list[str]), ("steps_per_epoch", int), ("total_steps", int), ("epochs", int), ("config", dict)):
            if key in info:
                info[key] = _checked(info[key], tp, f"variants.{key}")
        info["name"] = info["name"][:MAX_TEXT]


def _check_predictions(e: Any) -> None:
    lengths = {len(e.x), len(e.y), *(len(v) for v in (e.lower, e.upper) if v is not None)}
    if len(lengths) > 1:
        raise ValueError("predictions: x, y and the interval differ in length")


def _check_sample(e: Any) -> None:
    if len(e.x) != len(e.y):
        raise ValueError("sample: x and y differ in length")


_DEEP_CHECKS = {
    "layer_stats": _check_layer_stats, "optimizer_state": _check_optimizer_state, "run_started": _check_run_started,
    "predictions": _check_predictions, "sample": _check_sample,
}


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
class Skipped(Event):
    """Made by readers, never written: log lines that were not events nntui can read (counted, not shown)."""

    type: ClassVar[str] = "skipped"
    lines: int


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
    reference: list[float | None] = field(default_factory=list)  # loss on the fixed reference batch after each step; null where not finite


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
