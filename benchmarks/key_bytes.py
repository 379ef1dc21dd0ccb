"""Bytes the terminal receives for each key: what a key costs on a thin link (2 KB/s: 1 KB is half a second).

python -m benchmarks.key_bytes [--size 80x24] [--keys "2 3 4 5 1 l l"] [--settle 2.5] -- nntui watch RUN_DIR
Starts the command in a tmux pane, waits until the screen shows text and goes quiet, then for each key records
(tmux pipe-pane) every byte the terminal receives in the --settle seconds after it. Set NNTUI_LOW_BANDWIDTH
in the environment to measure the low-bandwidth frames.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.first_frame import capture


def _bytes_during(session: str, seconds: float, action=None) -> int:
    output = Path(tempfile.mkstemp(prefix="nntui-keys-")[1])
    subprocess.run(["tmux", "pipe-pane", "-t", session, f"cat >> {output}"], check=True)
    try:
        if action is not None:
            action()
        time.sleep(seconds)
    finally:
        subprocess.run(["tmux", "pipe-pane", "-t", session], check=True)
    time.sleep(0.1)  # the pipe's cat flushes
    size = output.stat().st_size
    output.unlink()
    return size


def key_bytes(command: list[str], keys: list[str], size: str = "80x24", settle: float = 2.5, timeout: float = 60.0) -> dict:
    width, height = size.split("x")
    session = f"nntui-keys-{time.monotonic_ns()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", width, "-y", height, shlex.join(command) + "; sleep 60"], check=True)
    try:
        started = time.monotonic()
        while not capture(session).strip():
            if time.monotonic() - started > timeout:
                raise SystemExit(f"error: nothing on screen after {timeout:.0f} s")
            time.sleep(0.05)
        while _bytes_during(session, 1.0) > 64:  # wait until the screen is quiet (a replay loaded, a run drawn)
            if time.monotonic() - started > timeout:
                break
        idle = _bytes_during(session, settle)
        per_key = [(key, _bytes_during(session, settle, lambda k=key: subprocess.run(["tmux", "send-keys", "-t", session, k], check=True))) for key in keys]
        return {"size": size, "idle_bytes": idle, "keys": per_key}
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="80x24")
    parser.add_argument("--keys", default="2 3 4 5 1 l l")
    parser.add_argument("--settle", type=float, default=2.5)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    result = key_bytes(command, args.keys.split(), args.size, args.settle)
    print(f"{result['size']}: idle {result['idle_bytes']} B in {args.settle} s")
    for key, count in result["keys"]:
        print(f"  key {key!r}: {count} B ({count / 2048:.1f} s at 2 KB/s)")


if __name__ == "__main__":
    main()
