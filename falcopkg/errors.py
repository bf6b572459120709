"""The error hierarchy every layer raises; the CLI turns them into one message and an exit code.

Nothing here imports anything heavy: this module is loaded on every CLI start.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class FalcopkgError(Exception):
    """A failure the user can act on: a message, an optional hint, an exit status.

    `message` names the file, line, artifact or host involved; `hint` says what to do
    next (rendered as ``hint: …`` like uv does).
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(FalcopkgError):
    """Wrong command-line usage (exit status 2)."""

    exit_code = 2


class ConfigError(FalcopkgError):
    """A malformed or invalid falco.toml, user config, index or lockfile."""


class InvalidReferenceError(FalcopkgError):
    """A malformed artifact reference."""


class ResolutionError(FalcopkgError):
    """No set of versions satisfies every constraint."""


class LockError(FalcopkgError):
    """The lockfile is missing, stale or inconsistent."""


class InstallError(FalcopkgError):
    """Installing files failed (unsafe archive, drift, conflicts)."""


class IntegrityError(FalcopkgError):
    """Content did not match its digest."""


class NetworkError(FalcopkgError):
    """A host could not be reached, timed out, or answered badly."""


class OfflineError(FalcopkgError):
    """The operation needs the network but --offline forbids it."""


def known(value: T | None, what: str) -> T:
    """``value``, which the caller knows is set; an error naming ``what`` if it is not (a bug).

    Not an ``assert``: ``python -O`` would drop that and let a None through.
    """
    if value is None:
        raise FalcopkgError(
            f"internal error: {what} is missing",
            hint="this is a bug in falcopkg; please report it with the output of `-v`",
        )
    return value
