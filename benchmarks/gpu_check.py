"""Everything a first GPU needs checked, in one command:

    python -m benchmarks.gpu_check                     # on a CUDA machine (cuda:0), ~15-30 minutes
    python -m benchmarks.gpu_check --device cuda:1
    python -m benchmarks.gpu_check --dry-run --quick   # the plumbing on the CPU (not GPU figures)

1. the device-parametrised tests on the GPU (NNTUI_TEST_DEVICE=cuda:N: host reads per step/probe/block,
   CPU/GPU parity of batch order, dropout masks, probe statistics and losses);
2. host syncs per (file, line) per step in the benchmark's hot loops (`benchmarks.run --sync-debug`);
3. the benchmark's absolute steps/s and its ratios, c/a >= 0.8 and c/b >= 10 on a GPU;
4. each preset's finding, trained on the GPU.

Prints a report and writes JSON (default benchmarks/results/gpu_check.json); exits 0 when every check
holds, 1 when one does not, 2 when there is no CUDA device (without --dry-run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu_check.json"
DEVICE_TESTS = ["tests/test_host_reads.py", "tests/test_parity.py"]
GPU_RATIOS = {"c/a": 0.8, "c/b": 10.0}


def sh(cmd: list[str], env: dict | None = None, timeout: float | None = None) -> tuple[int, str, float]:
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out = 124, f"timed out after {timeout} s\n{exc.stdout or ''}"
    return code, out, round(time.perf_counter() - started, 1)


def run_tests(device: str, quick: bool) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *DEVICE_TESTS]
    if quick:
        cmd += ["-k", "full-batch or MC-dropout or parity or drawn or same_seed or probe_statistics"]
    code, out, wall = sh(cmd, env={"NNTUI_TEST_DEVICE": device, "NNTUI_HEADLESS": "1"})
    return {"command": f"NNTUI_TEST_DEVICE={device} " + " ".join(["python", *cmd[1:]]), "exit_code": code, "wall_seconds": wall,
            "summary": out.strip().splitlines()[-1] if out.strip() else "", "holds": code == 0, **({"output": out[-3000:]} if code else {})}


def run_benchmark(device: str, quick: bool, tmp: Path, sync_debug: bool, judge_ratios: bool = True) -> dict:
    out = tmp / ("syncs.json" if sync_debug else "bench.json")
    cmd = [sys.executable, "-m", "benchmarks.run", "--device", device, "--out", str(out)]
    if sync_debug:
        cmd += ["--sync-debug", "--quick", "--cases", "acd", "--rss-steps", "0"]
    elif quick:
        cmd += ["--quick"]
    code, text, wall = sh(cmd)
    result = {"command": " ".join(["python", *cmd[1:]]).replace(str(out), "OUT.json"), "exit_code": code, "wall_seconds": wall}
    if not out.exists():
        return {**result, "holds": False, "output": text[-3000:]}
    figures = json.loads(out.read_text())
    if sync_debug:
        return {**result, **figures["sync_debug"], "holds": code == 0 and figures["sync_debug"]["holds"]}
    ratios = {}
    for bs, summary in figures["summary"].items():
        med = summary["median_steps_per_second"]
        for name, target in GPU_RATIOS.items():
            num, den = name.split("/")
            value = med[num] / med[den] if med.get(num) and med.get(den) else None
            ratios.setdefault(bs, {})[name] = {"value": None if value is None else round(value, 3), "target": target, "holds": value is not None and value >= target}
    holds = code == 0 and (not judge_ratios or all(r["holds"] for by_bs in ratios.values() for r in by_bs.values()))
    return {**result, "machine": figures["machine"], "median_steps_per_second": {bs: s["median_steps_per_second"] for bs, s in figures["summary"].items()},
            "ratios": ratios, "rss": figures.get("rss"), "lr_find": figures.get("lr_find"), "holds": holds}


def run_presets(device: str, names: list[str], quick: bool, tmp: Path, dry_run: bool = False) -> dict:
    results = {}
    for name in names:
        cmd = [sys.executable, "-m", "nntui", "run", name, "--headless", "--json", "--device", device, "--out", str(tmp / "runs")]
        if quick:
            cmd += ["--max-steps", "60"]
        code, text, wall = sh(cmd, env={"NNTUI_HEADLESS": "1"})
        entry: dict = {"exit_code": code, "wall_seconds": wall}
        try:
            summary = json.loads(text[text.index("{"):text.rindex("}") + 1]) if code == 0 else None
        except ValueError:
            summary = None
        if summary:
            entry.update(status=summary["status"], reproduced=summary["reproduced"], finding=summary.get("finding"), device=summary.get("device"),
                         steps_per_second={v["name"]: v.get("steps_per_second") for v in summary["variants"]})
        else:
            entry["output"] = text[-1500:]
        entry["holds"] = bool(summary) and (quick or dry_run or summary["reproduced"] is True)
        results[name] = entry
        print(f"  {name}: {'ok' if entry['holds'] else 'MISS'} reproduced={entry.get('reproduced')} ({wall:.0f} s)", file=sys.stderr, flush=True)
    return {"presets": results, "holds": all(r["holds"] for r in results.values())}


def preset_names() -> list[str]:
    from nntui.presets import available_presets

    return sorted(available_presets())


def report(result: dict) -> str:
    lines = [f"gpu_check on {result['device']} ({result.get('gpu') or 'no GPU'}), torch {result['torch']}"
             + ("  — DRY RUN on the CPU: plumbing only, not GPU figures" if result["dry_run"] else "")]
    checks = result["checks"]
    lines.append(f"tests        {'ok  ' if checks['tests']['holds'] else 'MISS'}  {checks['tests']['summary']}")
    syncs = checks["syncs"]
    lines.append(f"host syncs   {'ok  ' if syncs['holds'] else 'MISS'}  outside the allowed places: {syncs.get('outside_allowed')}")
    for bs, by_case in syncs.get("cases", {}).items():
        for case, table in by_case.items():
            where = ", ".join(f"{r['where']} {r['per_step']}/step" for r in table["syncs"]) or "none"
            lines.append(f"               bs {bs} ({case}) {table['per_step']} per step: {where}")
    bench = checks["benchmark"]
    lines.append(f"benchmark    {'ok  ' if bench['holds'] else 'MISS'}  steps/s {bench.get('median_steps_per_second')}")
    for bs, ratios in bench.get("ratios", {}).items():
        lines.append(f"               bs {bs}: " + "  ".join(f"{n} {r['value']} (≥ {r['target']})" for n, r in ratios.items()))
    presets = checks["presets"]
    missed = [n for n, r in presets["presets"].items() if not r["holds"]]
    judged = not (result["dry_run"] or result["quick"])
    lines.append(f"findings     {'ok  ' if presets['holds'] else 'MISS'}  {len(presets['presets']) - len(missed)}/{len(presets['presets'])} "
                 + ("reproduced" if judged else "ran (findings not judged: --quick or --dry-run)")
                 + (f"; not: {', '.join(missed)}" if missed else ""))
    lines.append(f"all checks hold: {result['holds']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda or cuda:N (default cuda)")
    p.add_argument("--dry-run", action="store_true", help="no GPU: run every step on the CPU to check the plumbing")
    p.add_argument("--quick", action="store_true", help="fewer tests, a --quick benchmark, presets cut to 60 steps (findings not judged)")
    p.add_argument("--presets", default="", help="comma-separated presets (default: all)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.dry_run:
        device = "cpu"
    elif not torch.cuda.is_available():
        print(f"error: no CUDA device is present here (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
              "run this on a GPU machine, or add --dry-run to check the plumbing on the CPU", file=sys.stderr)
        return 2
    else:
        from nntui.errors import NntuiError
        from nntui.runner import resolve_device

        try:
            device = str(resolve_device(args.device)[0])
        except NntuiError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    names = [n for n in args.presets.split(",") if n] or preset_names()
    if args.dry_run:
        print("DRY RUN: every check on the CPU, to prove the plumbing; ratios and findings are not judged", file=sys.stderr)
    result: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": device, "dry_run": args.dry_run, "quick": args.quick,
                    "torch": torch.__version__, "cuda": torch.version.cuda,
                    "gpu": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None, "checks": {}}
    with tempfile.TemporaryDirectory(prefix="nntui-gpu-check-") as tmp:
        for name, step in [("tests", lambda: run_tests(device, args.quick)),
                           ("syncs", lambda: run_benchmark(device, args.quick, Path(tmp), sync_debug=True)),
                           ("benchmark", lambda: run_benchmark(device, args.quick, Path(tmp), sync_debug=False, judge_ratios=not args.dry_run)),
                           ("presets", lambda: run_presets(device, names, args.quick, Path(tmp), args.dry_run))]:
            print(f"{name} …", file=sys.stderr, flush=True)
            result["checks"][name] = step()
    result["holds"] = all(c["holds"] for c in result["checks"].values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"\nJSON: {args.out}")
    return 0 if result["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
