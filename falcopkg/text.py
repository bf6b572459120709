"""Small text helpers shared by workflows and the CLI (stdlib only)."""

from __future__ import annotations


def quantity(number: int, noun: str) -> str:
    """``1 file``, ``2 files``: a number with its noun, plural when needed."""
    return f"{number} {noun}" + ("" if number == 1 else "s")
