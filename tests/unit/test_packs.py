"""Packs of small cache entries: records, torn writes, forgeries, concurrent appends."""

from __future__ import annotations

import multiprocessing
import os
import resource
from pathlib import Path

import pytest

from falcopkg.digests import bytes_digest
from falcopkg.errors import IntegrityError
from falcopkg.services import packs
from falcopkg.services.cache import BlobCache, prune_cache
from falcopkg.services.packs import (
    MAGIC,
    PACKED_BLOB_LIMIT,
    PackKind,
    PackStore,
    Records,
    deferred_appends,
    parse_records,
)


def record(data: bytes, key: str | None = None, checksum: bool = False) -> bytes:
    key = key or bytes_digest(data)
    tail = b" " + bytes_digest(data).encode() if checksum else b""
    return b"%s%s %d%s\n%s\n" % (MAGIC, key.encode(), len(data), tail, data)


A, B, C = b'{"a": 1}', b'{"b": 22}', b"x" * 100
DA, DB, DC = bytes_digest(A), bytes_digest(B), bytes_digest(C)


def index_of(pack: bytes, max_entry: int = 1 << 20) -> tuple[Records, int]:
    into: Records = {}
    used = parse_records(pack, 0, into, set(), max_entry)
    return into, used


@pytest.mark.parametrize(
    ("pack", "intact", "damaged", "consumed"),
    [
        pytest.param(record(A) + record(B) + record(C), {DA, DB, DC}, set(), "all", id="intact"),
        pytest.param(b"", set(), set(), 0, id="empty"),
        # A record cut off at the end may still be being written: parsed again next time.
        pytest.param(record(A) + record(B)[:-5], {DA}, set(), len(record(A)), id="tail"),
        pytest.param(record(A) + MAGIC[:3], {DA}, set(), len(record(A)), id="tail-magic"),
        pytest.param(record(A) + MAGIC + b"sha2", {DA}, set(), len(record(A)), id="tail-header"),
        # A record torn for good (later appends follow it) hides nothing and is marked.
        pytest.param(
            record(A)[:-4] + record(B) + record(C), {DB, DC}, {DA}, "all", id="torn-short"
        ),
        # Torn inside its header: whose it was is not known, so nothing is marked.
        pytest.param(
            record(C)[:40] + record(A) + record(B), {DA, DB}, set(), "all", id="torn-in-header"
        ),
        pytest.param(b"garbage\n" + record(B), {DB}, set(), "all", id="garbage-first"),
        pytest.param(
            MAGIC + b"sha256:x notanumber\n" + record(C), {DC}, set(), "all", id="bad-length"
        ),
        pytest.param(MAGIC + b"\xff" * 300 + record(A), {DA}, set(), "all", id="no-newline"),
        # A header inside an entry's bytes is a candidate too (reading verifies every one).
        pytest.param(record(record(A)), {bytes_digest(record(A)), DA}, set(), "all", id="nested"),
    ],
)
def test_parse_records(
    pack: bytes, intact: set[str], damaged: set[str], consumed: int | str
) -> None:
    index, used = index_of(pack)

    def servable(key: str) -> bool:
        return any(bytes_digest(pack[o : o + n]) == key for o, n, _ in index[key])

    assert {key for key in index if servable(key)} == intact
    assert {key for key in index if not servable(key)} == damaged  # listed, fails its check
    assert used == (len(pack) if consumed == "all" else consumed)


def test_stores_of_json_records_take_headers_only_at_the_start_of_a_line() -> None:
    inside = b'{"tags": ["' + MAGIC + DA.encode() + b' 3 x"]}'  # a hostile tag name
    pack = b"\n" + record(inside, key=DB, checksum=True) + b"\n" + record(C)
    into: Records = {}
    parse_records(pack, 0, into, set(), 1 << 20, lines_only=True)
    assert set(into) == {DB, DC}
    into = {}
    parse_records(pack, 0, into, set(), 1 << 20)
    assert set(into) == {DA, DB, DC}


