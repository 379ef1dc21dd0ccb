"""`python -m nntui`. A hang-up while the CLI is still importing is remembered instead of killing the process."""

import signal


class _EarlyHangup:
    hung_up = False

    def __call__(self, *_args) -> None:
        self.hung_up = True


signal.signal(signal.SIGHUP, _EarlyHangup())

from nntui.cli import main  # noqa: E402

main()
