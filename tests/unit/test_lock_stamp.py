"""services.lock_stamp: what a stamp is keyed by, when it matches, when it is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from falcopkg.core.manifest import parse_manifest
from falcopkg.services.indexes import IndexStore
from falcopkg.services.lock_stamp import LockStamp, tags_digest

MANIFEST = '[dependencies]\nedge = { ref = "registry.example.com/acme/edge", version = "1" }\n'
LOCK = b"version = 1\n"
TAGS = {"registry.example.com/acme/edge": ["1.0.0", "1.1.0", "latest"]}


def stamp_of(tmp_path: Path, text: str = MANIFEST, lock: bytes = LOCK) -> LockStamp:
    path = tmp_path / "falco.toml"
    path.write_text(text)
    manifest = parse_manifest(text, path)
    return LockStamp.of_project(
        manifest, text.encode(), tmp_path / "falco.lock", lock, tmp_path / "cache"
    )


def recorded(tmp_path: Path, tags: dict[str, list[str]] = TAGS) -> LockStamp:
    stamp = stamp_of(tmp_path)
    stamp.observe(tags, depends_on_more=False)
    stamp.save(LOCK)
    return stamp_of(tmp_path)


def test_a_recorded_stamp_matches_the_same_tag_lists(tmp_path: Path) -> None:
    stamp = recorded(tmp_path)
    assert stamp.stamped_sources() == list(TAGS)
    assert stamp.unchanged(TAGS) and stamp.matched
    assert stamp.unchanged({**TAGS, "other.example/x": ["1"]})  # more fetched: still as stamped
    # The order a registry lists tags in means nothing to resolution.
    assert stamp.unchanged({"registry.example.com/acme/edge": ["latest", "1.1.0", "1.0.0"]})


@pytest.mark.parametrize(
    "now",
    [
        {"registry.example.com/acme/edge": ["1.0.0", "1.1.0", "1.2.0", "latest"]},  # new tag
        {"registry.example.com/acme/edge": ["1.0.0", "1.1.0", "v1.1.0", "latest"]},  # an alias
        {"registry.example.com/acme/edge": ["1.0.0", "latest"]},  # a tag deleted
        {},  # the list could not be had
    ],
)
def test_any_other_tag_list_does_not_match(tmp_path: Path, now: dict[str, list[str]]) -> None:
    stamp = recorded(tmp_path)
    assert not stamp.unchanged(now) and not stamp.matched


@pytest.mark.parametrize(
    ("text", "lock"),
    [
        (MANIFEST + "# edited\n", LOCK),
        (MANIFEST, LOCK + b"# edited\n"),
    ],
)
def test_other_files_have_another_key(tmp_path: Path, text: str, lock: bytes) -> None:
    recorded(tmp_path)
    other = stamp_of(tmp_path, text, lock)
    assert other.key != stamp_of(tmp_path).key
    assert other.stamped_sources() is None


def test_an_index_is_part_of_the_key_and_must_be_cached(tmp_path: Path) -> None:
    index = tmp_path / "index.yaml"
    index.write_text("- name: edge\n  type: rulesfile\n  registry: r.example\n  repository: e\n")
    text = f'[[index]]\nname = "local"\nurl = "{index}"\n\n' + MANIFEST
    assert stamp_of(tmp_path, text).key is None  # not read yet: nothing to key by
    manifest = parse_manifest(text, tmp_path / "falco.toml")
    store = IndexStore(tmp_path / "cache")
    store.open(manifest.indexes[0])
    keyed = stamp_of(tmp_path, text).key
    assert keyed is not None
    index.write_text(index.read_text().replace("repository: e", "repository: moved"))
    assert stamp_of(tmp_path, text).key is None  # changed since it was read
    store.open(manifest.indexes[0])
    assert stamp_of(tmp_path, text).key not in (None, keyed)


def test_a_stamp_is_keyed_by_the_indexes_as_the_lock_left_them(tmp_path: Path) -> None:
    """A first lock reads its indexes while it resolves: its stamp has them in its key."""
    index = tmp_path / "index.yaml"
    index.write_text("- name: edge\n  type: rulesfile\n  registry: r.example\n  repository: e\n")
    text = f'[[index]]\nname = "local"\nurl = "{index}"\n\n' + MANIFEST
    stamp = stamp_of(tmp_path, text)
    assert stamp.key is None  # the index not read yet
    stamp.observe(TAGS, depends_on_more=False)
    IndexStore(tmp_path / "cache").open(parse_manifest(text, tmp_path / "falco.toml").indexes[0])
    stamp.save(LOCK)
    assert stamp_of(tmp_path, text).stamped_sources() == list(TAGS)


def test_an_index_changed_while_the_lock_ran_is_not_recorded(tmp_path: Path) -> None:
    index = tmp_path / "index.yaml"
    index.write_text("- name: edge\n  type: rulesfile\n  registry: r.example\n  repository: e\n")
    text = f'[[index]]\nname = "local"\nurl = "{index}"\n\n' + MANIFEST
    manifest = parse_manifest(text, tmp_path / "falco.toml")
    store = IndexStore(tmp_path / "cache")
    store.open(manifest.indexes[0])
    stamp = stamp_of(tmp_path, text)
    stamp.observe(TAGS, depends_on_more=False)
    index.write_text(index.read_text().replace("repository: e", "repository: moved"))
    store.open(manifest.indexes[0])  # another process's `index update` meanwhile
    stamp.save(LOCK)
    assert stamp_of(tmp_path, text).stamped_sources() is None


def test_a_resolution_that_depended_on_more_is_not_recorded(tmp_path: Path) -> None:
    stamp = stamp_of(tmp_path)
    stamp.observe(TAGS, depends_on_more=True)
    stamp.save(LOCK)
    assert stamp_of(tmp_path).stamped_sources() is None


def test_a_stamp_is_recorded_for_the_lock_it_saves_not_the_one_read(tmp_path: Path) -> None:
    """falco.lock rewritten (by this lock, or another command meanwhile): the stamp is keyed
    by the bytes the resolved lock was rendered to."""
    stamp = stamp_of(tmp_path)
    stamp.observe(TAGS, depends_on_more=False)
    written = LOCK + b"# resolved anew\n"
    stamp.save(written)
    assert stamp_of(tmp_path).stamped_sources() is None
    assert stamp_of(tmp_path, lock=written).stamped_sources() == list(TAGS)


def test_a_first_lock_has_no_key_to_match_but_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "falco.toml"
    path.write_text(MANIFEST)
    first = LockStamp.of_project(
        parse_manifest(MANIFEST, path),
        MANIFEST.encode(),
        tmp_path / "falco.lock",
        None,
        tmp_path / "cache",
    )
    assert first.key is None and first.stamped_sources() is None
    first.observe(TAGS, depends_on_more=False)
    first.save(LOCK)
    assert stamp_of(tmp_path).stamped_sources() == list(TAGS)


def test_a_remote_index_whose_parsed_form_is_gone_is_not_keyed(tmp_path: Path) -> None:
    """meta.json outliving the index's entries (a prune after `index update` answered 304):
    `open` would fetch the index again, so nothing is skipped."""
    import json

    text = '[[index]]\nname = "remote"\nurl = "https://index.example/index.yaml"\n\n' + MANIFEST
    manifest = parse_manifest(text, tmp_path / "falco.toml")
    store = IndexStore(tmp_path / "cache")
    directory = store.directory(manifest.indexes[0])
    directory.mkdir(parents=True)
    digest = "sha256:" + "a" * 64
    meta = {"url": manifest.indexes[0].url, "digest": digest, "entries": 1, "fetched_at": "x"}
    (directory / "meta.json").write_text(json.dumps(meta))
    assert store.current_digest(manifest.indexes[0]) is None
    assert stamp_of(tmp_path, text).key is None


def test_damaged_or_foreign_stamps_read_as_missing(tmp_path: Path) -> None:
    stamp = recorded(tmp_path)
    data = stamp.path.read_bytes()
    middle = len(data) // 2
    flipped = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]
    for damaged in (data[:-3], data[:10], b"", flipped):
        stamp.path.write_bytes(damaged)
        assert stamp_of(tmp_path).stamped_sources() is None


def test_tags_digest_is_of_the_set_of_tags() -> None:
    assert tags_digest(["a", "b"]) == tags_digest(["b", "a", "a"])
    assert tags_digest(["a", "b"]) != tags_digest(["a", "b", "c"])
    assert tags_digest(["a,b"]) != tags_digest(["a", "b"])
    assert tags_digest([]) == tags_digest([])
