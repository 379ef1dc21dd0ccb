"""`nntui run PRESET --seeds`: one directory with each seed's record, figures across seeds checked
against each seed's own summary and against the same seed run alone; the verdict rule; the band view."""

from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from nntui.errors import NntuiError
from nntui.record.runs import aggregate_seeds, reproduced_across
from nntui.seeds import parallel_workers, parse_seeds
from nntui.tui.compare_app import make_compare_app
from nntui.tui.widgets.compare_panels import band
from tests.helpers import invoke, run_json
from tests.test_compare import screen_text

TINY = str(Path(__file__).parent / "fixtures" / "tiny.toml")


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("seeds")
    result = invoke("run", TINY, "--headless", "--json", "--seeds", "0,3", "--max-steps", "60", "--out", str(root / "runs"))
    assert result.exit_code == 0, result.stderr
    alone = run_json(TINY, root / "alone", "--seed", "3", "--max-steps", "60")
    return json.loads(result.stdout), alone, result.stderr


def test_one_directory_holds_each_seeds_record_and_the_summary(seeds_run):
    summary, _, _ = seeds_run
    top = Path(summary["run_dir"])
    assert summary["seeds"] == [0, 3]
    for seed in (0, 3):
        assert (top / f"seed-{seed}" / "events.jsonl").is_file() and (top / f"seed-{seed}" / "summary.json").is_file()
    assert json.loads((top / "summary.json").read_text()) == summary
    assert [r["seed"] for r in summary["seed_runs"]] == [0, 3]


def test_mean_figures_and_std_match_the_seeds_own_summaries(seeds_run):
    summary, _, _ = seeds_run
    top = Path(summary["run_dir"])
    per_seed = [json.loads((top / f"seed-{s}" / "summary.json").read_text()) for s in (0, 3)]
    for i, v in enumerate(summary["variants"]):
        losses = [s["variants"][i]["test_loss"] for s in per_seed]
        assert v["test_loss"] == pytest.approx(np.mean(losses))
        assert v["test_loss_std"] == pytest.approx(np.std(losses))  # population std over the seeds
        assert v["layers"][0]["grad_median"] == pytest.approx(np.mean([s["variants"][i]["layers"][0]["grad_median"] for s in per_seed]))
        assert [sv["reproduced"] for sv in v["seed_verdicts"]] == [s["variants"][i]["reproduced"] for s in per_seed]
    held = sum(s["reproduced"] is True for s in per_seed)
    assert summary["reproduced_in"] == held
    assert summary["reproduced"] == reproduced_across([s["reproduced"] for s in per_seed])


def test_a_seed_in_the_seeds_run_equals_that_seed_run_alone(seeds_run):
    summary, alone, _ = seeds_run
    seed3 = json.loads((Path(summary["run_dir"]) / "seed-3" / "summary.json").read_text())
    assert [v["test_loss"] for v in seed3["variants"]] == pytest.approx([v["test_loss"] for v in alone["variants"]])


def test_seeds_ran_in_parallel_on_two_cores_and_said_so(seeds_run):
    _, _, stderr = seeds_run
    workers = parallel_workers(2)
    assert f"2 seeds, {workers} at a time" in stderr
    assert "seed 0:" in stderr and "seed 3:" in stderr


@pytest.mark.parametrize(("flags", "expected"), [([True, True], True), ([True, None], None), ([True, False, None], False), ([None, None], None)])
def test_reproduced_only_when_it_held_in_every_seed(flags, expected):
    summaries = [{"reproduced": f, "status": "completed", "finding": "x", "variants": []} for f in flags]
    result = aggregate_seeds(list(range(len(flags))), summaries, Path("r"))
    assert result["reproduced"] is expected
    assert result["reproduced_in"] == sum(f is True for f in flags)


def test_parse_seeds_and_worker_count():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("2, 2, 5") == [2, 5]
    for bad in ("a,b", "1", ""):
        with pytest.raises(NntuiError):
            parse_seeds(bad)
    assert parallel_workers(3, cpu_count=2, threads_per_seed=1) == 2
    assert parallel_workers(3, cpu_count=1, threads_per_seed=1) == 1
    assert parallel_workers(3, cpu_count=16, threads_per_seed=4) == 3


def test_bad_seeds_option_is_exit_2_and_writes_nothing(tmp_path):
    result = invoke("run", TINY, "--headless", "--seeds", "0,x", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 2 and "--seeds" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_band_is_the_mean_min_and_max_across_series():
    a = ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    b = ([1.0, 3.0], [5.0, 1.0])  # at step 2: halfway, 3.0
    result = band([a, b])
    assert result.xs == [1.0, 2.0, 3.0]
    assert result.mean == pytest.approx([4.0, 2.5, 1.0])
    assert result.low == [3.0, 2.0, 1.0] and result.high == [5.0, 3.0, 1.0]


def test_watching_a_seeds_run_draws_mean_and_band_per_variant(seeds_run):
    summary, _, _ = seeds_run

    async def scenario():
        app = make_compare_app([Path(summary["run_dir"])])
        assert app.bands
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            loss = screen_text(app, "#loss")
            assert "mean over seeds" in loss and "shallow (1, 2 seeds)" in loss
            shallow = summary["variants"][0]
            assert f"{shallow['test_loss']:.4f} ± {shallow['test_loss_std']:.4f}" in loss
            assert f"{shallow['reproduced_in']}/2" in loss
            await pilot.press("q")

    asyncio.run(scenario())


def test_headless_table_shows_mean_and_std(seeds_run, tmp_path):
    summary, _, _ = seeds_run
    result = invoke("compare", summary["run_dir"], "--headless")
    assert result.exit_code == 0, result.stderr
    deep = summary["variants"][1]
    assert f"{deep['test_loss']:.4f}±{deep['test_loss_std']:.4f}" in result.stdout
    assert statistics.fmean([deep["test_loss_min"], deep["test_loss_max"]]) == pytest.approx(deep["test_loss"])


def test_a_stop_ends_the_running_seed_and_starts_no_other_one_after_another(tmp_path, monkeypatch, one_thread):
    import nntui.seeds as seeds_module
    from nntui.runner import RunOptions

    monkeypatch.setattr(seeds_module, "parallel_workers", lambda n: 1)  # one after another, in this process
    out = tmp_path / "runs"
    started = lambda: any(out.glob("*/seed-0/events.jsonl"))  # noqa: E731 - stop once the first seed trains
    lines: list[str] = []
    summary = seeds_module.run_seeds(TINY, [], RunOptions(device="cpu", out=out, max_steps=100_000, epochs=1000), [0, 1], lines.append, started)
    assert summary["status"] == "interrupted" and summary["seeds"] == [0]
    assert summary["seed_runs"][0]["status"] == "interrupted"
    assert not (Path(summary["run_dir"]) / "seed-1").exists()
    assert any("one after another" in line for line in lines)
