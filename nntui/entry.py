"""The `nntui` command's first code. A signal that lands while the CLI is still importing (typer and rich take
~0.5 s, more on a loaded machine) gets one line and exit 130 instead of a KeyboardInterrupt traceback or a silent
kill; a hang-up then is remembered for `nntui run` (it decides: train on headless, or stop) and ends any other
command, as it does a terminal program. Nothing is recorded before `run` installs its own handlers."""

from __future__ import annotations

import os
import signal
import sys


class _EarlySignals:
    hung_up = False

    def __call__(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self.hung_up = True
            return
        try:
            os.write(2, f"nntui: interrupted ({signal.Signals(signum).name}) while starting; nothing was recorded\n".encode())
        except OSError:
            pass
        raise SystemExit(130)


def main() -> None:
    early = _EarlySignals()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # a background job's ignored Ctrl-C stays ignored
            signal.signal(sig, early)
    from nntui.cli.main import main as cli_main

    if next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None) != "run":
        if early.hung_up:
            sys.exit(128 + signal.SIGHUP)
        for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL), (signal.SIGHUP, signal.SIG_DFL)):
            if signal.getsignal(sig) is early:
                signal.signal(sig, default)
    cli_main()
