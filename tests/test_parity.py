"""One seed, one run, whatever the device: batch order and dropout masks come from CPU generators.

On a CPU-only machine the device side is "meta" (shapes without values): drawing for it must consume
the CPU generator exactly as drawing for the CPU does. NNTUI_TEST_DEVICE=cuda compares real values.
"""

from __future__ import annotations

import os

import pytest
import torch

from nntui.engine.data import noisy_line
from nntui.engine.determinism import SeededDropout, epoch_order, pin_matmul_precision, seed_dropout
from nntui.engine.train import VariantRun
from nntui.presets import load_preset

DEVICE = torch.device(os.environ.get("NNTUI_TEST_DEVICE", "cpu"))
DEVICES = ["cpu", "meta", *([str(DEVICE)] if DEVICE.type != "cpu" else [])]


def draws_after(device: str, draw) -> tuple[torch.Tensor, torch.Tensor]:
    """(what `draw(generator, device)` returned, the CPU generator's state after it), the device's own
    generator seeded differently each time: it must not matter."""
    torch.manual_seed(hash(device) % 1000)
    generator = torch.Generator().manual_seed(7)
    out = draw(generator, torch.device(device))
    return out, generator.get_state()


@pytest.mark.parametrize("device", DEVICES)
def test_batch_order_is_drawn_on_the_cpu_whatever_the_device(device):
    reference, reference_state = draws_after("cpu", lambda g, d: torch.cat([epoch_order(100, g, d) for _ in range(3)]))
    order, state = draws_after(device, lambda g, d: torch.cat([epoch_order(100, g, d) for _ in range(3)]))
    assert order.device.type == torch.device(device).type and order.shape == (300,)
    assert torch.equal(state, reference_state)  # the same numbers were drawn
    assert sorted(reference[:100].tolist()) == list(range(100))
    if device != "meta":
        assert torch.equal(order.cpu(), reference)


@pytest.mark.parametrize("device", DEVICES)
def test_dropout_masks_are_drawn_on_the_cpu_whatever_the_device(device):
    def masks(generator, d):
        layer = SeededDropout(0.5, generator).train()
        return torch.stack([layer(torch.ones(4, 8, device=d)) for _ in range(3)])

    reference, reference_state = draws_after("cpu", masks)
    out, state = draws_after(device, masks)
    assert torch.equal(state, reference_state)
    assert set(reference.unique().tolist()) == {0.0, 2.0}  # inverted dropout: kept units scaled by 1/(1-p)
    assert not torch.equal(reference[0], reference[1])  # a new mask every call
    if device != "meta":
        assert torch.equal(out.cpu(), reference)


def test_a_variant_uses_seeded_dropout_and_keeps_its_order_across_global_seeds():
    cfg = load_preset("dropout-overfit", ["batch_size=10"]).configs["dropout 0.5/0.2"]
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        run = VariantRun("v", "", cfg, noisy_line(0), torch.device("cpu"), None)
        assert sum(isinstance(m, SeededDropout) for m in run.model.modules()) == 2
        assert not any(type(m) is torch.nn.Dropout for m in run.model.modules())
        x, _ = run._next_batch()
        run.model.train()
        runs.append((x, run.model(x)))
    (x0, out0), (x1, out1) = runs
    assert torch.equal(x0, x1) and torch.equal(out0, out1)


def test_seed_dropout_swaps_every_dropout_and_keeps_p():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.3), torch.nn.Sequential(torch.nn.Dropout(0.1)))
    assert seed_dropout(model, torch.Generator()) == 2
    assert [m.p for m in model.modules() if isinstance(m, SeededDropout)] == [0.3, 0.1]


def test_matmul_precision_is_pinned():
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_float32_matmul_precision("medium")
    try:
        pin_matmul_precision()
        assert torch.get_float32_matmul_precision() == "highest"
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        pin_matmul_precision()


def test_the_same_seed_trains_the_same_on_the_test_device_as_on_the_cpu():
    """Two runs of one seed: on the CPU twice (determinism), or CPU vs NNTUI_TEST_DEVICE (parity up to
    floating-point rounding)."""
    cfg = load_preset("dropout-overfit", ["batch_size=10"]).configs["dropout 0.5/0.2"]
    losses = []
    for device in (torch.device("cpu"), DEVICE):
        run = VariantRun("v", "", cfg, noisy_line(0).to(device), device, None)
        for slot in range(20):  # 4 epochs of 5 batches
            run._train_step(slot, probe=False)
            run.pos %= run.steps_per_epoch
        losses.append(run.loss_buffer[:20].cpu())
    assert losses[0].isfinite().all()
    if DEVICE.type == "cpu":
        assert torch.equal(losses[0], losses[1])
    else:
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-6)


