"""Platforms of plugin artifacts: ``os/arch`` strings as users and falcoctl write them."""

from __future__ import annotations

import re

from falcopkg.defaults import host_platform as host_platform  # re-exported
from falcopkg.errors import UsageError

# falcoctl's rule (OS/ARCH), plus an optional variant as OCI allows (linux/arm/v7).
PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")


def validate_platform(text: str, *, flag: str = "--platform") -> str:
    """``text`` if it is an OS/ARCH platform; a UsageError naming ``flag`` otherwise."""
    value = text.strip()
    if not PLATFORM_RE.match(value):
        raise UsageError(
            f"invalid {flag} value {text!r}: expected OS/ARCH",
            hint="write e.g. `linux/amd64` or `linux/arm64`",
        )
    return value


def platform_dict(platform: str) -> dict[str, str]:
    """``linux/amd64`` → ``{"architecture": "amd64", "os": "linux"}`` (a variant is kept)."""
    parts = validate_platform(platform).split("/")
    result = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        result["variant"] = parts[2]
    return result
