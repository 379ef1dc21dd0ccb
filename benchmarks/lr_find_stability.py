"""How still the LR range test's suggestions hold: the cyclic bounds over seeds × sweep lengths.

    python -m benchmarks.lr_find_stability [--datasets mnist-5k,fashion-mnist] [--data-dir DIR] [--json FILE]
        [--save-curves FILE | --from-curves FILE]

For each dataset: `nntui lr-find batchnorm` (its first variant) at seeds 0, 1, 2 × --num-iter 100, 300,
in-process; prints one row per dataset × bound with the min, the max and log10(max/min) in decades.
The target (issue 15): both bounds within 0.3 decades on every dataset.
--save-curves keeps every sweep's raw curve; --from-curves re-reads the bounds off stored curves with the
current lr_suggest rules, without sweeping again (for trying a rule on the same curves).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from nntui.engine.data import load_dataset
from nntui.engine.lr_finder import lr_find_for_config
from nntui.engine.lr_suggest import analyse
from nntui.presets import load_preset
from nntui.runner import RunOptions, apply_options

PRESET = "batchnorm"
SEEDS = (0, 1, 2)
NUM_ITERS = (100, 300)
TARGET_DECADES = 0.3
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def bounds_row(dataset: str, seed: int, num_iter: int, lrs: list[float], losses: list[float], ema: list[float],
               reference: list[float] | None) -> dict:
    found = analyse(lrs, losses, ema, reference)
    return {
        "dataset": dataset, "seed": seed, "num_iter": num_iter, "steps": len(lrs), "base_lr": found.base_lr, "max_lr": found.max_lr,
        "reliable": {k: v.get("reliable") for k, v in found.stability.items()} if found.stability else None,
        "decades": {k: v.get("decades") for k, v in found.stability.items()} if found.stability else None,
    }


def sweep_bounds(dataset: str, data_dir: Path | None, curves: list[dict], seeds: tuple[int, ...] = SEEDS) -> list[dict]:
    resolved = load_preset(PRESET)
    variant = next(iter(resolved.configs))
    device = torch.device("cpu")
    rows = []
    data = None
    for seed in seeds:
        cfg = apply_options(resolved, RunOptions(dataset=dataset, data_dir=data_dir, seed=seed, variants=[variant]))[variant]
        if data is None:
            data = load_dataset(cfg.data.name, data_dir, cfg.data.normalize, seed=0).to(device)
        for num_iter in NUM_ITERS:
            started = time.perf_counter()
            result = lr_find_for_config(variant, cfg, data.limit_train(cfg.data.train_limit), device, num_iter=num_iter)
            rows.append(bounds_row(dataset, seed, num_iter, result.lrs, result.losses, result.smoothed, result.reference))
            rows[-1]["seconds"] = round(time.perf_counter() - started, 2)
            curves.append({"dataset": dataset, "seed": seed, "num_iter": num_iter, "lrs": result.lrs,
                           "losses": [x if math.isfinite(x) else None for x in result.losses],
                           "smoothed": [x if math.isfinite(x) else None for x in result.smoothed],
                           "reference": [x if math.isfinite(x) else None for x in result.reference]})
            print(f"  {dataset} seed {seed} num_iter {num_iter}: base_lr {result.base_lr:.3g}  max_lr {result.max_lr:.3g}"
                  f"  ({rows[-1]['seconds']} s)", flush=True)
    return rows


def table(rows: list[dict]) -> list[dict]:
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for bound in ("base_lr", "max_lr"):
            values = [r[bound] for r in rows if r["dataset"] == dataset and r[bound] is not None]
            lo, hi = min(values), max(values)
            out.append({"dataset": dataset, "bound": bound, "runs": len(values), "min": lo, "max": hi,
                        "decades": round(math.log10(hi / lo), 2), "holds": math.log10(hi / lo) <= TARGET_DECADES})
    return out


def markdown(summary: list[dict]) -> str:
    lines = ["| dataset | bound | runs | min | max | decades (log10 max/min) |", "|---|---|---:|---:|---:|---:|"]
    for s in summary:
        mark = "✓" if s["holds"] else "✗"
        lines.append(f"| {s['dataset']} | {s['bound']} | {s['runs']} | {s['min']:.3g} | {s['max']:.3g} | {s['decades']:.2f} {mark} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mnist-5k,fashion-mnist")
    parser.add_argument("--data-dir", type=Path, default=None, help=f"for fashion-mnist (default {FASHION_DIR} when it exists)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run and the table here")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="the target is stated for 0,1,2; more seeds test a rule wider")
    parser.add_argument("--save-curves", type=Path, default=None, help="write every sweep's raw curve here (JSON)")
    parser.add_argument("--from-curves", type=Path, default=None, help="no sweeps: read the bounds off curves saved by --save-curves")
    parser.add_argument("--training-losses", action="store_true", help="with --from-curves: read the training batches' losses, not the reference batch's")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    rows: list[dict] = []
    curves: list[dict] = []
    if args.from_curves:
        nan = lambda xs: [math.nan if x is None else x for x in xs]  # noqa: E731
        for c in json.loads(args.from_curves.read_text()):
            if c["dataset"] in args.datasets.split(",") and str(c["seed"]) in args.seeds.split(","):
                reference = nan(c["reference"]) if c.get("reference") and not args.training_losses else None
                rows.append(bounds_row(c["dataset"], c["seed"], c["num_iter"], c["lrs"], nan(c["losses"]), nan(c["smoothed"]), reference))
                print(f"  {c['dataset']} seed {c['seed']} num_iter {c['num_iter']}: base_lr {rows[-1]['base_lr']:.3g}"
                      f"  max_lr {rows[-1]['max_lr']:.3g}  reliable {rows[-1]['reliable']}  band decades {rows[-1]['decades']}")
    for dataset in [] if args.from_curves else args.datasets.split(","):
        data_dir = args.data_dir or (FASHION_DIR if dataset == "fashion-mnist" and FASHION_DIR.is_dir() else None)
        rows += sweep_bounds(dataset, data_dir, curves, tuple(int(x) for x in args.seeds.split(",")))
        if args.save_curves:
            args.save_curves.write_text(json.dumps(curves) + "\n")
    summary = table(rows)
    print(markdown(summary))
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "table": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
