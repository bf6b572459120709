"""Index parsing, validation, search ranking and name lookup (pure; data in tests/data/index/)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from falcopkg.core.index import (
    IndexEntry,
    Maintainer,
    entries_from_payload,
    entries_to_payload,
    parse_index,
    search,
)
from falcopkg.core.index_config import IndexConfig
from falcopkg.core.reference import parse_reference
from falcopkg.errors import ConfigError, FalcopkgError
from falcopkg.services.indexes import LoadedIndex, resolve_reference

DATA = Path(__file__).parent.parent / "data" / "index"
REALISTIC = DATA / "falcosecurity-like.yaml"


def _expectations(path: Path) -> list[str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} needs a `# expect:` first line"
    return [part.strip() for part in first.removeprefix("# expect: ").split(" | ")]


def _load(path: Path) -> list[IndexEntry]:
    return parse_index(path.read_text(), f"index test ({path.name})")


@pytest.fixture(scope="module")
def realistic() -> list[IndexEntry]:
    return _load(REALISTIC)


# -- parsing ------------------------------------------------------------------------------


def test_realistic_index_parses_every_field(realistic: list[IndexEntry]) -> None:
    assert len(realistic) == 40
    k8saudit = next(e for e in realistic if e.name == "k8saudit")
    assert k8saudit.type == "plugin"
    assert k8saudit.reference == "ghcr.io/falcosecurity-like/plugins/plugin/k8saudit"
    assert k8saudit.keywords == ("audit", "audit-log", "audit-events", "kubernetes", "k8saudit")
    assert k8saudit.maintainers == (Maintainer("The Example Authors", "maintainers@example.org"),)
    assert k8saudit.license == "Apache-2.0"
    assert k8saudit.sources == ("https://git.example.com/plugins/k8saudit",)
    assert k8saudit.signature is not None and "cosign" in k8saudit.signature
    unsigned = next(e for e in realistic if e.name == "application-rules")
    assert unsigned.signature is None


def test_unknown_fields_and_loose_optional_fields_are_tolerated() -> None:
    minimal, loose = _load(DATA / "tolerant.yaml")
    assert minimal == IndexEntry("minimal", "rulesfile", "registry.example.com", "acme/minimal")
    assert loose.registry == "localhost:5000"
    assert loose.description == ""
    assert loose.keywords == ("single-keyword",)
    assert loose.sources == ("https://example.com/src",)
    assert loose.maintainers == (Maintainer("Jane Doe"), Maintainer("John Roe"))
    assert loose.license == "2"
    assert loose.signature is None


def test_empty_index_is_valid() -> None:
    assert _load(DATA / "empty.yaml") == []


@pytest.mark.parametrize("path", sorted((DATA / "invalid").glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_index_is_a_clear_error(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(path)
    error = caught.value
    text = f"{error.message}\nhint: {error.hint}"
    assert error.message.startswith(f"index test ({path.name}): ")
    for fragment in _expectations(path):
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert "\\n" not in text  # an escaped newline printed literally


def test_cached_payload_round_trips_through_json(realistic: list[IndexEntry]) -> None:
    payload = json.loads(json.dumps(entries_to_payload(realistic)))
    # Shared values are stored once.
    assert (len(payload["maintainers"]), len(payload["signatures"])) == (1, 1)
    assert payload["types"] == ["rulesfile", "plugin", "asset"]
    loaded = entries_from_payload(payload)
    assert loaded == realistic
    assert [hash(e) for e in loaded] == [hash(e) for e in realistic]
    assert loaded[3].reference == realistic[3].reference


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p["rows"][0].pop(),
        lambda p: p["rows"][0].__setitem__(8, 99),
        lambda p: p["rows"][0].__setitem__(1, -1),
        lambda p: p.pop("signatures"),
    ],
)
def test_damaged_payload_raises(realistic: list[IndexEntry], damage: Any) -> None:
    payload = json.loads(json.dumps(entries_to_payload(realistic)))
    damage(payload)
    with pytest.raises((KeyError, IndexError, ValueError, TypeError)):
        entries_from_payload(payload)


# -- search -------------------------------------------------------------------------------

SEARCH_CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "search_cases.yaml").read_text())


@pytest.mark.parametrize("case", SEARCH_CASES, ids=[c["id"] for c in SEARCH_CASES])
def test_search_ranking(case: dict[str, Any], realistic: list[IndexEntry]) -> None:
    names = [e.name for e in search(realistic, case["keywords"], case.get("type"))]
    if "expect" in case:
        assert names == case["expect"]
    else:
        assert names[: len(case["expect_first"])] == case["expect_first"]


def test_search_is_stable_and_ties_follow_index_order(realistic: list[IndexEntry]) -> None:
    first = search(realistic, ["audit", "rules"])
    assert all(search(realistic, ["audit", "rules"]) == first for _ in range(3))
    # Entries from a second index come after equal-ranked ones of the first.
    other = [IndexEntry("k8saudit-zz", "plugin", "registry.example.com", "x/k8saudit-zz")]
    combined = search([*other, *realistic], ["k8saudit"])
    assert [e.name for e in combined][:3] == ["k8saudit", "k8saudit-zz", "k8saudit-aks"]
    combined = search([*realistic, *other], ["k8saudit"])
    assert [e.name for e in combined][-1] == "k8saudit-zz"


def test_search_order_does_not_depend_on_input_shuffling_within_ranks() -> None:
    # Same rank, same position ordering key: the result follows the given order exactly.
    entries = [
        IndexEntry(f"acme-{n}", "rulesfile", "registry.example.com", f"acme/r{n}")
        for n in range(30)
    ]
    shuffled = entries[:]
    random.Random(7).shuffle(shuffled)
    assert search(shuffled, ["acme"]) == shuffled


# -- lookup -------------------------------------------------------------------------------

LOOKUP_CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "lookup_cases.yaml").read_text())


@pytest.fixture(scope="module")
def two_indexes(realistic: list[IndexEntry]) -> list[LoadedIndex]:
    return [
        LoadedIndex(IndexConfig("first", str(REALISTIC)), realistic),
        LoadedIndex(IndexConfig("second", "second.yaml"), _load(DATA / "second.yaml")),
    ]


@pytest.mark.parametrize("case", LOOKUP_CASES, ids=[c["ref"] for c in LOOKUP_CASES])
def test_resolve_reference(case: dict[str, Any], two_indexes: list[LoadedIndex]) -> None:
    if "error" in case:
        with pytest.raises(FalcopkgError) as caught:
            resolve_reference(case["ref"], two_indexes)
        text = f"{caught.value.message}\nhint: {caught.value.hint}"
        for fragment in case["error"]:
            assert fragment in text
        return
    located, entry, index_name = resolve_reference(case["ref"], two_indexes)
    assert str(located) == case["expect"]["reference"]
    assert index_name == case["expect"]["index"]
    assert (entry is None) == (index_name is None)
    assert located == parse_reference(case["expect"]["reference"])


def test_lookup_without_indexes_says_how_to_add_one() -> None:
    with pytest.raises(FalcopkgError) as caught:
        resolve_reference("k8saudit", [])
    assert "no index is configured" in caught.value.message
    assert caught.value.hint is not None and "falcopkg index add" in caught.value.hint


def test_payload_keeps_awkward_lists() -> None:
    base = IndexEntry("a", "rulesfile", "registry.example.com", "acme/a")
    entries = [
        base,
        IndexEntry("b", "plugin", "localhost:5000", "acme/b", keywords=("",), sources=("x",)),
        IndexEntry("c", "asset", "registry.example.com", "acme/c", keywords=("p\x1fq", "r")),
        IndexEntry("d", "rulesfile", "registry.example.com", "acme/d", keywords=("one",)),
    ]
    payload = json.loads(json.dumps(entries_to_payload(entries)))
    assert entries_from_payload(payload) == entries


# One entry per rank for the term "audit", worst first: search must reverse them.
LADDER = [
    IndexEntry("l-substring", "plugin", "r.example.com", "a/l3", description="Reads audit logs"),
    IndexEntry("l-keyword", "plugin", "r.example.com", "a/l2", keywords=("audit",)),
    IndexEntry("auditor", "plugin", "r.example.com", "a/l1"),
    IndexEntry("audit", "plugin", "r.example.com", "a/l0"),
]


def test_rank_ladder() -> None:
    assert search(LADDER, ["audit"]) == LADDER[::-1]


@pytest.mark.parametrize(
    ("entry", "term", "expected_rank"),
    [
        # A description over several lines cannot pose as a keyword.
        (IndexEntry("x", "plugin", "r.example.com", "a/x", description="a\naudit\nb"), "audit", 3),
        (IndexEntry("x", "plugin", "r.example.com", "a/x", keywords=("Audit",)), "AUDIT", 2),
        (IndexEntry("x", "plugin", "r.example.com", "a/x", keywords=("audit\nx",)), "audit", 3),
        (IndexEntry("auditing", "plugin", "r.example.com", "a/x"), " Audit ", 1),
        (
            IndexEntry("x", "plugin", "r.example.com", "a/x", description="Audit  Log"),
            "audit log",
            3,
        ),
    ],
)
def test_rank_edges(entry: IndexEntry, term: str, expected_rank: int) -> None:
    # Placed first, the entry precedes the ladder entry of its own rank (ties: index order).
    ranked = search([entry, *LADDER], [term])
    if " " in term.strip():  # a phrase: only substring matches, ladder's included
        assert ranked == [entry, LADDER[0]]
        return
    assert ranked.index(entry) == expected_rank
