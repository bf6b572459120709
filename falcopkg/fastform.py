"""Cached Python values in ``marshal`` form, behind a header that says what wrote them.

A cache of something slow to parse (an index's YAML, a large falco.lock's TOML) keeps the
parsed value here: marshal loads plain dicts, lists and strings several times faster than
JSON and many times faster than the parsers. The header line names the kind of value, the
Python version that wrote it (marshal's format is only stable within one version), and the
length and CRC-32 of the body: anything else reads as missing, and the caller parses the
source again. Standard library only.
"""

from __future__ import annotations

import marshal
import sys
import zlib
from typing import Any

_MAX_HEADER = 256


def _header(kind: str) -> bytes:
    return (
        f"falcopkg-{kind} python {sys.version_info[0]}.{sys.version_info[1]} "
        f"marshal {marshal.version}"
    ).encode("ascii")


def encode(kind: str, payload: dict[str, Any]) -> bytes:
    """The header line (kind, Python, length, CRC-32), then ``payload`` marshalled.

    ValueError when ``payload`` holds something marshal cannot write (a datetime, say).
    """
    body = marshal.dumps(payload)
    return b"%s %d %d\n" % (_header(kind), len(body), zlib.crc32(body)) + body


def decode(kind: str, data: bytes) -> object | None:
    """The payload of :func:`encode`'s bytes; None when another kind, format or Python wrote
    them, or they are damaged (the CRC is checked before marshal reads anything)."""
    end = data.find(b"\n", 0, _MAX_HEADER)
    if end < 0:
        return None
    header, _, crc = data[:end].rpartition(b" ")
    header, _, length = header.rpartition(b" ")
    if header != _header(kind) or not length.isdigit() or not crc.isdigit():
        return None
    body = memoryview(data)[end + 1 :]
    if len(body) != int(length) or zlib.crc32(body) != int(crc):
        return None
    try:
        payload: object = marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None
    return payload
