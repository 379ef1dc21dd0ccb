"""The benchmark script runs end to end for a few steps and writes its JSON (figures are not judged here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_quick_run_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--cases", "abcd", "--batch-sizes", "32",
           "--rss-steps", "300", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    summary = result["summary"]["32"]
    assert set(summary["median_steps_per_second"]) == {"a", "b", "c", "d"}
    assert all(v > 0 for v in summary["median_steps_per_second"].values())
    assert {"c/a", "d/a", "c/b", "e/c"} <= summary["ratios"].keys()
    assert summary["ratios"]["c/a"]["value"] > 0
    assert summary["ratios"]["e/c"]["value"] is None  # (e) was not asked for
    assert "peak_growth_100k_mib" in result["rss"], result["rss"]
    assert "c/a" in proc.stdout  # the table was printed
