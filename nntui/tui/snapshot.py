"""Plain copies of what the panels draw, taken under the RunState lock so drawing never holds it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from nntui.record.state import RunState, VariantState

FINISHED = ("completed", "diverged", "interrupted", "failed")  # run statuses after which nothing more is written


@dataclass
class VariantView:
    name: str
    description: str
    status: str
    step: int
    total_steps: int
    epoch: float
    epochs: int
    steps_per_epoch: int
    steps_per_second: float
    eta_seconds: float | None
    train_loss: tuple[list[float], list[float]]
    train_loss_ema: tuple[list[float], list[float]]
    test_loss: list[tuple[int, float]]
    test_accuracy: list[tuple[int, float]]
    subset_accuracy: tuple[list[float], list[float]]
    lr: tuple[list[float], list[float]]
    last_train_loss: float | None
    last_test_loss: float | None
    last_test_accuracy: float | None
    layer_stats: list[dict[str, Any]]
    layer_stats_step: int
    grad_median_history: dict[str, tuple[list[float], list[float]]]
    optimizer: dict[str, Any]
    predictions: dict[str, Any] | None
    verdict: str
    reproduced: bool | None
    finish_reason: str


@dataclass
class Snapshot:
    version: int = -1
    preset: str = ""
    title: str = ""
    lesson: str = ""
    dataset: str = ""
    device: str = ""
    task: str = "classification"
    status: str = "waiting"
    notes: list[str] = field(default_factory=list)
    finding: str = ""
    finding_reproduced: bool | None = None
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (level, message), newest last
    samples: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    variants: list[VariantView] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)  # LR range tests (record.state.SweepState as dicts)

    def variant(self, index: int) -> VariantView | None:
        if not self.variants:
            return None
        return self.variants[index % len(self.variants)]


def _series(s) -> tuple[list[float], list[float]]:
    return list(s.xs), list(s.ys)


def _variant(v: VariantState) -> VariantView:
    return VariantView(
        name=v.name, description=v.description, status=v.status, step=v.step, total_steps=v.total_steps,
        epoch=v.epoch, epochs=v.epochs, steps_per_epoch=v.steps_per_epoch, steps_per_second=v.steps_per_second,
        eta_seconds=v.eta_seconds, train_loss=_series(v.train_loss), train_loss_ema=_series(v.train_loss_ema),
        test_loss=list(v.test_loss), test_accuracy=list(v.test_accuracy), subset_accuracy=_series(v.subset_accuracy),
        lr=_series(v.lr), last_train_loss=v.final_train_loss, last_test_loss=v.last_test_loss,
        last_test_accuracy=v.last_test_accuracy, layer_stats=copy.deepcopy(v.layer_stats),
        layer_stats_step=v.layer_stats_step,
        grad_median_history={k: _series(s) for k, s in v.grad_median_history.items()},
        optimizer=copy.deepcopy(v.optimizer), predictions=copy.deepcopy(v.predictions),
        verdict=v.verdict, reproduced=v.reproduced, finish_reason=v.finish_reason,
    )


def take_snapshot(state: RunState) -> Snapshot:
    with state.lock:
        return Snapshot(
            version=state.version, preset=state.preset, title=state.title, lesson=state.lesson,
            dataset=state.dataset, device=state.device, task=state.task, status=state.status,
            notes=list(state.notes), finding=state.finding, finding_reproduced=state.finding_reproduced,
            alerts=[(a.level, a.message) for a in list(state.alerts)[-20:]],
            samples={k: (list(x), list(y)) for k, (x, y) in state.samples.items()},
            variants=[_variant(v) for v in state.variants.values()],
            sweeps=[copy.deepcopy(vars(s)) for s in state.sweeps.values()],
        )
