"""Health checks (verdicts/health.py) and `nntui check`: numbers from hand-made run logs, exit codes,
and the lecture's presets (the 3-layer sigmoid net fails "vanishing gradients", a BatchNorm net passes)."""

from __future__ import annotations

import json
import math

import pytest

from helpers import invoke, run_json, variant
from nntui.record import events as ev
from nntui.record.runlog import RunLog, create_run_dir
from nntui.record.state import RunState
from nntui.verdicts.health import check_health

LAYERS = ["fc1", "fc2", "fc3"]


def layer(name: str, median: float | None, *, saturation=0.0, dead=0.0, update_ratio=1e-3, grad_norm: float | None = 1.0) -> dict:
    grad = [None] * 5 if median is None else [median / 10, median / 2, median, median * 2, median * 10]
    return {"name": name, "grad": grad, "act": [0, 0, 0, 0, 0], "saturation": saturation, "dead": dead,
            "update_ratio": update_ratio, "grad_norm": None if median is None else grad_norm}


def make_run(tmp_path, probes: dict[int, list[dict]], losses: list[float], status: str = "completed", reason: str = ""):
    run_dir = create_run_dir(tmp_path / "runs", "hand-made")
    log = RunLog(run_dir)
    events = [ev.RunStarted(preset="hand-made", title="", lesson="", dataset="", device="cpu", task="classification",
                            run_dir=str(run_dir), variants=[{"name": "v", "description": "", "layers": LAYERS, "steps_per_epoch": 0,
                                                             "total_steps": 0, "epochs": 0}], started_at=0.0)]
    events += [ev.LayerStats("v", step, layers) for step, layers in sorted(probes.items())]
    events += [ev.Steps("v", 1, losses, 0.1, 0.0, 1.0), ev.VariantFinished("v", status, len(losses), 0.0, reason),
               ev.RunFinished(status, 0.0, {})]
    state = RunState()
    for event in events:
        log.append(event)
        state.apply(event)
    log.close()
    return run_dir, state


def checks(state) -> dict[str, dict]:
    return {c["id"]: c for c in check_health(state)["variants"][0]["checks"]}


FALLING = [2.3 * math.exp(-i / 100) for i in range(300)]


def test_vanishing_gradients_compare_the_first_and_last_layers_recent_medians(tmp_path):
    probes = {s: [layer("fc1", 2e-5 * (1 + s / 1000)), layer("fc2", 1e-3), layer("fc3", 1e-2)] for s in (1, 50, 100, 150)}
    _, state = make_run(tmp_path, probes, FALLING)
    c = checks(state)["vanishing-gradients"]
    expected = 2e-5 * (1 + 75 / 1000) / 1e-2  # median over probes of fc1 (steps 50, 100 in the middle) over fc3's
    assert c["status"] == "fail" and c["numbers"]["ratio"] == pytest.approx(expected) and c["layer"] == "fc1"
    probes = {s: [layer("fc1", 5e-5), layer("fc2", 1e-3), layer("fc3", 1e-2)] for s in (1, 50)}
    _, state = make_run(tmp_path, probes, FALLING)
    assert checks(state)["vanishing-gradients"]["status"] == "warn"  # 1/200: between 1/300 and 1/100
    probes = {s: [layer("fc1", 2e-3), layer("fc2", 1e-3), layer("fc3", 1e-2)] for s in (1, 50)}
    _, state = make_run(tmp_path, probes, FALLING)
    assert checks(state)["vanishing-gradients"]["status"] == "ok"


def test_exploding_gradients_name_the_step_and_layer_where_growth_crossed_1000x(tmp_path):
    probes = {}
    for s in range(0, 500, 50):
        growth = 1.0 if s < 300 else 10 ** ((s - 250) / 50)  # x10 per probe from step 300: x1000 at 400, x10^4 at 450
        probes[s or 1] = [layer("fc1", 1e-3), layer("fc2", 1e-3), layer("fc3", 1e-2 * growth)]
    _, state = make_run(tmp_path, probes, FALLING)
    c = checks(state)["exploding-gradients"]
    assert c["status"] == "fail" and c["step"] == 450 and c["layer"] == "fc3"  # more than 1000x: the first probe past it
    assert c["numbers"]["growth"] == pytest.approx(1e4)
    probes = {s: [layer(n, 1e-3 * (1 + s / 100)) for n in LAYERS] for s in (1, 100, 200, 300)}
    assert checks(make_run(tmp_path, probes, FALLING)[1])["exploding-gradients"]["status"] == "ok"


def test_non_finite_gradients_start_at_the_layer_nearest_the_loss(tmp_path):
    ok = [layer("fc1", 1e-3), layer("fc2", 1e-3), layer("fc3", 1e-3)]
    probes = {1: ok, 50: ok, 100: [layer("fc1", None), layer("fc2", None), layer("fc3", 1e-3)], 150: [layer(n, None) for n in LAYERS]}
    _, state = make_run(tmp_path, probes, FALLING)
    c = checks(state)["non-finite"]
    assert c["status"] == "fail" and c["step"] == 100 and c["layer"] == "fc2"


