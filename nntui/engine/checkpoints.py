"""Checkpoints: written atomically (temp file, fsync, rename), loaded weights-only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from nntui.errors import NntuiError


def host_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict on the host in one go: from a GPU every tensor is copied into pinned memory without
    waiting, then one synchronisation (not one blocking copy per tensor)."""
    devices = {v.device for v in state.values() if v.device.type == "cuda"}
    if not devices:
        return {k: v.detach().cpu() for k, v in state.items()}
    copies = {k: torch.empty(v.shape, dtype=v.dtype, pin_memory=True).copy_(v.detach(), non_blocking=True) for k, v in state.items()}
    for device in devices:
        torch.cuda.synchronize(device)
    return copies


def save_checkpoint(path: Path, model: torch.nn.Module, variant: str, step: int, epoch: float, test_loss: float | None) -> None:
    payload = {
        "model": host_state(model.state_dict()),
        "variant": variant,
        "step": step,
        "epoch": float(epoch),
        "test_loss": test_loss,
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NntuiError(f"checkpoint {path} not found") from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise NntuiError(f"checkpoint {path} is corrupt or not an nntui checkpoint ({type(exc).__name__}); delete it or re-run") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise NntuiError(f"checkpoint {path} is not an nntui checkpoint (no 'model' entry)")
    return payload
