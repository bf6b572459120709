"""Versions (SPEC §4): semver 2.0 tags, leading ``v`` tolerated; anything else is an alias.

Constraint parsing (cargo syntax for the manifest, Falco's rule for artifact
requirements) lives here too, next to the version type it compares.

Cargo's meaning, as the ``semver`` crate implements it:

=========================  ==================================
``1.2.3`` / ``^1.2.3``     ``>=1.2.3, <2.0.0``
``0.16`` / ``^0.16``       ``>=0.16.0, <0.17.0``
``^0.0.3``                 ``=0.0.3``
``~1.2.3`` / ``~1.2``      ``>=1.2.3, <1.3.0`` / ``>=1.2.0, <1.3.0``
``1.*`` / ``1.2.*``        ``>=1.0.0, <2.0.0`` / ``>=1.2.0, <1.3.0``
``=1.2`` / ``<=1.2``       ``>=1.2.0, <1.3.0`` / ``<1.3.0``
``>1.2``                   ``>=1.3.0``
``*``                      any release
=========================  ==================================

A pre-release version is allowed only when some comparator names a pre-release of the same
``major.minor.patch`` (so ``^1.2.3-rc.1`` admits ``1.2.3-rc.2`` but not ``1.2.4-rc.1``).
That opt-in belongs to falco.toml: constraints made by :func:`falco_requirement` (what
artifacts require, checked against versions the manifest chose) judge a pre-release by its
numbers alone, so ``k8saudit = "0.3.0-rc.1"`` meets a rule's ``k8saudit 0.1.0``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import semver

from falcopkg.numbers import is_ascii_digits, parse_ascii_int, shortened_repr

Version = semver.Version

#: Version numbers are below 2**64 (falcoctl reads them into uint64); this many digits at most.
MAX_VERSION_DIGITS = 20
_VERSION_LIMIT = 2**64


@functools.lru_cache(maxsize=8192)
def parse_version(tag: str) -> Version | None:
    """The semver version a tag names, or None when the tag is an alias (latest, main, 4.1).

    Numbers of 2**64 or more are no version either (and never reach int()'s digit limit).
    Memoized: a lock of 1000 artifacts parses the same few version strings thousands of
    times (tags, dependencies, requirements), and a Version never changes.
    """
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    if len(text) > 1024:  # far beyond a tag (128 characters); not worth parsing
        return None
    try:
        version = Version.parse(text)
    except ValueError:
        return None
    if max(version.major, version.minor, version.patch) >= _VERSION_LIMIT:
        return None
    return version


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


#: A version's precedence as a tuple (semver §11): numbers, then a release above any of its
#: pre-releases, whose identifiers compare numerically below alphanumerically; build
#: metadata is ignored. Comparing tuples is many times cheaper than semver's ``compare``.
_Key = tuple[int, int, int, tuple[object, ...]]
_RELEASE: tuple[object, ...] = (1,)


def _key(version: Version) -> _Key:
    pre = version.prerelease
    if not pre:
        return (version.major, version.minor, version.patch, _RELEASE)
    identifiers = tuple(
        (0, int(part), "") if is_ascii_digits(part) else (1, 0, part) for part in pre.split(".")
    )
    return (version.major, version.minor, version.patch, (0, identifiers))


def same_precedence(left: Version, right: Version) -> bool:
    """``left == right`` as semver orders them (build metadata ignored), without semver's
    comparison machinery (the resolver asks this for every candidate it orders)."""
    return _key(left) == _key(right)


# --- constraints -------------------------------------------------------------------------

_OPERATORS = ("<=", ">=", "=", "<", ">", "~", "^")
_NUMBER = r"(0|[1-9][0-9]*)"
_WILDCARD = r"[*xX]"
_PARTIAL_RE = re.compile(
    rf"^v?(?P<major>{_NUMBER}|{_WILDCARD})"
    rf"(?:\.(?P<minor>{_NUMBER}|{_WILDCARD})"
    rf"(?:\.(?P<patch>{_NUMBER}|{_WILDCARD})"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?$"
)


@dataclass(frozen=True)
class Comparator:
    """One comparator of a requirement: operator plus a possibly partial version.

    ``op`` is one of ``= > >= < <= ~ ^`` or ``*`` (a wildcard such as ``1.*``); a bare
    version is ``^`` with ``implicit_caret`` set so that it prints back as written.
    """

    op: str
    major: int | None
    minor: int | None = None
    patch: int | None = None
    pre: str = ""
    implicit_caret: bool = False
    # matches() runs for every candidate against every need: the bounds once, as keys.
    _keys: tuple[_Key | None, bool, _Key | None, bool] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        lower, lower_inclusive, upper, upper_inclusive = self.bounds()
        keys = (
            None if lower is None else _key(lower),
            lower_inclusive,
            None if upper is None else _key(upper),
            upper_inclusive,
        )
        object.__setattr__(self, "_keys", keys)

    def bounds(self) -> tuple[Version | None, bool, Version | None, bool]:
        """(lower, lower inclusive, upper, upper inclusive); None is unbounded."""
        major, minor, patch = self.major, self.minor, self.patch
        if major is None:  # "*"
            return None, True, None, True
        low = Version(major, minor or 0, patch or 0, self.pre or None)
        if self.op == "=":
            if minor is None:
                return low, True, Version(major + 1), False
            if patch is None:
                return low, True, Version(major, minor + 1), False
            return low, True, low, True
        if self.op == ">":
            if minor is None:
                return Version(major + 1), True, None, True
            if patch is None:
                return Version(major, minor + 1), True, None, True
            return low, False, None, True
        if self.op == ">=":
            return low, True, None, True
        if self.op == "<":
            return None, True, low, False
        if self.op == "<=":
            if minor is None:
                return None, True, Version(major + 1), False
            if patch is None:
                return None, True, Version(major, minor + 1), False
            return None, True, low, True
        if self.op in ("~", "*"):
            if minor is None:
                return low, True, Version(major + 1), False
            return low, True, Version(major, minor + 1), False
        # Caret: the leftmost non-zero part may not change.
        if major > 0 or minor is None:
            return low, True, Version(major + 1), False
        if minor > 0 or patch is None:
            return low, True, Version(0, minor + 1), False
        return low, True, Version(0, 0, (patch or 0) + 1), False

    def matches(self, version: Version) -> bool:
        return self.matches_key(_key(version))

    def matches_key(self, key: _Key) -> bool:
        """:meth:`matches` for a version's precedence key (computed once per version)."""
        lower, lower_inclusive, upper, upper_inclusive = self._keys
        if lower is not None and (key < lower or (key == lower and not lower_inclusive)):
            return False
        return not (upper is not None and (key > upper or (key == upper and not upper_inclusive)))

    def names_prerelease_of(self, version: Version) -> bool:
        return bool(self.pre) and (self.major, self.minor, self.patch) == (
            version.major,
            version.minor,
            version.patch,
        )

    def __str__(self) -> str:
        if self.op == "*":
            numbers = [n for n in (self.major, self.minor) if n is not None]
            return ".".join([*(str(n) for n in numbers), "*"])
        numbers = [n for n in (self.major, self.minor, self.patch) if n is not None]
        text = ".".join(str(n) for n in numbers) + (f"-{self.pre}" if self.pre else "")
        return text if self.implicit_caret else f"{self.op}{text}"


@dataclass(frozen=True)
class Constraint:
    """A version requirement: every comparator must match (cargo's comma means "and").

    ``falco_rule`` marks Falco's rule (same major and ``>=``, from :func:`falco_requirement`):
    it skips the pre-release opt-in, which only the manifest's own constraint decides.
    """

    comparators: tuple[Comparator, ...]
    falco_rule: bool = False

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse cargo requirement syntax; ValueError says what is wrong with ``text``."""
        stripped = text.strip()
        if not stripped:
            raise ValueError("empty version constraint")
        comparators = tuple(_parse_comparator(part, text) for part in stripped.split(","))
        if len(comparators) > 1 and any(c.major is None for c in comparators):
            raise ValueError(f"{text!r}: `*` cannot be combined with other comparators")
        return cls(comparators)

    @classmethod
    def any_version(cls) -> Constraint:
        return cls((Comparator("*", None),))

    def allows(self, version: Version) -> bool:
        key = _key(version)
        if not all(c.matches_key(key) for c in self.comparators):
            return False
        if self.falco_rule:
            # Same major, compared as a whole: 1.0.0-rc.1 is below <1.0.0 but of major 1.
            return all(version.major == c.major for c in self.comparators if c.op == ">=")
        if version.prerelease:
            return any(c.names_prerelease_of(version) for c in self.comparators)
        return True

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.comparators)


def _parse_comparator(part: str, whole: str) -> Comparator:
    text = part.strip()
    if not text:
        raise ValueError(f"{whole!r}: empty comparator (stray comma?)")
    op = next((o for o in _OPERATORS if text.startswith(o)), "")
    rest = text[len(op) :].strip()
    match = _PARTIAL_RE.match(rest)
    if not match:
        raise ValueError(
            f"{whole!r}: {text!r} is not a version requirement "
            '(expected e.g. "1.2.3", "^1.2", "~1.2.3", ">=1.2, <2", "=1.2.3" or "*")'
        )
    fields = [match.group("major"), match.group("minor"), match.group("patch")]
    numbers: list[int | None] = []
    wildcard_seen = False
    for value in fields:
        if value is None or value in ("*", "x", "X"):
            wildcard_seen = wildcard_seen or value is not None
            numbers.append(None)
        elif wildcard_seen or (numbers and numbers[-1] is None):
            raise ValueError(f"{whole!r}: {text!r} has a number after a wildcard")
        else:
            numbers.append(_version_number(value, whole))
    major, minor, patch = numbers
    pre = match.group("pre") or ""
    if wildcard_seen:
        if op and op != "=":
            raise ValueError(f"{whole!r}: {text!r}: wildcards cannot follow {op!r}")
        if pre:
            raise ValueError(f"{whole!r}: {text!r}: a wildcard version has no pre-release")
        return Comparator("*", major, minor, None)
    return Comparator(op or "^", major, minor, patch, pre, implicit_caret=not op)


def falco_requirement(version_text: str) -> Constraint:
    """Falco's rule for what artifacts require: same major and ``>=`` (no 0.x special case).

    ``"0.18.0"`` is satisfied by 0.19.2 but not by 1.0.0. Partial versions (``"0.10"``) are
    completed with zeros; ValueError when ``version_text`` is not a version. A pre-release
    in range passes (0.19.0-rc.1 meets 0.18.0): whether one may be chosen at all is up to
    falco.toml (the resolver) or the [target] the user set.
    """
    text = version_text.strip()
    text = text[1:] if text[:1] in ("v", "V") else text
    match = _PARTIAL_RE.match(text)
    if not match or match.group("major") in ("*", "x", "X") or "*" in text:
        raise ValueError(f"{version_text!r} is not a version")
    minor, patch = match.group("minor"), match.group("patch")
    if (minor is not None and not is_ascii_digits(minor)) or (
        patch is not None and not is_ascii_digits(patch)
    ):
        raise ValueError(f"{version_text!r} is not a version")
    major = _version_number(match.group("major"), version_text)
    low = Comparator(
        ">=",
        major,
        _version_number(minor or "0", version_text),
        _version_number(patch or "0", version_text),
        match.group("pre") or "",
    )
    return Constraint((low, Comparator("<", major + 1, 0, 0)), falco_rule=True)


def requirement_version(name: str, version_text: str) -> str:
    """A requirement's version as semver text; a legacy integer ``engine_version`` N means
    0.N.0."""
    text = version_text.strip()
    if name == "engine_version" and is_ascii_digits(text) and len(text) <= MAX_VERSION_DIGITS:
        return f"0.{int(text)}.0"
    return text


def _version_number(digits: str, whole: str) -> int:
    """One number of a version (ASCII digits, matched by the pattern); ValueError over 2**64."""
    what = f"{shortened_repr(whole)}: version number"
    number = parse_ascii_int(digits, what, max_digits=MAX_VERSION_DIGITS)
    if number >= _VERSION_LIMIT:
        raise ValueError(f"{what} {digits} is not below 2**64")
    return number


def caret_for(version: Version) -> str:
    """What `add` writes for a resolved version, like `cargo add`: the bare version (= caret)."""
    return str(version.replace(build=None))