def test_a_diverged_run_fails_non_finite_with_its_reason(tmp_path):
    _, state = make_run(tmp_path, {1: [layer(n, 1e-3) for n in LAYERS]}, FALLING[:40], "diverged", "loss became nan at step 41")
    c = checks(state)["non-finite"]
    assert c["status"] == "fail" and "loss became nan at step 41" in c["text"] and c["step"] == 40


def test_units_update_ratio_and_a_flat_loss(tmp_path):
    probes = {1: [layer("fc1", 1e-3, saturation=0.6, dead=0.3, update_ratio=2e-5), layer("fc2", 1e-3, update_ratio=3e-5),
                  layer("fc3", 1e-3, saturation=0.02, dead=0.55, update_ratio=1e-3)]}
    flat = [2.3 + 0.01 * math.sin(i) for i in range(300)]
    _, state = make_run(tmp_path, probes, flat)
    c = checks(state)
    assert c["saturated-units"]["status"] == "fail" and c["saturated-units"]["layer"] == "fc1"
    assert c["dead-units"]["status"] == "fail" and c["dead-units"]["layer"] == "fc3" and c["dead-units"]["numbers"]["dead"] == 0.55
    assert c["update-ratio"]["status"] == "fail" and c["update-ratio"]["numbers"]["median"] == pytest.approx(3e-5)
    assert c["loss-not-falling"]["status"] == "fail"
    start, end = sum(flat[:30]) / 30, sum(flat[-50:]) / 50
    assert c["loss-not-falling"]["numbers"]["fall"] == pytest.approx((start - end) / start, abs=1e-9)
    assert checks(make_run(tmp_path, probes, FALLING)[1])["loss-not-falling"]["status"] == "ok"


def test_check_command_exit_codes_fail_on_and_json(tmp_path):
    bad = {1: [layer("fc1", 1e-6), layer("fc2", 1e-4), layer("fc3", 1e-2)]}
    run_dir, _ = make_run(tmp_path, bad, FALLING)
    result = invoke("check", str(run_dir))
    assert result.exit_code == 1 and "vanishing gradients" in result.stdout and "1/10000" in result.stdout
    assert invoke("check", str(run_dir), "--fail-on", "dead-units,loss-not-falling").exit_code == 0
    assert invoke("check", str(run_dir), "--fail-on", "vanishing gradients").exit_code == 1
    report = json.loads(invoke("check", str(run_dir), "--json").stdout)
    assert report["healthy"] is False and report["failed"] == ["vanishing-gradients"]
    healthy, _ = make_run(tmp_path, {1: [layer(n, 1e-3) for n in LAYERS]}, FALLING)
    assert invoke("check", str(healthy)).exit_code == 0
    for args in (["check", str(tmp_path / "nope")], ["check", str(run_dir), "--fail-on", "vanishing"], ["check", str(run_dir), "--variant", "x"]):
        result = invoke(*args)
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, args


def test_presets_the_3_layer_sigmoid_net_fails_vanishing_and_batchnorm_passes(tmp_path, one_thread):
    summary = run_json("sigmoid-paralysis", tmp_path / "runs", "--variant", "3 layers", "--max-steps", "400")
    assert "vanishing-gradients" in summary["health"]["failed"]
    result = invoke("check", summary["run_dir"], "--fail-on", "vanishing-gradients")
    assert result.exit_code == 1 and "vanishing gradients" in result.stdout
    stats = variant(summary, "3 layers")["layers"]
    assert stats[0]["grad_median"] / stats[-1]["grad_median"] < 1 / 300
    summary = run_json("batchnorm", tmp_path / "runs", "--variant", "BN lr 1e-2", "--max-steps", "400")
    result = invoke("check", summary["run_dir"])
    assert result.exit_code == 0, result.stdout


def test_the_dashboards_health_lines_show_the_failed_checks_of_the_selected_variant(tmp_path):
    from nntui.tui.widgets.health import health_text

    bad = {1: [layer("fc1", 1e-6), layer("fc2", 1e-4), layer("fc3", 1e-2)]}
    _, state = make_run(tmp_path, bad, FALLING)
    text = health_text(check_health(state), 0).plain
    assert "✗ vanishing gradients: fc1 median |grad| 1.0e-06 is 1/10000 of fc3's 0.01" in text
    assert text.splitlines()[-1] == "6 ok"
    _, healthy = make_run(tmp_path, {1: [layer(n, 1e-3) for n in LAYERS]}, FALLING)
    assert health_text(check_health(healthy), 0).plain.splitlines()[-1] == "✓ 7 ok"
