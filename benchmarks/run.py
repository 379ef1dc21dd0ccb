"""nntui's speed and memory against a bare PyTorch loop and the lecture's loop, in one process.

    python -m benchmarks.run                      # the default benchmark (a few minutes on 2 CPU cores)
    python -m benchmarks.run --quick              # a smoke run: a few steps of everything
    python -m benchmarks.run --device cuda --sync-debug

Prints a table and writes a JSON file (default benchmarks/results/latest.json) with the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from nntui.errors import NntuiError
from nntui.runner import resolve_device
from benchmarks import host_reads, loops, nntui_cases

CASES = {
    "a": "bare PyTorch loop (one tensor, index slices, loss read per epoch)",
    "b": "lecture loop (torchvision MNIST + DataLoader(num_workers=2) + numpy hooks every step)",
    "c": "nntui trainer, preset's default probes",
    "d": "nntui trainer, probes every step",
    "e": "nntui trainer with the dashboard attached",
}
SYNC_CASES = "acd"  # the hot loops --sync-debug counts in
RATIOS = {"c/a": 0.8, "d/a": 0.6, "c/b": 6.0, "e/c": 0.9}  # ratio: target (at least)
RSS_TARGET_MB = 100.0
RSS_HORIZON = 100_000
LR_FIND_TARGET_S = 10.0
LR_FIND_PRESET = "batchnorm"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


# ---------------------------------------------------------------- machine

def machine_info(device: torch.device) -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1) if hasattr(os, "sysconf") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------- RSS over a long run

def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_child(steps: int, batch_size: int, device: str, warmup: int) -> dict:
    """Runs in a fresh process: nntui with the default probes for `steps` steps, RSS sampled per block."""
    from nntui.record import events as ev

    samples: list[tuple[int, float, float]] = []  # (step, VmRSS MiB, VmHWM MiB)

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.Steps):
            step = event.first_step + len(event.losses) - 1
            samples.append((step, _rss_kib("VmRSS") / 1024, _rss_kib("VmHWM") / 1024))

    with tempfile.TemporaryDirectory(prefix="nntui-bench-rss-") as out:
        run = nntui_cases.make_run(batch_size, device, Path(out), extra=["epochs=100000", f"max_steps={steps}"])
        run.listeners.append(on_event)
        started = time.perf_counter()
        run.execute()
        wall = time.perf_counter() - started
        log_mb = (run.run_dir / "events.jsonl").stat().st_size / 2**20
    base = next(s for s in samples if s[0] >= warmup)
    end = samples[-1]
    half = [s for s in samples if s[0] >= (base[0] + end[0]) / 2]
    measured_steps = end[0] - base[0]
    growth = end[2] - base[1]  # peak at the end over the resident size once warmed up
    # slope of resident size over the second half (MiB per step), by least squares
    xs, ys = [s[0] for s in half], [s[1] for s in half]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0
    return {
        "steps": end[0],
        "warmup_steps": base[0],
        "wall_seconds": round(wall, 2),
        "rss_after_warmup_mib": round(base[1], 1),
        "peak_rss_end_mib": round(end[2], 1),
        "peak_growth_measured_mib": round(growth, 2),
        "measured_over_steps": measured_steps,
        "second_half_slope_mib_per_10k_steps": round(slope * 10_000, 3),
        "events_log_mib": round(log_mb, 2),
    }


def measure_rss(steps: int, batch_size: int, device: str, warmup: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.run", "--rss-child", str(steps), "--device", device, "--rss-batch-size", str(batch_size), "--warmup", str(warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-2000:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    scale = (RSS_HORIZON - result["warmup_steps"]) / max(result["measured_over_steps"], 1)
    measured_full = result["steps"] >= RSS_HORIZON
    # linear extrapolation of the whole measured growth: an upper bound when growth flattens out
    result["peak_growth_100k_mib"] = round(result["peak_growth_measured_mib"] * (1 if measured_full else scale), 2)
    result["extrapolated"] = not measured_full
    result["method"] = (
        f"peak RSS (VmHWM) at the end minus RSS after {result['warmup_steps']} warm-up steps, fresh process, "
        + ("measured over 100k steps" if measured_full else f"measured over {result['measured_over_steps']} steps and scaled linearly ×{scale:.2f} to 100k")
    )
    result["target_mib"] = RSS_TARGET_MB
    result["holds"] = result["peak_growth_100k_mib"] < RSS_TARGET_MB
    return result


# ---------------------------------------------------------------- lr-find

def measure_lr_find(device: str, extra: list[str]) -> dict:
    exe = shutil.which("nntui", path=str(Path(sys.executable).parent)) or shutil.which("nntui")
    base = [exe] if exe else [sys.executable, "-m", "nntui"]
    probe = subprocess.run([*base, "lr-find", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        return {"status": "pending", "reason": "`nntui lr-find` does not exist yet"}
    cmd = [*base, "lr-find", LR_FIND_PRESET, "--device", device, *extra]
    with tempfile.TemporaryDirectory(prefix="nntui-bench-lrfind-") as tmp:
        env = {**os.environ, "NNTUI_HEADLESS": "1"}
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, env=env)
        wall = time.perf_counter() - started
    result = {"command": " ".join(["nntui", *cmd[len(base):]]), "wall_seconds": round(wall, 2), "exit_code": proc.returncode,
              "target_s": LR_FIND_TARGET_S, "holds": proc.returncode == 0 and wall <= LR_FIND_TARGET_S}
    if proc.returncode != 0:
        result["status"] = "failed"
        result["stderr"] = proc.stderr.strip()[-1500:]
    else:
        result["status"] = "measured"
    return result


# ---------------------------------------------------------------- the speed table

def policy_threads(batch_size: int, device: torch.device) -> int | None:
    """What nntui's trainer picks for this model and batch size (None: torch's own setting)."""
    from types import SimpleNamespace

    from nntui.engine.train import cpu_threads_for

    linears = [m for m in loops.SimpleMNIST_NN(loops.HIDDEN).modules() if isinstance(m, torch.nn.Linear)]
    return cpu_threads_for([SimpleNamespace(device=device, batch_size=batch_size, model=SimpleNamespace(linears=linears))])


@contextmanager
def nntui_settings(batch_size: int, device: torch.device):
    """The thread count and denormal flushing that nntui's trainer uses, for the reference loops too,
    so that the ratios measure nntui's overhead rather than its process settings."""
    threads, previous = policy_threads(batch_size, device), torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        if threads is not None:
            torch.set_num_threads(previous)


