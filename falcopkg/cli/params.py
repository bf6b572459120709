"""Parsing of command-line values shared by several commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from falcopkg.errors import InvalidReferenceError, UsageError

if TYPE_CHECKING:
    from falcopkg.core.reference import Reference


def reference_argument(text: str) -> Reference:
    """A reference typed on the command line; a malformed one is a usage error (exit 2),
    unlike one read from falco.toml (a configuration error, exit 1)."""
    from falcopkg.core.reference import parse_reference

    try:
        return parse_reference(text)
    except InvalidReferenceError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None