def test_a_length_beyond_the_store_limit_is_damage_not_a_record_to_wait_for() -> None:
    pack = MAGIC + b"sha256:ab 999999999\nshort\n" + record(A)
    index, used = index_of(pack, max_entry=PACKED_BLOB_LIMIT)
    assert set(index) == {DA} and used == len(pack)


def test_parsing_a_tail_again_indexes_each_record_once() -> None:
    into: Records = {}
    seen: set[int] = set()
    pack = record(A) + record(B)[:-3]
    used = parse_records(pack, 0, into, seen, 1 << 20)
    pack = record(A) + record(B)
    used += parse_records(pack[used:], used, into, seen, 1 << 20)
    assert used == len(pack) and {k: len(v) for k, v in into.items()} == {DA: 1, DB: 1}


def test_small_blobs_are_packed_and_read_back_verified(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    blobs = [f'{{"n": {n}}}'.encode() for n in range(300)]
    for data in blobs:
        cache.put_bytes(data, bytes_digest(data))
    assert not (tmp_path / "blobs").exists()  # no file per blob
    assert len(list((tmp_path / "packs" / "sha256").glob("*.pack"))) <= 256
    assert not list((tmp_path / "packs").rglob("*.tmp"))
    for data in blobs:
        assert BlobCache(tmp_path).read_bytes(bytes_digest(data), 1024) == data
    assert cache.read_bytes(bytes_digest(blobs[0]), 3) is None  # larger than allowed
    assert cache.read_bytes(bytes_digest(b"never stored"), 1024) is None


def test_a_blob_is_checked_before_it_is_packed(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError):
        BlobCache(tmp_path).put_bytes(b"data", bytes_digest(b"other"))
    assert not (tmp_path / "packs").exists()


def test_a_large_blob_stays_a_file(tmp_path: Path) -> None:
    data = os.urandom(PACKED_BLOB_LIMIT + 1)
    cache = BlobCache(tmp_path)
    cache.put_bytes(data, bytes_digest(data))
    assert cache.path_for(bytes_digest(data)).read_bytes() == data
    assert cache.read_bytes(bytes_digest(data), len(data)) == data


def the_pack(directory: Path) -> Path:
    (pack,) = list(directory.rglob("*.pack"))
    return pack


def test_a_damaged_blob_reads_as_missing_and_one_fetched_again_is_served(tmp_path: Path) -> None:
    store = PackStore(tmp_path, PackKind.BLOBS)
    store.append(DA, A)
    pack = the_pack(tmp_path)
    pack.write_bytes(pack.read_bytes().replace(b'"a"', b'"z"'))  # same length, wrong bytes
    assert PackStore(tmp_path, PackKind.BLOBS).read(DA, 1024) is None
    store.append(DA, A)  # fetched again: appended after the damaged record
    assert PackStore(tmp_path, PackKind.BLOBS).read(DA, 1024) == A


def test_a_blob_store_never_serves_a_record_that_only_matches_its_own_checksum(
    tmp_path: Path,
) -> None:
    """A config's bytes may hold a header naming another digest, with a checksum of what
    follows: if a resynchronisation lands there, that forgery must not be served."""
    forged = b'{"evil": 1}'
    store = PackStore(tmp_path, PackKind.BLOBS)
    store.append(DA, A)
    with the_pack(tmp_path).open("ab") as handle:
        handle.write(record(forged, key=DA, checksum=True))
    assert PackStore(tmp_path, PackKind.BLOBS).read(DA, 1024) == A
    assert PackStore(tmp_path, PackKind.RECORDS).read(DA, 1024) == forged  # its own kind


def test_a_torn_record_hides_none_of_the_entries_appended_after_it(tmp_path: Path) -> None:
    store = PackStore(tmp_path, PackKind.BLOBS)
    big = b"y" * 100_000
    store.append(bytes_digest(big), big)
    pack = the_pack(tmp_path)
    with pack.open("r+b") as handle:  # a power cut kept 4 KiB of it
        handle.truncate(4096)
    later = [
        d
        for d in (b"%d" % n for n in range(20_000))
        if bytes_digest(d)[7:9] == bytes_digest(big)[7:9]
    ][:20]
    for data in later:
        store.append(bytes_digest(data), data)
    fresh = PackStore(tmp_path, PackKind.BLOBS)
    assert all(fresh.read(bytes_digest(data), 64) == data for data in later)
    assert fresh.read(bytes_digest(big), len(big)) is None


def test_a_short_write_is_an_error_and_the_pack_stays_readable(tmp_path: Path) -> None:
    store = PackStore(tmp_path, PackKind.BLOBS)
    store.append(DA, A)
    size = the_pack(tmp_path).stat().st_size
    big = b"z" * 5000
    same_pack = bytes_digest(A)[:9] + bytes_digest(big)[9:]  # a key of A's pack
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))
    try:
        import signal

        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            with pytest.raises(OSError):
                PackStore(tmp_path, PackKind.RECORDS).append(same_pack, big)
        finally:
            signal.signal(signal.SIGXFSZ, previous)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    store.append(DA, A)
    assert PackStore(tmp_path, PackKind.BLOBS).read(DA, 1024) == A