def run_case(case: str, batch_size: int, args, device: torch.device, data, lecture_data, syncs: dict | None = None) -> dict:
    # b is the lecture's loop as students run it, so it keeps torch's own process settings;
    # --lecture-tuned gives it nntui's (1 thread, denormals flushed) instead.
    tuned = "ab" if args.lecture_tuned else "a"
    counted = syncs is not None and case in SYNC_CASES
    counter = syncs.setdefault((str(batch_size), case), [host_reads.counter_for(device), 0]) if counted else None
    with nntui_settings(batch_size, device) if case in tuned else nullcontext(), counter[0] if counter else nullcontext():
        result = _run_case(case, batch_size, args, device, data, lecture_data)
    if counter:
        counter[1] += result.get("total_steps", result["steps"] + args.warmup)
    return result


def _run_case(case: str, batch_size: int, args, device: torch.device, data, lecture_data) -> dict:
    seconds, warmup = args.seconds, args.warmup
    if case == "a":
        return loops.bare_loop(data.x_train, data.y_train, batch_size, device, seconds, warmup)
    if case == "b":
        return loops.lecture_loop(lecture_data.root, batch_size, device, seconds, warmup, num_workers=args.lecture_workers)
    if case == "c":
        return nntui_cases.nntui_loop(batch_size, str(device), seconds, warmup, torch_probes=args.sync_debug)
    if case == "d":
        return nntui_cases.nntui_loop(batch_size, str(device), seconds, warmup, probe_every=1, torch_probes=args.sync_debug)
    if case == "e":
        return nntui_cases.nntui_dashboard_loop(batch_size, str(device), seconds, warmup)
    raise ValueError(case)


