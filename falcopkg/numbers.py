"""Strict parsing of numbers that come from outside (headers, archives, files, arguments).

``str.isdigit()`` accepts ``²`` and other Unicode digits that ``int()`` rejects or reads
differently, and ``int()`` refuses strings over 4,300 digits with a ValueError of its own:
both turned hostile values into tracebacks. Here a number is ASCII digits only, of bounded
length, so every caller gets one kind of error with a message it can show.
"""

from __future__ import annotations

#: Enough for any byte count or duration (2**63 has 19 digits).
DEFAULT_MAX_DIGITS = 19


class NotANumberError(ValueError):
    """``text`` is not a non-negative integer in ASCII digits of bounded length."""


def is_ascii_digits(text: str | bytes) -> bool:
    """True for a non-empty run of ``0``-``9`` only (no sign, space, ``_`` or ``²``)."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_ascii_int(text: str | bytes, what: str, *, max_digits: int = DEFAULT_MAX_DIGITS) -> int:
    """The value of ``text`` (ASCII digits, at most ``max_digits`` of them).

    Raises :class:`NotANumberError` (a ValueError) whose message names ``what`` and shows a
    shortened ``text``, so a caller can wrap it in its own FalcopkgError.
    """
    if not is_ascii_digits(text):
        raise NotANumberError(
            f"{what} must be a whole number in digits 0-9, not {shortened_repr(text)}"
        )
    if len(text) > max_digits:
        raise NotANumberError(f"{what} has {len(text)} digits (at most {max_digits} allowed)")
    return int(text)


def shortened_repr(text: str | bytes) -> str:
    """``text`` for a message: repr (control characters escaped), at most ~40 characters."""
    shown = repr(text if len(text) <= 40 else text[:37])
    return shown if len(text) <= 40 else f"{shown}…"
