"""The ? screen: every key, and where the same actions live in the command palette."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """[b]nntui dashboard keys[/b]

[b]space[/b]          pause / resume training (live runs)
[b]tab[/b] [b]n[/b] / [b]shift+tab[/b] [b]p[/b]   next / previous variant
[b]1[/b]-[b]5[/b]            show a panel: loss, gradients, activations,
               optimizer, lesson (small terminals: one at a time)
[b]up[/b] [b]down[/b]        scroll the panel shown (also page keys: live runs)
[b]l[/b]              loss: log / linear y
[b]h[/b]              gradients: boxes / median per layer over time
[b]s[/b]              save an SVG screenshot into the run directory
[b]ctrl+p[/b]         command palette (the same actions)
[b]q[/b] / [b]ctrl+c[/b]     quit: training stops after the current step,
               the log and summary are saved

[b]Replay[/b] ([b]nntui watch[/b] of a finished run)
[b]left[/b] [b]right[/b] [b],[/b] [b].[/b]  one probe / evaluation back or on
[b]pgup[/b] [b]pgdn[/b] [b]<[/b] [b]>[/b]   jump ten          [b]home[/b] [b]end[/b] [b]g[/b] [b]G[/b]  start / end
Every panel then shows that moment; the header says where you are.

[b]Reading the plots[/b]
Each variant has a marker (• + x ∘ …, shown in the legend and the
table) as well as a colour; its test points are its number (1, 2, …).
Dots are the raw train loss. ↑ on the top edge: values off the scale
(a diverged variant), kept off so the other curves stay readable.
The third header line is the run's verdict, or its newest alert.

[dim]escape, q or ? closes this help[/dim]"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q,f1", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(HELP_TEXT, id="help-text")
