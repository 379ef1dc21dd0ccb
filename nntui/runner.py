"""One run, start to end: data, device, run directory, log, state, trainer, verdicts, summary.

UI-free: the CLI's headless report and the dashboard both drive a `Run` and read its `state`.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nntui.record import events as ev
from nntui.engine.data import Dataset, load_dataset
from nntui.errors import NntuiError
from nntui.engine.lr_finder import resolve_auto_bounds
from nntui.presets import ResolvedPreset
from nntui.record.runlog import PRESET_FILE, SUMMARY_FILE, RunLog, create_run_dir, write_json_atomic
from nntui.record.state import RunState, build_summary
from nntui.engine.train import Trainer, VariantRun, batch_size_for, requested_threads
from nntui.verdicts import judge


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

    def __init__(self, resolved: ResolvedPreset, options: RunOptions, listeners: list[Callable[[ev.Event], None]] | None = None) -> None:
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
        self.datasets = self._load_data()
        for name, cfg in self.configs.items():  # bad combinations fail here, before anything is written
            batch_size_for(cfg, len(self.datasets[name].x_train), name)
        self.run_dir = create_run_dir(options.out, resolved.name)
        self.log = RunLog(self.run_dir)
        # "auto" cyclic / one-cycle bounds: an LR range test on a fresh copy of the model (or a saved lr_find.json)
        try:
            self.configs, lr_notes = resolve_auto_bounds(self.configs, self.datasets, self.device, self.run_dir, options.from_lr_find)
        except BaseException:
            self.log.close()
            shutil.rmtree(self.run_dir, ignore_errors=True)  # no training happened: leave no empty run behind
            raise
        self.notes.extend(lr_notes)
        self._emit_lock = threading.Lock()
        self.runs = [
            VariantRun(v.name, v.description, self.configs[v.name], self.datasets[v.name], self.device, self.run_dir)
            for v in resolved.preset.variants
            if v.name in self.configs
        ]
        self.trainer = Trainer(self.runs, self.emit, on_epoch=self.update_verdicts)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.status = "waiting"
        self._verdicts: dict[str | None, str] = {}

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
        with self._emit_lock:
            self.log.append(event)
            self.state.apply(event)
            for listener in self.listeners:
                listener(event)

    def update_verdicts(self) -> None:
        verdicts, finding = judge(self.state, self.resolved.preset.expect)
        for variant, (reproduced, text) in [*verdicts.items(), (None, finding)]:
            if text and self._verdicts.get(variant) != text:
                self._verdicts[variant] = text
                step = self.state.variants[variant].step if variant in self.state.variants else max((r.step for r in self.runs), default=0)
                self.emit(ev.Verdict(variant, step, reproduced, text))

    def _start_event(self) -> ev.RunStarted:
        preset = self.resolved.preset
        tasks = {d.task for d in self.datasets.values()}
        return ev.RunStarted(
            preset=preset.name, title=preset.title, lesson=preset.lesson.strip(), dataset=self.dataset_name,
            device=str(self.device), task="regression" if tasks == {"regression"} else "classification",
            run_dir=str(self.run_dir), variants=[r.info() for r in self.runs], started_at=time.time(), notes=list(self.notes),
            pid=os.getpid(), host=socket.gethostname(),
        )

    def execute(self) -> dict:
        """Train to the end (or a stop request); always closes the log and writes the summary."""
        self.status = "running"
        write_json_atomic(self.run_dir / PRESET_FILE, {
            "name": self.resolved.name, "source": self.resolved.source, "expect": self.resolved.preset.expect,
            "variants": {name: cfg.model_dump(mode="json") for name, cfg in self.configs.items()},
        })
        try:
            self.emit(self._start_event())
            for data in {id(d): d for d in self.datasets.values()}.values():
                if data.task == "regression":
                    self.emit(ev.Sample("train", data.x_train.squeeze(1).tolist(), data.y_train.squeeze(1).tolist()))
                    self.emit(ev.Sample("test", data.x_test.squeeze(1).tolist(), data.y_test.squeeze(1).tolist()))
                    break
            self.status = self.trainer.run()
        except BaseException:
            self.status = "interrupted"
            for run in self.runs:
                if run.status == "running":
                    run.status = "interrupted"
                    self.emit(ev.VariantFinished(run.name, "interrupted", run.step, run.epoch, "stopped by an error"))
            raise
        finally:
            self._finish()
        return self.state.summary

    def _finish(self) -> None:
        self.update_verdicts()
        self.state.status = self.status
        summary = build_summary(self.state)
        self.emit(ev.RunFinished(self.status, time.time(), summary))
        write_json_atomic(self.run_dir / SUMMARY_FILE, summary)
        self.log.close()

    def start(self) -> threading.Thread:
        def target() -> None:
            try:
                self.execute()
            except BaseException as exc:  # handed to the UI thread, which reports it
                self.error = exc

        self.thread = threading.Thread(target=target, name="nntui-trainer", daemon=True)
        self.thread.start()
        return self.thread

    def request_stop(self) -> None:
        self.trainer.stop.set()

    def toggle_pause(self) -> bool:
        if self.trainer.paused.is_set():
            self.trainer.paused.clear()
        else:
            self.trainer.paused.set()
        return self.trainer.paused.is_set()


def prepare_run(resolved: ResolvedPreset, options: RunOptions, listeners: list[Callable[[ev.Event], None]] | None = None) -> Run:
    return Run(resolved, options, listeners)