def summarise(raw: dict[str, dict[str, list[dict]]]) -> dict:
    out = {}
    for bs, cases in raw.items():
        med = {c: statistics.median(r["steps_per_second"] for r in runs) for c, runs in cases.items() if runs}
        ratios = {}
        for name, target in RATIOS.items():
            num, den = name.split("/")
            if num in med and den in med and med[den] > 0:
                value = med[num] / med[den]
                # the same ratio within each repetition (cases of one repetition ran back to back, under similar load)
                paired = statistics.median(n["steps_per_second"] / d["steps_per_second"] for n, d in zip(cases[num], cases[den]))
                ratios[name] = {"value": round(value, 3), "paired_median": round(paired, 3), "target": target, "holds": value >= target}
            else:
                ratios[name] = {"value": None, "paired_median": None, "target": target, "holds": None}
        out[bs] = {"median_steps_per_second": {c: round(v, 1) for c, v in med.items()},
                   "range_steps_per_second": {c: [round(min(r["steps_per_second"] for r in runs), 1), round(max(r["steps_per_second"] for r in runs), 1)] for c, runs in cases.items() if runs},
                   "ratios": ratios}
    return out


def format_table(summary: dict, results: dict) -> str:
    lines = []
    head = f"{'case':<4} {'what':<86} " + " ".join(f"{'bs ' + bs:>18}" for bs in summary)
    lines += [head, "-" * len(head)]
    for c, what in CASES.items():
        cells = []
        for bs, s in summary.items():
            if c in s["median_steps_per_second"]:
                lo, hi = s["range_steps_per_second"][c]
                cells.append(f"{s['median_steps_per_second'][c]:>8.0f} ({lo:.0f}-{hi:.0f})".rjust(18))
            else:
                cells.append(f"{'pending':>18}")
        lines.append(f"{c:<4} {what:<86} " + " ".join(cells))
    lines.append("")
    lines.append("steps/s: median (min-max) of the repetitions")
    for name, target in RATIOS.items():
        parts = []
        for bs, s in summary.items():
            r = s["ratios"][name]
            mark = "pending" if r["value"] is None else f"{r['value']:.2f} {'ok' if r['holds'] else 'MISS'}"
            parts.append(f"bs {bs}: {mark}")
        lines.append(f"{name:<4} ≥ {target:<4}  " + "   ".join(parts))
    rss = results.get("rss")
    if rss:
        if "error" in rss:
            lines.append(f"RSS  error: {rss['error'][-300:]}")
        else:
            lines.append(f"RSS  peak growth {rss['peak_growth_measured_mib']:.1f} MiB over {rss['measured_over_steps']} steps → "
                         f"{rss['peak_growth_100k_mib']:.1f} MiB per 100k steps{' (extrapolated)' if rss['extrapolated'] else ''} "
                         f"(< {RSS_TARGET_MB:.0f}: {'ok' if rss['holds'] else 'MISS'})")
    lr = results.get("lr_find")
    if lr:
        if lr["status"] == "measured":
            lines.append(f"lr-find  {lr['wall_seconds']:.1f} s wall for `{lr['command']}` (≤ {LR_FIND_TARGET_S:.0f}: {'ok' if lr['holds'] else 'MISS'})")
        else:
            lines.append(f"lr-find  {lr['status']}: {lr.get('reason') or lr.get('stderr', '')[-300:]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--batch-sizes", default="32,256", help="comma-separated (default 32,256)")
    p.add_argument("--cases", default="abcde", help="which of a b c d e to time (default all)")
    p.add_argument("--repeats", type=int, default=3, help="repetitions per case; medians are reported (default 3)")
    p.add_argument("--seconds", type=float, default=2.5, help="timed seconds per repetition (default 2.5)")
    p.add_argument("--warmup", type=int, default=100, help="untimed steps before each timing window (default 100)")
    p.add_argument("--lecture-workers", type=int, default=2, help="DataLoader workers in the lecture loop (default 2, as in the lecture)")
    p.add_argument("--lecture-epoch", type=int, default=60_000, help="tile the digits to this many training images for the lecture loop, "
                   "so its DataLoader restarts once per MNIST-sized epoch as in the lecture (default 60000)")
    p.add_argument("--rss-steps", type=int, default=20_000, help="steps of the RSS run (default 20000, scaled to 100k; 0 skips)")
    p.add_argument("--rss-batch-size", type=int, default=32)
    p.add_argument("--no-lr-find", action="store_true", help="skip timing `nntui lr-find`")
    p.add_argument("--lr-find-args", default="", help="extra arguments for `nntui lr-find` (space separated)")
    p.add_argument("--lecture-tuned", action="store_true", help="run the lecture loop (b) with nntui's thread and denormal settings too")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads for every case (default: torch's own choice)")
    p.add_argument("--sync-debug", action="store_true", help="count host syncs per (file, line) in the a/c/d loops into the JSON; exit 1 on any "
                   "outside the allowed places (CUDA: torch.cuda.set_sync_debug_mode; CPU: benchmarks.host_reads)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 repetition, 0.3 s windows, 20 warm-up steps, no tiling, short RSS run, no lr-find")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file to write (default {DEFAULT_OUT.relative_to(Path.cwd()) if DEFAULT_OUT.is_relative_to(Path.cwd()) else DEFAULT_OUT})")
    p.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.threads:  # every case, nntui included (its trainer leaves the count alone when OMP_NUM_THREADS is set)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    if args.rss_child is not None:
        print(json.dumps(rss_child(args.rss_child, args.rss_batch_size, args.device, args.warmup)))
        return 0
    if args.quick:
        args.repeats, args.seconds, args.warmup, args.lecture_epoch = 1, 0.3, 20, 4000
        args.rss_steps = min(args.rss_steps, 600) if args.rss_steps else 0
        args.no_lr_find = True

    try:
        device = resolve_device(args.device)[0]
    except NntuiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.device = str(device)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    cases = [c for c in args.cases if c in CASES]
    if "e" in cases and nntui_cases.dashboard_available() is None:
        print("note: (e) pending: nntui.tui.app has no app factory yet", file=sys.stderr)
        cases.remove("e")

    from nntui.engine.data import load_mnist_5k
    import numpy as np
    from importlib import resources

    data = load_mnist_5k()
    with resources.files("nntui").joinpath("data/mnist_5k.npz").open("rb") as f:
        arrays = dict(np.load(f))
    lecture_data = loops.LectureData(arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"], args.lecture_epoch) if "b" in cases else None

    results: dict = {
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(device),
        "load_average_before": load_average(),
        "settings": {"batch_sizes": batch_sizes, "cases": cases, "repeats": args.repeats, "seconds": args.seconds, "warmup": args.warmup,
                     "model": "784-100-100-100-10 sigmoid", "optimizer": "SGD lr 1e-3", "dataset": "mnist-5k (4,000 train digits)",
                     "lecture_train_images": lecture_data.train_size if lecture_data else None, "lecture_workers": args.lecture_workers,
                     "nntui_preset": f"{nntui_cases.PRESET} / {nntui_cases.VARIANT}",
                     "intraop_threads": {str(bs): policy_threads(bs, device) or torch.get_num_threads() for bs in batch_sizes},
                     "lecture_loop_settings": "nntui's (tuned)" if args.lecture_tuned else f"torch's defaults ({torch.get_num_threads()} threads, no denormal flush)",
                     "flush_denormal": "on while training in a, c, d, e (nntui's trainer setting)" + (" and b" if args.lecture_tuned else "")},
        "cases": {c: CASES[c] for c in cases},
    }
    raw: dict[str, dict[str, list[dict]]] = {str(bs): {c: [] for c in cases} for bs in batch_sizes}
    syncs: dict | None = {} if args.sync_debug else None
    try:
        for rep in range(args.repeats):  # interleaved, so a change in machine load hits every case alike
            for bs in batch_sizes:
                for c in cases:
                    r = run_case(c, bs, args, device, data, lecture_data, syncs)
                    raw[str(bs)][c].append(r)
                    print(f"rep {rep + 1}/{args.repeats} bs {bs:>4} ({c}) {r['steps_per_second']:8.1f} steps/s", file=sys.stderr, flush=True)
    finally:
        if lecture_data:
            lecture_data.close()
    results["raw"] = raw
    results["summary"] = summarise(raw)
    if "e" not in cases:
        results["pending"] = ["e: the dashboard (nntui.tui.app app factory) is not available"] if "e" in args.cases else []
    if args.rss_steps:
        print(f"RSS: {args.rss_steps} steps in a fresh process …", file=sys.stderr, flush=True)
        results["rss"] = measure_rss(args.rss_steps, args.rss_batch_size, args.device, warmup=min(1000, args.rss_steps // 5))
    if not args.no_lr_find:
        print("lr-find …", file=sys.stderr, flush=True)
        results["lr_find"] = measure_lr_find(args.device, args.lr_find_args.split())
    if syncs is not None:
        results["sync_debug"] = host_reads.sync_report(syncs, device)
    results["load_average_after"] = load_average()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(format_table(results["summary"], results))
    print(f"\nraw figures: {args.out}")
    if syncs is not None:
        return host_reads.print_syncs(results["sync_debug"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
