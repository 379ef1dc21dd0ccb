"""The benchmark JSON as the markdown tables of BENCHMARKS.md (figures are never typed by hand).

    python -m benchmarks.report benchmarks/results/latest.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.run import CASES, LR_FIND_TARGET_S, RATIOS, RSS_TARGET_MB


def to_markdown(r: dict) -> str:
    m = r["machine"]
    bss = list(r["summary"])
    out = [
        f"Measured {r['started_at']} with `{r['command'].strip()}`",
        "",
        f"Machine: {m['cpu']}, {m['cpu_cores']} cores, {m['memory_gib']} GiB, {m['platform']}; Python {m['python']}, torch {m['torch']}, "
        f"device {m['device']}; nntui's intra-op threads per batch size {r['settings'].get('intraop_threads')}; "
        f"lecture loop (b) with {r['settings'].get('lecture_loop_settings', 'nntui settings')}; "
        f"load average before/after {r.get('load_average_before')} / {r.get('load_average_after')}.",
        "",
        "| case | what | " + " | ".join(f"bs {bs}: steps/s median (min–max)" for bs in bss) + " |",
        "|---|---|" + "---|" * len(bss),
    ]
    for c, what in CASES.items():
        cells = []
        for bs in bss:
            s = r["summary"][bs]
            if c in s["median_steps_per_second"]:
                lo, hi = s["range_steps_per_second"][c]
                cells.append(f"{s['median_steps_per_second'][c]:.0f} ({lo:.0f}–{hi:.0f})")
            else:
                cells.append("pending")
        out.append(f"| {c} | {what} | " + " | ".join(cells) + " |")
    out += ["", "| ratio | target | " + " | ".join(f"bs {bs}" for bs in bss) + " |", "|---|---|" + "---|" * len(bss)]
    for name, target in RATIOS.items():
        cells = []
        for bs in bss:
            x = r["summary"][bs]["ratios"][name]
            paired = f" (paired {x['paired_median']:.2f})" if x.get("paired_median") is not None else ""
            cells.append("pending" if x["value"] is None else f"{x['value']:.2f} {'✓' if x['holds'] else '✗'}{paired}")
        out.append(f"| {name} | ≥ {target} | " + " | ".join(cells) + " |")
    rss = r.get("rss")
    out.append("")
    if rss and "error" not in rss:
        out.append(f"- **RSS**: peak growth {rss['peak_growth_measured_mib']:.1f} MiB over {rss['measured_over_steps']:,} steps "
                   f"(batch 32, default probes, {rss['wall_seconds']:.0f} s) → **{rss['peak_growth_100k_mib']:.1f} MiB per 100k steps** "
                   f"{'(linear extrapolation, an upper bound if growth flattens)' if rss['extrapolated'] else ''} "
                   f"(target < {RSS_TARGET_MB:.0f}: {'✓' if rss['holds'] else '✗'}). Slope over the second half: "
                   f"{rss['second_half_slope_mib_per_10k_steps']:.2f} MiB per 10k steps; run log on disk {rss['events_log_mib']:.1f} MiB. Method: {rss['method']}.")
    elif rss:
        out.append(f"- **RSS**: error: {rss['error'][-300:]}")
    lr = r.get("lr_find")
    if lr and lr.get("status") == "measured":
        out.append(f"- **lr-find**: `{lr['command']}` took **{lr['wall_seconds']:.1f} s** wall, process start included (target ≤ {LR_FIND_TARGET_S:.0f} s: {'✓' if lr['holds'] else '✗'}).")
    elif lr:
        out.append(f"- **lr-find**: {lr.get('status')}: {lr.get('reason') or lr.get('stderr', '')[-300:]}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else Path(__file__).resolve().parent / "results" / "latest.json"
    print(to_markdown(json.loads(path.read_text())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
