"""Parsing of command-line values shared by several commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

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


# Options several commands share, declared once so their spelling and help stay alike.
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout."
)
plain_http_option = click.option(
    "--plain-http", is_flag=True, help="Talk to registries over plain HTTP (no TLS)."
)
