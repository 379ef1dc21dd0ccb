"""Shared test helpers: run the CLI in-process and parse its JSON summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from nntui.cli import app

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    """Run `nntui ARGS` in this process; returns the click Result (stdout and stderr separate)."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def run_json(preset: str, out: Path, *extra: str) -> dict:
    result = invoke("run", preset, "--headless", "--json", "--out", str(out), *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def variant(summary: dict, name: str) -> dict:
    return next(v for v in summary["variants"] if v["name"] == name)


def tiny_preset(path: Path, body: str = "") -> Path:
    """A small, fast preset file: one hidden layer of 16 on mnist-5k."""
    path.write_text(
        'name = "tiny"\ntitle = "tiny"\n'
        "[config]\nepochs = 1\nmax_steps = 120\nprobe_every = 20\neval_every = 40\n"
        '[config.data]\nname = "mnist-5k"\n'
        "[config.model]\nhidden = [16]\n"
        '[[variants]]\nname = "a"\n'
        + body,
        encoding="utf-8",
    )
    return path


PYTHON = sys.executable
