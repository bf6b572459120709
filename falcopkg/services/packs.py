"""Small cache entries keyed by digest, kept in 256 append-only pack files per directory.

A cold lock of 1000 artifacts reads 4,500 manifests and configs of a few hundred bytes
each and writes a metadata record per root; a file per entry is an inode per entry, and on
a filesystem that scans for recently deleted inodes on every allocation (ext4 without a
journal) those creations cost more than the requests. Here an entry is one record appended
to ``<directory>/<alg>/<first two hex digits of its key>.pack``, after the pack's own
first line (``FPKB1-PACK <random hex>``, written with the file, which is created whole)::

    \\nFPKB1 <key digest> <length>[ <checksum digest>]\\n<bytes>\\n

(the newline first keeps a header at the start of a line even after a torn record: stores
of JSON records, which never hold a raw newline, look for headers only there)

Three kinds of store (:class:`PackKind`): blobs, whose key is the digest of their bytes
(no checksum field, and one is never accepted); records about an immutable digest (what
`lock` read of a root manifest), which carry the digest of their own bytes; and records
whose newest version is the only true one (a repository's tag list): there a damaged or
torn newest record makes the key missing rather than an older record current.

An append is one ``write`` with ``O_APPEND`` (a short write is an error, never continued),
so concurrent processes do not interleave records on a local filesystem. A reader trusts
nothing it reads: every header anywhere in the pack is a candidate (a torn record cannot
hide the ones after it, and a header inside another entry's bytes is only a candidate),
and an entry is served only when its bytes hash to its key (blobs) or to its checksum
(records). The worst a damaged pack does is make entries look missing: they are fetched
and appended again. ``cache prune`` ages a pack as a whole (a read refreshes its mtime);
a pack only grows (a changed tag list, an entry fetched again) until `cache clean`.

Each process keeps an index of the packs it read and, since packs only grow, parses just
what was appended since; a pack replaced by a new file (a clean, then new appends) has
another first line and is indexed anew. A key its index does not have, in a pack whose
inode and size are as when it was parsed, is missing after one ``stat``.

Inside :func:`deferred_appends` (a batch of parallel fetches) appends wait in memory, each
served to lookups from there, and go to disk pack by pack, one ``write`` per pack, when the
batch ends or a store holds ``FLUSH_BYTES`` of them: a cold lock's 5,000 records cost a few
hundred writes instead of 15,000 system calls, each a GIL hand-off among the fetch threads.
Another process sees them only then, which for a cache means at most a fetch it could have
saved; a process killed meanwhile loses them the same way.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

from falcopkg.digests import bytes_digest, split_digest
from falcopkg.errors import IntegrityError

# Blobs up to this size go into packs; larger ones (a rare big manifest) stay files.
PACKED_BLOB_LIMIT = 256 * 1024
# A record (a root's platforms and its layers' file lists, a tag list of up to 100,000 tags)
# is below this.
MAX_RECORD_SIZE = 64 * 1024 * 1024
MAGIC = b"FPKB1 "
PACK_MARK = b"FPKB1-PACK "
_ID_LINE = len(PACK_MARK) + 32 + 1  # the mark, 16 random bytes in hex, a newline
_MAX_HEADER = 300  # "FPKB1 sha512:<128 hex> <digits> sha512:<128 hex>" fits
# A store holding this much in deferred appends writes them out before the batch ends.
FLUSH_BYTES = 4 * 1024 * 1024

# key -> [(offset, length, checksum or None)]
Records = dict[str, list[tuple[int, int, str | None]]]


class PackKind(enum.Enum):
    BLOBS = "blobs"  # content-addressed: the bytes hash to the key
    RECORDS = "records"  # about an immutable key: any intact record is as good as another
    LATEST = "latest"  # mutable: only the newest record counts


class _PackIndex:
    """What one process knows of one pack file: where each key's records are."""

    __slots__ = ("file_size", "identity", "inode", "records", "seen", "size", "used")

    def __init__(self, identity: bytes, inode: int) -> None:
        self.identity = identity  # the pack's first line: another file has another
        self.inode = inode  # with file_size, what a stat compares to skip opening the pack
        self.size = 0  # bytes of the pack parsed for good
        self.file_size = 0  # the pack's size when it was last parsed
        self.records: Records = {}
        self.seen: set[int] = set()  # offsets indexed (a tail parsed again adds nothing)
        self.used = False  # an entry was read (and the pack's mtime refreshed) by this process


