"""What nntui.watch costs a training loop: the same loop with and without it, interleaved.

    python -m benchmarks.watch_cost                       # lecture MLP and a small CNN, mnist-5k, CPU
    python -m benchmarks.watch_cost --rounds 9 --steps 300 --probe-every 50

Each round times `steps` plain steps and `steps` watched steps (alternating which goes first), on one
CPU thread; the figure is the median over rounds of watched / plain steps per second, in wall time and in this
process's CPU time. Medians, because a loaded machine's timings swing by tens of percent from one
round to the next; CPU time swings less.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import nntui
from nntui.engine.data import load_mnist_5k


def lecture_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 100), nn.Sigmoid(), nn.Linear(100, 100), nn.Sigmoid(), nn.Linear(100, 10))


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))


CASES = {"lecture MLP (784-100-100-10 sigmoid, SGD)": (lecture_mlp, "sgd"), "small CNN (2 conv + 2 fc, Adam)": (small_cnn, "adam")}


def loop(model, optimizer, x, y, steps: int, batch: int, run=None) -> tuple[float, float]:
    """(wall, CPU) seconds for `steps` training steps (the loss read back once at the end, as a real loop would).
    CPU time of this process is less swayed by other processes on a loaded machine than wall time."""
    n = len(x)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        lo = (i * batch) % (n - batch)
        loss = F.cross_entropy(model(x[lo : lo + batch]), y[lo : lo + batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if run is not None:
            run.log(loss=loss)
    loss.item()
    return time.perf_counter() - start, time.process_time() - cpu


def measure(make, opt_name: str, rounds: int, steps: int, batch: int, probe_every: int, out: Path) -> dict:
    data = load_mnist_5k()
    ratios, cpu_ratios, plain_sps, watched_sps = [], [], [], []
    for r in range(rounds):
        times = {}
        for watched in ((False, True) if r % 2 == 0 else (True, False)):
            torch.manual_seed(r)
            model = make()
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05) if opt_name == "sgd" else torch.optim.Adam(model.parameters(), lr=1e-3)
            loop(model, optimizer, data.x_train, data.y_train, 5, batch)  # warm-up, outside the timing
            if watched:
                with nntui.watch(model, optimizer, name="bench", out=out, probe_every=probe_every, quiet=True) as run:
                    times[True] = loop(model, optimizer, data.x_train, data.y_train, steps, batch, run)
            else:
                times[False] = loop(model, optimizer, data.x_train, data.y_train, steps, batch)
        plain_sps.append(steps / times[False][0])
        watched_sps.append(steps / times[True][0])
        ratios.append(times[False][0] / times[True][0])
        cpu_ratios.append(times[False][1] / times[True][1])
    return {"plain_steps_per_s": statistics.median(plain_sps), "watched_steps_per_s": statistics.median(watched_sps),
            "speed_ratio_median": statistics.median(ratios), "ratios": [round(x, 3) for x in ratios],
            "cpu_ratio_median": statistics.median(cpu_ratios), "cpu_ratios": [round(x, 3) for x in cpu_ratios]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--probe-every", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (make, opt_name) in CASES.items():
            results[label] = measure(make, opt_name, args.rounds, args.steps, args.batch_size, args.probe_every, Path(tmp))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"nntui.watch cost: {args.rounds} interleaved rounds of {args.steps} steps, batch {args.batch_size}, probe every {args.probe_every}, 1 CPU thread")
    for label, r in results.items():
        print(f"  {label}: plain {r['plain_steps_per_s']:.0f} steps/s, watched {r['watched_steps_per_s']:.0f} steps/s, "
              f"watched/plain median {r['speed_ratio_median']:.2f} wall (rounds: {', '.join(map(str, r['ratios']))}), "
              f"{r['cpu_ratio_median']:.2f} CPU time (rounds: {', '.join(map(str, r['cpu_ratios']))})")


if __name__ == "__main__":
    main()
