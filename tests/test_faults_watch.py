"""`nntui watch` and every reader of a run directory: any file is read without crashing, hanging or bloating."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nntui.errors import NntuiError
from nntui.record import events as ev
from nntui.record import runlog
from nntui.record.runlog import RunLogReader, read_small_file
from nntui.record.state import RunState, build_summary
from tests.helpers import invoke, tiny_preset

GOOD = [
    {"type": "run_started", "preset": "p", "title": "t", "lesson": "l", "dataset": "d", "device": "cpu", "task": "classification",
     "run_dir": "r", "variants": [{"name": "a", "layers": ["fc1"], "steps_per_epoch": 10, "total_steps": 100, "epochs": 10}], "started_at": 1.0},
    {"type": "steps", "variant": "a", "first_step": 1, "losses": [2.0, 1.5], "lr": 0.1, "epoch": 0.2, "elapsed": 0.1},
    {"type": "layer_stats", "variant": "a", "step": 1, "layers": [{"name": "fc1", "grad": [0, 1, 2, 3, 4], "act": [0, 1, 2, 3, 4], "saturation": 0.1}]},
]


def _run_dir(tmp_path: Path, lines: list[bytes | str | dict]) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    with open(run_dir / "events.jsonl", "wb") as f:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            f.write((line.encode() if isinstance(line, str) else line) + b"\n")
    return run_dir


def sync(test):
    """Run an async pilot test without an async pytest plugin."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return wrapper


def _replay(run_dir: Path) -> RunState:
    from nntui.tui.snapshot import take_snapshot  # what the dashboard reads of the state

    state = RunState()
    for event in RunLogReader(run_dir).read_all():
        state.apply(event)
    build_summary(state)
    take_snapshot(state)
    return state


@pytest.mark.parametrize(
    "bad",
    [
        "[1, 2]", "3", '"text"', "null", "{}", '{"type": 5}', '{"type": "nope"}', '{"type": "skipped", "lines": 99}',
        '{"type": "steps", "variant": "a"}',
        '{"type": "steps", "variant": "a", "first_step": 1, "losses": "abc", "lr": 0.1, "epoch": 0, "elapsed": 0}',
        '{"type": "steps", "variant": "a", "first_step": "1", "losses": [1], "lr": 0.1, "epoch": 0, "elapsed": 0}',
        '{"type": "steps", "variant": ["a"], "first_step": 1, "losses": [1], "lr": 0.1, "epoch": 0, "elapsed": 0}',
        '{"type": "steps", "variant": "a", "first_step": 1, "losses": [true], "lr": 0.1, "epoch": 0, "elapsed": 0}',
        '{"type": "run_started", "preset": "p", "title": "t", "lesson": "l", "dataset": "d", "device": "c", "task": "x", "run_dir": "r", "variants": {"a": 1}, "started_at": 0}',
        '{"type": "run_started", "preset": "p", "title": "t", "lesson": "l", "dataset": "d", "device": "c", "task": "x", "run_dir": "r", "variants": [{"nom": "a"}], "started_at": 0}',
        '{"type": "layer_stats", "variant": "a", "step": 1, "layers": [{"name": "fc1", "grad": [1]}]}',
        '{"type": "layer_stats", "variant": "a", "step": 1, "layers": [{"name": "fc1", "grad": [1, 2, 3, 4, 5], "act": "x"}]}',
        '{"type": "predictions", "variant": "a", "step": 1, "x": [1, 2], "y": [1]}',
        '{"type": "alert", "variant": null, "step": 99999999999999999999999, "level": "x", "message": "m"}',
        '{"type": "eval", "variant": "a", "step": 1, "epoch": 1, "split": "test", "loss": 1e999, "accuracy": null}',
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 5000 + "1" + "}" * 5000,
        "{not json", b"\xff\xfe\x00garbage", "\x00" * 100,
    ],
)
def test_lines_of_the_wrong_shape_or_type_are_skipped_and_counted(tmp_path, bad):
    state = _replay(_run_dir(tmp_path, [GOOD[0], bad, GOOD[1], GOOD[2]]))
    assert state.skipped_lines == 1
    assert state.variants["a"].step == 2 and state.variants["a"].layer_stats_step == 1


def test_long_lines_are_skipped_without_being_held_whole(tmp_path, monkeypatch):
    run_dir = _run_dir(tmp_path, [GOOD[0], b'{"type": "alert", "message": "' + b"x" * (20 << 20) + b'"}', GOOD[1]])
    monkeypatch.setattr(runlog, "MAX_LINE_BYTES", 1 << 20)
    tracemalloc.start()
    state = _replay(run_dir)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert state.skipped_lines == 1 and state.variants["a"].step == 2
    assert peak < 8 << 20, peak  # a 20 MB line, read in 1 MB chunks, never held


def test_long_texts_are_cut(tmp_path):
    started = dict(GOOD[0], lesson="word " * 1_000_000, title="t" * 100_000)
    state = _replay(_run_dir(tmp_path, [started]))
    assert len(state.lesson) == ev.MAX_TEXT and len(state.title) == ev.MAX_TEXT


def test_a_log_naming_thousands_of_variants_stays_bounded(tmp_path):
    lines = [GOOD[0]] + [dict(GOOD[1], variant=f"v{i}") for i in range(1000)]
    state = _replay(_run_dir(tmp_path, lines))
    assert len(state.variants) == 256 and state.skipped_lines == 1000 - 255


