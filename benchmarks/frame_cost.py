"""What a dashboard frame costs: the loss figure drawn by nntui's text charts vs plotext (same data, same size),
and whole panel redraws in the app (update + render) replaying a run log.

python -m benchmarks.frame_cost [RUN_DIR]   (default: the committed tiny run)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

from nntui.record.runlog import RunLogReader
from nntui.record.state import RunState
from nntui.tui.snapshot import take_snapshot
from nntui.tui.widgets.chart import render_line_figure
from nntui.tui.widgets.common import ViewOptions
from nntui.tui.widgets.loss import loss_figure

SIZES = [(80, 24), (160, 48)]
REPEAT = 20


def _median_ms(fn, repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def plotext_loss(snap, width: int, height: int) -> str:
    """The same series as loss_figure, drawn the way the dashboard drew them before (plotext, braille lines)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.title("loss")
    for v in snap.variants:
        plt.plot(*v.train_loss, marker="dot")
        plt.plot(*v.train_loss_ema, marker="hd", label=v.name)
        if v.test_loss:
            plt.scatter([s for s, _ in v.test_loss], [x for _, x in v.test_loss], marker="●")
    return plt.build()


def figure_costs(snap) -> list[dict]:
    rows = []
    for width, height in SIZES:
        w, h = width * 2 // 3 - 2, height - 10  # the loss plot's share of the screen
        ours = _median_ms(lambda: render_line_figure(loss_figure(snap, ViewOptions(), 2 * w), w, h))
        theirs = _median_ms(lambda: plotext_loss(snap, w, h), 5)
        rows.append({"size": f"{width}x{height}", "plot": f"{w}x{h}", "nntui_chart_ms": round(ours, 2), "plotext_ms": round(theirs, 1)})
    return rows


def app_frame_costs(run_dir: Path) -> list[dict]:
    from nntui.tui.app import make_app

    rows = []
    for width, height in SIZES:
        app = make_app(run_dir=run_dir)

        async def drive() -> float:
            async with app.run_test(size=(width, height)) as pilot:
                await app.workers.wait_for_complete()
                times = []
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    app.refresh_now()  # every visible panel updated...
                    await pilot.pause()  # ...and rendered by Textual's compositor
                    times.append(time.perf_counter() - started)
                return 1000 * statistics.median(times)

        rows.append({"size": f"{width}x{height}", "layout": "grid" if width >= 130 else "tabs", "frame_ms": round(asyncio.run(drive()), 1)})
    return rows


def main() -> None:
    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tiny-run"
    state = RunState()
    for event in RunLogReader(run_dir).read_all():
        state.apply(event)
    snap = take_snapshot(state)
    for row in figure_costs(snap):
        print(row)
    for row in app_frame_costs(run_dir):
        print(row)


if __name__ == "__main__":
    main()
