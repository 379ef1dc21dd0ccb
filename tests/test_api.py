"""nntui.watch on the user's own loop: what it records, checked against plain torch (hooks, .grad,
weights before/after step()), on models where a mix-up would show (several same-shaped layers)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import nntui
from nntui.record.runlog import RunLogReader
from nntui.record.state import RunState


def three_same_layers() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4))


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def batches(n: int, shape=(32, 12), classes: int = 4):
    g = torch.Generator().manual_seed(1)
    for _ in range(n):
        yield torch.randn(*shape, generator=g), torch.randint(0, classes, (shape[0],), generator=g)


def events_of(run_dir) -> list:
    reader = RunLogReader(run_dir)
    try:
        return reader.read_all()
    finally:
        reader.close()


def train(model, optimizer, steps: int, tmp_path, shape=(32, 12), classes=4, **options):
    logged = []
    with nntui.watch(model, optimizer, name="mine", out=tmp_path / "runs", quiet=True, **options) as run:
        for x, y in batches(steps, shape, classes):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            run.log(loss=loss)
            logged.append(loss.detach().clone())
    return run, logged


def test_recorded_losses_are_the_logged_tensors_and_steps_are_optimizer_steps(tmp_path):
    model = three_same_layers()
    run, logged = train(model, torch.optim.SGD(model.parameters(), lr=0.1), 130, tmp_path, block_steps=50)
    steps = [e for e in events_of(run.run_dir) if e.type == "steps"]
    recorded = {e.first_step + i: x for e in steps for i, x in enumerate(e.losses)}
    assert sorted(recorded) == list(range(1, 131))
    assert all(recorded[i + 1] == pytest.approx(float(t), rel=1e-7) for i, t in enumerate(logged))
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["variants"][0]["steps"] == 130
    assert summary["preset"] == "mine" and "health" in summary


def test_losses_logged_before_step_and_accumulated_micro_batches_land_on_their_step(tmp_path):
    model = three_same_layers()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    expected = []
    with nntui.watch(model, opt, out=tmp_path / "runs", quiet=True, block_steps=7) as run:
        for x, y in batches(20):
            opt.zero_grad()
            halves = [F.cross_entropy(model(x[i::2]), y[i::2]) for i in (0, 1)]
            for half in halves:
                (half / 2).backward()
                run.log(loss=half)  # two micro-batches per step, logged before step()
            opt.step()
            expected.append((float(halves[0].detach()) + float(halves[1].detach())) / 2)
    recorded = [x for e in events_of(run.run_dir) if e.type == "steps" for x in e.losses]
    assert recorded == pytest.approx(expected, rel=1e-6)


def test_probed_gradients_and_update_ratio_match_plain_torch(tmp_path):
    model = three_same_layers()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    grads, before, after, count = {}, {}, {}, [0]

    def pre(optimizer, args, kwargs):
        before[count[0] + 1] = [m.weight.detach().clone() for m in linears]
        grads[count[0] + 1] = [m.weight.grad.detach().clone() for m in linears]

    def post(optimizer, args, kwargs):
        count[0] += 1
        after[count[0]] = [m.weight.detach().clone() for m in linears]

    opt.register_step_pre_hook(pre)
    opt.register_step_post_hook(post)
    run, _ = train(model, opt, 45, tmp_path, probe_every=20)
    stats = {e.step: e.layers for e in events_of(run.run_dir) if e.type == "layer_stats"}
    assert sorted(stats) == [1, 20, 40]
    for step, layers in stats.items():
        assert [layer["name"] for layer in layers] == ["0", "2", "4", "6"]
        for i, layer in enumerate(layers):
            g, w0, w1 = grads[step][i], before[step][i], after[step][i]
            assert layer["grad_norm"] == pytest.approx(g.norm().item(), rel=1e-5)
            assert layer["grad"][0] == pytest.approx(g.abs().min().item(), rel=1e-5, abs=1e-12)
            assert layer["grad"][4] == pytest.approx(g.abs().max().item(), rel=1e-5)
            assert layer["grad"][2] == pytest.approx(torch.quantile(g.abs().flatten(), 0.5).item(), rel=1e-5)
            assert layer["update_ratio"] == pytest.approx(((w1 - w0).norm() / w1.norm()).item(), rel=1e-4)


def test_layer_inputs_come_from_the_probed_steps_forward_and_hooks_exist_only_then(tmp_path):
    model = three_same_layers()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    hooks_seen, seen = [], {}
    tanhs = [m for m in model if isinstance(m, nn.Tanh)]
    step = [0]

    def spy(module, args, output):  # a plain hook on the first tanh: the second Linear's input
        seen[step[0] + 1] = output.detach().clone()

    tanhs[0].register_forward_hook(spy)
    with nntui.watch(model, opt, out=tmp_path / "runs", quiet=True, probe_every=10) as run:
        for x, y in batches(21):
            hooks_seen.append(sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model if m is not tanhs[0]))
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            step[0] += 1
            run.log(loss=loss)
            with torch.no_grad():
                model(x)  # an evaluation pass between steps is not what gets probed
    assert max(hooks_seen) == 0  # between steps no probe hook is left on any layer
    stats = {e.step: e.layers for e in events_of(run.run_dir) if e.type == "layer_stats"}
    for s in (1, 10, 20):
        second = stats[s][1]
        assert second["act"][0] == pytest.approx(seen[s].min().item(), rel=1e-6)
        assert second["act"][4] == pytest.approx(seen[s].max().item(), rel=1e-6)
        assert stats[s][2]["act"][4] != pytest.approx(seen[s].max().item(), rel=1e-6)  # not the neighbour's
    assert not model._forward_hooks and not model._forward_pre_hooks
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks


def test_any_model_a_cnn_with_chosen_layers(tmp_path):
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    run, _ = train(model, opt, 25, tmp_path, shape=(8, 1, 6, 6), classes=5, probe_every=10, layers=["0", "5"])
    started = events_of(run.run_dir)[0]
    assert started.variants[0]["layers"] == ["0", "5"]
    stats = [e for e in events_of(run.run_dir) if e.type == "layer_stats"]
    assert [layer["name"] for layer in stats[-1].layers] == ["0", "5"]


def test_log_never_synchronises_with_the_host(tmp_path):
    class CountScalarReads(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._local_scalar_dense.default:
                self.count += 1
            return func(*args, **(kwargs or {}))

    model = three_same_layers()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    counter = CountScalarReads()
    with nntui.watch(model, opt, out=tmp_path / "runs", quiet=True) as run:
        for x, y in batches(120):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            with counter:
                run.log(loss=loss)
    assert counter.count == 0
    # the counter works: one .item() is one scalar read
    with counter:
        loss.item()
    assert counter.count == 1


@pytest.mark.parametrize(("error", "status"), [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_an_exception_in_the_block_ends_the_run_and_goes_on(tmp_path, error, status):
    model = three_same_layers()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(error):
        with nntui.watch(model, opt, out=tmp_path / "runs", quiet=True) as run:
            for i, (x, y) in enumerate(batches(30)):
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                run.log(loss=loss)
                if i == 11:
                    raise error("boom")
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["status"] == status and summary["variants"][0]["status"] == status
    assert summary["variants"][0]["steps"] == 12
    assert not model._forward_pre_hooks and not opt._optimizer_step_post_hooks


def test_a_non_finite_loss_marks_the_run_diverged_at_its_step(tmp_path):
    model = three_same_layers()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with nntui.watch(model, opt, out=tmp_path / "runs", quiet=True) as run:
        for i, (x, y) in enumerate(batches(40)):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            run.log(loss=loss if i != 16 else loss * math.inf)
    state = RunState()
    for event in events_of(run.run_dir):
        state.apply(event)
    assert state.status == "diverged"
    assert state.variants["Sequential"].finish_reason == "loss became inf at step 17"
    assert state.summary["health"]["failed"] == ["non-finite"] or "non-finite" in state.summary["health"]["failed"]


def test_scheduler_and_eval_reach_the_optimizer_panel_and_the_test_curve(tmp_path):
    model = three_same_layers()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    with nntui.watch(model, opt, out=tmp_path / "runs", quiet=True, scheduler=sched, probe_every=10) as run:
        for x, y in batches(25):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            run.log(loss=loss)
        run.log_eval(test_loss=torch.tensor(0.75), test_accuracy=0.5)
    events = events_of(run.run_dir)
    opt_states = {e.step: e.groups[0] for e in events if e.type == "optimizer_state"}
    assert opt_states[10]["lr"] == pytest.approx(0.1) and opt_states[20]["lr"] == pytest.approx(0.05)  # the LR the step used
    assert opt_states[20]["scheduler"] == "StepLR"
    evals = [e for e in events if e.type == "eval"]
    assert [(e.step, e.loss, e.accuracy) for e in evals] == [(25, 0.75, 0.5)]


def test_the_first_line_says_how_to_watch(tmp_path, capsys):
    model = three_same_layers()
    with nntui.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), name="my net", out=tmp_path / "runs") as run:
        pass
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"nntui: watching my net — run `nntui watch {run.run_dir}` in another terminal"
    assert json.loads((run.run_dir / "summary.json").read_text())["status"] == "completed"


def test_newest_run_is_the_default_for_watch(tmp_path, monkeypatch):
    from nntui.cli.watch import newest_run
    from nntui.errors import NntuiError

    with pytest.raises(NntuiError, match="no runs under"):
        newest_run(tmp_path / "runs")
    model = three_same_layers()
    first, _ = train(model, torch.optim.SGD(model.parameters(), lr=0.1), 3, tmp_path)
    second, _ = train(model, torch.optim.SGD(model.parameters(), lr=0.1), 3, tmp_path)
    assert newest_run(tmp_path / "runs") == second.run_dir != first.run_dir


def test_watch_without_a_run_says_so_in_one_line(tmp_path, monkeypatch):
    from helpers import invoke

    monkeypatch.chdir(tmp_path)
    result = invoke("watch")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["error: no runs under ./runs; pass a run directory, or start one (`nntui run PRESET`, or nntui.watch in your script)"]
