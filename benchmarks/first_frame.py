"""Time to the dashboard's first frame: start a command in a tmux pane and poll the pane until it shows text.

python -m benchmarks.first_frame [--size 80x24] [--wait-for TEXT] [--bytes S] -- nntui run sigmoid-paralysis
Prints the seconds from the command's start to the first non-blank screen (and to TEXT, if given), and with
--bytes the bytes per second the terminal then receives (tmux pipe-pane) over S seconds.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

POLL_S = 0.01


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU time of root_pid and its descendants so far (load-independent, unlike wall time)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def time_to_screen(command: list[str], size: str = "80x24", wait_for: str = "", timeout: float = 60.0, bytes_s: float = 0.0) -> dict:
    width, height = size.split("x")
    session = f"nntui-ff-{time.monotonic_ns()}"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    started = time.monotonic()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", width, "-y", height, shlex.join(command) + "; sleep 60"], check=True)
    first = found = first_cpu = None
    rate = None
    pane_pid = int(subprocess.run(["tmux", "display", "-p", "-t", session, "#{pane_pid}"], capture_output=True, text=True).stdout)
    output = Path(tempfile.mkstemp(prefix="nntui-ff-")[1])
    subprocess.run(["tmux", "pipe-pane", "-t", session, f"cat >> {output}"], check=True)  # every byte the terminal gets
    try:
        while time.monotonic() - started < timeout:
            screen = capture(session)
            now = time.monotonic() - started
            if first is None and screen.strip():
                first = now
                first_cpu = cpu_seconds(pane_pid)
            if first is not None and (not wait_for or wait_for in screen):
                found = now
                break
            time.sleep(POLL_S)
        if bytes_s and found is not None:
            before = output.stat().st_size
            time.sleep(bytes_s)
            rate = (output.stat().st_size - before) / bytes_s
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], capture_output=True)
        time.sleep(1.0)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    output.unlink(missing_ok=True)
    return {"first_frame_s": first, "first_frame_cpu_s": first_cpu, "wait_for": wait_for, "found_s": found, "bytes_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="80x24")
    parser.add_argument("--wait-for", default="")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--bytes", type=float, default=0.0, help="then count the bytes the terminal receives over this many seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    for _ in range(args.repeat):
        print(time_to_screen(command, args.size, args.wait_for, bytes_s=args.bytes))


if __name__ == "__main__":
    main()
