"""Versions and constraints (SPEC §4): cargo's requirement syntax and Falco's rule, as tables."""

from __future__ import annotations

import pytest

from falcopkg.core.versions import (
    Comparator,
    Constraint,
    Version,
    caret_for,
    falco_requirement,
    parse_version,
    requirement_version,
    same_precedence,
    semver_tags,
)

# constraint, versions it allows, versions it refuses
CARGO_CASES: list[tuple[str, list[str], list[str]]] = [
    ("4", ["4.0.0", "4.1.0", "4.99.99"], ["3.9.9", "5.0.0", "4.1.0-rc.1"]),
    ("^4", ["4.0.0", "4.9.0"], ["5.0.0"]),
    ("1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0"]),
    ("0.16", ["0.16.0", "0.16.9"], ["0.15.9", "0.17.0", "1.0.0"]),
    ("0.16.1", ["0.16.1", "0.16.5"], ["0.16.0", "0.17.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4", "0.0.2"]),
    ("^0.0", ["0.0.0", "0.0.9"], ["0.1.0"]),
    ("^0", ["0.0.1", "0.99.0"], ["1.0.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.9"]),
    ("~1", ["1.0.0", "1.9.9"], ["2.0.0"]),
    ("~0.16", ["0.16.3"], ["0.17.0"]),
    (">=1.2, <2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0"]),
    (">= 1.2.0 , < 2", ["1.5.0"], ["2.0.0"]),
    (">1.2", ["1.3.0"], ["1.2.9", "1.2.0"]),
    (">1.2.3", ["1.2.4"], ["1.2.3"]),
    (">1", ["2.0.0"], ["1.9.9"]),
    ("<1.2", ["1.1.9"], ["1.2.0"]),
    ("<=1.2", ["1.2.9"], ["1.3.0"]),
    ("<=1.2.3", ["1.2.3"], ["1.2.4"]),
    ("=1.2.3", ["1.2.3"], ["1.2.4", "1.2.2"]),
    ("=1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
    ("=1", ["1.0.0", "1.8.0"], ["2.0.0"]),
    ("*", ["0.0.1", "4.2.0", "100.0.0"], ["1.0.0-alpha"]),
    ("1.*", ["1.0.0", "1.5.0"], ["2.0.0", "0.9.0"]),
    ("1.2.*", ["1.2.0", "1.2.8"], ["1.3.0"]),
    ("1.2.x", ["1.2.1"], ["1.3.0"]),
    # pre-releases: only when a comparator names one with the same major.minor.patch
    ("1.2.3-rc.1", ["1.2.3-rc.1", "1.2.3-rc.2", "1.2.3", "1.4.0"], ["1.2.4-rc.1", "1.2.3-alpha"]),
    ("=1.2.3-rc.1", ["1.2.3-rc.1"], ["1.2.3-rc.2", "1.2.3"]),
    (">=1.0.0-beta, <2", ["1.0.0-beta", "1.0.0-rc.1", "1.5.0"], ["1.1.0-rc.1", "2.0.0-rc.1"]),
    ("4", ["4.0.0+build.7"], ["5.0.0+build.1"]),
]


@pytest.mark.parametrize(
    ("text", "allowed", "refused"), CARGO_CASES, ids=[c[0] for c in CARGO_CASES]
)
def test_cargo_constraints(text: str, allowed: list[str], refused: list[str]) -> None:
    constraint = Constraint.parse(text)
    for version in allowed:
        assert constraint.allows(Version.parse(version)), f"{text!r} should allow {version}"
    for version in refused:
        assert not constraint.allows(Version.parse(version)), f"{text!r} should refuse {version}"


PRINT_CASES = [
    ("4", "4"),
    ("^4", "^4"),
    (" >= 1.2 ,<2 ", ">=1.2, <2"),
    ("~1.2.3", "~1.2.3"),
    ("*", "*"),
    ("1.x", "1.*"),
    ("1.2.*", "1.2.*"),
    ("=1.2.3-rc.1", "=1.2.3-rc.1"),
]


@pytest.mark.parametrize(("text", "printed"), PRINT_CASES)
def test_constraints_print_back_normalized(text: str, printed: str) -> None:
    assert str(Constraint.parse(text)) == printed
    assert str(Constraint.parse(printed)) == printed


BAD_CONSTRAINTS = [
    ("", "empty"),
    ("latest", "not a version requirement"),
    ("1.2.3.4", "not a version requirement"),
    (">=1.2,", "empty comparator"),
    ("1.*.3", "after a wildcard"),
    (">=1.*", "wildcards cannot follow"),
    ("*, <2", "cannot be combined"),
    ("1.2-rc.1", "not a version requirement"),
    ("01.2.3", "not a version requirement"),
    ("²", "not a version requirement"),
    ("1.²", "not a version requirement"),
    (
        "\u0661.\u0662.\u0663",
        "not a version requirement",
    ),  # Arabic-Indic digits are no version numbers
    ("1" * 5000, "at most 20 allowed"),  # int() itself refuses over 4,300 digits
    ("18446744073709551616.0.0", "not below 2\\*\\*64"),
]


