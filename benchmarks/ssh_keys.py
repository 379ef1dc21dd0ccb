"""Seconds from a key to its effect on the screen of a real SSH client, over a throttled link.

python -m benchmarks.ssh_keys [--rate 2k] [--size 80x24] [--keys 2,3,4,5,1] [--gap 3] -- nntui run sigmoid-paralysis
Uses ../shared/tools/ssh-loopback (a private sshd on loopback) and benchmarks.steady_link (RATE, steady, for the
server-to-client stream; --pv: the tool's own pv throttle instead): opens an SSH session in tmux, starts the command, then presses each panel key after --gap seconds and polls the
client's screen every 50 ms until that panel's border title shows. The link is also busy with the live
frames, so this is a key's latency "at any point of a run", not on an idle link.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT.parent / "shared" / "tools" / "ssh-loopback"
PANELS = {"1": "Loss", "2": "Gradients", "3": "Activations", "4": "Optimizer", "5": "Lesson", "6": "LR test"}


def _tool(*args: str) -> str:
    return subprocess.run([str(TOOL), *args], capture_output=True, text=True, check=True).stdout


def _screen(name: str) -> str:
    return subprocess.run(["tmux", "-L", "sshl", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout


def _wait_for(name: str, pattern: re.Pattern, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if pattern.search(_screen(name)):
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def _open_steady(name: str, width: str, height: str, rate: str) -> None:
    """Like `ssh-loopback open`, but through benchmarks.steady_link: the rate holds after idle spells too."""
    keys = Path(os.environ.get("SSHL_DIR", Path.home() / ".cache" / "ssh-loopback"))
    bytes_per_s = float(rate.rstrip("kK")) * (1024 if rate[-1] in "kK" else 1)
    proxy = f"{sys.executable} -m benchmarks.steady_link {bytes_per_s:g} 127.0.0.1 2222"
    ssh = ["ssh", "-tt", "-p", "2222", "-i", str(keys / "client_key"), "-o", "StrictHostKeyChecking=no",
           "-o", f"UserKnownHostsFile={keys / 'known_hosts'}", "-o", f"ProxyCommand={proxy}", "root@127.0.0.1"]
    subprocess.run(["tmux", "-L", "sshl", "new-session", "-d", "-s", name, "-x", width, "-y", height, "-c", str(ROOT), shlex.join(ssh)], check=True)
    time.sleep(2)
    _tool("type", name, f"cd {ROOT}; export PATH={os.environ['PATH']}; clear", "Enter")


def _logged_step(runs: Path) -> tuple[str, int]:
    """The newest run's variant and the last step its log holds."""
    run = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    variant, step = "", 0
    for line in (run / "events.jsonl").read_text().splitlines():
        if '"type":"steps"' in line:
            event = json.loads(line)
            variant, step = event["variant"], event["first_step"] + len(event["losses"]) - 1
    return variant, step


def _seconds_behind(name: str, runs: Path, samples: int = 5) -> list[float]:
    """How far the screen's step trails the log's, in seconds of training (steps / the header's steps/s)."""
    behind = []
    for _ in range(samples):
        time.sleep(1.0)
        variant, logged = _logged_step(runs)
        header = re.search(rf"{re.escape(variant)} .*?step (\d+)/\d+ .*?(\d+) steps/s", _screen(name))
        if header and int(header.group(2)) > 0:
            behind.append((logged - int(header.group(1))) / int(header.group(2)))
    return behind


def key_latencies(command: str, rate: str, size: str, keys: list[str], gap: float, timeout: float = 60.0, steady: bool = True,
                  from_start: bool = False, runs: Path | None = None) -> dict:
    width, height = size.split("x")
    name = f"keys{int(time.time()) % 100000}"
    _tool("stop")
    _tool("start", *([rate] if rate and not steady else []))
    try:
        if rate and steady:
            _open_steady(name, width, height, rate)
        else:
            _tool("open", name, width, height)
        time.sleep(1.0)
        _tool("type", name, command, "Enter")
        first = _wait_for(name, re.compile(r"1 Loss +2 Gradients"), timeout)  # the dashboard's tabs
        if not from_start:
            _wait_for(name, re.compile(r"step [1-9]"), timeout)  # training under way: the link carries live frames
        results = []
        for key in keys:
            time.sleep(gap)
            title = re.compile(rf"[-─] {key} {re.escape(PANELS[key])} [-─]")
            _tool("type", name, key)
            results.append((key, _wait_for(name, title, timeout)))
        behind = _seconds_behind(name, runs) if runs else []
        coloured = "\x1b[38;" in subprocess.run(["tmux", "-L", "sshl", "capture-pane", "-e", "-p", "-t", name], capture_output=True, text=True).stdout
        return {"first_screen_s": first, "keys": results, "screen": _screen(name), "colour": coloured, "behind_s": behind}
    finally:
        _tool("type", name, "q")
        time.sleep(1.0)
        _tool("stop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", default="2k", help="pv rate limit, e.g. 2k; empty for an unthrottled link")
    parser.add_argument("--size", default="80x24")
    parser.add_argument("--keys", default="2,3,4,5,1")
    parser.add_argument("--gap", type=float, default=3.0)
    parser.add_argument("--from-start", action="store_true", help="press keys from the first frame on (set-up, range test), not once training runs")
    parser.add_argument("--runs", type=Path, help="the command's --out folder: also report how far the screen trails the log")
    parser.add_argument("--pv", action="store_true", help="throttle with ssh-loopback's pv (bursts after idle) instead of a steady link")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    result = key_latencies(shlex.join(command), args.rate, args.size, args.keys.split(","), args.gap, steady=not args.pv, from_start=args.from_start, runs=args.runs)
    first = result["first_screen_s"]
    print(f"rate {args.rate or 'unthrottled'}, {args.size}: dashboard on screen {'never' if first is None else f'{first:.1f} s'} after the command;"
          f" {'colour' if result['colour'] else 'no colour'} at the end")
    for key, seconds in result["keys"]:
        print(f"  key {key}: {'not shown in 60 s' if seconds is None else f'{seconds:.2f} s'}")
    if result["behind_s"]:
        print("  screen behind the log: " + ", ".join(f"{s:.1f} s" for s in result["behind_s"]) + " (training seconds; one sample a second)")
    print(result["screen"])


if __name__ == "__main__":
    main()
