"""`python -m nntui`. A hang-up while the CLI is still importing is remembered instead of killing the process
(`nntui run` then decides: train on headless, or stop); other commands end on a hang-up, as a terminal program does."""

import signal
import sys


class _EarlyHangup:
    hung_up = False

    def __call__(self, *_args) -> None:
        self.hung_up = True


early_hangup = _EarlyHangup()
signal.signal(signal.SIGHUP, early_hangup)

from nntui.cli import main  # noqa: E402

if next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None) != "run":
    if early_hangup.hung_up:
        sys.exit(128 + signal.SIGHUP)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
main()
