"""Verdicts: does the lecture's finding show up in this run? Torch-free; they read a RunState only.

`registry` holds `judge`, the `kind` decorator and the helpers; each topic module registers its kinds.
"""

from nntui.verdicts import lecture, schedules  # noqa: F401  (importing registers their kinds)
from nntui.verdicts.registry import KINDS, Judgement, judge

__all__ = ["KINDS", "Judgement", "judge"]
