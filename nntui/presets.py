"""Presets: a lecture experiment as a validated base config plus named variants (TOML on disk)."""

from __future__ import annotations

import copy
import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nntui.errors import NntuiError
from nntui.expect import EXPECT_KINDS, EXPECT_METRICS, Expect, named_variants  # noqa: F401  (re-exported)

Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu"]
Init = Literal[
    "default", "normal", "xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform",
    "orthogonal", "zeros", "constant",
]
DatasetName = Literal["auto", "mnist", "mnist-5k", "fashion-mnist", "noisy-line"]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(Strict):
    name: DatasetName = "auto"
    normalize: Literal["lecture", "none"] = "lecture"  # lecture: (x - mean) / std of the dataset family
    train_limit: PositiveInt | None = None  # use only the first N training examples


class ModelConfig(Strict):
    hidden: Annotated[list[PositiveInt], Field(min_length=1)] = [100, 100, 100]
    activation: Activation = "sigmoid"
    init: Init = "default"
    init_std: PositiveFloat = 1.0  # for init = "normal"
    init_value: float = 0.0  # for init = "constant"
    init_gain: PositiveFloat | Literal["auto"] | None = None  # xavier/orthogonal; "auto": the activation's gain
    bias_init: Literal["default", "zeros", "normal"] = "default"
    output_scale: PositiveFloat = 1.0  # multiplies the last layer's initial weights
    batchnorm: Literal["none", "before", "after"] = "none"  # relative to the activation
    dropout: list[Probability] | Probability = 0.0  # per hidden layer, or one value for all
    dropout_position: Literal["before_activation", "after_activation"] = "before_activation"

    @model_validator(mode="after")
    def _dropout_matches_layers(self) -> ModelConfig:
        if isinstance(self.dropout, list) and len(self.dropout) != len(self.hidden):
            raise ValueError(f"dropout has {len(self.dropout)} values but hidden has {len(self.hidden)} layers; give one per hidden layer")
        return self

    def dropout_per_layer(self) -> list[float]:
        return list(self.dropout) if isinstance(self.dropout, list) else [self.dropout] * len(self.hidden)


class OptimizerConfig(Strict):
    name: Literal["sgd", "adagrad", "rmsprop", "adam", "adamw"] = "sgd"
    lr: PositiveFloat = 1e-3
    momentum: Probability = 0.0
    nesterov: bool = False
    betas: tuple[Probability, Probability] = (0.9, 0.999)
    alpha: Probability = 0.99
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov = true needs name = 'sgd' and momentum > 0")
        return self


class ScheduleConfig(Strict):
    name: Literal["none", "step", "plateau", "cyclic", "one_cycle", "warmup_cosine", "warmup_step"] = "none"
    step_size: PositiveInt = 2  # step, warmup_step: epochs between decays
    gamma: PositiveFloat = 0.1  # step, warmup_step: decay factor; cyclic exp_range: per-iteration factor
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1  # plateau
    patience: Annotated[int, Field(ge=0)] = 1  # plateau: epochs without improvement
    base_lr: PositiveFloat | Literal["auto"] = "auto"  # cyclic; "auto": from an LR range test
    max_lr: PositiveFloat | Literal["auto"] = "auto"  # cyclic, one_cycle
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular"  # cyclic
    step_size_up: PositiveInt | None = None  # cyclic: batches per half cycle (default: 2 epochs)
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3  # one_cycle
    warmup_epochs: NonNegativeFloat = 1.0  # warmup_*


class TrainConfig(Strict):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    l1: NonNegativeFloat = 0.0  # penalty added to the loss: l1 * sum|w|
    l2: NonNegativeFloat = 0.0  # penalty added to the loss: l2 / 2 * sum w^2
    clip_grad_norm: PositiveFloat | None = None
    epochs: PositiveInt = 5
    batch_size: PositiveInt | Literal["full"] = 32
    max_steps: PositiveInt | None = None
    eval_every: PositiveInt = 100  # steps between evaluations on a fixed test subset
    eval_subset: PositiveInt = 1000
    test_every_epochs: PositiveInt = 1  # full test-split evaluation every N epochs (and at the end)
    probe_every: PositiveInt = 50  # steps between per-layer probes
    seed: int = 0
    keep_best: bool = False  # keep the weights of the best test loss in the run directory
    checkpoint: bool = False  # save the last weights at the end (also when interrupted)
    mc_samples: Annotated[int, Field(ge=0)] = 0  # regression: forward passes with dropout on, for intervals


class Variant(Strict):
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    set: dict[str, Any] = {}


class Preset(Strict):
    name: Annotated[str, Field(min_length=1)]
    title: str = ""
    lesson: str = ""  # the lecture's "what to look for"
    expect: Expect | None = None  # machine-checkable finding (nntui/expect.py), judged by nntui.verdicts
    config: dict[str, Any] = {}
    variants: Annotated[list[Variant], Field(min_length=1)] = [Variant(name="default")]

    @field_validator("expect", mode="before")
    @classmethod
    def _known_kind(cls, expect: Any) -> Any:
        if isinstance(expect, dict) and not expect:
            return None
        if isinstance(expect, dict) and expect.get("kind") not in EXPECT_KINDS:
            raise ValueError(f"kind {expect.get('kind')!r} is unknown; known: {', '.join(sorted(EXPECT_KINDS))}")
        return expect

    @field_validator("variants")
    @classmethod
    def _unique_names(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(dupes)}")
        return variants


