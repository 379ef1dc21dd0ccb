"""Where a probe's time goes: nntui's trainer with probes every step, its probe methods timed.

    python -m benchmarks.probe_cost                 # batch 32, 4 s
    python -m benchmarks.probe_cost --batch-size 256 --seconds 6
    python -m benchmarks.probe_cost --probe-every 10   # the cost of a finer probe interval
    python -m benchmarks.probe_cost --device cuda:0

Prints milliseconds per training step spent in each part (the timers add a few microseconds per call),
next to the same run without probes, so the difference is the probes' whole cost, cache effects included.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import Counter, defaultdict

from benchmarks.nntui_cases import nntui_loop
from nntui import runner
from nntui.engine import probes, train
from nntui.errors import NntuiError

TIMED = [
    (train.VariantRun, "_train_step", "training step (with capture and snapshot)"),
    (probes.Probe, "before_step", "  weight snapshot before the optimizer step"),
    (probes.Probe, "collect", "reductions (collect)"),
    (train.VariantRun, "_read_block", "the block's read-back (losses, probes, eval) and decoding"),
    (runner.Run, "emit", "events: log, state, listeners"),
]


def timed(seconds: float, batch_size: int, probe_every: int, device: str = "cpu") -> tuple[float, dict[str, float]]:
    total: dict[str, float] = defaultdict(float)
    calls: Counter = Counter()
    originals = []
    for owner, name, label in TIMED:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        @functools.wraps(original)
        def wrapper(*args, __original=original, __label=label, **kwargs):
            start = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                total[__label] += time.perf_counter() - start
                calls[__label] += 1

        setattr(owner, name, wrapper)
    try:
        result = nntui_loop(batch_size, device, seconds, 100, probe_every=probe_every)
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    steps = calls[TIMED[0][2]]
    return result["steps_per_second"], {label: total[label] / steps * 1e3 for _, _, label in TIMED}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--probe-every", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu); on a GPU the timers time kernel launches, not the kernels")
    args = parser.parse_args()
    try:
        device = str(runner.resolve_device(args.device)[0])
    except NntuiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for probe_every, what in ((args.probe_every, f"probes every {args.probe_every} steps"), (1_000_000, "no probes after step 1")):
        speed, parts = timed(args.seconds, args.batch_size, probe_every, device)
        print(f"{device}, batch {args.batch_size}, {what}: {speed:.0f} steps/s ({1e3 / speed:.3f} ms per step, timers included)")
        for label, ms in parts.items():
            print(f"  {label:58s} {ms:.3f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
