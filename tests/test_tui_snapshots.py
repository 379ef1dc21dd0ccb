"""Snapshot tests of the dashboard replaying the committed tiny run (deterministic: no wall clock shown).

Update after an intended change with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nntui.tui.app import make_app

TINY_RUN = Path(__file__).parent / "fixtures" / "tiny-run"


async def replay_loaded(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    pilot.app.refresh_now()
    await pilot.pause()


def replay_app(**options):
    return make_app(run_dir=TINY_RUN, ascii_only=options.pop("ascii_only", False), **options)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_finished_replay(snap_compare, size):
    assert snap_compare(replay_app(), terminal_size=size, run_before=replay_loaded)


def test_gradients_panel_of_the_deep_variant_at_80x24(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(80, 24), run_before=replay_loaded, press=["tab", "2"])


def test_help_screen_at_80x24(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(80, 24), run_before=replay_loaded, press=["question_mark"])


def test_lesson_panel_with_its_verdict_at_80x24(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(80, 24), run_before=replay_loaded, press=["5"])


def test_replay_stepped_to_mid_run_at_80x24(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(80, 24), run_before=replay_loaded, press=["home", "pagedown", "right"])


def test_ascii_mode_at_80x24(snap_compare):
    assert snap_compare(replay_app(ascii_only=True), terminal_size=(80, 24), run_before=replay_loaded, press=["l"])


def test_minimum_size_60x16(snap_compare):
    assert snap_compare(replay_app(), terminal_size=(60, 16), run_before=replay_loaded)
