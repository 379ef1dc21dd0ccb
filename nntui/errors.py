"""The one error type users see: a one-line message, mapped by the CLI to exit code 2."""


class NntuiError(Exception):
    """Bad input (preset, option, data, device, output directory). The message is shown as is."""

    exit_code = 2
