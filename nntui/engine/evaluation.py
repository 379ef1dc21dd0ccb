"""Evaluation on a test split: the loss and accuracy left on the device (the trainer reads them back
with its block's one transfer), or read back at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def evaluate_on_device(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, batch: int = 8192) -> torch.Tensor:
    """[mean loss, accuracy] on (x, y) in eval mode, left on the device (accuracy 0 for regression)."""
    with torch.no_grad():  # a block, not a decorator: mutmut skips decorated functions
        was_training = model.training
        model.eval()
        try:
            loss_sum = torch.zeros((), device=x.device)
            correct = torch.zeros((), device=x.device)
            reduce_fn = F.cross_entropy if task == "classification" else F.mse_loss
            for i in range(0, len(x), batch):
                out = model(x[i : i + batch])
                target = y[i : i + batch]
                loss_sum += reduce_fn(out, target, reduction="sum")
                if task == "classification":
                    correct += (out.argmax(dim=1) == target).sum()
            denom = len(x) * (1 if task == "classification" else y.shape[1])
            return torch.stack([loss_sum / denom, correct / len(x)])
        finally:
            model.train(was_training)


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, batch: int = 8192) -> tuple[float, float | None]:
    """Mean loss and accuracy on (x, y) in eval mode; one transfer for both numbers."""
    loss, acc = evaluate_on_device(model, x, y, task, batch).tolist()
    return loss, (acc if task == "classification" else None)
