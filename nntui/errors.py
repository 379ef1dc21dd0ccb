"""The error types users see: a one-line message, mapped by the CLI to an exit code."""


class NntuiError(Exception):
    """Bad input (preset, option, data, device, output directory). The message is shown as is."""

    exit_code = 2


class RecordWriteError(NntuiError):
    """The run's record could not be written (disk full, read-only, directory removed): a failure, not bad input."""

    exit_code = 1
