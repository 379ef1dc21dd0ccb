"""Checkpoints: written atomically (temp file, fsync, rename), loaded weights-only."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import torch

from nntui.errors import NntuiError, RecordWriteError

MAX_STEM = 48  # characters of a variant's name kept in its file names (file systems allow 255 bytes)


def file_stems(names: list[str]) -> dict[str, str]:
    """A file-name-safe stem per variant name, unique within the run: 'a/b' and 'a-b' must not share a checkpoint."""
    stems: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        full = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "variant"
        stem = full[:MAX_STEM]
        if stem != full or stem.lower() in taken:  # shortened or clashing: the name's hash keeps it apart
            stem = f"{stem}-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
        while stem.lower() in taken:
            stem += "_"
        taken.add(stem.lower())  # case-insensitive file systems too
        stems[name] = stem
    return stems


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
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a failed write as RuntimeError
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0][:120]
        raise RecordWriteError(f"cannot write checkpoint {path}: {reason}") from exc


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
