"""Dashboard tests: a tiny live run under the pilot, quitting mid-run, watch/replay of a run log."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import shutil
import time
from pathlib import Path

from textual.geometry import Region

from nntui.presets import load_preset
from nntui.record.runlog import EVENTS_FILE, SUMMARY_FILE
from nntui.runner import RunOptions, prepare_run
from nntui.tui.app import Dashboard, make_app
from nntui.tui.launch import finish_run

FIXTURES = Path(__file__).parent / "fixtures"
TINY_PRESET = FIXTURES / "tiny.toml"
TINY_RUN = FIXTURES / "tiny-run"
WAIT_S = 60.0  # generous: the tests wait for data, never for wall-clock timing


def sync(test):
    """Run an async pilot test without an async pytest plugin."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return wrapper


def screen_text(app: Dashboard, selector: str) -> str:
    """What the widget shows on screen now, as plain text."""
    texts = []
    for widget in [app.query_one(selector), *app.query_one(selector).query("*")]:
        if widget.display and not widget.children:  # leaves: containers draw only their borders
            width, height = widget.size
            texts.extend(strip.text for strip in widget.render_lines(Region(0, 0, width, height)))
    return "\n".join(texts)


async def wait_for(pilot, condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)
    pilot.app.refresh_now()
    await pilot.pause()


def live_run(out_dir: Path, **options):
    return prepare_run(load_preset(str(TINY_PRESET)), RunOptions(device="cpu", out=out_dir, **options))


def has_data(app: Dashboard) -> bool:
    with app.state.lock:
        variants = list(app.state.variants.values())
        return bool(variants) and all(v.layer_stats and v.test_loss and v.optimizer for v in variants)


@sync
async def test_live_run_shows_real_values_in_every_panel(out_dir):
    run = live_run(out_dir)
    app = make_app(run)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: has_data(app), "every variant's first probe and test eval")
            assert app.layout_mode == "grid"
            shallow = app.panel_snapshot.variants[0]  # what the panels drew (training goes on meanwhile)
            assert shallow.name == "shallow"
            test_loss = shallow.last_test_loss
            fc1_median = shallow.layer_stats[0]["grad"][2]

            header = screen_text(app, "#header")
            assert "tiny-paralysis" in header and "mnist-5k" in header and "cpu" in header
            assert "shallow 1/2" in header and "steps/s" in header

            loss = screen_text(app, "#loss")
            assert "loss: dots raw, line EMA, (n) test" in loss and "test accuracy %" in loss
            assert "shallow" in loss and "deep" in loss
            assert f"{test_loss:.4f}" in loss  # the table's test loss of the selected variant

            grads = screen_text(app, "#gradients")
            assert "|weight grad| per layer, step" in grads
            assert f"fc1 {fc1_median:.1e}" in grads and "fc2" in grads and "last/first" in grads

            acts = screen_text(app, "#activations")
            assert "hidden activations" in acts
            assert "h1" in acts and "%" in acts and "sat" in acts and "dead" in acts

            opt = screen_text(app, "#optimizer")
            assert "lr 5.0e-01" in opt and "upd:data" in opt and "fc1" in opt and "learning rate" in opt

            lesson = screen_text(app, "#lesson")
            assert "Tiny sigmoid paralysis" in lesson and "gradient boxplots" in lesson

            await pilot.press("tab")  # next variant: the deep net's three hidden layers
            header = screen_text(app, "#header")
            assert "deep 2/2" in header
            assert "fc4" in screen_text(app, "#gradients")
            assert "h3" in screen_text(app, "#activations")

            await wait_for(pilot, lambda: app.state.status == "completed", "the run to finish")
            assert "DONE" in screen_text(app, "#header")
            assert "✓" in screen_text(app, "#lesson")  # the paralysis verdict of the tiny preset
            await pilot.press("q")
    finally:
        summary = finish_run(run)
    assert summary["status"] == "completed"


