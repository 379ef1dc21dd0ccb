"""What a run will need, checked before anything is allocated or written: memory and integer ranges."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nntui.errors import NntuiError
from nntui.presets import TrainConfig

FLOAT_BYTES = 4
EVAL_BATCH = 8192  # engine.train.evaluate's chunk
PREDICTION_POINTS = 100  # engine.train.PREDICTION_POINTS
MAX_EPOCHS = 1_000_000
MAX_STEPS = 10**12
SEED_RANGE = (0, 2**63 - 1)  # torch.manual_seed's and the JSON record's common range
MEMORY_SHARE = 0.8  # of what is free now: leave room for the interpreter, the dashboard, the OS


def model_parameters(cfg: TrainConfig, input_dim: int, output_dim: int) -> int:
    widths = [input_dim, *cfg.model.hidden, output_dim]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def estimate_bytes(cfg: TrainConfig, input_dim: int, output_dim: int, n_train: int) -> dict[str, int]:
    """Peak bytes of one variant by part: weights with gradients, optimizer state and the probe's copy;
    activations of a training batch (forward, backward, dropout masks, BatchNorm); evaluation chunks;
    MC-dropout samples."""
    widths = [input_dim, *cfg.model.hidden, output_dim]
    params = model_parameters(cfg, input_dim, output_dim)
    batch = n_train if cfg.batch_size == "full" else min(cfg.batch_size, n_train)
    per_example = sum(widths)
    parts = {
        "parameters": params * FLOAT_BYTES * 5,  # weights, grads, 2 optimizer moments, probe snapshot
        "activations": batch * per_example * FLOAT_BYTES * 4,
        "evaluation": EVAL_BATCH * max(widths) * FLOAT_BYTES * 3,
        "mc samples": cfg.mc_samples * PREDICTION_POINTS * max(widths) * FLOAT_BYTES * 3,
    }
    return parts


def available_bytes(device: torch.device) -> tuple[int | None, str]:
    """Memory free for this run now and where it is; None when the platform cannot tell."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free, f"free on {torch.cuda.get_device_name(device)}"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "of memory available on this machine"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "of memory available on this machine"
    except (OSError, ValueError, AttributeError):
        return None, ""


def gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def check_ranges(name: str, cfg: TrainConfig) -> None:
    """Integers the engine and the JSON record can hold (Python accepts any size; torch and orjson do not)."""
    if cfg.epochs > MAX_EPOCHS:
        raise NntuiError(f"variant {name!r}: epochs {cfg.epochs} is beyond {MAX_EPOCHS:,}; use --max-steps for long runs")
    if cfg.max_steps is not None and cfg.max_steps > MAX_STEPS:
        raise NntuiError(f"variant {name!r}: max_steps {cfg.max_steps} is beyond {MAX_STEPS:,}")
    if not SEED_RANGE[0] <= cfg.seed <= SEED_RANGE[1]:
        raise NntuiError(f"variant {name!r}: seed {cfg.seed} is outside 0…2^63-1; pick a smaller seed")


def check_fits(needs: dict[str, dict[str, int]], device: torch.device) -> None:
    """Refuse a run whose variants (all alive at once) cannot fit in the device's memory, with the estimate."""
    total = sum(sum(parts.values()) for parts in needs.values())
    free, where = available_bytes(device)
    if free is None or total <= free * MEMORY_SHARE:
        return
    name, parts = max(needs.items(), key=lambda kv: sum(kv[1].values()))
    part, size = max(parts.items(), key=lambda kv: kv[1])
    raise NntuiError(
        f"this run needs about {gib(total)} but only {gib(free)} is {where}; the largest share is variant {name!r}'s "
        f"{part} ({gib(size)}): use smaller model.hidden, batch_size or mc_samples"
    )
