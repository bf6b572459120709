"""Where output goes: data to stdout, messages to stderr (uv's rule).

Every message and data line passes through :func:`~falcopkg.terminal.escape_controls` here,
the one place text reaches the terminal, since much of it comes from registries, indexes and
archives; JSON output is exact (``json.dumps`` escapes control characters itself).
Kept free of heavy imports; click is already loaded by the CLI.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import click

from falcopkg.terminal import escape_controls
from falcopkg.text import quantity as quantity  # re-exported for the commands

if TYPE_CHECKING:
    from falcopkg.services.fetch import DownloadProgress


@dataclass
class Console:
    """Message and data printer honouring -q/-v and colour settings.

    Messages pass ``color=self.color`` to click.echo: click strips styles from a stream that
    is not a terminal unless told otherwise, which would make `--color` a no-op in a pipe.
    """

    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    color: bool | None = None  # None: auto (tty and no NO_COLOR)

    def _use_color(self, stream: TextIO) -> bool:
        if self.color is not None:
            return self.color
        if os.environ.get("NO_COLOR"):
            return False
        return stream.isatty()

    def _style(self, text: str, stream: TextIO, **style: Any) -> str:
        return click.style(text, **style) if self._use_color(stream) else text

    # --- messages (stderr) -------------------------------------------------
    def info(self, message: str) -> None:
        """A normal progress or result message; hidden by -q."""
        if self.verbosity >= 0:
            click.echo(escape_controls(message), err=True, color=self.color)

    def detail(self, message: str) -> None:
        """Shown only with -v."""
        if self.verbosity >= 1:
            click.echo(
                self._style(escape_controls(message), sys.stderr, dim=True),
                err=True,
                color=self.color,
            )

    def warn(self, message: str) -> None:
        prefix = self._style("warning:", sys.stderr, fg="yellow", bold=True)
        click.echo(f"{prefix} {escape_controls(message)}", err=True, color=self.color)

    def error(self, message: str, hint: str | None = None) -> None:
        prefix = self._style("error:", sys.stderr, fg="red", bold=True)
        click.echo(f"{prefix} {escape_controls(message)}", err=True, color=self.color)
        if hint:
            label = self._style("hint:", sys.stderr, fg="cyan", bold=True)
            click.echo(f"{label} {escape_controls(hint)}", err=True, color=self.color)

    def success(self, message: str) -> None:
        if self.verbosity >= 0:
            click.echo(
                self._style(escape_controls(message), sys.stderr, fg="green"),
                err=True,
                color=self.color,
            )

    # --- data (stdout) -----------------------------------------------------
    def data(self, text: str) -> None:
        click.echo(escape_controls(text))

    def json(self, payload: Any) -> None:
        import json  # here, not at the top: ~2 ms off every other command and --help

        click.echo(json.dumps(payload, indent=2, sort_keys=False))

    @property
    def is_tty(self) -> bool:
        return sys.stderr.isatty()

    def download_progress(self) -> DownloadProgress | None:
        """The Reporter's progress display: one line on a terminal, plain lines otherwise."""
        from falcopkg.cli.progress import Progress

        return Progress.for_console(self.verbosity, self.is_tty)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)
