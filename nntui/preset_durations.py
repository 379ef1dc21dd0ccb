"""How long each shipped preset takes, for `nntui list`: headless wall time (`nntui run NAME --headless`,
CPU, default threads), measured once per preset on the development machine, 2 CPU cores shared with
other jobs (load average 3 to 17 during the measurement): on an idle machine, or with a GPU, expect less."""

from __future__ import annotations

MEASURED_ON = "2 shared CPU cores, load average 3-17 (busy); an idle machine is faster"
PRESET_SECONDS: dict[str, float] = {
    "bad-init-tanh": 16, "batchnorm": 58, "cyclic-lr": 103, "dropout-mnist": 162, "dropout-overfit": 109,
    "grad-clip": 89, "kaiming-relu": 98, "mc-dropout": 265, "one-cycle": 82, "optimizers": 135,
    "reduce-on-plateau": 141, "sigmoid-paralysis": 495, "step-lr": 197, "warmup": 432, "weight-decay": 293,
    "xavier-init": 496,
}


def preset_duration(name: str) -> str:
    """'~2 min' for a shipped preset, '?' for one never measured (a preset file of your own)."""
    seconds = PRESET_SECONDS.get(name)
    if seconds is None:
        return "?"
    return f"~{seconds:.0f} s" if seconds < 90 else f"~{seconds / 60:.0f} min"
