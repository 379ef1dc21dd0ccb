"""The health checks of the selected variant, live: a few lines at the top of the lesson panel."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from nntui.record.state import RunState
from nntui.verdicts.health import check_health

MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red"), "n/a": ("·", "dim")}


def health_text(report: dict, selected: int) -> Text:
    """The selected variant's failed and warned checks one per line; the passed ones counted."""
    rows = report["variants"]
    if not rows:
        return Text("health: waiting for the first probe", style="dim")
    row = rows[selected % len(rows)]
    out = Text.assemble(("health", "bold underline"), f" ({row['name']})" if len(rows) > 1 else "")
    shown = [c for c in row["checks"] if c["status"] in ("fail", "warn")]
    for c in shown:
        mark, style = MARKS[c["status"]]
        out.append("\n")
        out.append(f"{mark} {c['title']}: ", style=style)
        out.append(c["text"])
    counts = {status: sum(c["status"] == status for c in row["checks"]) for status in ("ok", "n/a")}
    tail = " · ".join(f"{n} {status}" for status, n in counts.items() if n)
    out.append("\n")
    out.append(f"✓ {tail}" if not shown else tail, style="green" if not shown else "dim")
    return out


class HealthText(Static):
    DEFAULT_CSS = "HealthText { height: auto; margin-bottom: 1; }"

    def show(self, state: RunState, selected: int) -> None:
        self.update(health_text(check_health(state), selected))
