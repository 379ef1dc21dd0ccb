"""One run, start to end: data, device, run directory, log, state, trainer, verdicts, summary.

UI-free: the CLI's headless report and the dashboard both drive a `Run` and read its `state`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nntui.record import events as ev
from nntui.engine.budget import check_fits, check_ranges, estimate_bytes
from nntui.engine.checkpoints import file_stems
from nntui.engine.data import Dataset, load_dataset
from nntui.errors import NntuiError, RecordWriteError
from nntui.engine.lr_finder import needs_bounds, resolve_auto_bounds
from nntui.engine.lr_suggest import load_bounds
from nntui.presets import ResolvedPreset
from nntui.record.runlog import PRESET_FILE, SUMMARY_FILE, RunLog, create_run_dir, write_crash_log, write_json_atomic
from nntui.record.state import RunState, build_summary
from nntui.engine.train import Trainer, VariantRun, batch_size_for, requested_threads
from nntui.verdicts import judge
from nntui.verdicts.health import check_health


@dataclass
class RunOptions:
    dataset: str | None = None  # overrides every variant's data.name
    data_dir: Path | None = None
    device: str = "auto"
    out: Path = Path("runs")
    epochs: int | None = None
    max_steps: int | None = None
    seed: int | None = None
    variants: list[str] = field(default_factory=list)  # empty: all
    from_lr_find: Path | None = None  # lr_find.json whose cyclic bounds replace schedule base_lr/max_lr = "auto"
    run_dir: Path | None = None  # this exact new directory instead of one under `out` (seeds: runs/<id>/seed-N)


def resolve_device(name: str) -> tuple[torch.device, str | None]:
    """The torch device for auto, cpu, cuda or cuda:N and, when `auto` fell back, a note saying so."""
    name = name.strip().lower()
    if name == "cpu":
        return torch.device("cpu"), None
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device()), None
        return torch.device("cpu"), "device auto: no CUDA device found, training on the CPU"
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise NntuiError(f"--device {name!r}: choose auto, cpu, cuda or cuda:N (N the GPU's index, e.g. cuda:0)")
    if not torch.cuda.is_available():
        raise NntuiError(f"--device {name}: no CUDA device is available here; use --device cpu or --device auto")
    count = torch.cuda.device_count()
    if index and int(index) >= count:
        raise NntuiError(f"--device {name}: this machine has {count} CUDA device{'s' if count != 1 else ''} (cuda:0{f' to cuda:{count - 1}' if count > 1 else ''}); pick one of those")
    return torch.device("cuda", int(index) if index else torch.cuda.current_device()), None


REGRESSION_DATASETS = {"noisy-line"}
VERDICT_EVERY = 0.1  # share of a variant's run after which a verdict whose numbers changed is emitted again
NUMBER = re.compile(r"[-+]?\d[\d,]*(\.\d+)?(e[-+]?\d+)?")


def wording(text: str) -> str:
    """A verdict's text with its numbers blanked: what changes when the judgement, not a figure, changes."""
    return NUMBER.sub("#", text)


def apply_options(resolved: ResolvedPreset, options: RunOptions, notes: list[str] | None = None) -> dict:
    """Per-variant configs with the CLI's shortcuts (--dataset, --epochs, ...) applied.

    An image --dataset leaves the regression presets (noisy line) on their own data, with a note:
    their lesson is about a 1-D curve fit, not about digits."""
    configs = dict(resolved.configs)
    if options.variants:
        unknown = [v for v in options.variants if v not in configs]
        if unknown:
            raise NntuiError(f"--variant {unknown[0]!r} is not in preset {resolved.name}; variants: {', '.join(configs)}")
        configs = {k: v for k, v in configs.items() if k in options.variants}
    updated = {}
    for name, cfg in configs.items():
        cfg = cfg.model_copy(deep=True)
        if options.dataset is not None:
            if cfg.data.name in REGRESSION_DATASETS and options.dataset not in REGRESSION_DATASETS:
                note = f"--dataset {options.dataset}: preset {resolved.name} is a {cfg.data.name} regression and keeps its own data"
                if notes is not None and note not in notes:
                    notes.append(note)
            else:
                cfg.data.name = options.dataset
        if options.epochs is not None:
            cfg.epochs = options.epochs
        if options.max_steps is not None:
            cfg.max_steps = options.max_steps
        if options.seed is not None:
            cfg.seed = options.seed
        updated[name] = cfg
    return updated


