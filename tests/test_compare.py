"""`nntui compare`: real runs of two presets side by side (JSON, table, the compare view), a run with
nntui.watch's shape (one variant, its own layer names), and bad paths."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from textual.geometry import Region

from nntui.record import events as ev
from nntui.record.runlog import RunLog
from nntui.tui.compare_app import make_compare_app
from tests.helpers import invoke, run_json, tiny_preset

TINY = str(Path(__file__).parent / "fixtures" / "tiny.toml")


@pytest.fixture(scope="module")
def two_presets(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("compare")
    paralysis = run_json(TINY, root / "runs", "--max-steps", "60")
    other = run_json(str(tiny_preset(root / "tiny.toml")), root / "runs", "--max-steps", "40")
    return Path(paralysis["run_dir"]), Path(other["run_dir"])


def screen_text(app, selector: str) -> str:
    """What a widget and its children show on screen now, as plain text."""
    texts = []
    for widget in [app.query_one(selector), *app.query_one(selector).query("*")]:
        if widget.display and not widget.children:
            width, height = widget.size
            texts.extend(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))
    return "\n".join(texts)


def last_test_eval(run_dir: Path) -> dict[str, float]:
    """Each variant's last full-test loss, read straight from the log with plain json."""
    out = {}
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "eval" and event["split"] == "test":
            out[event["variant"]] = event["loss"]
    return out


def watch_shaped_run(out: Path) -> Path:
    """A run log as nntui.watch writes one: one variant, module-path layer names, no preset."""
    out.mkdir(parents=True)
    log = RunLog(out)
    layers = [{"name": name, "grad": [1e-4 * k, 2e-4 * k, 3e-4 * k, 4e-4 * k, 5e-4 * k], "act": [0, 0, 0, 0, 0], "saturation": None, "dead": 0.25}
              for k, name in enumerate(["encoder.0", "encoder.2", "head"], 1)]
    log.append(ev.RunStarted("my-cnn", "", "", "", "cpu", "classification", str(out),
                             [{"name": "my-cnn", "description": "", "layers": [lay["name"] for lay in layers], "steps_per_epoch": 0, "total_steps": 0, "epochs": 0}], time.time()))
    log.append(ev.Steps("my-cnn", 1, [2.0, 1.5, 1.0], 0.1, 0.0, 0.1))
    log.append(ev.LayerStats("my-cnn", 3, layers))
    log.append(ev.Eval("my-cnn", 3, 0.0, "test", 0.9, 0.7))
    log.append(ev.VariantFinished("my-cnn", "completed", 3, 0.0))
    log.close()
    return out


def test_json_has_every_run_and_variant_with_the_logs_figures(two_presets):
    result = invoke("compare", *map(str, two_presets), "--json")
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [r["preset"] for r in runs] == ["tiny-paralysis", "tiny"]
    assert [r["run_dir"] for r in runs] == [str(p) for p in two_presets]
    for run, path in zip(runs, two_presets):
        saved = json.loads((path / "summary.json").read_text())
        logged = last_test_eval(path)
        assert [v["name"] for v in run["variants"]] == [v["name"] for v in saved["variants"]]
        for v, s in zip(run["variants"], saved["variants"]):
            assert v["test_loss"] == pytest.approx(logged[v["name"]]) == pytest.approx(s["test_loss"])
            assert [layer["grad_median"] for layer in v["layers"]] == [layer["grad_median"] for layer in s["layers"]]


def test_headless_table_shows_final_figures_labelled_by_run(two_presets):
    result = invoke("compare", *map(str, two_presets), "--headless")
    assert result.exit_code == 0, result.stderr
    logged = last_test_eval(two_presets[0])
    assert "tiny-paralysis" in result.stdout and "deep" in result.stdout and "shallow" in result.stdout
    assert f"{logged['deep']:.4f}" in result.stdout
    saved = json.loads((two_presets[0] / "summary.json").read_text())
    mark = {True: "✓", False: "✗"}.get(saved["reproduced"], "·")
    assert f"tiny-paralysis = {two_presets[0]}: {mark} {saved['finding']}" in result.stdout


