"""Optimizers and LR schedules from a preset's config."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim import lr_scheduler

from nntui.errors import NntuiError
from nntui.presets import OptimizerConfig, ScheduleConfig


def build_optimizer(params, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    params = list(params)
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    # foreach kernels batch the per-parameter updates: fewer tiny ops per step on CPU and GPU.
    match cfg.name:
        case "sgd":
            return torch.optim.SGD(params, momentum=cfg.momentum, nesterov=cfg.nesterov, foreach=True, **common)
        case "adagrad":
            return torch.optim.Adagrad(params, eps=cfg.eps, foreach=True, **common)
        case "rmsprop":
            return torch.optim.RMSprop(params, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum, foreach=True, **common)
        case "adam":
            return torch.optim.Adam(params, betas=cfg.betas, eps=cfg.eps, foreach=True, **common)
        case "adamw":
            return torch.optim.AdamW(params, betas=cfg.betas, eps=cfg.eps, foreach=True, **common)
    raise NntuiError(f"unknown optimizer {cfg.name!r}")


@dataclass
class Schedule:
    """A torch scheduler plus when it steps: after every batch, or once per epoch (plateau: on test loss)."""

    scheduler: object | None
    per_batch: bool
    on_metric: bool = False

    def after_batch(self) -> None:
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()

    def after_epoch(self, test_loss: float | None) -> None:
        if self.scheduler is None or self.per_batch:
            return
        if self.on_metric:
            if test_loss is not None and math.isfinite(test_loss):
                self.scheduler.step(test_loss)
        else:
            self.scheduler.step()


def build_schedule(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps_per_epoch: int, total_steps: int, base_lr: float) -> Schedule:
    match cfg.name:
        case "none":
            return Schedule(None, per_batch=False)
        case "step":
            return Schedule(lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma), per_batch=False)
        case "plateau":
            return Schedule(lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=cfg.factor, patience=cfg.patience), per_batch=False, on_metric=True)
        case "cyclic":
            if cfg.base_lr == "auto" or cfg.max_lr == "auto":
                raise NntuiError("schedule.base_lr/max_lr = 'auto' must be resolved by an LR range test before training")
            if cfg.base_lr >= cfg.max_lr:
                raise NntuiError(f"schedule.base_lr ({cfg.base_lr}) must be below schedule.max_lr ({cfg.max_lr})")
            has_momentum = "momentum" in optimizer.defaults and optimizer.defaults["momentum"] > 0
            step_up = cfg.step_size_up or 2 * steps_per_epoch
            # exp_range's gamma is per batch; the step/plateau default 0.1 would flatten the cycle after one batch,
            # so unless set, the amplitude halves every cycle.
            gamma = (cfg.gamma if "gamma" in cfg.model_fields_set else 0.5 ** (1 / (2 * step_up))) if cfg.mode == "exp_range" else 1.0
            return Schedule(
                lr_scheduler.CyclicLR(
                    optimizer,
                    base_lr=cfg.base_lr,
                    max_lr=cfg.max_lr,
                    step_size_up=step_up,
                    mode=cfg.mode,
                    gamma=gamma,
                    cycle_momentum=has_momentum,
                ),
                per_batch=True,
            )
        case "one_cycle":
            max_lr = base_lr * 10 if cfg.max_lr == "auto" else cfg.max_lr
            # Cycle momentum (or Adam's beta1) only where the optimizer has it: plain SGD must stay plain SGD.
            cycles = "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0
            return Schedule(
                lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=max(total_steps, 2), pct_start=cfg.pct_start, cycle_momentum=cycles),
                per_batch=True,
            )
        case "warmup_cosine" | "warmup_step":
            warmup = max(1, round(cfg.warmup_epochs * steps_per_epoch))
            decay_steps = max(1, total_steps - warmup)
            step_batches = cfg.step_size * steps_per_epoch

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                if cfg.name == "warmup_cosine":
                    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / decay_steps)))
                return cfg.gamma ** ((step - warmup) // step_batches)

            return Schedule(lr_scheduler.LambdaLR(optimizer, factor), per_batch=True)
    raise NntuiError(f"unknown schedule {cfg.name!r}")


def l1_l2_penalty(model: nn.Module, l1: float, l2: float) -> torch.Tensor | None:
    """The penalty the lecture adds to the loss (weights only, not biases or BatchNorm)."""
    if l1 == 0 and l2 == 0:
        return None
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    total = None
    if l1:
        total = l1 * sum(w.abs().sum() for w in weights)
    if l2:
        term = (l2 / 2) * sum(w.pow(2).sum() for w in weights)
        total = term if total is None else total + term
    return total
