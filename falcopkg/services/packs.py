"""Small cache entries keyed by digest, kept in 256 append-only pack files per directory.

A cold lock of 1000 artifacts reads 4,500 manifests and configs of a few hundred bytes
each and writes a metadata record per root; a file per entry is an inode per entry, and on
a filesystem that scans for recently deleted inodes on every allocation (ext4 without a
journal) those creations cost more than the requests. Here an entry is one record appended
to ``<directory>/<alg>/<first two hex digits of its key>.pack``::

    FPKB1 <key digest> <length>[ <checksum digest>]\\n<bytes>\\n

A blob's key is its own digest (content-addressed, no checksum field); a record about a
digest (what `lock` read of a root manifest) carries the digest of its own bytes.

Appends are one ``write`` with ``O_APPEND``, so concurrent processes never interleave
records on a local filesystem; nothing is ever rewritten in place. A reader trusts nothing
it reads: an entry is served only when its bytes hash to its key (or its checksum), and a
torn or damaged record (a power cut, a full disk) is skipped by looking for the next record
header, so the worst a damaged pack can do is make an entry look missing (it is fetched and
appended again; for the same key the newest intact record wins). ``cache prune`` ages a
pack as a whole: a read refreshes its mtime.

Each process keeps an index of the packs it read (offsets by digest) and, because packs
only grow, reads just what was appended since when a pack's size changed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from falcopkg.digests import bytes_digest, split_digest
from falcopkg.errors import IntegrityError

# Blobs up to this size go into packs; larger ones (a rare big manifest) stay files.
PACKED_BLOB_LIMIT = 256 * 1024
MAGIC = b"FPKB1 "
_MAX_HEADER = 300  # "FPKB1 sha512:<128 hex> <digits> sha512:<128 hex>" fits

# digest -> [(offset, length, checksum or None)], oldest record first
Records = dict[str, list[tuple[int, int, str | None]]]


class _PackIndex:
    """What one process knows of one pack file: where each key's records are."""

    __slots__ = ("identity", "records", "size")

    def __init__(self, identity: tuple[int, int]) -> None:
        self.identity = identity  # (st_dev, st_ino): a pack replaced by another is read anew
        self.size = 0  # bytes of the pack indexed so far
        self.records: Records = {}


class PackStore:
    """The packs under ``directory``; thread-safe. Use :func:`packs_in` to share one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._indexes: dict[str, _PackIndex] = {}

    def _pack_path(self, key: str) -> str:
        algorithm, hex_digest = split_digest(key)
        return f"{self.directory}/{algorithm}/{hex_digest[:2]}.pack"

    def read(self, key: str, max_size: int) -> bytes | None:
        """The newest intact entry of ``key`` (a digest), or None when there is none."""
        path = self._pack_path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            with self._lock:
                index = self._refresh(path, fd)
                candidates = list(index.records.get(key, ()))
            for offset, length, checksum in reversed(candidates):
                if length > max_size:
                    continue
                data = os.pread(fd, length, offset)
                if len(data) == length and _hashes_to(data, checksum or key):
                    with contextlib.suppress(OSError):
                        os.utime(fd)  # used: `cache prune` keeps this pack
                    return data
        except OSError:
            return None
        finally:
            os.close(fd)
        return None

    def append(self, key: str, data: bytes, *, content_addressed: bool = True) -> None:
        """Append an entry of ``data`` under ``key``: a blob already verified against its
        digest ``key``, or (``content_addressed=False``) a record about ``key``."""
        checksum = b"" if content_addressed else b" " + bytes_digest(data).encode("ascii")
        header = b"%s%s %d%s\n" % (MAGIC, key.encode("ascii"), len(data), checksum)
        record = header + data + b"\n"
        path = self._pack_path(key)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, flags, 0o644)
        try:
            view = memoryview(record)
            while view:  # one write unless the disk is full; a torn record is skipped by readers
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def _refresh(self, path: str, fd: int) -> _PackIndex:
        """The index of the pack open at ``fd``, extended by what was appended since."""
        status = os.fstat(fd)
        identity = (status.st_dev, status.st_ino)
        index = self._indexes.get(path)
        if index is None or index.identity != identity or status.st_size < index.size:
            index = self._indexes[path] = _PackIndex(identity)
        if status.st_size > index.size:
            tail = os.pread(fd, status.st_size - index.size, index.size)
            index.size += parse_records(tail, index.size, index.records)
        return index


def _hashes_to(data: bytes, digest: str) -> bool:
    try:
        return bytes_digest(data, split_digest(digest)[0]) == digest
    except IntegrityError:  # a checksum field naming no algorithm we know: damaged
        return False


def parse_records(data: bytes, base: int, into: Records) -> int:
    """Index the records in ``data`` (found at offset ``base`` of its pack) into ``into``;
    how many bytes were consumed. A record cut off at the end is left for the next read (it
    may still be being written); a malformed one is skipped up to the next header."""
    position = 0
    end = len(data)
    while position < end:
        if not data.startswith(MAGIC, position):
            found = data.find(MAGIC, position + 1)
            if found < 0:
                # Keep a tail that may be the start of a header still being written.
                return max(position, end - len(MAGIC) + 1)
            position = found
            continue
        newline = data.find(b"\n", position, position + _MAX_HEADER)
        if newline < 0:
            if end - position < _MAX_HEADER:
                return position  # a header still being written
            position += 1  # no header is this long: look for the next one
            continue
        fields = data[position + len(MAGIC) : newline].split(b" ")
        length_text = fields[1] if len(fields) in (2, 3) else b""
        if not (length_text.isdigit() and length_text.isascii()):
            position += 1
            continue
        start = newline + 1
        stop = start + int(length_text)
        if stop + 1 > end:
            return position  # the rest of this record is not there (yet)
        if data[stop] != 0x0A:  # not followed by its newline: torn, and written over
            position += 1
            continue
        key = fields[0].decode("ascii", errors="replace")
        checksum = fields[2].decode("ascii", errors="replace") if len(fields) == 3 else None
        into.setdefault(key, []).append((base + start, stop - start, checksum))
        position = stop + 1
    return position


_SHARED: dict[Path, PackStore] = {}
_SHARED_LOCK = threading.Lock()


def packs_in(directory: Path) -> PackStore:
    """The one :class:`PackStore` of this process for ``directory``."""
    with _SHARED_LOCK:
        packs = _SHARED.get(directory)
        if packs is None:
            packs = _SHARED[directory] = PackStore(directory)
        return packs