def test_a_watch_shaped_run_mixes_with_a_preset_run(two_presets, tmp_path):
    mine = watch_shaped_run(tmp_path / "mine")
    result = invoke("compare", str(two_presets[0]), str(mine), "--json")
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)["runs"][1]
    assert run["preset"] == "my-cnn"
    (variant,) = run["variants"]
    assert variant["test_loss"] == 0.9 and variant["test_accuracy"] == 0.7
    assert [layer["name"] for layer in variant["layers"]] == ["encoder.0", "encoder.2", "head"]
    assert variant["layers"][2]["grad_median"] == pytest.approx(9e-4)


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: (p / "empty").mkdir() or p / "empty",
                                  lambda p: (p / "f.txt").write_text("x") and p / "f.txt"], ids=["missing", "no-log", "file"])
def test_a_path_that_is_not_a_run_directory_is_one_line_and_exit_2(two_presets, tmp_path, make):
    bad = make(tmp_path)
    result = invoke("compare", str(two_presets[0]), str(bad))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and str(bad) in result.stderr and "Traceback" not in result.stderr


def test_compare_view_overlays_every_run_variant_and_follows_the_selection(two_presets, tmp_path):
    mine = watch_shaped_run(tmp_path / "mine")

    async def scenario():
        app = make_compare_app([*two_presets, mine])
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            assert app.layout_mode == "grid"
            loss = screen_text(app, "#loss")
            for label in ("tiny-paralysis/shallow", "tiny-paralysis/deep", "tiny/a", "my-cnn/my-cnn"):
                assert label in loss
            deep = next(v for v in app.snapshot.variants if v.name == "tiny-paralysis/deep")
            assert f"{deep.last_test_loss:.4f}" in loss
            layers = screen_text(app, "#layers")
            assert "median |grad| L1 → Ln" in layers and "3e-04 6e-04 9e-04" in layers  # my-cnn's medians, first to last
            await pilot.press("tab")
            assert "tiny-paralysis/deep (2/4)" in screen_text(app, "#cmp-header")
            assert "fc4" in screen_text(app, "#optimizer")  # the selected (deep) variant's optimizer state
            await pilot.press("q")

    asyncio.run(scenario())


def test_list_says_how_long_each_preset_takes_and_the_little_options():
    from nntui import __version__
    from nntui.presets import available_presets

    listed = json.loads(invoke("list", "--json").stdout)["presets"]
    measured = {row["name"]: row["estimated_seconds"] for row in listed}
    assert set(measured) == set(available_presets())
    assert all(seconds is None or seconds > 0 for seconds in measured.values())
    assert measured["sigmoid-paralysis"] > measured["bad-init-tanh"]
    assert "~8 min" in invoke("list").stdout  # sigmoid-paralysis: 495 s
    assert invoke("--version").stdout.strip() == f"nntui {__version__}"
    helps = invoke("run", "--help").stdout + invoke("compare", "--help").stdout
    flag_lines = [line for line in helps.splitlines() if "--headless" in line or "--json" in line]
    assert len(flag_lines) == 4 and not any("<bool>" in line for line in flag_lines)  # flags, not values
    assert "--seeds" in helps
    assert "--install-completion" in invoke("--help").stdout


def test_compare_view_on_a_thin_link_sends_plain_ascii_one_frame_per_key(two_presets, monkeypatch):
    """`nntui compare` and `nntui watch` of a --seeds run over a thin SSH link: the run dashboard's frames."""
    from textual.app import App

    monkeypatch.setenv("NNTUI_LOW_BANDWIDTH", "1")

    async def scenario():
        app = make_compare_app(list(two_presets))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.5)
            strips = app.screen._compositor.render_strips()
            assert not any(seg.style and (seg.style.color or seg.style.bgcolor) for strip in strips for seg in strip)
            text = "\n".join("".join(seg.text for seg in strip) for strip in strips)
            assert text.isascii() and "1-3 panel" in text and not app.query("Footer")
            sent = []
            real_display = App._display
            monkeypatch.setattr(App, "_display", lambda self, screen, update: (update is not None and sent.append(update), real_display(self, screen, update))[1])
            await pilot.press("2")
            for _ in range(8):
                await pilot.pause(0.1)
            assert app.active_panel == "layers" and len(sent) == 1
            await pilot.press("q")

    asyncio.run(scenario())
