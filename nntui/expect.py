"""The schema of a preset's `[expect]` table: one typed model per verdict kind (pydantic; no verdict code here).

`nntui.verdicts` implements the kinds and reads these models; tests/test_architecture.py checks that both
name the same kinds and metrics. Margins are in the metric's units and should sit above the run-to-run
noise measured across seeds (BENCHMARKS.md, "Testing"): a difference inside the margin is inconclusive.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Share = Annotated[float, Field(gt=0.0, le=1.0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
Names = Annotated[str, Field(min_length=1)] | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
Metric = Literal["train", "test", "accuracy"]


class ExpectBase(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True, frozen=True)

    finding: str | None = None  # the sentence shown when the finding is reproduced
    # A verdict is conclusive only when every variant it needs ran this share of the preset's own step
    # budget (fewer steps via --max-steps/--epochs, an interrupted or left-out variant: inconclusive).
    min_share: Share = 0.8


class Paralysis(ExpectBase):
    """`stuck` stays near ln 10 (a uniform guess) with vanishing first-layer gradients; `learns` learns."""
    kind: Literal["paralysis"]
    stuck: str
    learns: str
    stuck_margin: Positive = 0.15  # stuck: final train loss above ln 10 - stuck_margin
    max_stuck_accuracy: Fraction = 0.3  # stuck: test accuracy at most this (a guessing net is near 10 %)
    min_grad_ratio: Positive = 10  # stuck: last-layer median |grad| over the first layer's, at least
    learn_margin: Positive = 0.05  # learns: final train loss below ln 10 - learn_margin
    min_accuracy: Fraction = 0.5  # learns: test accuracy at least


class LowerLoss(ExpectBase):
    """Every `improved` variant ends better than `baseline` by more than `margin`."""
    kind: Literal["lower-loss"]
    baseline: str
    improved: Names
    metric: Metric = "train"
    margin: NonNegative = 0.1  # in the metric's units (accuracy: a fraction)
    max_loss: Positive | None = None  # an improved variant must also end below this train loss


class BestOf(ExpectBase):
    """`winner` ranks first (and `worst` last) by `metric`, each clear of its neighbour by more than `margin`."""
    kind: Literal["best-of"]
    winner: str | None = None
    worst: str | None = None
    metric: Metric = "train"
    margin: NonNegative = 0.0  # differences below this are ties within run-to-run noise


class BadInit(ExpectBase):
    """`bad` starts far above ln C with saturated units; every `good` starts near ln C."""
    kind: Literal["bad-init"]
    bad: str
    good: Names
    bad_factor: Positive = 3  # bad: first loss above bad_factor × ln 10
    bad_saturation: Fraction = 0.5  # bad: share of saturated first-layer units at step 1, above
    good_tolerance: Positive = 0.5  # good: first loss within this of ln 10


class Generalisation(ExpectBase):
    """`with` ends with a lower test loss than `without` by more than `margin`."""
    kind: Literal["generalisation"]
    with_: str = Field(alias="with")
    without: str
    margin: NonNegative = 0.0
    ready: Share = 0.5  # share of the run after which a provisional verdict is shown


class NoGain(ExpectBase):
    """`with` trains slower and its test loss is no better than `without`'s by more than `margin`."""
    kind: Literal["no-gain"]
    with_: str = Field(alias="with")
    without: str
    margin: NonNegative = 0.02
    ready: Share = 0.9


class McInterval(ExpectBase):
    """Sampling with dropout on gives an interval of real width that contains the true line y = x."""
    kind: Literal["mc-interval"]
    variant: str
    min_coverage: Fraction = 0.8
    min_width: Positive = 0.05


class WeightNorms(ExpectBase):
    """Every `regularized` variant ends with a smaller total weight norm than `baseline`, by more than `margin` (relative)."""
    kind: Literal["weight-norms"]
    baseline: str
    regularized: Names
    margin: Fraction = 0.05


class LrSchedule(ExpectBase):
    """Each `variant`'s LR followed its schedule (options: beat `baseline`, a drop in loss after the first LR drop)."""
    kind: Literal["lr-schedule"]
    variant: Names
    baseline: str | None = None
    metric: Literal["train", "test"] = "test"
    better: bool = False  # the scheduled variants end lower than the baseline
    drop_helps: bool = False  # the train loss right after the first LR drop is lower than right before it


Expect = Annotated[
    Paralysis | LowerLoss | BestOf | BadInit | Generalisation | NoGain | McInterval | WeightNorms | LrSchedule,
    Field(discriminator="kind"),
]
EXPECT_MODELS: dict[str, type[ExpectBase]] = {
    m.model_fields["kind"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in (Paralysis, LowerLoss, BestOf, BadInit, Generalisation, NoGain, McInterval, WeightNorms, LrSchedule)
}
EXPECT_KINDS = tuple(EXPECT_MODELS)
EXPECT_METRICS = ("train", "test", "accuracy")
VARIANT_FIELDS = ("stuck", "learns", "baseline", "improved", "winner", "worst", "bad", "good", "with_", "without", "variant", "regularized")


def names_of(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def named_variants(expect: ExpectBase) -> dict[str, list[str]]:
    """The variant names the table refers to, by field (as written in TOML: `with`, not `with_`)."""
    out = {}
    for key in VARIANT_FIELDS:
        if key in type(expect).model_fields and getattr(expect, key) is not None:
            out[key.rstrip("_")] = names_of(getattr(expect, key))
    return out