@pytest.mark.parametrize(("text", "reason"), BAD_CONSTRAINTS)
def test_bad_constraints_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Constraint.parse(text)


# Falco's rule: same major and >=, no special case for 0.x.
FALCO_CASES = [
    # Pre-releases are judged on their numbers: whether one is wanted is falco.toml's call.
    (
        "0.18.0",
        ["0.18.0", "0.19.2", "0.99.0", "0.19.0-rc.1"],
        ["0.17.9", "1.0.0", "0.18.0-rc.1", "1.0.0-rc.1"],
    ),
    ("4.0.0", ["4.0.0", "4.5.1", "4.1.0-beta.2"], ["3.9.0", "5.0.0", "5.0.0-rc.1"]),
    ("0.10", ["0.10.0", "0.11.0"], ["0.9.0", "1.0.0"]),
    ("v1.2.3", ["1.2.3"], ["1.2.2"]),
    ("0.5.0-rc.1", ["0.5.0-rc.1", "0.5.0-rc.2", "0.5.0", "0.6.0-rc.1"], ["0.5.0-alpha"]),
]


@pytest.mark.parametrize(("text", "allowed", "refused"), FALCO_CASES)
def test_falco_requirement_rule(text: str, allowed: list[str], refused: list[str]) -> None:
    constraint = falco_requirement(text)
    for version in allowed:
        assert constraint.allows(Version.parse(version)), f"{text} should accept {version}"
    for version in refused:
        assert not constraint.allows(Version.parse(version)), f"{text} should refuse {version}"


@pytest.mark.parametrize(
    "text", ["", "latest", "*", "1.x", "²", "0.²", "1" * 5000, "0.1." + "9" * 30]
)
def test_falco_requirement_rejects_non_versions(text: str) -> None:
    with pytest.raises(ValueError):
        falco_requirement(text)


@pytest.mark.parametrize(
    ("name", "version", "semver_text"),
    [
        ("engine_version", "15", "0.15.0"),
        ("engine_version", "0.31.0", "0.31.0"),
        ("engine_version_semver", "0.57.0", "0.57.0"),
        ("plugin_api_version", "3.10.0", "3.10.0"),
        # isdigit() said yes to these, and int() raised: left as they are (not versions).
        ("engine_version", "²", "²"),
        ("engine_version", "1" * 5000, "1" * 5000),
    ],
)
def test_requirement_version_maps_legacy_engine_integers(
    name: str, version: str, semver_text: str
) -> None:
    assert requirement_version(name, version) == semver_text


@pytest.mark.parametrize(
    ("version", "written"),
    [("1.2.3", "1.2.3"), ("0.16.1", "0.16.1"), ("4.0.0", "4.0.0"), ("1.0.0-rc.1+b7", "1.0.0-rc.1")],
)
def test_caret_for_writes_what_cargo_add_writes(version: str, written: str) -> None:
    assert caret_for(Version.parse(version)) == written
    assert Constraint.parse(written).allows(Version.parse(version))


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("1.2.3", "1.2.3"),
        ("v1.2.3", "1.2.3"),
        ("latest", None),
        ("4", None),
        ("4.1", None),
        ("main", None),
        ("9" * 5000 + ".0.0", None),
        ("18446744073709551616.0.0", None),  # 2**64: beyond what falcoctl reads
        ("18446744073709551615.0.0", "18446744073709551615.0.0"),
    ],
)
def test_parse_version_treats_aliases_as_non_versions(tag: str, expected: str | None) -> None:
    parsed = parse_version(tag)
    assert (str(parsed) if parsed else None) == expected


def test_semver_tags_newest_first_and_prefers_tags_without_v() -> None:
    tags = ["latest", "0.9.0", "v1.0.0", "1.0.0", "1.1.0-rc.1", "1", "1.0"]
    assert semver_tags(tags) == [
        (Version.parse("1.1.0-rc.1"), "1.1.0-rc.1"),
        (Version.parse("1.0.0"), "1.0.0"),
        (Version.parse("0.9.0"), "0.9.0"),
    ]


PRECEDENCE = [
    "0.0.0",
    "0.9.9",
    "1.0.0-0",
    "1.0.0-1",
    "1.0.0-2",
    "1.0.0-10",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.0+build.5",
    "1.0.1-rc.1",
    "1.0.1",
    "1.2.0",
    "1.10.0",
    "2.0.0-x",
    "2.0.0",
]


@pytest.mark.parametrize("left", PRECEDENCE)
@pytest.mark.parametrize("right", PRECEDENCE)
def test_constraints_compare_as_semver_does(left: str, right: str) -> None:
    """Comparators compare keys, not semver objects: both must give semver §11's order."""
    version = Version.parse(left)
    bound = Version.parse(right)
    for op, expected in (
        (">=", version >= bound),
        (">", version > bound),
        ("<", version < bound),
        ("<=", version <= bound),
    ):
        comparator = Comparator(op, bound.major, bound.minor, bound.patch, bound.prerelease or "")
        assert comparator.matches(version) is expected, (left, op, right)
    assert same_precedence(version, bound) is (version == bound), (left, "==", right)
