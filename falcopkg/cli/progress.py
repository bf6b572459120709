"""Download progress on a terminal (one updating line) or as plain lines: the CLI's side of
services.fetch.DownloadProgress, and the one size formatter."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from falcopkg.services.fetch import BlobRequest


ProgressMode = Literal["tty", "lines", "quiet"]


class Progress:
    """Download progress on stderr: one updating line on a terminal, plain lines otherwise.

    Thread-safe: workers call ``advance`` with chunk sizes and ``finished`` per blob.
    """

    REFRESH_SECONDS = 0.1

    def __init__(self, mode: ProgressMode, stream: TextIO | None = None) -> None:
        self.mode = mode
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._count = 0
        self._done = 0
        self._total = 0
        self._received = 0
        self._last_draw = 0.0
        self._drawn = False

    @classmethod
    def for_console(cls, verbosity: int, is_tty: bool) -> Progress:
        if verbosity < 0:
            return cls("quiet")
        return cls("tty" if is_tty else "lines")

    def begin(self, count: int, total_bytes: int) -> None:
        with self._lock:
            self._count, self._total = count, total_bytes
            self._done = self._received = 0

    def advance(self, size: int) -> None:
        with self._lock:
            self._received += size
            if self.mode == "tty":
                self._draw(force=False)

    def finished(self, request: BlobRequest) -> None:
        with self._lock:
            self._done += 1
            if self.mode == "lines":
                from falcopkg.terminal import escape_controls  # the name may be anyone's

                name = escape_controls(request.artifact)
                self.stream.write(f"Downloaded {name} ({format_size(request.size or 0)})\n")
                self.stream.flush()
            elif self.mode == "tty":
                self._draw(force=True)

    def end(self) -> None:
        with self._lock:
            if self.mode == "tty" and self._drawn:
                self.stream.write("\r\033[K")
                self.stream.flush()
                self._drawn = False

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.REFRESH_SECONDS:
            return
        self._last_draw = now
        total = f" / {format_size(self._total)}" if self._total else ""
        line = (
            f"Downloading {self._done}/{self._count} layers: {format_size(self._received)}{total}"
        )
        self.stream.write(f"\r\033[K{line}")
        self.stream.flush()
        self._drawn = True


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
