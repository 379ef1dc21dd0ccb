"""nntui: watch neural networks fail to train, and learn, in the terminal."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["watch"]


def __getattr__(name: str) -> Any:
    # Lazy: `import nntui` (the CLI, the dashboard) must not pay for importing torch.
    if name in ("watch", "Watch"):
        from nntui import api

        return getattr(api, name)
    raise AttributeError(f"module 'nntui' has no attribute {name!r}")