# -- --device parsing


def fake_gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


@pytest.mark.parametrize("name, expected", [("cpu", "cpu"), ("cuda", "cuda:0"), ("cuda:1", "cuda:1"), ("CUDA:0", "cuda:0"), ("auto", "cuda:0")])
def test_device_names_with_two_gpus(monkeypatch, name, expected):
    from nntui.runner import resolve_device

    fake_gpus(monkeypatch, 2)
    assert resolve_device(name) == (torch.device(expected), None)


@pytest.mark.parametrize("name, gpus, message", [
    ("cuda:2", 2, "--device cuda:2: this machine has 2 CUDA devices (cuda:0 to cuda:1); pick one of those"),
    ("cuda:1", 1, "--device cuda:1: this machine has 1 CUDA device (cuda:0); pick one of those"),
    ("cuda:1", 0, "--device cuda:1: no CUDA device is available here; use --device cpu or --device auto"),
    ("cuda:x", 2, "--device 'cuda:x': choose auto, cpu, cuda or cuda:N (N the GPU's index, e.g. cuda:0)"),
    ("gpu", 2, "--device 'gpu': choose auto, cpu, cuda or cuda:N (N the GPU's index, e.g. cuda:0)"),
])
def test_bad_device_names_say_what_exists(monkeypatch, name, gpus, message):
    from nntui.errors import NntuiError
    from nntui.runner import resolve_device

    fake_gpus(monkeypatch, gpus)
    with pytest.raises(NntuiError) as err:
        resolve_device(name)
    assert str(err.value) == message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("command", [["run", "dropout-overfit", "--headless"], ["lr-find", "batchnorm"]])
def test_cuda_n_without_cuda_is_one_line_and_exit_2(tmp_path, command):
    from helpers import invoke

    result = invoke(*command, "--device", "cuda:1", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["error: --device cuda:1: no CUDA device is available here; use --device cpu or --device auto"]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_probe_statistics_on_the_test_device_match_the_cpu(optimizer):
    """The torch reductions on NNTUI_TEST_DEVICE against the numpy ones on the CPU, same weights and batch."""
    from nntui.engine.models import MLP
    from nntui.engine.optim import build_optimizer
    from nntui.engine.probes import Probe
    from nntui.presets import ModelConfig, OptimizerConfig

    stats = []
    for device, prefer_numpy in ((torch.device("cpu"), True), (DEVICE, False)):
        torch.manual_seed(0)
        model = MLP(784, 10, ModelConfig(hidden=[64, 64], activation="tanh", init="xavier_normal")).to(device)
        opt = build_optimizer(model.parameters(), OptimizerConfig(name=optimizer, lr=0.05))
        x, y = torch.randn(32, 784, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 10
        probe = Probe(model, opt, prefer_numpy=prefer_numpy)
        for _ in range(2):  # the second step has optimizer state
            probe.attach()
            out = model(x.to(device))
            probe.detach()
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(out, y.to(device)).backward()
            probe.before_step()
            opt.step()
            record = probe.collect(1)
        [(_, layers, _, _)] = probe.read([record])
        stats.append(layers)
    for cpu_layer, device_layer in zip(*stats):
        for key, value in cpu_layer.items():
            if isinstance(value, float):
                assert device_layer[key] == pytest.approx(value, rel=2e-3, abs=1e-7), key
            elif isinstance(value, list):
                assert device_layer[key] == pytest.approx(value, rel=2e-3, abs=1e-6), key


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_gpu_check_says_there_is_no_cuda_and_exits_2(tmp_path, capsys):
    from benchmarks import gpu_check

    assert gpu_check.main(["--out", str(tmp_path / "check.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no CUDA device is present here") and "--dry-run" in err[0]
    assert not (tmp_path / "check.json").exists()


def test_checkpoint_state_comes_to_the_host_whole():
    from nntui.engine.checkpoints import host_state

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).to(DEVICE)
    model(torch.randn(5, 3, device=DEVICE))  # BatchNorm's running stats and its int64 batch count
    state = model.state_dict()
    copied = host_state(state)
    assert list(copied) == list(state)
    for key, value in state.items():
        assert copied[key].device.type == "cpu" and copied[key].dtype == value.dtype
        assert torch.equal(copied[key], value.cpu())
