"""Durations typed by users (``30s``, ``5m``, ``1h``, ``2d``, ``1w``): parsed strictly, shown
briefly. Stdlib only; shared by `cache prune --max-age` and `follow --every/--jitter`."""

from __future__ import annotations

import re

from falcopkg.errors import UsageError

# ASCII digits only (``\d`` would take any Unicode digit), an optional fraction, one unit.
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, *, option: str, bare_unit: str | None = None) -> float:
    """Seconds that ``text`` names; ``bare_unit`` is what a number without a unit means
    (None: a unit is required). UsageError naming ``option`` otherwise."""
    match = _DURATION_RE.match(text)
    unit = match.group(2) or bare_unit if match is not None else None
    if match is None or unit is None:
        raise UsageError(
            f"invalid duration {text!r} for {option}",
            hint="write a number with a unit: 30s, 5m, 1h, 12h, 30d, 2w",
        )
    return float(match.group(1)) * _UNIT_SECONDS[unit]


def format_duration(seconds: float) -> str:
    """``45s``, ``5m``, ``1h30m``, ``2d``: the two largest units, rounded to seconds."""
    total = max(0, round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2]) or "0s"
