"""Host reads per step (0), per probe (0) and per block (1), counted by benchmarks.host_reads.

On a GPU every host read is a synchronisation; this checks on every CI run, without a GPU, that the
training loop reads back only once per block. The probes run their torch kernels (the GPU code path)
instead of the CPU's numpy views. NNTUI_TEST_DEVICE=cuda runs the same checks on a GPU.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest
import torch

from benchmarks.host_reads import HostReadCounter, optimizer_step_counters
from nntui.engine.probes import Probe
from nntui.engine.train import VariantRun
from nntui.presets import load_preset
from nntui.runner import RunOptions, prepare_run

DEVICE = os.environ.get("NNTUI_TEST_DEVICE", "cpu")
IMAGES = ["data.train_limit=400", "epochs=20", "test_every_epochs=4", "eval_every=60"]  # 13 steps an epoch: blocks run across epoch ends
CASES = {  # what: (preset, variant, overrides, steps)
    "SGD": ("optimizers", "SGD", IMAGES, 130),
    "Adam": ("optimizers", "Adam", IMAGES, 130),
    "BatchNorm": ("batchnorm", "BN lr 1e-2", IMAGES, 130),
    "dropout": ("dropout-mnist", "dropout 0.5", IMAGES, 130),
    "full-batch": ("dropout-overfit", "dropout 0.5/0.2", [], 150),
    "MC-dropout": ("mc-dropout", "dropout 0.5/0.2", [], 150),
}


def phased(counter: HostReadCounter, owner, name: str, phase: str, patch) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        with counter.during(phase):
            return original(*args, **kwargs)

    patch.setattr(owner, name, wrapper)


def counted_run(tmp_path: Path, preset: str, variant: str, overrides: list[str], steps: int, monkeypatch):
    """Train the variant with every host read counted: (counter, reads per block that trained, steps)."""
    run = prepare_run(load_preset(preset, overrides), RunOptions(device=DEVICE, out=tmp_path, max_steps=steps, variants=[variant]))
    for r in run.runs:
        r.probe.prefer_numpy = False  # the torch kernels a GPU runs
    counter = HostReadCounter(host_resident=optimizer_step_counters(r.optimizer for r in run.runs))
    phased(counter, VariantRun, "_train_step", "step", monkeypatch)
    for method in ("attach", "detach", "before_step", "collect"):
        phased(counter, Probe, method, "probe", monkeypatch)
    per_block: list[int] = []
    run_block = VariantRun.run_block

    def counted_block(self, emit, stop):
        before, reads_before = self.step, len(counter.in_phase("block"))
        with counter.during("block"):
            run_block(self, emit, stop)
        if self.step > before:
            per_block.append(len(counter.in_phase("block")) - reads_before)

    monkeypatch.setattr(VariantRun, "run_block", counted_block)
    with counter:
        summary = run.execute()
    assert summary["status"] == "completed", summary
    return counter, per_block, run.runs[0].step


@pytest.mark.parametrize("case", CASES)
def test_one_host_read_per_block_none_per_step_or_probe(case, tmp_path, monkeypatch, one_thread):
    preset, variant, overrides, steps = CASES[case]
    counter, per_block, trained = counted_run(tmp_path, preset, variant, overrides, steps, monkeypatch)
    assert trained == steps
    assert counter.in_phase("step") == [], "host reads in the training step"
    assert counter.in_phase("probe") == [], "host reads while probing"
    assert per_block and set(per_block) == {1}, f"host reads per block: {per_block} at {counter.places()}"
    places = {(r.file, r.function) for r in counter.in_phase("block")}
    assert places == {("nntui/engine/train.py", "VariantRun._read_block")}
    if preset in ("dropout-overfit", "mc-dropout"):  # 1 step per epoch: blocks of 50 across epoch ends
        assert len(per_block) <= -(-steps // 50), per_block


def test_a_per_step_read_is_caught(tmp_path, monkeypatch, one_thread):
    """The counter is not blind: an .item() (or a .tolist(), a float(), an `if tensor`, a masked
    selection) added to the training step is reported there, with its line."""
    train_step = VariantRun._train_step
    reads = [lambda t: t.item(), lambda t: t.tolist(), lambda t: float(t), lambda t: bool(t > 0), lambda t: t[t > 0]]
    for read in reads:
        def with_read(self, slot, probe, read=read):
            train_step(self, slot, probe)
            read(self.loss_buffer[slot])

        monkeypatch.setattr(VariantRun, "_train_step", with_read)
        counter, _, trained = counted_run(tmp_path, "dropout-overfit", "no dropout", [], 60, monkeypatch)
        in_step = counter.in_phase("step")
        assert len(in_step) == trained, (read, counter.places())
        assert {r.file for r in in_step} == {"tests/test_host_reads.py"}
        monkeypatch.undo()


def test_step_counters_of_adam_are_host_resident_and_a_device_read_is_not():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), foreach=True)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    resident = optimizer_step_counters([opt])
    assert all(resident(s["step"]) for s in opt.state.values())
    assert not resident(model.weight.sum())
    counter = HostReadCounter(host_resident=resident)
    with counter:
        opt.step()  # Adam reads its CPU step counters: not a device read
        model.weight.sum().item()
    assert [r.op for r in counter.reads] == ["item"]


def test_benchmark_sync_debug_counts_per_line_and_fails_outside_the_allowed_places(tmp_path, monkeypatch, capsys):
    from benchmarks import run as bench

    out = tmp_path / "bench.json"
    argv = ["--quick", "--cases", "c", "--batch-sizes", "32", "--rss-steps", "0", "--sync-debug", "--device", DEVICE, "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())["sync_debug"]
    table = report["cases"]["32"]["c"]
    assert report["holds"] and table["outside_allowed"] == 0 and table["steps"] >= 100
    assert [(row["function"], row["allowed"]) for row in table["syncs"]] == [("VariantRun._read_block", True)]
    blocks = -(-table["steps"] // 50)  # blocks of 50 steps, and one more at each epoch end (125 steps) that tests
    assert blocks <= table["syncs"][0]["count"] <= blocks + -(-table["steps"] // 125)

    train_step = VariantRun._train_step
    monkeypatch.setattr(VariantRun, "_train_step", lambda self, slot, probe: (train_step(self, slot, probe), self.loss_buffer[slot].item()))
    assert bench.main(argv) == 1
    report = json.loads(out.read_text())["sync_debug"]
    [bad] = [row for row in report["cases"]["32"]["c"]["syncs"] if not row["allowed"]]
    assert bad["where"].startswith("tests/test_host_reads.py:") and bad["per_step"] == 1.0
    assert "host syncs outside the allowed places" in capsys.readouterr().err
