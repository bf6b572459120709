"""Versions (SPEC §4): semver 2.0 tags, leading ``v`` tolerated; anything else is an alias.

Constraint parsing (cargo syntax for the manifest, Falco's rule for artifact
requirements) lives here too, next to the version type it compares.
"""

from __future__ import annotations

import semver

Version = semver.Version


def parse_version(tag: str) -> Version | None:
    """The semver version a tag names, or None when the tag is an alias (latest, main, 4.1)."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    try:
        return Version.parse(text)
    except ValueError:
        return None


def semver_tags(tags: list[str]) -> list[tuple[Version, str]]:
    """The tags that are versions, newest first, with the tag each came from.

    When two tags name the same version (``1.0.0`` and ``v1.0.0``) the one without ``v`` wins.
    """
    best: dict[Version, str] = {}
    for tag in tags:
        version = parse_version(tag)
        if version is None:
            continue
        if version not in best or best[version].startswith(("v", "V")):
            best[version] = tag
    return sorted(((v, t) for v, t in best.items()), key=lambda item: item[0], reverse=True)