def test_a_reader_sees_what_was_appended_after_it_indexed_the_pack(tmp_path: Path) -> None:
    reader, writer = PackStore(tmp_path, PackKind.BLOBS), PackStore(tmp_path, PackKind.BLOBS)
    same_pack = [d for d in (b"%d" % n for n in range(5000)) if bytes_digest(d)[7:9] == "00"]
    writer.append(bytes_digest(same_pack[0]), same_pack[0])
    assert reader.read(bytes_digest(same_pack[0]), 64) == same_pack[0]
    writer.append(bytes_digest(same_pack[1]), same_pack[1])
    assert reader.read(bytes_digest(same_pack[1]), 64) == same_pack[1]
    # A pack replaced by another file (a clean, then new appends: on ext4 often with the
    # same inode number, and as large) is indexed anew.
    pack = tmp_path / "sha256" / "00.pack"
    pack.unlink()
    for data in same_pack[2:6]:
        writer.append(bytes_digest(data), data)
    assert reader.read(bytes_digest(same_pack[0]), 64) is None
    assert all(reader.read(bytes_digest(d), 64) == d for d in same_pack[2:6])


def test_a_record_about_a_digest_is_checked_against_its_own_checksum(tmp_path: Path) -> None:
    store = PackStore(tmp_path, PackKind.RECORDS)
    key = bytes_digest(b"the root manifest")
    store.append(key, b'{"format": 1}')
    store.append(key, b'{"format": 1, "newer": true}')
    assert store.read(key, 1024) == b'{"format": 1, "newer": true}'  # the newest first
    pack = the_pack(tmp_path)
    pack.write_bytes(pack.read_bytes().replace(b"true", b"null"))  # damage the newest
    assert PackStore(tmp_path, PackKind.RECORDS).read(key, 1024) == b'{"format": 1}'
    # A checksum field that names no known algorithm reads as damaged, not as an error.
    pack.write_bytes(pack.read_bytes().replace(b" sha256:", b" md5:"))
    assert PackStore(tmp_path, PackKind.RECORDS).read(key, 1024) is None


@pytest.mark.parametrize("damage", ["bytes", "torn"])
def test_a_damaged_newest_tag_list_is_missing_not_the_one_before(
    tmp_path: Path, damage: str
) -> None:
    store = PackStore(tmp_path, PackKind.LATEST)
    key = bytes_digest(b"ghcr.io/acme/rules")
    store.append(key, b'{"tags": ["1.0.0"]}')
    store.append(key, b'{"tags": ["1.0.0", "1.1.0"]}')
    pack = the_pack(tmp_path)
    if damage == "bytes":
        pack.write_bytes(pack.read_bytes().replace(b"1.1.0", b"9.9.9"))
    else:
        pack.write_bytes(pack.read_bytes()[:-6])
        other = bytes_digest(b"another repository")
        store.append(key[:9] + other[9:], b"{}")  # a later append: the newest is torn
    assert PackStore(tmp_path, PackKind.LATEST).read(key, 1024) is None


