"""The ? screen: every key, and where the same actions live in the command palette."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """[b]nntui dashboard keys[/b]

  [b]space[/b]        pause / resume training (live runs)
  [b]tab[/b] / [b]n[/b]      next variant        [b]shift+tab[/b] / [b]p[/b]  previous variant
  [b]1[/b]–[b]5[/b]          show a panel (small terminals show one at a time)
  [b]l[/b]            loss: log / linear y
  [b]h[/b]            gradients: boxplots / median history
  [b]s[/b]            save an SVG screenshot into the run directory
  [b]ctrl+p[/b]       command palette (the same actions)
  [b]q[/b] / [b]ctrl+c[/b]   quit: training stops after the current step, the log is saved

Panels follow the selected variant; the loss panel overlays all of them.
[dim]escape or ? closes this help[/dim]"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(HELP_TEXT)
