"""The command-line edge: parse options, call the runner or a viewer, map errors to exit codes."""

from nntui.cli.main import app, main

__all__ = ["app", "main"]
