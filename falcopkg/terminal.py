"""Making text from outside safe to print on a terminal.

Artifact names, versions, descriptions, registry error messages and file names come from
registries, indexes and archives. Printed raw, an escape sequence in one of them can retitle
the window (OSC ``ESC ] 0 ; … BEL``), clear the screen, rewrite earlier lines with ``\\r``
or hide text; bidirectional overrides can make a line read differently from its bytes.
:func:`escape_controls` shows such characters as ``\\x1b``-style escapes instead.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline (messages and tables are multi-line), DEL, C1
# controls, and the Unicode bidirectional embeddings, overrides and isolates plus the line
# and paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with every unsafe character written as ``\\xNN`` or ``\\uNNNN``; a text
    without any is returned as it is (the common case costs one regex scan)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
