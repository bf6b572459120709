"""How a workflow talks to whoever runs it: messages and download progress.

The CLI's Console implements :class:`Reporter`; :class:`SilentReporter` serves tests and
library callers. Data (tables, JSON) is never reported: workflows return it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from falcopkg.services.fetch import DownloadProgress


class Reporter(Protocol):
    def info(self, message: str) -> None:
        """A normal progress or result message."""

    def detail(self, message: str) -> None:
        """Shown only when the user asked for detail (-v)."""

    def warn(self, message: str) -> None: ...

    def success(self, message: str) -> None: ...

    def download_progress(self) -> DownloadProgress | None:
        """A progress display for a batch of downloads, or None for none."""


class SilentReporter:
    """Says nothing; collects warnings so a caller can still look at them."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        pass

    def detail(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def success(self, message: str) -> None:
        pass

    def download_progress(self) -> DownloadProgress | None:
        return None
