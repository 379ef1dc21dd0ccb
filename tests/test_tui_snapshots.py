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


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_finished_replay(snap_compare, size):
    assert snap_compare(make_app(run_dir=TINY_RUN), terminal_size=size, run_before=replay_loaded)


def test_gradients_panel_of_the_deep_variant_at_80x24(snap_compare):
    assert snap_compare(make_app(run_dir=TINY_RUN), terminal_size=(80, 24), run_before=replay_loaded, press=["tab", "2"])