class ResolvedPreset:
    """A preset with every variant's config validated (base, then the variant's `set`, then --set)."""

    def __init__(self, preset: Preset, configs: dict[str, TrainConfig], source: str) -> None:
        self.preset = preset
        self.configs = configs
        self.source = source

    @property
    def name(self) -> str:
        return self.preset.name


# ---------------------------------------------------------------- loading

def presets_dir() -> Path:
    return Path(str(resources.files("nntui") / "presets"))


def available_presets() -> dict[str, Path]:
    return {p.stem: p for p in sorted(presets_dir().glob("*.toml"))}


def find_preset_source(name_or_file: str) -> Path:
    path = Path(name_or_file)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise NntuiError(f"preset file {name_or_file} not found; pass a preset name (see `nntui list`) or a .toml file")
        return path
    known = available_presets()
    if name_or_file in known:
        return known[name_or_file]
    close = difflib.get_close_matches(name_or_file, known, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"known presets: {', '.join(known)}"
    raise NntuiError(f"unknown preset {name_or_file!r}; {hint} (`nntui list` shows all)")


def read_toml(path: Path) -> dict[str, Any]:
    from nntui.record.runlog import read_small_file  # refuses a FIFO or a huge file instead of hanging on it

    try:
        text = read_small_file(path, "preset file", limit=1 << 20).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NntuiError(f"cannot read preset file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NntuiError(f"{path}: invalid TOML: {exc}") from None


def parse_set_option(text: str) -> tuple[str, Any]:
    """'optimizer.lr=1e-2' -> ('optimizer.lr', 0.01); values are TOML literals, else plain strings."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise NntuiError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optimizer.lr=0.01")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def apply_override(config: dict[str, Any], key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    if any(not p for p in parts):
        raise NntuiError(f"{where}: bad key {key!r}; use dotted names such as optimizer.lr")
    node = config
    schema: type[BaseModel] | None = TrainConfig
    for i, part in enumerate(parts):
        if schema is not None and part not in schema.model_fields:
            path = ".".join(parts[: i + 1])
            allowed = ", ".join(schema.model_fields)
            raise NntuiError(f"{where}: unknown key {path!r}; allowed here: {allowed}")
        if i == len(parts) - 1:
            node[part] = value
            return
        annotation = schema.model_fields[part].annotation if schema is not None else None
        schema = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if schema is None:
            raise NntuiError(f"{where}: {'.'.join(parts[: i + 1])} is not a table; {key!r} cannot be set")
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def _printable(key: str) -> str:
    """A key as the user can read it on one line: a newline or other control character in it is shown escaped."""
    return key if key.isprintable() else repr(key)[1:-1]


def _format_validation(where: str, exc: ValidationError, prefix: str = "") -> str:
    messages = []
    for err in exc.errors()[:3]:
        loc = prefix + ".".join(_printable(str(p)) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        value = err.get("input")
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        got = f" (got {shown})" if err["type"] != "extra_forbidden" and not isinstance(value, dict) else ""
        messages.append(f"{loc}: {msg}{got}" if loc else f"{msg}{got}")
    more = f" (+{len(exc.errors()) - 3} more)" if len(exc.errors()) > 3 else ""
    return f"{where}: " + "; ".join(messages) + more


def validate_config(data: dict[str, Any], where: str, prefix: str = "") -> TrainConfig:
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise NntuiError(_format_validation(where, exc, prefix)) from None


def load_preset(name_or_file: str, overrides: list[str] | tuple[str, ...] = ()) -> ResolvedPreset:
    path = find_preset_source(name_or_file)
    where = str(path) if path.parent != presets_dir() else f"preset {path.stem}"
    return resolve_preset(read_toml(path), where, overrides)


def resolve_preset(data: dict[str, Any], where: str, overrides: list[str] | tuple[str, ...] = ()) -> ResolvedPreset:
    if not isinstance(data, dict):
        raise NntuiError(f"{where}: a preset must be a TOML table")
    try:
        preset = Preset.model_validate(data)
    except ValidationError as exc:
        raise NntuiError(_format_validation(where, exc)) from None
    parsed = [parse_set_option(o) for o in overrides]
    configs: dict[str, TrainConfig] = {}
    validate_config(preset.config, where, prefix="config.")  # a base error is reported once, not per variant
    for variant in preset.variants:
        data = copy.deepcopy(preset.config)
        for key, value in variant.set.items():
            apply_override(data, key, value, f"{where}: variant {variant.name!r}")
        for key, value in parsed:
            apply_override(data, key, value, f"--set {key}")
        label = "--set" if parsed else f"{where}: variant {variant.name!r}"
        configs[variant.name] = validate_config(data, label)
    check_expectation(preset, where)
    return ResolvedPreset(preset, configs, where)


# ---------------------------------------------------------------- expect tables

def check_expectation(preset: Preset, where: str) -> None:
    """Fail early on an `expect` table that names a variant the preset does not have (types: the schema)."""
    if preset.expect is None:
        return
    names = {v.name for v in preset.variants}
    for key, values in named_variants(preset.expect).items():
        for value in values:
            if value not in names:
                raise NntuiError(f"{where}: expect.{key} names variant {value!r}, which the preset does not have; variants: {', '.join(sorted(names))}")