class Run:
    """Prepared by `prepare_run`; `execute()` trains in the calling thread, `start()` in a worker thread."""

    def __init__(self, resolved: ResolvedPreset, options: RunOptions, listeners: list[Callable[[ev.Event], None]] | None = None,
                 on_phase: Callable[[str], None] | None = None) -> None:
        say = on_phase or (lambda _: None)  # set-up progress for the dashboard (data, range test, models)
        self.resolved = resolved
        self.options = options
        self.state = RunState()
        self.listeners = list(listeners or [])
        self.notes: list[str] = []
        self.configs = apply_options(resolved, options, self.notes)
        self.device, device_note = resolve_device(options.device)
        if device_note:
            self.notes.append(device_note)
        requested_threads()  # a bad NNTUI_THREADS fails here, before anything is written
        for name, cfg in self.configs.items():
            check_ranges(name, cfg)
        say("loading the data")
        self.datasets = self._load_data()
        needs = {}
        for name, cfg in self.configs.items():  # bad combinations fail here, before anything is written
            data = self.datasets[name]
            batch_size_for(cfg, len(data.x_train), name)
            needs[name] = estimate_bytes(cfg, data.input_dim, data.num_classes, len(data.x_train))
        check_fits(needs, self.device)
        if options.from_lr_find is not None:
            load_bounds(options.from_lr_find)  # a bad file fails here, before the run directory exists
        self.stop_reason = ""  # the signal or key that asked the run to stop
        self.detached = False  # the terminal hung up: training goes on without a view
        self.view_closed = threading.Event()  # the dashboard (if any) should close
        self.failure = ""  # status "failed": what went wrong
        self.crash_log: Path | None = None  # where the traceback of a crash went
        self.runs: list[VariantRun] = []
        self.run_dir = create_run_dir(options.out, resolved.name) if options.run_dir is None else _exact_run_dir(options.run_dir)
        try:
            self.log = RunLog(self.run_dir)
        except RecordWriteError:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        self._emit_lock = threading.Lock()
        self.trainer = Trainer(self.runs, self.emit, on_epoch=self.update_verdicts)
        # "auto" cyclic / one-cycle bounds: from a saved lr_find.json now, or from an LR range test that
        # execute() runs first, in the event stream, so the dashboard shows it live
        self.sweep_pending = options.from_lr_find is None and any(needs_bounds(cfg) for cfg in self.configs.values())
        if not self.sweep_pending:
            try:
                self.configs, lr_notes = resolve_auto_bounds(self.configs, self.datasets, self.device, self.run_dir, options.from_lr_find)
            except BaseException:
                self.log.discard()
                shutil.rmtree(self.run_dir, ignore_errors=True)  # no training happened: leave no empty run behind
                raise
            self.notes.extend(lr_notes)
            say("building the models")
            self._build_runs()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.status = "waiting"
        self._verdicts: dict[str | None, tuple[bool | None, str, float]] = {}  # variant -> (reproduced, text, progress)

    def _build_runs(self) -> None:
        stems = file_stems([v.name for v in self.resolved.preset.variants if v.name in self.configs])
        for v in self.resolved.preset.variants:
            if v.name in self.configs:
                run = VariantRun(v.name, v.description, self.configs[v.name], self.datasets[v.name], self.device, self.run_dir)
                run.file_stem = stems[v.name]
                self.runs.append(run)

    def _range_test(self) -> None:
        """The LR range test for "auto" bounds, its events in the run's stream; then the variants can be built."""
        self.configs, lr_notes = resolve_auto_bounds(self.configs, self.datasets, self.device, self.run_dir, None,
                                                     emit=self.emit, stop=self.trainer.stop, preset=self.resolved.name)
        self.sweep_pending = False
        if not self.trainer.stop.is_set():
            self.notes.extend(lr_notes)
            self._build_runs()

    def _load_data(self) -> dict[str, Dataset]:
        cache: dict[tuple, Dataset] = {}
        out = {}
        for name, cfg in self.configs.items():
            key = (cfg.data.name, cfg.data.normalize, cfg.seed if cfg.data.name == "noisy-line" else 0)
            if key not in cache:
                data = load_dataset(cfg.data.name, self.options.data_dir, cfg.data.normalize, seed=key[2])
                if data.note and data.note not in self.notes:
                    self.notes.append(data.note)
                cache[key] = data.to(self.device)
            out[name] = cache[key].limit_train(cfg.data.train_limit)
        return out

    @property
    def dataset_name(self) -> str:
        return ", ".join(sorted({d.name for d in self.datasets.values()}))

    def emit(self, event: ev.Event) -> None:
        """Record, apply, tell the listeners. A failing listener (a view) is dropped, never the training."""
        with self._emit_lock:
            self.state.apply(event)
            for listener in list(self.listeners):
                try:
                    listener(event)
                except Exception:
                    self.listeners.remove(listener)
            self.log.append(event)  # last: a write failure (RecordWriteError) leaves the state complete

    def budgets(self) -> dict[str, int | None]:
        """Each preset variant's own step budget (its TOML epochs/max_steps, before --epochs/--max-steps)."""
        per_epoch = {r.name: r.steps_per_epoch for r in self.runs}
        out: dict[str, int | None] = {}
        for name, cfg in self.resolved.configs.items():
            if name not in per_epoch:
                out[name] = None  # left out (--variant): no data loaded to count its steps
                continue
            steps = cfg.epochs * per_epoch[name]
            out[name] = min(steps, cfg.max_steps) if cfg.max_steps else steps
        return out

    def update_verdicts(self, final: bool = False) -> None:
        """Emit a verdict when its state or wording changes, when its variant moved on by a tenth of the run
        since the last one (the numbers it cites), and at the end; not at every epoch."""
        verdicts, finding = judge(self.state, self.resolved.preset.expect, self.budgets())
        for variant, (reproduced, text) in [*verdicts.items(), (None, finding)]:
            last = self._verdicts.get(variant)
            if not text or (last is not None and last[1] == text):
                continue
            now = self._progress(variant)
            changed = last is None or last[0] != reproduced or wording(last[1]) != wording(text)
            if changed or final or now - last[2] >= VERDICT_EVERY:
                self._verdicts[variant] = (reproduced, text, now)
                step = self.state.variants[variant].step if variant in self.state.variants else max((r.step for r in self.runs), default=0)
                self.emit(ev.Verdict(variant, step, reproduced, text))

    def _progress(self, variant: str | None) -> float:
        runs = [r for r in self.runs if variant is None or r.name == variant]
        return sum(r.step for r in runs) / max(sum(r.total_steps for r in runs), 1)

    def _start_event(self, variants: list[dict] | None = None) -> ev.RunStarted:
        preset = self.resolved.preset
        tasks = {d.task for d in self.datasets.values()}
        return ev.RunStarted(
            preset=preset.name, title=preset.title, lesson=preset.lesson.strip(), dataset=self.dataset_name,
            device=str(self.device), task="regression" if tasks == {"regression"} else "classification",
            run_dir=str(self.run_dir), variants=variants if variants is not None else [r.info() for r in self.runs], started_at=time.time(), notes=list(self.notes),
            pid=os.getpid(), host=socket.gethostname(),
        )

    def execute(self) -> dict:
        """Train to the end (or a stop request); always closes the log and writes the summary.

        A stop request or KeyboardInterrupt ends as "interrupted"; any other exception as "failed",
        with its traceback in crash.log (a write failure needs none: its message says it all)."""
        self.status = "running"
        try:
            if self.sweep_pending:
                self._range_test()
            write_json_atomic(self.run_dir / PRESET_FILE, {
                "name": self.resolved.name, "source": self.resolved.source,
                "expect": self.resolved.preset.expect.model_dump(mode="json", by_alias=True) if self.resolved.preset.expect else {},
                "variants": {name: cfg.model_dump(mode="json") for name, cfg in self.configs.items()},
            })
            self.emit(self._start_event())
            for data in {id(d): d for d in self.datasets.values()}.values():
                if data.task == "regression":
                    self.emit(ev.Sample("train", data.x_train.squeeze(1).tolist(), data.y_train.squeeze(1).tolist()))
                    self.emit(ev.Sample("test", data.x_test.squeeze(1).tolist(), data.y_test.squeeze(1).tolist()))
                    break
            self.status = "interrupted" if not self.runs and self.trainer.stop.is_set() else self.trainer.run()
        except KeyboardInterrupt:
            self.status = "interrupted"
            self._close_variants("interrupted", "stopped at once")
            self._finish()
            raise
        except BaseException as exc:
            self.status = "failed"
            self.failure = str(exc) if isinstance(exc, RecordWriteError) else f"{type(exc).__name__}: {str(exc).strip()[:500]}"
            if not isinstance(exc, RecordWriteError):
                self.crash_log = write_crash_log(self.run_dir, "".join(traceback.format_exception(exc)))
            self._close_variants("failed", self.failure)
            self._finish()
            raise
        self._finish()
        return self.state.summary

    def _close_variants(self, status: str, reason: str) -> None:
        for run in self.runs:
            if run.status == "running":
                run.status = status
                try:
                    self.emit(ev.VariantFinished(run.name, status, run.step, run.epoch, reason))
                except RecordWriteError:
                    pass  # the first write failure is the one reported

    def _finish(self, record_only: bool = False) -> None:
        """Verdicts, run_finished, summary.json, log closed: each done as far as the disk allows."""
        try:
            if not record_only:
                self.update_verdicts(final=True)
        except RecordWriteError:
            pass
        self.state.status = self.status
        self.state.error = self.failure
        summary = build_summary(self.state)
        summary["health"] = check_health(self.state)
        if self.stop_reason:
            summary["stopped_by"] = self.stop_reason
        problems: list[RecordWriteError] = []
        for write in (lambda: self.emit(ev.RunFinished(self.status, time.time(), summary)),
                      lambda: write_json_atomic(self.run_dir / SUMMARY_FILE, summary),
                      self.log.close):
            try:
                write()
            except RecordWriteError as exc:
                problems.append(exc)
        self.state.summary = summary
        if problems and self.status != "failed":  # the run itself went fine; its record did not
            self.status = self.state.status = summary["status"] = "failed"
            self.failure = summary["error"] = str(problems[0])
            raise problems[0]

    def start(self) -> threading.Thread:
        def target() -> None:
            try:
                self.execute()
            except BaseException as exc:  # handed to the UI thread, which reports it
                self.error = exc

        self.thread = threading.Thread(target=target, name="nntui-trainer", daemon=True)
        self.thread.start()
        return self.thread

    def request_stop(self, reason: str = "") -> None:
        """Stop after the current step (a quit key, SIGINT, SIGTERM, SIGHUP with --on-hangup stop)."""
        if reason and not self.stop_reason:
            self.stop_reason = reason
        self.trainer.stop.set()
        self.view_closed.set()

    def detach_view(self) -> None:
        """The terminal is gone (SIGHUP): the dashboard closes, training goes on to the end."""
        self.detached = True
        self.view_closed.set()

    def toggle_pause(self) -> bool:
        if self.trainer.paused.is_set():
            self.trainer.paused.clear()
        else:
            self.trainer.paused.set()
        return self.trainer.paused.is_set()


def _exact_run_dir(path: Path) -> Path:
    try:
        path.mkdir()
    except OSError as exc:
        raise NntuiError(f"cannot create run directory {path}: {exc.strerror}") from None
    return path


def prepare_run(resolved: ResolvedPreset, options: RunOptions, listeners: list[Callable[[ev.Event], None]] | None = None,
                on_phase: Callable[[str], None] | None = None) -> Run:
    return Run(resolved, options, listeners, on_phase)