def test_a_partial_last_line_is_waited_for_then_read(tmp_path):
    run_dir = _run_dir(tmp_path, [GOOD[0]])
    reader = RunLogReader(run_dir)
    assert [e.type for e in reader.read_new()] == ["run_started"]
    line = json.dumps(GOOD[1]).encode()
    with open(run_dir / "events.jsonl", "ab") as f:
        f.write(line[:10])
        f.flush()
        assert reader.read_new() == []
        f.write(line[10:] + b"\n")
    assert [e.type for e in reader.read_new()] == ["steps"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
event_like = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(ev.EVENT_TYPES) + ["x"])},
    optional={k: json_values for k in ("variant", "step", "first_step", "losses", "lr", "epoch", "elapsed", "layers", "variants", "groups",
                                       "x", "y", "lower", "upper", "split", "loss", "accuracy", "kind", "path", "status", "summary", "text",
                                       "reproduced", "preset", "title", "lesson", "dataset", "device", "task", "run_dir", "started_at",
                                       "message", "level", "finished_at", "notes", "test_loss", "reason", "pid", "host", "lines")},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(event_like | json_values, max_size=8))
def test_any_json_values_never_crash_the_reader_or_the_state(tmp_path, lines):
    run_dir = _run_dir(tmp_path, [GOOD[0], *[json.dumps(v) for v in lines], GOOD[1]])
    state = _replay(run_dir)
    assert state.variants["a"].step >= 2 or state.skipped_lines >= 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=2000))
def test_any_bytes_never_crash_the_reader_or_the_state(tmp_path, blob):
    run_dir = _run_dir(tmp_path, [GOOD[0], blob, GOOD[1]])
    state = _replay(run_dir)
    assert state.preset == "p"


def test_summary_of_a_hand_edited_log_is_json(tmp_path):
    state = _replay(_run_dir(tmp_path, [GOOD[0], GOOD[1], GOOD[2], '{"type": "verdict", "variant": "a", "step": 1, "reproduced": "yes", "text": "t"}']))
    json.dumps(build_summary(state), allow_nan=False)
    assert state.skipped_lines == 1


# ---------------------------------------------------------------- files where a small one is expected


def test_a_fifo_where_a_small_file_is_expected_is_refused_at_once(tmp_path, out_dir):
    fifo = tmp_path / "lr_find.json"
    os.mkfifo(fifo)
    done = threading.Event()
    result = {}

    def attempt():
        result["r"] = invoke("run", "cyclic-lr", "--from-lr-find", str(fifo), "--out", str(out_dir))
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(120), "hung on a FIFO"
    assert result["r"].exit_code == 2 and "not a regular file" in result["r"].stderr
    preset_fifo = tmp_path / "p.toml"
    os.mkfifo(preset_fifo)
    r = invoke("run", str(preset_fifo), "--out", str(out_dir))  # the preset loader takes only regular files
    assert r.exit_code == 2 and "p.toml" in r.stderr
    assert not out_dir.exists()


def test_a_huge_file_where_a_small_one_is_expected_is_refused(tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB of nothing
    with pytest.raises(NntuiError, match="too large"):
        read_small_file(big, "--from-lr-find")
    r = invoke("run", "cyclic-lr", "--from-lr-find", str(big))
    assert r.exit_code == 2 and "too large" in r.stderr


def test_watch_refuses_a_directory_without_a_readable_log(tmp_path):
    (tmp_path / "d" / "events.jsonl").mkdir(parents=True)
    r = invoke("watch", str(tmp_path / "d"))
    assert r.exit_code == 2 and "has no events.jsonl" in r.stderr
    os.mkfifo(tmp_path / "f.jsonl")
    (tmp_path / "e").mkdir()
    os.symlink(tmp_path / "f.jsonl", tmp_path / "e" / "events.jsonl")
    r = invoke("watch", str(tmp_path / "e"))
    assert r.exit_code == 2 and "has no events.jsonl" in r.stderr


def test_corrupt_cached_pt_under_data_dir_gives_no_unsafe_advice(tmp_path, out_dir):
    processed = tmp_path / "data" / "MNIST" / "processed"
    processed.mkdir(parents=True)
    (tmp_path / "data" / "MNIST" / "raw").mkdir()
    for name in ("training.pt", "test.pt"):
        (processed / name).write_bytes(b"garbage, not a pickle")
    r = invoke("run", str(tiny_preset(tmp_path / "t.toml")), "--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--out", str(out_dir))
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    assert "weights_only" not in r.stderr and "unreadable" in r.stderr and "delete" in r.stderr
    assert not out_dir.exists()


@sync
async def test_watch_says_when_the_writer_never_wrote_anything(tmp_path):
    from nntui.tui import app as app_module

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "events.jsonl").write_bytes(b"")
    os.utime(run_dir / "events.jsonl", (0, 0))  # written long ago
    dashboard = app_module.make_app(run_dir=run_dir)
    async with dashboard.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.6)
        assert "nothing written for" in dashboard.writer_note and "before its first event" in dashboard.writer_note


@sync
async def test_watch_shows_how_many_lines_it_skipped(tmp_path):
    from nntui.tui import app as app_module

    run_dir = _run_dir(tmp_path, [GOOD[0], "garbage", "[1]", GOOD[1]])
    dashboard = app_module.make_app(run_dir=run_dir)
    async with dashboard.run_test(size=(100, 30)) as pilot:
        await pilot.pause(1.0)
        assert dashboard.state.skipped_lines == 2 and "2 unreadable lines skipped" in dashboard.writer_note