@sync
async def test_quit_mid_run_stops_training_and_completes_the_log(out_dir):
    run = live_run(out_dir, epochs=1000, max_steps=1_000_000)
    app = make_app(run)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.version > 0 and any(v.step > 0 for v in app.state.variants.values()), "first steps")
        assert "RUNNING" in screen_text(app, "#header")
        await pilot.press("space")
        assert run.trainer.paused.is_set()
        assert "PAUSED" in screen_text(app, "#header")
        await pilot.press("space")
        assert not run.trainer.paused.is_set()
        await pilot.press("q")
    summary = finish_run(run)
    assert summary["status"] == "interrupted"
    lines = (run.run_dir / EVENTS_FILE).read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "run_finished"
    assert json.loads(lines[-1])["status"] == "interrupted"
    saved = json.loads((run.run_dir / SUMMARY_FILE).read_text())
    assert saved["status"] == "interrupted"
    assert all(0 < v["steps"] < 1_000_000 for v in saved["variants"])


@sync
async def test_keys_toggle_views_and_save_a_screenshot(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(TINY_RUN, run_dir)
    app = make_app(run_dir=run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.status == "completed", "the replay to load")
        assert app.layout_mode == "tabs"
        assert "replay" in screen_text(app, "#header")
        assert "[log y]" not in screen_text(app, "#loss")
        await pilot.press("l")
        assert "[log y]" in screen_text(app, "#loss")

        await pilot.press("2")
        assert app.active_panel == "gradients"
        assert "|weight grad| per layer" in screen_text(app, "#gradients")
        await pilot.press("h")
        assert "median |weight grad| per layer" in screen_text(app, "#gradients")

        await pilot.press("space")  # a run log cannot be paused: says so, no crash
        assert app.live_run is None

        await pilot.press("s")
        await pilot.pause()
        assert len(list(run_dir.glob("*.svg"))) == 1

        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")

        titles = {cmd.title for cmd in app.get_system_commands(app.screen)}
        assert {"Pause / resume training", "Next variant", "Toggle log scale", "Toggle gradient history", "Save SVG screenshot"} <= titles

        await pilot.resize_terminal(40, 10)
        await pilot.pause()
        assert app.layout_mode == "too-small"
        assert "please enlarge the terminal" in screen_text(app, "#too-small")
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert app.layout_mode == "grid"


@sync
async def test_watch_follows_a_log_while_it_is_written(tmp_path):
    lines = (TINY_RUN / EVENTS_FILE).read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"type":"eval"' in line) + 1
    run_dir = tmp_path / "growing"
    run_dir.mkdir()
    log = run_dir / EVENTS_FILE
    log.write_text("".join(lines[:cut]) + lines[cut][:20])  # a partial line, as a live writer leaves it

    app = make_app(run_dir=run_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.version >= cut, "the first part of the log")
        assert app.state.status == "running"
        assert "watch" in screen_text(app, "#header")
        assert "RUNNING" in screen_text(app, "#header")
        with open(log, "a") as f:
            f.write(lines[cut][20:] + "".join(lines[cut + 1 :]))
        await wait_for(pilot, lambda: app.state.status == "completed", "the rest of the log")
        assert "DONE" in screen_text(app, "#header")
        assert "200/200" in screen_text(app, "#loss")
        await pilot.press("q")


@sync
async def test_watch_says_when_the_writer_died_without_finishing(tmp_path):
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid now names no process
    lines = (TINY_RUN / EVENTS_FILE).read_text().splitlines(keepends=True)
    start = json.loads(lines[0])
    assert start["type"] == "run_started"
    start.update(pid=dead.pid, host=socket.gethostname())
    cut = next(i for i, line in enumerate(lines) if '"type":"eval"' in line) + 1
    run_dir = tmp_path / "crashed"
    run_dir.mkdir()
    (run_dir / EVENTS_FILE).write_text(json.dumps(start) + "\n" + "".join(lines[1:cut]))

    app = make_app(run_dir=run_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "STOPPED" in screen_text(app, "#header"), "the stopped badge")
        assert "writer gone" in screen_text(app, "#header")
        assert any("crashed or was killed" in a.message for a in app.state.alerts)
        await pilot.press("q")


def test_watch_on_a_bad_directory_exits_2(tmp_path):
    from typer.testing import CliRunner

    from nntui.cli import app as cli

    result = CliRunner().invoke(cli, ["watch", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "is not a directory" in result.output


def test_tui_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, nntui.tui.app, nntui.cli.watch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def chart_text(app: Dashboard, selector: str) -> str:
    from nntui.tui.widgets.common import Chart

    return app.query_one(selector, Chart).text()


@sync
async def test_plots_and_table_hold_data_while_the_run_goes_on(out_dir):
    """The panels redraw on their own while training: data shows long before the run ends."""
    run = live_run(out_dir, epochs=1000, max_steps=1_000_000)
    app = make_app(run)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            deadline = time.monotonic() + WAIT_S
            def drawn() -> bool:  # the legend shows both markers from the start: wait for drawn steps too
                snap = app.panel_snapshot
                return (snap is not None and len(snap.variants) == 2 and all(v.step > 0 for v in snap.variants)
                        and "•" in chart_text(app, "#loss-plot") and "+" in chart_text(app, "#loss-plot"))

            while not drawn():
                assert time.monotonic() < deadline, "the loss plot never showed both variants' curves"
                await pilot.pause(0.1)  # no refresh_now: the app's own timer must draw them
            assert app.state.status == "running"
            table = screen_text(app, "#loss-table")
            assert "shallow" in table and "deep" in table and "/1000000" not in table.split("shallow")[0]
            steps_shown = app.panel_snapshot.variants[0].step
            assert steps_shown > 0 and f"{steps_shown}/" in table
            await pilot.press("l")
            ticks = [line.split("┤")[0].strip() for line in chart_text(app, "#loss-plot").splitlines() if "┤" in line]
            assert len([t for t in ticks if t]) >= 2, ticks  # log scale: y tick labels, not a bare axis
            await pilot.press("q")
    finally:
        finish_run(run)


@sync
async def test_replay_steps_through_probes_and_evaluations(tmp_path):
    app = make_app(run_dir=TINY_RUN)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.6)
        assert app.mode == "replay"
        await pilot.press("home")
        assert app.replay is not None and app.replay.position == 0
        header = screen_text(app, "#header")
        assert "REPLAY" in header and f"replay 1/{len(app.replay)}" in header
        await pilot.press("right", "right", "right")
        assert app.replay.position == 3
        moment = app.replay.events[app.replay.moments[3]]
        shown = app.snapshot.variant(0)
        assert shown.step <= moment.step < 200  # the panels show that moment, not the end
        assert f"{shown.step}/200" in screen_text(app, "#loss-table")
        await pilot.press("pagedown")
        assert app.replay.position == 13
        await pilot.press("left")
        assert app.replay.position == 12
        await pilot.press("end")
        assert app.replay.position == len(app.replay) - 1
        assert "200/200" in screen_text(app, "#loss-table")
        await pilot.press("2")
        assert "step 200" in chart_text(app, "#grad-plot")
        await pilot.press("home")
        assert "step 1" in chart_text(app, "#grad-plot")


@sync
async def test_ascii_mode_draws_no_unicode_in_the_panels():
    app = make_app(run_dir=TINY_RUN, ascii_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await app.workers.wait_for_complete()
        app.refresh_now()
        await pilot.pause()
        for selector in ("#loss-plot", "#metric-plot", "#grad-plot", "#act-plot", "#lr-plot", "#ratio-plot", "#loss-table"):
            text = chart_text(app, selector) if selector != "#loss-table" else screen_text(app, selector)
            assert text.strip() and text.isascii(), (selector, [c for c in text if not c.isascii()][:5])
        assert app.screen.has_class("-ascii")  # CSS draws the panel borders in ASCII


def test_ascii_is_chosen_for_a_linux_console_or_a_non_utf8_locale():
    from nntui.tui.widgets.common import ascii_terminal

    assert ascii_terminal({"TERM": "linux", "LANG": "en_US.UTF-8"})
    assert ascii_terminal({"TERM": "xterm", "LANG": "C"})
    assert ascii_terminal({"TERM": "xterm", "LC_ALL": "en_US.ISO-8859-1", "LANG": "en_US.UTF-8"})
    assert not ascii_terminal({"TERM": "xterm-256color", "LANG": "en_US.UTF-8"})
    assert not ascii_terminal({"TERM": "linux", "NNTUI_ASCII": "0"})


def test_an_exploding_variant_does_not_flatten_the_others():
    from nntui.tui.widgets.chart import LineFigure, Series, render_line_figure, robust_range

    healthy, exploded = [2.3, 1.2, 0.6, 0.4], [2.3, 40.0, 3e4, 1.9e8]
    lo, hi, clipped = robust_range([healthy, exploded], log=False)
    assert clipped and lo == 0.4 and hi < 10
    fig = LineFigure("loss", [Series([0, 1, 2, 3], healthy, marker="•"), Series([0, 1, 2, 3], exploded, marker="+")],
                     x_max=3, y_fit=[healthy, exploded])
    rows = [line.plain for line in render_line_figure(fig, 40, 14)]
    plot = rows[1:-3]
    assert "↑" in plot[0]  # the diverged points sit on the top edge, marked
    assert len({i for i, row in enumerate(plot) if "•" in row}) >= 4  # the healthy curve spans the height
    assert "off scale" in rows[0]


def _screen_lines(app) -> list[str]:
    """Every cell of the screen as the terminal gets it (line filters applied)."""
    return ["".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips()]


@sync
async def test_ascii_mode_puts_no_unicode_anywhere_on_the_screen():
    app = make_app(run_dir=TINY_RUN, ascii_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        for key in ("1", "2", "5", "question_mark"):
            await pilot.press(key)
            await pilot.pause()
            lines = _screen_lines(app)
            assert len(lines) == 24 and all(len(line) == 80 for line in lines)
            bad = sorted({c for line in lines for c in line if not c.isascii()})
            assert not bad, (key, bad)
    unicode_app = make_app(run_dir=TINY_RUN, ascii_only=False)
    async with unicode_app.run_test(size=(80, 24)) as pilot:
        await unicode_app.workers.wait_for_complete()
        await pilot.pause()
        assert not all(line.isascii() for line in _screen_lines(unicode_app))  # the check can fail


def test_ascii_mapping_keeps_widths():
    from nntui.tui.ascii_filter import to_ascii

    text = "a · b… ←━╸╺│⠿⠀▶•"
    assert to_ascii(text) == "a . b. <---|. >*" and len(to_ascii(text)) == len(text)
    # the words the verdicts, health checks and optimizer panel use: readable, not "?", same cells
    from rich.cells import cell_len

    words = "last/first 149× · loss ≈ ln 10 · ±0.02 · ✓ ok ✗ · lr/(√v̂+eps) — a–b ⚠"
    assert to_ascii(words) == "last/first 149x . loss ~ ln 10 . ~0.02 . v ok x . lr/(Vv+eps) - a-b !"
    assert cell_len(to_ascii(words)) == cell_len(words)


@sync
async def test_low_bandwidth_frames_have_no_colour_and_switch_on_when_the_link_is_slow(monkeypatch):
    from nntui.tui import link

    monkeypatch.delenv("NNTUI_LOW_BANDWIDTH", raising=False)
    app = make_app(run_dir=TINY_RUN, ascii_only=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.low_bandwidth and any(seg.style and seg.style.color for strip in app.screen._compositor.render_strips() for seg in strip)
        for _ in range(link.SLOW_ANSWERS):  # the terminal answered each cursor query late
            app._probe_sent = time.monotonic() - link.SLOW_RTT_S - 0.5
            app.on_cursor_position(None)
        await pilot.pause()
        assert app.low_bandwidth and app.view.ascii_only
        assert app.query_one("#low-bandwidth-keys").display and not app.query("Footer")  # unmounted: it rebuilds on every key
        strips = app.screen._compositor.render_strips()
        assert not any(seg.style and (seg.style.color or seg.style.bgcolor) for strip in strips for seg in strip)
        assert all("".join(seg.text for seg in strip).isascii() for strip in strips)
    monkeypatch.setenv("NNTUI_LOW_BANDWIDTH", "1")
    forced = make_app(run_dir=TINY_RUN, ascii_only=False)
    async with forced.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert forced.low_bandwidth and not forced.low_bandwidth_auto


async def _frames_for_key(app, pilot, key: str, monkeypatch) -> int:
    """How many screen updates Textual sends to the terminal for one key (spied below the app's own pacing)."""
    from textual.app import App

    sent = []
    real_display = App._display
    monkeypatch.setattr(App, "_display", lambda self, screen, update: (update is not None and sent.append(update), real_display(self, screen, update))[1])
    await pilot.press(key)
    for _ in range(8):
        await pilot.pause(0.1)
    monkeypatch.setattr(App, "_display", real_display)
    return len(sent)


@sync
async def test_on_a_thin_link_a_key_costs_one_frame(monkeypatch):
    """A panel switch makes Textual lay out and paint 3-5 times; on a 2 KB/s link each is ~2 KB: held and sent once."""
    monkeypatch.setenv("NNTUI_LOW_BANDWIDTH", "0")
    colour = make_app(run_dir=TINY_RUN)
    async with colour.run_test(size=(80, 24)) as pilot:
        await colour.workers.wait_for_complete()
        await pilot.pause(0.5)
        assert await _frames_for_key(colour, pilot, "2", monkeypatch) >= 2  # what the hold is for
    monkeypatch.setenv("NNTUI_LOW_BANDWIDTH", "1")
    thin = make_app(run_dir=TINY_RUN)
    async with thin.run_test(size=(80, 24)) as pilot:
        await thin.workers.wait_for_complete()
        # the log is read: wait for the once-a-second tick to take it in, or its redraw lands inside a key's window
        await wait_for(pilot, lambda: thin.snapshot.version == thin.state.version, "the first snapshot of the log")
        await pilot.pause(0.2)
        for key, panel in (("2", "gradients"), ("3", "activations"), ("l", "activations")):
            assert await _frames_for_key(thin, pilot, key, monkeypatch) == 1, key
            assert thin.active_panel == panel
        assert "|weight grad|" not in "\n".join(_screen_lines(thin)) and "activation" in "\n".join(_screen_lines(thin)).lower()


@sync
async def test_an_ssh_session_starts_thin_and_takes_colour_only_from_a_link_measured_fast(monkeypatch):
    from nntui.tui import link

    monkeypatch.delenv("NNTUI_LOW_BANDWIDTH", raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.2 50000 10.0.0.1 22")
    app = make_app(run_dir=TINY_RUN, ascii_only=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.low_bandwidth  # the first frames are the largest: thin until measured

        def answer(in_flight: int, rtt: float) -> None:
            app._in_flight, app._probe_sent = in_flight, time.monotonic() - rtt
            app.on_cursor_position(None)

        answer(100, 0.05)  # almost nothing in flight: the link's latency, 50 ms
        answer(2048, 1.05)  # 2 KB took 1 s beyond the latency: 2 KB/s
        await pilot.pause()
        assert app.low_bandwidth and 1900 < app.link_bytes_per_s < 2200
        colour_needs = 80 * 24 * link.COLOUR_BYTES_PER_CELL  # a full colour frame within a second
        answer(2048, 0.05 + 2048 / (colour_needs * 0.9))  # a bit too slow for colour
        await pilot.pause()
        assert app.low_bandwidth
        answer(2048, 0.05 + 2048 / (colour_needs * 1.5))
        await pilot.pause()
        assert not app.low_bandwidth and app.query("Footer")  # fast enough: colour, and Textual's footer back
        for _ in range(link.SLOW_ANSWERS):
            answer(30_000, link.SLOW_RTT_S + 0.5)
        await pilot.pause()
        assert app.low_bandwidth
        answer(2048, 0.051)  # a lucky quick answer after lagging twice: stays thin (no flapping)
        await pilot.pause()
        assert app.low_bandwidth
    monkeypatch.delenv("SSH_CONNECTION")
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    monkeypatch.delenv("SSH_TTY", raising=False)
    local = make_app(run_dir=TINY_RUN, ascii_only=False)
    async with local.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not local.low_bandwidth


def _header_text(app) -> str:
    return "\n".join(_screen_lines(app)[:3])


@sync
async def test_an_own_model_run_shows_no_lecture_verdict_and_no_step_total(tmp_path):
    import torch
    import torch.nn.functional as F

    import nntui

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with nntui.watch(model, optimizer, name="mine", out=tmp_path / "runs", quiet=True) as run:
        for _ in range(12):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(torch.randn(16, 6)), torch.randint(0, 3, (16,)))
            loss.backward()
            optimizer.step()
            run.log(loss=loss)
    app = make_app(run_dir=run.run_dir, ascii_only=False)
    async with app.run_test(size=(100, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("end")
        app.refresh_now()
        await pilot.pause()
        header = _header_text(app)
        assert re.search(r"step \d+ ·", header) and "step 0/0" not in header and "/0 ·" not in header, header
        assert "no lecture verdict (your own model)" in header and "verdicts come at epoch ends" not in header, header


@sync
async def test_an_old_finished_run_never_says_its_writer_may_have_failed(tmp_path):
    import os

    run_dir = tmp_path / "old"
    shutil.copytree(TINY_RUN, run_dir)
    old = time.time() - 3000
    os.utime(run_dir / "events.jsonl", (old, old))
    app = make_app(run_dir=run_dir, ascii_only=False)
    assert app._writer_note() == ""  # before the first read: the log has events, only unread
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "may have failed" not in _header_text(app)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "events.jsonl").write_text("")
    os.utime(empty_dir / "events.jsonl", (old, old))
    assert "may have failed" in make_app(run_dir=empty_dir, ascii_only=False)._writer_note()  # the check can fail


def test_no_verdict_reads_pending_while_running_and_inconclusive_once_the_run_is_over():
    from nntui.tui.widgets.header import verdict_mark

    assert verdict_mark(None)[0] == "…" and verdict_mark(None, ascii_only=True)[0] == "..."
    assert verdict_mark(None, run_over=True)[0] == "?"
    assert verdict_mark(True, run_over=True)[0] == "✓" and verdict_mark(False)[0] == "✗"


def test_tick_labels_tell_close_ticks_apart():
    """A constant LR of 1e-3 drawn over 0.00099..0.0011 once read 0.0011, 0.0011, 0.001, 0.001, 0.001."""
    from nntui.tui.widgets.scale import linear_axis

    for lo, hi, fmt in [(0.00099, 0.0011, "sci"), (2.30, 2.32, ""), (0.5, 0.51, "sci"), (0.0, 1.0, "")]:
        ticks = linear_axis(lo, hi, 5, fmt).ticks
        labels = [label for _, label in ticks]
        assert len(set(labels)) == len(labels), labels
        for value, label in ticks:  # each label still reads as its value, to the precision shown
            assert abs(float(label) - value) <= 0.006 * max(abs(value), 1e-12) + 1e-15, (label, value)
    assert [label for _, label in linear_axis(0.0, 1.0, 5).ticks] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
