"""The compare view: several run directories side by side (`nntui compare`), or one seeds run with its
seeds folded into a mean and a band (`nntui watch runs/<id>` of a `--seeds` run).

Each run log is read into its own RunState (followed while it grows); the panels draw one merged
Snapshot whose variants are labelled run/variant, so the dashboard's own panels draw it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.geometry import Size
from textual.widgets import Footer, Static, Tab, Tabs

from nntui.record.runlog import EVENTS_FILE, RunLogReader
from nntui.record.runs import check_run_dir, is_seeds_run, read_preset_name, seed_dirs, short_labels
from nntui.record.state import RunState
from nntui.tui.link import LinkPacing
from nntui.tui.snapshot import FINISHED, Snapshot, take_snapshot
from nntui.tui.view_keys import ViewKeys
from nntui.tui.widgets.common import ViewOptions, ascii_terminal
from nntui.tui.widgets.compare_panels import BandLossPanel, LayersComparePanel, selected_summary
from nntui.tui.widgets.loss import LossPanel
from nntui.tui.widgets.optimizer import OptimizerPanel

REFRESH_S = 1.0
MIN_SIZE = (60, 16)
GRID_SIZE = (130, 38)


@dataclass
class Source:
    label: str
    run_dir: Path
    reader: RunLogReader
    state: RunState


COMPARE_KEYS = "1-3 panel  tab variant  l log  s svg  q quit"  # the footer's keys, fixed (low-bandwidth frames)


class CompareApp(ViewKeys, LinkPacing, App[None]):
    CSS_PATH = ["app.tcss", "compare.tcss"]
    TITLE = "nntui compare"
    BINDINGS = [
        Binding("tab,n", "next_variant", "variant", priority=True),
        Binding("shift+tab,p", "previous_variant", "prev", show=False, priority=True),
        Binding("l", "toggle_log", "log y"),
        Binding("s", "screenshot", "svg"),
        Binding("q", "quit", "quit"),
        Binding("1", "show_panel('loss')", "loss", show=False),
        Binding("2", "show_panel('layers')", "layers", show=False),
        Binding("3", "show_panel('optimizer')", "optimizer", show=False),
    ]

    def __init__(self, run_dirs: list[Path], *, bands: bool = False) -> None:
        super().__init__()
        self.run_dirs = [check_run_dir(Path(p)) for p in run_dirs]
        self.bands = bands
        self.sources: list[Source] = []
        self.view = ViewOptions(ascii_only=ascii_terminal())
        self.setup_link(ascii_requested=self.view.ascii_only)
        self.snapshot = Snapshot()
        self.layout_mode = ""
        self.active_panel = "loss"
        self._add_new_sources()

    @property
    def panels(self) -> list[tuple[str, str, type]]:
        loss = ("loss", "Loss: mean ± band over seeds" if self.bands else "Loss: every run/variant", BandLossPanel if self.bands else LossPanel)
        return [loss, ("layers", "Layers side by side", LayersComparePanel), ("optimizer", "Optimizer of the selected", OptimizerPanel)]

    def _add_new_sources(self) -> None:
        """Open every run log not open yet (a seeds run's seeds appear as they start)."""
        known = {s.run_dir for s in self.sources}
        labels = short_labels(self.run_dirs, [read_preset_name(p) for p in self.run_dirs])
        for label, run_dir in zip(labels, self.run_dirs):
            if is_seeds_run(run_dir):
                logs = [(f"seed-{seed}" if self.bands else f"{label}/seed-{seed}", path) for seed, path in seed_dirs(run_dir)]
            else:
                logs = [(label, run_dir)]
            for name, path in logs:
                if path not in known and (path / EVENTS_FILE).is_file():
                    self.sources.append(Source(name, path, RunLogReader(path), RunState()))

    def compose(self) -> ComposeResult:
        yield Static(id="cmp-header")
        yield Tabs(*[Tab(f"{i} {title}", id=f"tab-{key}") for i, (key, title, _) in enumerate(self.panels, 1)], id="panel-tabs")
        with Container(id="panels"):
            for i, (key, title, cls) in enumerate(self.panels, 1):
                panel = cls(id=key, classes="panel")
                panel.border_title = f"{i} {title}"
                yield panel
        yield Static("please enlarge the terminal", id="too-small")
        yield Footer(compact=True)
        yield Static(COMPARE_KEYS, id="low-bandwidth-keys")

    def on_mount(self) -> None:
        self.start_link()
        self._apply_layout()
        self.refresh_now()
        self.set_interval(REFRESH_S, self.tick)

    def on_unmount(self) -> None:
        for source in self.sources:
            source.reader.close()

    def read_logs(self) -> bool:
        """Apply what each log gained since the last read; True when anything did."""
        self._add_new_sources()
        changed = False
        for source in self.sources:
            batch = source.reader.read_new()
            for event in batch:
                source.state.apply(event)
            changed = changed or bool(batch)
        return changed

    def merged_snapshot(self) -> Snapshot:
        snaps = [(s.label, take_snapshot(s.state)) for s in self.sources]
        variants = [replace(v, name=f"{label}/{v.name}") for label, snap in snaps for v in snap.variants]
        statuses = {snap.status for _, snap in snaps}
        tasks = {snap.task for _, snap in snaps}
        return Snapshot(
            version=sum(max(0, snap.version) for _, snap in snaps) + len(snaps), preset=", ".join(sorted({snap.preset for _, snap in snaps})),
            dataset=", ".join(sorted({snap.dataset for _, snap in snaps if snap.dataset})),
            task="regression" if tasks == {"regression"} else "classification",
            status=next(iter(statuses)) if len(statuses) == 1 else "running" if "running" in statuses else "completed",
            samples=snaps[0][1].samples if len(snaps) == 1 or tasks == {"regression"} and snaps else {},
            variants=variants,
        )

    def refresh_now(self) -> None:
        self.read_logs()
        self.snapshot = self.merged_snapshot()
        self.redraw()

    def tick(self) -> None:
        if self.link_behind():
            return  # the terminal is behind: read on the next tick rather than queue a frame
        if self.read_logs():
            self.snapshot = self.merged_snapshot()
            self.redraw()

    def redraw(self) -> None:
        snap = self.snapshot
        runs = len(self.run_dirs) if not self.bands else len(self.sources)
        what = f"{runs} seeds" if self.bands else f"{runs} runs"
        mode = "replay" if snap.status in FINISHED else "watch"
        header = Text.assemble(("nntui seeds " if self.bands else "nntui compare ", "bold"), (snap.preset or "…", "bold cyan"), f" · {what} · {len(snap.variants)} curves · {mode}")
        self.query_one("#cmp-header", Static).update(Text("\n").join([header, Text(selected_summary(snap, self.view))]))
        with self.batch_update():
            for key in self.visible_panels():
                self.query_one(f"#{key}").update_view(snap, self.view)

    # -- layout (the dashboard's: one panel per tab when small, all at once when large)

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout(event.size)

    def _apply_layout(self, size: Size | None = None) -> None:
        width, height = size or self.size
        mode = "too-small" if width < MIN_SIZE[0] or height < MIN_SIZE[1] else "grid" if width >= GRID_SIZE[0] and height >= GRID_SIZE[1] else "tabs"
        self.query_one("#too-small", Static).update(f"please enlarge the terminal\n\ncompare needs at least {MIN_SIZE[0]}×{MIN_SIZE[1]}; this one is {width}×{height}")
        if mode == self.layout_mode:
            return
        for name in ("too-small", "grid", "tabs"):
            self.screen.set_class(mode == name, f"-{name}")
        self.layout_mode = mode
        self._show_panel(self.active_panel)
        if self.snapshot.version >= 0:  # after the first read
            self.redraw()

    def visible_panels(self) -> list[str]:
        if self.layout_mode == "too-small":
            return []
        return [key for key, _, _ in self.panels] if self.layout_mode == "grid" else [self.active_panel]

    def _show_panel(self, key: str) -> None:
        self.active_panel = key
        for panel in self.query(".panel"):
            panel.set_class(panel.id == key, "-active")

    @on(Tabs.TabActivated, "#panel-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        self._show_panel(event.tab.id.removeprefix("tab-"))
        self.redraw()

    # -- actions

    def screenshot_folder(self) -> Path:
        return self.run_dirs[0] if self.bands else Path.cwd()


def make_compare_app(run_dirs: list[Path]) -> CompareApp:
    """The compare view of these run directories; one seeds run alone is drawn as mean and band."""
    bands = len(run_dirs) == 1 and is_seeds_run(Path(run_dirs[0]))
    return CompareApp([Path(p) for p in run_dirs], bands=bands)
