"""Host reads: every place where code hands a tensor's values to the host, counted per (file, line).

On a GPU each host read makes the CPU wait for the device (a synchronisation); on the CPU nothing is
transferred, so this counts the places where a GPU run would wait. What counts as one host read:

- a Python-level read of a tensor's values: `.item()`, `.tolist()`, `.numpy()`, `float()`, `int()`,
  `bool()` / `if tensor`, formatting, and `.cpu()` / `.to("cpu")` of a tensor not on the CPU
  (seen by a TorchFunctionMode: on a CPU tensor `.tolist()` and `.numpy()` reach no aten op);
- an aten op that reads values on the host or whose output shape depends on the data
  (`_local_scalar_dense`, `equal`, `is_nonzero`, `nonzero`, `masked_select`, `unique`, boolean-mask
  indexing, ...) and a copy from a non-CPU tensor to the CPU (seen by a TorchDispatchMode), unless it
  runs inside a Python-level read already counted.

Not counted: reads of tensors that stay on the host on every device (`host_resident`, e.g. the
optimizers' step counters, which PyTorch keeps on the CPU when training on CUDA).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
ROOT = Path(__file__).resolve().parent.parent
_TORCH_DIR = str(Path(torch.__file__).resolve().parent)
_THIS = str(Path(__file__).resolve())

# aten ops that read values back or size their output by the data
READ_OPS = {
    aten._local_scalar_dense.default, aten.equal.default, aten.is_nonzero.default, aten.nonzero.default,
    aten.masked_select.default, aten._unique2.default, aten.unique_dim.default, aten.unique_consecutive.default,
    aten.repeat_interleave.Tensor, aten.allclose.default,
}
# Python-level entry points that read values; "cpu"/"to" only when the tensor is not on the CPU already
PY_READS = {"item", "tolist", "numpy", "__array__", "__float__", "__int__", "__bool__", "__index__", "__format__"}
PY_MOVES = {"cpu", "to"}


def _tensor_arg(args) -> torch.Tensor | None:
    return next((a for a in args if isinstance(a, torch.Tensor)), None)


def _moves_to_host(name: str, args, kwargs) -> bool:
    source = _tensor_arg(args)
    if source is None or source.device.type == "cpu":
        return False
    if name == "cpu":
        return True
    target = kwargs.get("device")
    for a in args[1:]:
        if isinstance(a, (str, torch.device)):
            target = a
    return target is not None and torch.device(target).type == "cpu"


def _data_dependent(func, args, kwargs) -> bool:
    if func in READ_OPS:
        return True
    if func in (aten.index.Tensor, aten.index_put_.default, aten.index_put.default):
        return any(i is not None and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else []))
    if func is aten._to_copy.default:
        target = kwargs.get("device")
        return args[0].device.type != "cpu" and target is not None and torch.device(target).type == "cpu"
    if func is aten.copy_.default:
        return args[0].device.type == "cpu" and args[1].device.type != "cpu"
    return False


def where(skip: int = 2) -> tuple[str, int, str]:
    """(file relative to the repository, line, function) of the innermost frame outside torch and this file."""
    frame = sys._getframe(skip)
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(_TORCH_DIR) and path != _THIS and not path.endswith(("/contextlib.py", "/warnings.py")):
            rel = os.path.relpath(path, ROOT) if path.startswith(str(ROOT)) else path
            return rel, frame.f_lineno, frame.f_code.co_qualname
        frame = frame.f_back
    return "?", 0, "?"


@dataclass
class Read:
    file: str
    line: int
    function: str
    op: str
    phase: str


@dataclass
class HostReadCounter:
    """`with counter:` counts host reads in this thread; `counter.phase` labels them (see `during`)."""

    host_resident: Callable[[torch.Tensor], bool] = lambda t: False
    reads: list[Read] = field(default_factory=list)
    phase: str = ""

    def __post_init__(self) -> None:
        self._inside = 0  # > 0 while a Python-level read runs: its aten ops are part of it
        self._function_mode = _FunctionMode(self)
        self._dispatch_mode = _DispatchMode(self)

    def __enter__(self) -> HostReadCounter:
        self._function_mode.__enter__()
        self._dispatch_mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._dispatch_mode.__exit__(*exc)
        self._function_mode.__exit__(*exc)

    @contextmanager
    def during(self, phase: str):
        previous, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = previous

    def record(self, op: str, tensor: torch.Tensor | None) -> None:
        if tensor is not None and self.host_resident(tensor):
            return
        self.reads.append(Read(*where(3), op, self.phase))

    def places(self) -> Counter:
        """Reads per (file, line, function, op)."""
        return Counter((r.file, r.line, r.function, r.op) for r in self.reads)

    def in_phase(self, phase: str) -> list[Read]:
        return [r for r in self.reads if r.phase == phase]


class _FunctionMode(TorchFunctionMode):
    def __init__(self, counter: HostReadCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        counted = name in PY_READS or (name in PY_MOVES and _moves_to_host(name, args, kwargs))
        if not counted:
            return func(*args, **kwargs)
        self.counter.record(name, _tensor_arg(args))
        self.counter._inside += 1
        try:
            return func(*args, **kwargs)
        finally:
            self.counter._inside -= 1


class _DispatchMode(TorchDispatchMode):
    def __init__(self, counter: HostReadCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.counter._inside and _data_dependent(func, args, kwargs):
            self.counter.record(str(func.overloadpacket.__name__), _tensor_arg(args))
        return func(*args, **kwargs)


def optimizer_step_counters(optimizers: Iterable[torch.optim.Optimizer]) -> Callable[[torch.Tensor], bool]:
    """host_resident for the optimizers' `step` tensors: CPU scalars on every device (unless fused or
    capturable), so reading them never waits for a GPU."""
    optimizers = list(optimizers)

    def resident(t: torch.Tensor) -> bool:
        if t.device.type != "cpu" or t.dim() != 0:
            return False
        ptr = t.data_ptr()
        return any(isinstance(s.get("step"), torch.Tensor) and s["step"].data_ptr() == ptr for o in optimizers for s in o.state.values())

    return resident


class CudaSyncCounter(HostReadCounter):
    """The same interface on a GPU, from torch.cuda.set_sync_debug_mode("warn"): CUDA's own word on
    every synchronising call (item, copies to the host, nonzero, synchronize, ...), attributed to the
    innermost frame outside torch."""

    def __enter__(self) -> CudaSyncCounter:
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("always")
        self._show, warnings.showwarning = warnings.showwarning, self._on_warning
        torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc) -> None:
        torch.cuda.set_sync_debug_mode("default")
        self._catch.__exit__(*exc)

    def _on_warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        if "synchroniz" in str(message):
            self.reads.append(Read(*where(2), "cuda sync", self.phase))
        else:
            self._show(message, category, filename, lineno, file, line)


# (file, function) -> why a host read is meant to be there
ALLOWED = {
    ("nntui/engine/train.py", "VariantRun._read_block"): "the block's one read-back (losses, probes, evaluation)",
    ("nntui/runner.py", "Run.execute"): "once at the start: a regression's data points for the plot",
    ("nntui/engine/checkpoints.py", "host_state"): "a checkpoint, at an evaluation or the end",
    ("benchmarks/loops.py", "bare_loop"): "the bare loop's loss, once per epoch",
    ("benchmarks/loops.py", "sync"): "the edges of a timing window",
}
def counter_for(device: torch.device, host_resident: Callable[[torch.Tensor], bool] = lambda t: False) -> HostReadCounter:
    return CudaSyncCounter() if device.type == "cuda" else HostReadCounter(host_resident=host_resident)


def sync_table(counter: HostReadCounter, steps: int, device: torch.device) -> dict:
    """Syncs per (file, line) with their count per step, and how many fall outside the allowed places."""
    allowed = ALLOWED
    rows = []
    for (file, line, function, op), count in counter.places().most_common():
        rows.append({"where": f"{file}:{line}", "function": function, "op": op, "count": count,
                     "per_step": round(count / steps, 5) if steps else None, "allowed": (file, function) in allowed})
    outside = sum(r["count"] for r in rows if not r["allowed"])
    return {"steps": steps, "syncs": rows, "per_step": round(sum(r["count"] for r in rows) / steps, 5) if steps else None, "outside_allowed": outside}


def sync_report(syncs: dict, device: torch.device) -> dict:
    """--sync-debug: syncs per (file, line) per case, per step, and whether any is outside the allowed places."""
    cases: dict = {}
    for (bs, case), (counter, steps) in syncs.items():
        cases.setdefault(bs, {})[case] = sync_table(counter, steps, device)
    outside = sum(c["outside_allowed"] for by_case in cases.values() for c in by_case.values())
    return {
        "counter": "torch.cuda.set_sync_debug_mode('warn')" if device.type == "cuda" else
                   "benchmarks.host_reads.HostReadCounter: what a GPU run would wait for, nntui's probes on their torch "
                   "kernels (a GPU's code path) instead of numpy views; the counter's overhead makes these runs' steps/s meaningless",
        "allowed": {f"{f} {fn}": why for (f, fn), why in ALLOWED.items()},
        "cases": cases, "outside_allowed": outside, "holds": outside == 0,
    }


def print_syncs(report: dict) -> int:
    for bs, by_case in report["cases"].items():
        for case, table in by_case.items():
            print(f"syncs bs {bs} ({case}): {table['per_step']} per step over {table['steps']} steps")
            for row in table["syncs"]:
                print(f"  {row['count']:>6} {row['per_step']:>9} /step  {row['where']} {row['function']} ({row['op']}){'' if row['allowed'] else '  NOT ALLOWED'}")
    if not report["holds"]:
        print(f"error: {report['outside_allowed']} host syncs outside the allowed places (marked NOT ALLOWED above)", file=sys.stderr)
        return 1
    return 0