class PackStore:
    """The packs under ``directory``; thread-safe. Use :func:`packs_in` to share one."""

    def __init__(self, directory: Path, kind: PackKind) -> None:
        self.directory = directory
        self.kind = kind
        self.max_entry = PACKED_BLOB_LIMIT if kind is PackKind.BLOBS else MAX_RECORD_SIZE
        self._lock = threading.Lock()  # the indexes and the pending appends
        self._write_lock = threading.Lock()  # one writer at a time: a pack keeps their order
        self._indexes: dict[str, _PackIndex] = {}
        # Appends not written yet, in order: (pack path, key, record, number); the newest
        # data of each key among them (and its number), for lookups; their size.
        self._pending: list[tuple[str, str, bytes, int]] = []
        self._pending_data: dict[str, tuple[bytes, int]] = {}
        self._pending_size = 0
        self._appended = 0

    def _pack_path(self, key: str) -> str:
        algorithm, hex_digest = split_digest(key)
        return f"{self.directory}/{algorithm}/{hex_digest[:2]}.pack"

    def read(self, key: str, max_size: int) -> bytes | None:
        """The entry of ``key`` (a digest), verified; None when there is no intact one."""
        return self.lookup(key, max_size)[1]

    def lookup(self, key: str, max_size: int) -> tuple[bool, bytes | None]:
        """Whether the packs hold any record of ``key`` at all, and its verified entry."""
        path = self._pack_path(key)
        with self._lock:
            pending = self._pending_data.get(key)
            index = self._indexes.get(path)
        if pending is not None:
            return True, pending[0] if len(pending[0]) <= max_size else None
        if index is not None and key not in index.records and self._unchanged(path, index):
            return False, None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False, None
        try:
            with self._lock:
                index = self._refresh(path, fd)
                candidates = sorted(index.records.get(key, ()), reverse=True)  # newest first
            for offset, length, checksum in candidates:
                data = self._verified(fd, key, offset, length, checksum, max_size)
                if data is not None:
                    if not index.used:  # once per process: `cache prune` keeps this pack
                        index.used = True
                        with contextlib.suppress(OSError):
                            os.utime(fd)
                    return True, data
                if self.kind is PackKind.LATEST:
                    break  # the newest is damaged: an older one is not current
        except OSError:
            return False, None
        finally:
            os.close(fd)
        return bool(candidates), None

    @staticmethod
    def _unchanged(path: str, index: _PackIndex) -> bool:
        """Whether the pack at ``path`` is the file ``index`` parsed, with nothing appended
        since. (A pack replaced by one of the same inode and size only makes a key look
        missing: it is fetched and appended again.)"""
        try:
            status = os.stat(path)
        except OSError:
            return False
        return status.st_ino == index.inode and status.st_size == index.file_size

    def _verified(
        self, fd: int, key: str, offset: int, length: int, checksum: str | None, max_size: int
    ) -> bytes | None:
        if length > max_size:
            return None
        if (checksum is None) != (self.kind is PackKind.BLOBS):
            return None  # a record of the wrong form for this store: not ours, or damaged
        data = os.pread(fd, length, offset)
        if len(data) != length or not _hashes_to(data, checksum or key):
            return None
        return data

    def append(self, key: str, data: bytes) -> None:
        """Append an entry of ``data`` under ``key`` (a blob already verified against its
        digest ``key``, or a record about ``key``); one too large for a pack is not kept."""
        if len(data) > self.max_entry:
            return
        checksum = b"" if self.kind is PackKind.BLOBS else b" " + bytes_digest(data).encode()
        # A newline first: after a torn record, the header still starts a line (record
        # stores look for headers only there: their JSON never holds a raw newline).
        record = b"\n%s%s %d%s\n%s\n" % (MAGIC, key.encode("ascii"), len(data), checksum, data)
        with _DEFERRAL.lock:  # so that a batch ending meanwhile writes this one out too
            with self._lock:
                self._appended += 1
                self._pending.append((self._pack_path(key), key, record, self._appended))
                self._pending_data[key] = (data, self._appended)
                self._pending_size += len(record)
                full = self._pending_size >= FLUSH_BYTES
            if _DEFERRAL.depth and not full:
                _DEFERRAL.stores.add(self)
                return
        self.flush()

    def flush(self) -> None:
        """Write the pending appends: all of a pack's in one ``write``, in their order."""
        with self._write_lock:
            with self._lock:
                pending, self._pending, self._pending_size = self._pending, [], 0
            by_pack: dict[str, list[bytes]] = {}
            for path, _key, record, _number in pending:
                by_pack.setdefault(path, []).append(record)
            try:
                for path, records in by_pack.items():
                    self._write_records(path, b"".join(records))
            finally:
                with self._lock:  # written, or failed (a cache misses it): read from disk now
                    for _path, key, _record, number in pending:
                        if self._pending_data.get(key, (b"", 0))[1] == number:
                            del self._pending_data[key]

    def _write_records(self, path: str, records: bytes) -> None:
        fd = self._open_for_append(path)
        try:
            # One write or an error: the rest of a short write could land after another
            # process's record. What was written is a torn record, which readers skip.
            if os.write(fd, records) != len(records):
                raise OSError(errno.ENOSPC, f"could not append to {path}: disk full?")
        finally:
            os.close(fd)

    def _open_for_append(self, path: str) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        for _ in range(3):  # a `cache clean` may remove the directory meanwhile
            try:
                return os.open(path, flags)
            except FileNotFoundError:
                with contextlib.suppress(FileNotFoundError):
                    _create_pack(path)
        return os.open(path, flags)

    def _refresh(self, path: str, fd: int) -> _PackIndex:
        """The index of the pack open at ``fd``, extended by what was appended since."""
        status = os.fstat(fd)
        size = status.st_size
        identity = os.pread(fd, _ID_LINE, 0)
        index = self._indexes.get(path)
        if index is None or index.identity != identity or size < index.size:
            index = self._indexes[path] = _PackIndex(identity, status.st_ino)
            if identity.startswith(PACK_MARK) and identity.endswith(b"\n"):
                index.size = len(identity) - 1  # from its newline: a header starts a line
        index.inode = status.st_ino
        if size != index.file_size and size > index.size:
            tail = os.pread(fd, size - index.size, index.size)
            lines_only = self.kind is not PackKind.BLOBS
            index.size += parse_records(
                tail, index.size, index.records, index.seen, self.max_entry, lines_only
            )
            index.file_size = size
        return index


