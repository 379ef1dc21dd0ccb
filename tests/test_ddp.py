"""nntui.watch under torchrun (DDP, gloo on the CPU): one run, from rank 0, from its all-reduced
gradients, and no collective of nntui's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch, torch.distributed as dist, torch.nn.functional as F
    from torch import nn
    import nntui

    out = sys.argv[1]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    calls = []
    for name in ("all_reduce", "broadcast", "all_gather", "all_gather_object", "gather", "reduce", "barrier",
                 "all_gather_into_tensor", "reduce_scatter", "scatter", "broadcast_object_list"):
        original = getattr(dist, name)
        def counting(*a, _original=original, _name=name, **k):
            calls.append(_name)
            return _original(*a, **k)
        setattr(dist, name, counting)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    grads = {}
    step = [0]
    def keep(optimizer, args, kwargs):
        step[0] += 1
        if step[0] in (1, 10, 20):
            grads[step[0]] = [m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)]
    opt.register_step_pre_hook(keep)
    g = torch.Generator().manual_seed(100 + rank)  # each rank its own data
    with nntui.watch(ddp, opt, name="ddp", out=out, probe_every=10, quiet=True) as run:
        for _ in range(25):
            x, y = torch.randn(16, 10, generator=g), torch.randint(0, 3, (16,), generator=g)
            opt.zero_grad()
            loss = F.cross_entropy(ddp(x), y)
            loss.backward()
            opt.step()
            run.log(loss=loss)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"grads": grads, "collectives": calls, "run_dir": str(run.run_dir) if run.run_dir else None}, f)
    dist.destroy_process_group()
''')


def _torchrun() -> list[str] | None:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        return None
    exe = shutil.which("torchrun") or (str(Path(sys.executable).with_name("torchrun")) if Path(sys.executable).with_name("torchrun").exists() else None)
    return [exe] if exe else [sys.executable, "-m", "torch.distributed.run"]


def test_under_torchrun_only_rank_0_writes_from_its_synchronised_gradients(tmp_path):
    command = _torchrun()
    if command is None:
        pytest.skip("torch.distributed with gloo is not available here")
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    out = tmp_path / "runs"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([*command, "--standalone", "--nproc_per_node", "2", str(script), str(out)],
                            capture_output=True, text=True, env=env, timeout=300)
    if result.returncode != 0 and "gloo" in result.stderr.lower() and "not" in result.stderr.lower():
        pytest.skip(f"gloo unusable here: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1 and ranks[0]["run_dir"] == str(runs[0]) and ranks[1]["run_dir"] is None
    assert ranks[0]["collectives"] == [] and ranks[1]["collectives"] == []
    # DDP all-reduced the gradients: both ranks hold the same ones, and the run shows rank 0's
    assert ranks[0]["grads"] == pytest.approx(ranks[1]["grads"], rel=1e-6)
    stats = {}
    for line in (runs[0] / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "layer_stats":
            stats[event["step"]] = [layer["grad_norm"] for layer in event["layers"]]
    assert sorted(stats) == [1, 10, 20]
    for step, norms in stats.items():
        assert norms == pytest.approx(ranks[0]["grads"][str(step)], rel=1e-5)
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["variants"][0]["steps"] == 25
    assert [layer["name"] for layer in summary["variants"][0]["layers"]] == ["0", "2", "4"]  # no "module." prefix
