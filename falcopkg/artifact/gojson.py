"""JSON bytes the way Go's encoding/json writes them, so digests match falcoctl's.

Go writes no whitespace, keeps struct field order (callers build dicts in that order),
sorts map keys (callers pass annotations through ``sorted_map``), writes non-ASCII as UTF-8
and escapes ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\u00XX`` sequences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_NEEDS_ESCAPE = frozenset(_GO_ESCAPES)


def go_json_bytes(value: Any) -> bytes:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if _NEEDS_ESCAPE.intersection(text):
        # These characters only occur inside strings, so replacing them everywhere is safe.
        text = "".join(_GO_ESCAPES.get(ch, ch) for ch in text)
    return text.encode("utf-8")


def sorted_map(mapping: Mapping[str, str]) -> dict[str, str]:
    """A Go map[string]string as it is marshalled: keys in byte order."""
    # Code point order is UTF-8 byte order, which Go sorts by.
    return {key: mapping[key] for key in sorted(mapping)}
