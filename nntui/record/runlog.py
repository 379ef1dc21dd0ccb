"""The run directory: an append-only events.jsonl, readable while it grows and after a crash."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from nntui.record import events as ev
from nntui.errors import NntuiError, RecordWriteError

EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
PRESET_FILE = "preset.json"
CRASH_FILE = "crash.log"
FLUSH_SECONDS = 1.0
MAX_LINE_BYTES = 8 << 20  # a longer line is no event nntui writes: skipped without being held whole
READ_CHUNK_BYTES = 1 << 20
MAX_READ_BYTES = 64 << 20  # per read_new call, so a huge log is taken in steps


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
    """Write whole or not at all; a failed write leaves no temp file and raises RecordWriteError."""
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise RecordWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_crash_log(run_dir: Path, text: str) -> Path | None:
    """The traceback of a failed run, next to its log; None when even that cannot be written."""
    path = Path(run_dir) / CRASH_FILE
    try:
        with open(path, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
        return path
    except OSError:
        return None


def read_small_file(path: Path, what: str, limit: int = 16 << 20) -> bytes:
    """A small regular file's bytes; a FIFO, device or huge file is refused instead of read (it could block or fill memory)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise NntuiError(f"{what} {path}: file not found") from None
    except OSError as exc:
        raise NntuiError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise NntuiError(f"{what} {path}: not a regular file (a folder, pipe or device); pass the file itself")
    if info.st_size > limit:
        raise NntuiError(f"{what} {path}: {info.st_size:,} bytes is far too large for this file (at most {limit:,}); pass the right file")
    try:
        with open(path, "rb") as f:
            return f.read(limit + 1)[:limit]
    except OSError as exc:
        raise NntuiError(f"{what} {path}: cannot read it ({exc.strerror})") from None


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
        try:
            self._file = open(self.path, "x", encoding="utf-8")
        except OSError as exc:
            raise RecordWriteError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        self._last_flush = time.monotonic()
        self.failed: OSError | None = None  # after a write failure, later events are not written

    def append(self, event: ev.Event) -> None:
        if self.failed is not None:
            return
        try:
            self._file.write(event.to_json() + "\n")
            now = time.monotonic()
            if now - self._last_flush >= FLUSH_SECONDS or event.type in ("run_started", "variant_finished", "run_finished", "alert"):
                self._file.flush()
                self._last_flush = now
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = exc
        try:
            self._file.close()  # flushes what it can; the rest is lost with the disk
        except OSError:
            pass
        hint = {28: "the disk is full", 30: "the file system is read-only", 2: "the run directory was removed"}.get(exc.errno or 0, "")
        raise RecordWriteError(f"cannot write {self.path}: {exc.strerror or exc}{f' ({hint})' if hint else ''}") from exc

    def discard(self) -> None:
        """Stop writing (the run directory is about to be removed)."""
        self.failed = self.failed or OSError("discarded")
        try:
            self._file.close()
        except OSError:
            pass

    def close(self) -> None:
        if self.failed is not None or self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            self._fail(exc)


class RunLogReader:
    """Reads complete lines only; a partial last line waits (live) or is skipped (after a crash).

    Any file is safe to read: lines of the wrong shape or type, and lines over MAX_LINE_BYTES (never
    held whole), are skipped and counted; each read_new takes at most MAX_READ_BYTES."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / EVENTS_FILE
        if not self.run_dir.is_dir():
            raise NntuiError(f"{run_dir} is not a directory; pass a run directory such as runs/<id>")
        if not self.path.is_file():
            raise NntuiError(f"{run_dir} has no {EVENTS_FILE}; pass a run directory written by `nntui run`")
        try:
            self._file = open(self.path, "rb")
        except OSError as exc:
            raise NntuiError(f"{self.path}: cannot read it ({exc.strerror})") from None
        self._pending = b""
        self._discarding = False  # inside a line longer than MAX_LINE_BYTES
        self.skipped = 0

    def read_new(self) -> list[ev.Event]:
        """Events completed since the last call (an ev.Skipped event counts the lines skipped on the way)."""
        out: list[ev.Event] = []
        skipped_before = self.skipped
        budget = MAX_READ_BYTES
        while budget > 0:
            chunk = self._file.read(min(READ_CHUNK_BYTES, budget))
            if not chunk:
                break
            budget -= len(chunk)
            self._take(chunk, out)
        if self.skipped > skipped_before:
            out.append(ev.Skipped(self.skipped - skipped_before))
        return out

    def _take(self, chunk: bytes, out: list[ev.Event]) -> None:
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            if newline < 0:
                break
            if self._discarding:
                self._discarding = False
            else:
                event = self._parse(self._pending + chunk[start:newline])
                if event is not None:
                    out.append(event)
            self._pending = b""
            start = newline + 1
        if not self._discarding:
            self._pending += chunk[start:]
            if len(self._pending) > MAX_LINE_BYTES:
                self._pending = b""
                self._discarding = True
                self.skipped += 1

    def _parse(self, line: bytes) -> ev.Event | None:
        if not line.strip():
            return None
        try:
            return ev.event_from_dict(orjson.loads(line))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            self.skipped += 1
            return None

    def silent_for(self) -> float:
        """Seconds since the log file last changed (0 when it cannot be told)."""
        try:
            return max(0.0, time.time() - os.stat(self.path).st_mtime)
        except OSError:
            return 0.0

    def read_all(self) -> list[ev.Event]:
        """Everything readable now; a truncated last line (a crash mid-write) is skipped."""
        events = []
        while batch := self.read_new():
            events.extend(batch)
        if self._pending:
            event = self._parse(self._pending)
            self._pending = b""
            if event is not None:
                events.append(event)
            else:
                events.append(ev.Skipped(1))
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
