"""What a user reads from the headless CLI (nntui/report.py), in process: the plain progress lines of a log, the
live bars of a terminal, the final table, verdicts, finding and error. Expected texts are written out by hand
from the events fed in (issue 15, item 5: scripts/mutation.sh report runs these per mutant)."""

from __future__ import annotations

import io
import math
import re
import sys

import pytest
from rich.console import Console

from nntui import report
from nntui.record import events as ev
from nntui.record.state import RunState

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RED, GREEN, YELLOW = "\x1b[31m", "\x1b[32m", "\x1b[33m"


class Clock:
    """Stands in for report's time module: the test says what time it is."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def started(*variants: tuple[str, int]) -> RunState:
    state = RunState()
    infos = [{"name": name, "total_steps": total} for name, total in variants]
    state.apply(ev.RunStarted("p", "", "", "d", "cpu", "classification", "/runs/x", infos, 0.0))
    return state


def feed(state: RunState, progress: report.HeadlessProgress, *events: ev.Event) -> None:
    """As the runner does: the state first, then its listener."""
    for event in events:
        state.apply(event)
        progress.on_event(event)


def log_console(color: bool = True) -> tuple[Console, io.StringIO]:
    """A console writing to a file (not a terminal); colour forced on, so any colour or highlighting would show."""
    out = io.StringIO()
    return Console(file=out, width=200, color_system="standard" if color else None), out


def terminal_console(width: int = 120) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=width, color_system="standard"), out


# -- plain lines in a log


def test_a_log_gets_a_line_per_running_variant_every_five_seconds(monkeypatch):
    clock = Clock(1000.0)
    monkeypatch.setattr(report, "time", clock)
    state = started(("a", 100), ("b", 50))
    console, out = log_console()
    progress = report.HeadlessProgress(state, console)
    assert not progress.live
    written = lambda: out.getvalue().splitlines()  # noqa: E731

    feed(state, progress, ev.Steps("a", 1, [1.0, 0.5, 0.25, 0.25], 0.1, 0.1, 2.0))
    # b has not started: no line for it; mean of the last losses 2/4, 4 steps in 2 s
    assert written() == ["a: step 4/100 loss 0.5000 2 steps/s running"]
    clock.now = 1003.0
    feed(state, progress, ev.Steps("b", 1, [2.0, 1.0], 0.1, 0.1, 0.5))
    assert len(written()) == 1  # 3 s after the last line: nothing yet
    clock.now = 1005.0  # exactly the interval: lines for both, in the run's order
    feed(state, progress, ev.Steps("a", 5, [0.125], 0.1, 0.1, 4.0))
    assert written()[1:] == ["a: step 5/100 loss 0.4250 1 steps/s running", "b: step 2/50 loss 1.5000 4 steps/s running"]
    clock.now = 1006.0
    feed(state, progress, ev.Steps("a", 6, [0.5], 0.1, 0.1, 6.0))
    assert len(written()) == 3  # 1 s after the last timed line
    clock.now = 1007.0  # a variant that finishes gets its line at once, and only it
    feed(state, progress, ev.VariantFinished("b", "completed", 2, 1.0))
    assert written()[3:] == ["b: step 2/50 loss 1.5000 4 steps/s completed"]
    clock.now = 1010.0  # five seconds after the last timed line (the finished one does not reset the clock)
    feed(state, progress, ev.Steps("a", 7, [0.25], 0.1, 0.1, 7.0))
    assert written()[4:] == ["a: step 7/100 loss 0.4107 1 steps/s running"]  # (2.125 + 0.5 + 0.25) / 7
    assert "\x1b" not in out.getvalue()  # plain text: no colour, no highlighted numbers


def test_a_log_line_before_any_loss_shows_a_dash_and_a_finished_variant_with_its_final_status(monkeypatch):
    monkeypatch.setattr(report, "time", Clock(50.0))
    state = started(("[b]only", 10))
    console, out = log_console()
    progress = report.HeadlessProgress(state, console, interval=60.0)
    progress.update()  # pending: nothing to say
    progress.update(force=True)  # forced: every variant, whatever its status
    assert out.getvalue().splitlines() == ["[b]only: step 0/10 loss — 0 steps/s pending"]
    feed(state, progress, ev.Steps("[b]only", 1, [3.0], 0.1, 0.1, 0.5), ev.Steps("[b]only", 2, [math.inf], 0.1, 0.2, 1.0))
    assert len(out.getvalue().splitlines()) == 1  # 50 s is within the 60 s interval
    feed(state, progress, ev.VariantFinished("[b]only", "diverged", 2, 0.2))
    assert out.getvalue().splitlines()[1:] == ["[b]only: step 2/10 loss inf 2 steps/s diverged"]


def test_warnings_and_errors_are_printed_as_text_and_notes_are_not(monkeypatch):
    monkeypatch.setattr(report, "time", Clock(1000.0))
    state = started(("a", 10))
    console, out = log_console()
    progress = report.HeadlessProgress(state, console, interval=1e9)
    feed(state, progress,
         ev.Alert("a", 3, "info", "lr lowered"),
         ev.Alert("a", 3, "warning", "loss 3.5 at [bold]step[/bold] 10"),
         ev.Eval("a", 3, 0.3, "test", 1.0, 0.5),
         ev.Alert(None, 4, "error", "gradient is nan"))
    assert out.getvalue().splitlines() == ["! loss 3.5 at [bold]step[/bold] 10", "! gradient is nan"]


# -- live bars on a terminal


def final_frame(raw: str) -> list[str]:
    """The lines left on screen once the live display stopped: what follows its last erase, colours removed."""
    return [line.rstrip() for line in ANSI.sub("", raw.rsplit("\x1b[2K", 1)[-1]).splitlines() if line.strip()]


def test_a_terminal_shows_a_bar_per_variant_that_stays_on_screen_at_the_end():
    state = started(("[b]deep[/b]", 100), ("shallow", 4))
    console, out = terminal_console()
    with report.HeadlessProgress(state, console) as progress:
        assert progress.live
        feed(state, progress,
             ev.Steps("[b]deep[/b]", 1, [0.5] * 39 + [0.25], 0.1, 0.4, 2.0),
             ev.Steps("shallow", 1, [1.0, 2.0, 3.0, 4.0], 0.1, 1.0, 0.5),
             ev.VariantFinished("shallow", "completed", 4, 1.0))
    deep, shallow = final_frame(out.getvalue())
    # the name as written (not markup), a bar 40 % full, the figures, time left unknown to a just-started clock
    assert deep.startswith("[b]deep[/b] ") and "step     40  loss 0.4938       20 steps/s  running" in deep
    filled, unfilled = "\x1b[91m", "\x1b[90m"  # the bar's two colours
    assert f"{filled}{'━' * 16}\x1b[0m{unfilled}╺\x1b[0m{unfilled}{'━' * 23}\x1b[0m" in out.getvalue().rsplit("\x1b[2K", 1)[-1]  # 40 % of 40 cells
    assert shallow.startswith("shallow ") and "step      4  loss 2.5000        8 steps/s  completed" in shallow
    assert shallow.endswith("0:00:00")  # reached its total: nothing left
    assert "\x1b[?25h" in out.getvalue()  # the cursor is given back


def test_a_variant_without_a_known_total_gets_a_bar_without_an_end():
    state = started(("free", 0))
    console, out = terminal_console()
    with report.HeadlessProgress(state, console) as progress:
        feed(state, progress, ev.Steps("free", 1, [1.0, 1.0], 0.1, 0.1, 1.0), ev.VariantFinished("free", "completed", 2, 1.0))
    (row,) = final_frame(out.getvalue())
    assert row.endswith("step      2  loss 1.0000        2 steps/s  completed")  # no time left to show


def test_a_warning_on_a_terminal_is_yellow_text_above_the_bars():
    state = started(("a", 10))
    console, out = terminal_console()
    with report.HeadlessProgress(state, console) as progress:
        feed(state, progress, ev.Alert("a", 3, "warning", "loss 3.5 at [bold]step[/bold] 10"), ev.Alert("a", 3, "info", "quiet"))
    raw = out.getvalue()
    assert f"{YELLOW}! loss 3.5 at [bold]step[/bold] 10\x1b[0m\n" in raw  # one colour, numbers not highlighted
    assert "quiet" not in raw


# -- the final table and what follows it


def summary(**changes) -> dict:
    base = {
        "preset": "depth[1]", "dataset": "mnist", "device": "cpu", "status": "completed", "run_dir": "/runs/[b]r1",
        "finding": "", "reproduced": None, "error": "",
        "variants": [
            {"name": "[b]wide[/b]", "status": "completed", "steps": 1200, "train_loss": 0.123456, "test_loss": None,
             "test_accuracy": 0.98765, "steps_per_second": 99.6, "verdict": "wide: learns [fast] in 2.5 epochs"},
            {"name": "narrow", "status": "diverged", "steps": 3, "train_loss": None, "test_loss": 2.5,
             "test_accuracy": None, "steps_per_second": 0.4, "verdict": ""},
        ],
    }
    base.update(changes)
    return base


def printed(data: dict, width: int = 120, color: bool = False) -> str:
    out = io.StringIO()
    report.print_summary(data, Console(file=out, width=width, color_system="standard" if color else None))
    return out.getvalue()


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("│┃ ").split("│" if "│" in line else "┃")]


def test_the_table_has_a_title_headings_and_a_row_per_variant_with_its_figures():
    lines = printed(summary()).splitlines()
    assert lines[0].strip() == "depth[1] on mnist (cpu) — completed"
    assert cells(lines[2]) == ["variant", "status", "steps", "train loss", "test loss", "test acc", "steps/s"]
    body = [line for line in lines if line.startswith("│")]
    assert [cells(line) for line in body] == [
        ["[b]wide[/b]", "completed", "1200", "0.1235", "—", "98.8%", "100"],
        ["narrow", "diverged", "3", "—", "2.5000", "—", "0"],
    ]
    assert lines.index(body[1].rstrip()) == lines.index(body[0].rstrip()) + 1  # no rule between rows
    assert max(len(line) for line in lines) <= 120


def test_a_long_variant_name_is_folded_into_a_narrow_table_not_cut():
    name = "a-variant-name-longer-than-a-narrow-column"
    data = summary(variants=[dict(summary()["variants"][1], name=name)])
    lines = printed(data, width=60).splitlines()
    assert max(len(line) for line in lines) <= 60
    assert "".join(cells(line)[0] for line in lines if line.startswith("│")) == name


def test_verdicts_then_the_finding_then_the_run_directory_follow_the_table_as_plain_text():
    text = printed(summary(finding="depth [red]slows[/red] learning", reproduced=None), color=True)
    after = text.split("└")[1].splitlines()[1:]
    # brackets, numbers and paths as written: no markup read, nothing highlighted
    assert after == ["  wide: learns [fast] in 2.5 epochs", "· depth [red]slows[/red] learning", "run directory: /runs/[b]r1"]


@pytest.mark.parametrize(("reproduced", "mark", "colour"), [(True, "✓", GREEN), (False, "✗", RED), (None, "·", "")])
def test_the_finding_is_marked_by_whether_it_was_reproduced(reproduced, mark, colour):
    text = printed(summary(finding="deep nets stall", reproduced=reproduced), color=True)
    line = next(line for line in text.splitlines() if "deep nets stall" in line)
    assert line == (f"{colour}{mark}\x1b[0m deep nets stall" if colour else f"{mark} deep nets stall")


def test_no_finding_no_verdict_no_error_prints_only_the_table_and_the_directory():
    data = summary(variants=[dict(summary()["variants"][1])])
    text = printed(data)
    assert text.split("└")[1].splitlines()[1:] == ["run directory: /runs/[b]r1"]


def test_a_failed_run_says_what_failed_in_red_as_text():
    text = printed(summary(status="failed", error="out of memory [cuda] 2 GiB"), color=True)
    assert f"{RED}failed: out of memory [cuda] 2 GiB\x1b[0m\n" in text
    assert ANSI.sub("", text).splitlines()[-1] == "run directory: /runs/[b]r1"


# -- the console for headless output


class TerminalFile(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stderr_in_a_log_is_120_columns_with_long_lines_kept_whole(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delenv("COLUMNS", raising=False)
    console = report.stderr_console()
    console.print("x" * 150, markup=False)
    report.print_summary(summary(variants=[dict(summary()["variants"][1], name="n" * 200)]), console)
    lines = sys.stderr.getvalue().splitlines()
    assert lines[0] == "x" * 150  # a log line is never broken
    assert max(len(line) for line in lines[1:]) == 120  # a table is laid out for 120 columns


def test_stderr_on_a_terminal_uses_the_terminals_width_and_wraps(monkeypatch):
    monkeypatch.setattr(sys, "stderr", TerminalFile())
    monkeypatch.setenv("COLUMNS", "80")
    console = report.stderr_console()
    console.print("x" * 150, markup=False)
    assert ANSI.sub("", sys.stderr.getvalue()).splitlines() == ["x" * 80, "x" * 70]
