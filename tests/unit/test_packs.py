"""Packs of small cache entries: records, torn writes, concurrent appends, checksums."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from falcopkg.digests import bytes_digest
from falcopkg.errors import IntegrityError
from falcopkg.services.cache import BlobCache, prune_cache
from falcopkg.services.packs import MAGIC, PACKED_BLOB_LIMIT, PackStore, Records, parse_records


def record(data: bytes, digest: str | None = None) -> bytes:
    digest = digest or bytes_digest(data)
    return b"%s%s %d\n%s\n" % (MAGIC, digest.encode(), len(data), data)


A, B, C = b'{"a": 1}', b'{"b": 22}', b"x" * 100
FOUND_ALL = {bytes_digest(A), bytes_digest(B), bytes_digest(C)}


@pytest.mark.parametrize(
    ("pack", "found", "consumed"),
    [
        pytest.param(record(A) + record(B) + record(C), FOUND_ALL, "all", id="intact"),
        pytest.param(b"", set(), 0, id="empty"),
        # A record cut off at the end may still be being written: left for the next read.
        pytest.param(record(A) + record(B)[:-5], {bytes_digest(A)}, len(record(A)), id="tail"),
        pytest.param(record(A) + MAGIC[:3], {bytes_digest(A)}, len(record(A)), id="tail-magic"),
        # A torn record that later appends wrote over: skipped up to the next header.
        pytest.param(
            record(A)[:-4] + record(B) + record(C),
            {bytes_digest(B), bytes_digest(C)},
            "all",
            id="torn",
        ),
        pytest.param(b"garbage\n" + record(B), {bytes_digest(B)}, "all", id="garbage-first"),
        pytest.param(
            MAGIC + b"sha256:x notanumber\n" + record(C), {bytes_digest(C)}, "all", id="bad-length"
        ),
        pytest.param(MAGIC + b"\xff" * 300 + record(A), {bytes_digest(A)}, "all", id="no-newline"),
        # Record bytes that look like a header are data, not records.
        pytest.param(record(record(A)), {bytes_digest(record(A))}, "all", id="nested"),
    ],
)
def test_parse_records(pack: bytes, found: set[str], consumed: int | str) -> None:
    index: Records = {}
    used = parse_records(pack, 0, index)
    assert set(index) == found
    assert used == (len(pack) if consumed == "all" else consumed)
    for digest, places in index.items():
        for offset, length, checksum in places:
            assert checksum is None
            assert bytes_digest(pack[offset : offset + length]) == digest


def test_small_blobs_are_packed_and_read_back_verified(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    blobs = [f'{{"n": {n}}}'.encode() for n in range(300)]
    for data in blobs:
        cache.put_bytes(data, bytes_digest(data))
    assert not (tmp_path / "blobs").exists()  # no file per blob
    assert len(list((tmp_path / "packs" / "sha256").iterdir())) <= 256
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


def test_a_damaged_record_reads_as_missing_and_a_new_one_is_served(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    digest = bytes_digest(A)
    cache.put_bytes(A, digest)
    pack = next((tmp_path / "packs" / "sha256").iterdir())
    pack.write_bytes(pack.read_bytes().replace(b'"a"', b'"z"'))  # same length, wrong bytes
    assert PackStore(tmp_path / "packs").read(digest, 1024) is None
    cache.put_bytes(A, digest)  # fetched again: appended after the damaged record
    assert PackStore(tmp_path / "packs").read(digest, 1024) == A


def test_a_reader_sees_what_was_appended_after_it_indexed_the_pack(tmp_path: Path) -> None:
    reader, writer = PackStore(tmp_path / "packs"), PackStore(tmp_path / "packs")
    same_pack = [d for d in (f"{n}".encode() for n in range(5000)) if bytes_digest(d)[7:9] == "00"]
    writer.append(bytes_digest(same_pack[0]), same_pack[0])
    assert reader.read(bytes_digest(same_pack[0]), 64) == same_pack[0]
    writer.append(bytes_digest(same_pack[1]), same_pack[1])
    assert reader.read(bytes_digest(same_pack[1]), 64) == same_pack[1]
    # A pack replaced by another file (a clean, then new appends) is indexed anew.
    pack = tmp_path / "packs" / "sha256" / "00.pack"
    pack.unlink()
    writer.append(bytes_digest(same_pack[2]), same_pack[2])
    assert reader.read(bytes_digest(same_pack[0]), 64) is None
    assert reader.read(bytes_digest(same_pack[2]), 64) == same_pack[2]


def _append_many(root: str, worker: int) -> None:
    packs = PackStore(Path(root) / "packs")
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
    packs = PackStore(tmp_path / "packs")
    for worker in range(4):
        for n in range(200):
            data = f"worker {worker} blob {n} ".encode() * 40
            assert packs.read(bytes_digest(data), len(data)) == data


def test_prune_ages_a_pack_as_a_whole_and_a_read_refreshes_it(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    cache.put_bytes(A, bytes_digest(A))
    cache.put_bytes(B, bytes_digest(B))
    old = 1_000_000_000  # 2001
    for pack in (tmp_path / "packs" / "sha256").iterdir():
        os.utime(pack, (old, old))
    assert cache.read_bytes(bytes_digest(A), 1024) == A  # used: its pack is young again
    prune_cache(tmp_path, max_age_seconds=3600)
    assert BlobCache(tmp_path).read_bytes(bytes_digest(A), 1024) == A
    if bytes_digest(A)[7:9] != bytes_digest(B)[7:9]:
        assert BlobCache(tmp_path).read_bytes(bytes_digest(B), 1024) is None


def test_a_record_about_a_digest_is_checked_against_its_own_checksum(tmp_path: Path) -> None:
    store = PackStore(tmp_path)
    key = bytes_digest(b"the root manifest")
    store.append(key, b'{"format": 1}', content_addressed=False)
    store.append(key, b'{"format": 1, "newer": true}', content_addressed=False)
    assert store.read(key, 1024) == b'{"format": 1, "newer": true}'  # the newest wins
    pack = next((tmp_path / "sha256").iterdir())
    pack.write_bytes(pack.read_bytes().replace(b"true", b"null"))  # damage the newest
    assert PackStore(tmp_path).read(key, 1024) == b'{"format": 1}'
    # A checksum field that names no known algorithm reads as damaged, not as an error.
    pack.write_bytes(pack.read_bytes().replace(b" sha256:", b" md5:"))
    assert PackStore(tmp_path).read(key, 1024) is None