def _append_many(root: str, worker: int) -> None:
    packs = PackStore(Path(root), PackKind.BLOBS)
    for n in range(200):
        data = f"worker {worker} blob {n} ".encode() * 40
        packs.append(bytes_digest(data), data)


def test_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    packs = PackStore(tmp_path, PackKind.BLOBS)
    for worker in range(4):
        for n in range(200):
            data = f"worker {worker} blob {n} ".encode() * 40
            assert packs.read(bytes_digest(data), len(data)) == data
    assert not list(tmp_path.rglob("*.tmp"))


def test_prune_ages_a_pack_as_a_whole_and_a_read_refreshes_it(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.put_bytes(A, DA)
    cache.put_bytes(B, DB)
    old = 1_000_000_000  # 2001
    for pack in (tmp_path / "packs" / "sha256").iterdir():
        os.utime(pack, (old, old))
    assert cache.read_bytes(DA, 1024) == A  # used: its pack is young again
    prune_cache(tmp_path, max_age_seconds=3600)
    assert BlobCache(tmp_path).read_bytes(DA, 1024) == A
    if DA[7:9] != DB[7:9]:
        assert BlobCache(tmp_path).read_bytes(DB, 1024) is None


def test_a_filesystem_without_hard_links_still_gets_packs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store = PackStore(tmp_path, PackKind.BLOBS)
    store.append(DA, A)
    assert PackStore(tmp_path, PackKind.BLOBS).read(DA, 1024) == A
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_damaged_newest_tag_list_does_not_bring_back_a_file_of_an_earlier_version(
    tmp_path: Path,
) -> None:
    import json

    from falcopkg.services.cache import source_key
    from falcopkg.services.metadata import MetadataCache

    source = "ghcr.io/acme/rules"
    legacy = tmp_path / "metadata" / "tags" / f"{source_key(source)}.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"format": 1, "source": source, "tags": ["0.9.0"]}))
    records = MetadataCache(tmp_path)
    assert records.tags(source) is not None  # read from the earlier version's file
    records.save_tags(source, ["0.9.0", "1.0.0"], {})
    tags = records.tags(source)
    assert tags is not None and tags["tags"] == ["0.9.0", "1.0.0"]
    pack = the_pack(tmp_path / "metadata" / "packs" / "tags")
    pack.write_bytes(pack.read_bytes().replace(b"1.0.0", b"7.7.7"))
    assert MetadataCache(tmp_path).tags(source) is None


def test_records_of_a_cache_without_pre_pack_files_never_open_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache that a falcopkg before packs never filled has no ``roots/`` dir: a missing
    record costs no failing open of a file there; one that has it is still read."""
    import json

    from falcopkg.services.metadata import MetadataCache

    opened: list[Path] = []
    monkeypatch.setattr(MetadataCache, "_read", staticmethod(lambda path: opened.append(path)))
    digest = "sha256:" + "ab" * 32
    assert MetadataCache(tmp_path).root_record(digest) is None
    assert opened == []

    monkeypatch.undo()
    legacy = tmp_path / "metadata" / "roots" / "sha256" / f"{'ab' * 32}.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"format": 1, "type": "rulesfile"}))
    record = MetadataCache(tmp_path).root_record(digest)
    assert record is not None and record["type"] == "rulesfile"


# --- deferred appends: a batch of fetches writes its records when it ends ------------------


def fresh_read(directory: Path, key: str, kind: PackKind = PackKind.BLOBS) -> bytes | None:
    """What another process (a store of its own, with no index yet) reads of ``key``."""
    return PackStore(directory, kind).read(key, 1 << 20)


def test_deferred_appends_are_served_from_memory_and_written_when_the_batch_ends(
    tmp_path: Path,
) -> None:
    store = PackStore(tmp_path, PackKind.BLOBS)
    with deferred_appends():
        store.append(DA, A)
        store.append(DB, B)
        assert store.read(DA, 1024) == A and store.read(DB, 1024) == B
        assert store.read(DA, 3) is None  # the size limit holds for pending entries too
        assert fresh_read(tmp_path, DA) is None and fresh_read(tmp_path, DB) is None
    assert fresh_read(tmp_path, DA) == A and fresh_read(tmp_path, DB) == B
    assert store.read(DA, 1024) == A  # now from the pack


def test_a_batch_writes_each_pack_once_and_keeps_the_order_of_its_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    write_records = PackStore._write_records

    def counted(self: PackStore, path: str, records: bytes) -> None:
        writes.append(path)
        write_records(self, path, records)

    monkeypatch.setattr(PackStore, "_write_records", counted)
    store = PackStore(tmp_path, PackKind.LATEST)
    keys = [bytes_digest(b"repository %d" % n) for n in range(40)]
    with deferred_appends():
        for version in ("1.0.0", "2.0.0"):
            for key in keys:
                store.append(key, b'{"tags": ["%s"]}' % version.encode())
        assert writes == []
    assert sorted(writes) == sorted(set(writes))  # one write per pack
    assert len(writes) == len({key[7:9] for key in keys})
    assert all(fresh_read(tmp_path, key, PackKind.LATEST) == b'{"tags": ["2.0.0"]}' for key in keys)


def test_a_store_holding_flush_bytes_writes_before_the_batch_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packs, "FLUSH_BYTES", 150)
    store = PackStore(tmp_path, PackKind.BLOBS)
    with deferred_appends():
        store.append(DA, A)
        assert fresh_read(tmp_path, DA) is None
        store.append(DC, C)  # past 150 bytes of records: both written now
        assert fresh_read(tmp_path, DA) == A and fresh_read(tmp_path, DC) == C


def test_only_the_outermost_batch_writes_and_an_error_in_it_loses_nothing(
    tmp_path: Path,
) -> None:
    store = PackStore(tmp_path, PackKind.BLOBS)
    with pytest.raises(RuntimeError), deferred_appends():
        with deferred_appends():
            store.append(DA, A)
        assert fresh_read(tmp_path, DA) is None
        raise RuntimeError("a fetch failed")
    assert fresh_read(tmp_path, DA) == A


def test_appends_outside_a_batch_are_written_at_once(tmp_path: Path) -> None:
    PackStore(tmp_path, PackKind.BLOBS).append(DA, A)
    assert fresh_read(tmp_path, DA) == A


def test_a_store_that_cannot_write_fails_the_batch_after_the_others_are_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    broken = PackStore(tmp_path / "a-file" / "packs", PackKind.BLOBS)
    good = PackStore(tmp_path / "good", PackKind.BLOBS)
    with pytest.raises(OSError), deferred_appends():
        broken.append(DA, A)
        good.append(DB, B)
    assert fresh_read(tmp_path / "good", DB) == B
    assert broken.read(DA, 1024) is None  # not kept in memory past the failed write


def test_a_key_missing_from_an_unchanged_pack_costs_a_stat_not_an_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, later = [d for d in (b"%d" % n for n in range(5000)) if bytes_digest(d)[7:9] == "00"][:2]
    store = PackStore(tmp_path, PackKind.BLOBS)
    store.append(bytes_digest(first), first)
    assert store.read(bytes_digest(later), 64) is None  # indexes the pack
    opened: list[str] = []
    real_open = os.open

    def counted(path: str, *args: int, **kwargs: int) -> int:
        opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counted)
    assert store.read(bytes_digest(later), 64) is None
    assert opened == []
    PackStore(tmp_path, PackKind.BLOBS).append(bytes_digest(later), later)  # the pack grew
    assert store.read(bytes_digest(later), 64) == later