class _Deferral:
    """Whether appends wait (``depth``: batches under way) and the stores holding some."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.stores: set[PackStore] = set()


_DEFERRAL = _Deferral()


@contextlib.contextmanager
def deferred_appends() -> Iterator[None]:
    """Appends inside wait in memory (see the module's docstring) and are written when
    the outermost such batch ends, in whichever thread."""
    with _DEFERRAL.lock:
        _DEFERRAL.depth += 1
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):  # the error under way says more
            _end_deferral()
        raise
    _end_deferral()


def _end_deferral() -> None:
    with _DEFERRAL.lock:
        _DEFERRAL.depth -= 1
        stores = list(_DEFERRAL.stores) if _DEFERRAL.depth == 0 else []
        if stores:
            _DEFERRAL.stores.clear()
    failed: OSError | None = None
    for store in stores:
        try:
            store.flush()
        except OSError as exc:  # the others are written all the same
            failed = failed or exc
    if failed is not None:
        raise failed


def _create_pack(path: str) -> None:
    """Make the pack at ``path``, whole with its first line, unless one is there."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    identity = PACK_MARK + secrets.token_hex(16).encode("ascii") + b"\n"
    temporary = f"{path}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        try:
            if os.write(fd, identity) != len(identity):
                raise OSError(errno.ENOSPC, f"could not write {temporary}: disk full?")
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # fails if another process made it first: theirs is used
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: made in place, first line first
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                try:
                    os.write(fd, identity)
                finally:
                    os.close(fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _hashes_to(data: bytes, digest: str) -> bool:
    try:
        return bytes_digest(data, split_digest(digest)[0]) == digest
    except IntegrityError:  # a checksum field naming no algorithm we know: damaged
        return False


def _header(line: bytes) -> tuple[str, int, str | None] | None:
    fields = line.split(b" ")
    if len(fields) not in (2, 3) or not (fields[1].isdigit() and fields[1].isascii()):
        return None
    try:
        key = fields[0].decode("ascii")
        checksum = fields[2].decode("ascii") if len(fields) == 3 else None
    except UnicodeDecodeError:
        return None
    return key, int(fields[1]), checksum


def parse_records(
    data: bytes,
    base: int,
    into: Records,
    seen: set[int],
    max_entry: int,
    lines_only: bool = False,
) -> int:
    """Index the records in ``data`` (found at offset ``base`` of its pack) into ``into``;
    how many bytes need not be parsed again.

    Every header is a candidate, also one inside another record's bytes: reading verifies
    each entry, so a false candidate is never served, and a record torn by a power cut or a
    full disk cannot hide the records appended after it. ``lines_only``: only a header at
    the start of a line counts (stores of JSON records, which hold no raw newline). A
    record whose bytes are not all there may still be being written: while no complete
    record follows it, it is parsed again next time; once one does, it is indexed like any
    other (and fails its check when read).
    """
    end = len(data)
    hold: int | None = None  # the first record that may still be being written
    unfinished: list[tuple[str, tuple[int, int, str | None]]] = []
    position = data.find(MAGIC)
    while position >= 0:
        following = data.find(MAGIC, position + 1)
        if lines_only and (position == 0 or data[position - 1] != 0x0A):
            position = following
            continue
        newline = data.find(b"\n", position, position + _MAX_HEADER)
        header = _header(data[position + len(MAGIC) : newline]) if newline >= 0 else None
        if newline < 0 and end - position < _MAX_HEADER and hold is None:
            hold = position  # a header still being written
        if header is not None and header[1] <= max_entry:
            key, length, checksum = header
            start = newline + 1
            entry = (base + start, length, checksum)
            if start + length < end:  # all there (its check says whether it is intact)
                _add(into, seen, key, entry)
                for torn in unfinished:  # a complete record after them: torn for good
                    _add(into, seen, *torn)
                unfinished.clear()
                hold = None
            else:
                unfinished.append((key, entry))
                hold = position if hold is None else hold
        position = following
    if hold is None:  # all parsed, but for an end that may be the start of a header
        cuts = (cut for cut in range(len(MAGIC) - 1, 0, -1) if data.endswith(MAGIC[:cut]))
        hold = end - next(cuts, 0)
    # Record stores parse on from the newline before the next header: it starts a line.
    return max(0, hold - 1) if lines_only else hold


def _add(into: Records, seen: set[int], key: str, entry: tuple[int, int, str | None]) -> None:
    if entry[0] not in seen:
        seen.add(entry[0])
        into.setdefault(key, []).append(entry)


_SHARED: dict[Path, PackStore] = {}
_SHARED_LOCK = threading.Lock()


def packs_in(directory: Path, kind: PackKind) -> PackStore:
    """The one :class:`PackStore` of this process for ``directory``."""
    with _SHARED_LOCK:
        packs = _SHARED.get(directory)
        if packs is None:
            packs = _SHARED[directory] = PackStore(directory, kind)
        return packs
