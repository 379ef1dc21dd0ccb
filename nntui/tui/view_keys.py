"""The keys both dashboards share (the run dashboard and the compare view): panels, variants, log scale, screenshots.
Each app says how a view change redraws (`_view_changed`) and where its screenshots go (`screenshot_folder`)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Tabs


class ViewKeys:
    def _view_changed(self) -> None:
        self.redraw()

    def screenshot_folder(self) -> Path:
        return Path.cwd()

    def action_show_panel(self, key: str) -> None:
        with self.prevent(Tabs.TabActivated):  # shown here: not again when the tabs report it
            self.query_one("#panel-tabs", Tabs).active = f"tab-{key}"
        self._show_panel(key)
        self.redraw()

    def action_next_variant(self) -> None:
        self._select_variant(+1)

    def action_previous_variant(self) -> None:
        self._select_variant(-1)

    def _select_variant(self, delta: int) -> None:
        self.view.selected = (self.view.selected + delta) % max(1, len(self.snapshot.variants))
        self._view_changed()

    def action_toggle_log(self) -> None:
        self.view.log_y = not self.view.log_y
        self._view_changed()

    def action_screenshot(self) -> None:
        folder = self.screenshot_folder()
        try:
            path = self.save_screenshot(path=str(folder))
        except OSError as exc:
            self.notify(f"could not save the screenshot in {folder}: {exc.strerror}", severity="error")
            return
        self.notify(f"saved {path}")
