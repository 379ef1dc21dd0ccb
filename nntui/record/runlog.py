"""The run directory: an append-only events.jsonl, readable while it grows and after a crash."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from nntui.record import events as ev
from nntui.errors import NntuiError

EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
PRESET_FILE = "preset.json"
FLUSH_SECONDS = 1.0


def create_run_dir(out: Path, preset_name: str) -> Path:
    """A new, never reused directory runs/<timestamp>-<preset>[-N] (exclusive create)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NntuiError(f"cannot create output directory {out}: {exc.strerror}; pass a writable --out DIR") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise NntuiError(f"output directory {out} is not writable; pass a writable --out DIR")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", preset_name).strip("-") or "run"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        path = out / (f"{stamp}-{slug}" if n == 1 else f"{stamp}-{slug}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise NntuiError(f"cannot create run directory {path}: {exc.strerror}; pass a writable --out DIR") from None
    raise NntuiError(f"too many runs named {stamp}-{slug} in {out}")


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def writer_gone(pid: int, host: str) -> bool:
    """True when the process that wrote a run log ran on this host and no longer exists."""
    if pid <= 0 or host != socket.gethostname():
        return False  # unknown writer, or another machine: only silence can tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False


class RunLog:
    """Appends events as JSON lines; flushes at most every FLUSH_SECONDS and on important events."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / EVENTS_FILE
        self._file = open(self.path, "x", encoding="utf-8")
        self._last_flush = time.monotonic()

    def append(self, event: ev.Event) -> None:
        self._file.write(event.to_json() + "\n")
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_SECONDS or event.type in ("run_started", "variant_finished", "run_finished", "alert"):
            self._file.flush()
            self._last_flush = now

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


class RunLogReader:
    """Reads complete lines only; a partial last line waits (live) or is skipped (after a crash)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / EVENTS_FILE
        if not self.run_dir.is_dir():
            raise NntuiError(f"{run_dir} is not a directory; pass a run directory such as runs/<id>")
        if not self.path.is_file():
            raise NntuiError(f"{run_dir} has no {EVENTS_FILE}; pass a run directory written by `nntui run`")
        self._file = open(self.path, "rb")
        self._pending = b""
        self.skipped = 0

    def read_new(self) -> list[ev.Event]:
        """Events completed since the last call."""
        chunk = self._file.read()
        if not chunk:
            return []
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        out = []
        for line in lines:
            event = self._parse(line)
            if event is not None:
                out.append(event)
        return out

    def _parse(self, line: bytes) -> ev.Event | None:
        if not line.strip():
            return None
        try:
            return ev.event_from_dict(json.loads(line))
        except (ValueError, TypeError):
            self.skipped += 1
            return None

    def read_all(self) -> list[ev.Event]:
        """Everything readable now; a truncated last line (a crash mid-write) is skipped."""
        events = self.read_new()
        if self._pending:
            event = self._parse(self._pending)
            self._pending = b""
            if event is not None:
                events.append(event)
        return events

    def follow(self, poll: float = 0.2, stop=lambda: False) -> Iterator[list[ev.Event]]:
        while not stop():
            batch = self.read_new()
            yield batch
            if any(e.type == "run_finished" for e in batch):
                return
            if not batch:
                time.sleep(poll)

    def close(self) -> None:
        self._file.close()
