"""Safe, streaming extraction of artifact layers (SPEC §8).

A layer is a gzip tar. It is read once, as a stream: the gzip data is decompressed here
(so the bound counts the bytes that really come out, not what headers claim), its sha256
is checked against the layer digest at the end, and every regular file goes into a fresh
*staging directory* created next to the destination (same filesystem, so the caller can
rename each file into place atomically). Absolute paths, ``..``, links, devices, FIFOs,
sparse files, duplicate entries and archives expanding beyond the bound are refused with
an InstallError naming the artifact and the entry; on any error the staging directory is
removed, so nothing is written.

Use :func:`extract_layer` + rename (the installer does), or :func:`extract_into` for a
plain "unpack into this directory" (``registry pull -o DIR``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, NoReturn, Protocol

from falcopkg.digests import check_digest, split_digest
from falcopkg.errors import InstallError
from falcopkg.numbers import parse_ascii_int

# 256 KiB: as fast as larger chunks for zlib and sha256, and small enough that buffers are
# reused instead of freshly mapped (1 MiB chunks made extraction 40% slower).
CHUNK_SIZE = 256 * 1024
# Official layers are a few MiB; plugins tens. The bound stops decompression bombs.
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
MAX_BYTES_ENV = "FALCOPKG_MAX_UNPACKED_SIZE"
DEFAULT_MAX_FILES = 10_000
# Names an archive may not use at its top level (falcopkg's state directory).
RESERVED_NAMES = frozenset({".falcopkg"})
# pax/GNU long-name headers are read into memory by tarfile: keep them small.
_MAX_META_HEADER = 1024 * 1024
_META_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)


def default_max_bytes() -> int:
    """The unpacked-size bound: ``$FALCOPKG_MAX_UNPACKED_SIZE`` (bytes) or 1 GiB."""
    try:
        value = parse_ascii_int(os.environ.get(MAX_BYTES_ENV, "").strip(), MAX_BYTES_ENV)
    except ValueError:
        return DEFAULT_MAX_BYTES
    return value or DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class ExtractedFile:
    path: str  # normalized relative POSIX path inside the archive
    staged: Path  # the complete, fsynced file inside the staging directory
    sha256: str  # "sha256:<hex>" like every digest in falcopkg
    size: int
    mode: int


class ByteReader(Protocol):
    """Where compressed layer bytes come from: an open file, or a download being teed."""

    def read(self, size: int = -1, /) -> bytes: ...


class _TooLarge(Exception):
    pass


class _LayerStream:
    """Decompressed bytes of a gzip file, bounded, optionally hashing the compressed input.

    ``zlib.decompress(max_length=…)`` never inflates more than asked for, so a bomb costs
    at most ``limit`` bytes of work and one chunk of memory. Multi-member gzip is supported.
    """

    def __init__(self, raw: ByteReader, limit: int, *, hash_algorithm: str | None = None) -> None:
        self._raw = raw
        self._limit = limit
        self._decompressor = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._raw_done = False
        self.hasher = hashlib.new(hash_algorithm) if hash_algorithm else None
        self.total_out = 0

    def _read_raw(self) -> bytes:
        if self._raw_done:
            return b""
        chunk = self._raw.read(CHUNK_SIZE)
        if not chunk:
            self._raw_done = True
        elif self.hasher is not None:
            self.hasher.update(chunk)
        return chunk

    def read(self, size: int = -1) -> bytes:
        wanted = CHUNK_SIZE if size is None or size < 0 else size
        parts: list[bytes] = []
        got = 0
        while got < wanted:
            if self._decompressor.eof:
                tail = self._decompressor.unused_data or self._read_raw()
                if not tail:
                    break  # clean end of the last gzip member
                self._decompressor = zlib.decompressobj(wbits=31)
                self._pending = tail
            if not self._pending:
                self._pending = self._read_raw()
            data = self._decompressor.decompress(self._pending, wanted - got)
            self._pending = self._decompressor.unconsumed_tail
            if not data and not self._pending and self._raw_done and not self._decompressor.eof:
                raise EOFError("compressed data ends early (truncated gzip stream)")
            got += len(data)
            self.total_out += len(data)
            if self.total_out > self._limit:
                raise _TooLarge
            parts.append(data)
        return b"".join(parts)

    def drain(self) -> None:
        """Read to the end so that the digest covers every byte of the blob."""
        while self.read(CHUNK_SIZE):
            pass
        while self._read_raw():
            pass


@dataclass(frozen=True)
class _Entry:
    name: str  # as the archive spells it (pax and GNU long names applied)
    type: bytes
    size: int
    mode: int

    @property
    def is_regular(self) -> bool:
        return self.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


class _TarReader:
    """A sequential reader of ustar, GNU and pax archives from a :class:`_LayerStream`.

    tarfile's stream mode copies every block through its own buffer; this reader hands
    file data straight from the decompressor and uses tarfile only to parse 512-byte
    headers (``TarInfo.frombuf``, which checks the checksum). Extended headers (pax,
    GNU long names) are read into memory, so they are bounded.
    """

    def __init__(self, stream: _LayerStream) -> None:
        self._stream = stream
        self._skip = 0  # unread data and padding of the previous entry

    def entries(self) -> Iterator[_Entry]:
        while True:
            self._discard(self._skip)
            self._skip = 0
            header = self._stream.read(tarfile.BLOCKSIZE)
            if not header or header == tarfile.NUL * tarfile.BLOCKSIZE:
                return  # end of archive (the caller drains the rest)
            if len(header) < tarfile.BLOCKSIZE:
                raise tarfile.ReadError("unexpected end of data in a header")
            info = _parse_header(header)
            long_name: str | None = None
            pax: dict[str, str] = {}
            while info.type in _META_TYPES:
                if info.size > _MAX_META_HEADER:
                    raise tarfile.HeaderError(f"extended header of {info.size} bytes")
                data = self._exact(_padded(info.size))[: info.size]
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                elif info.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
                    pax.update(_pax_records(data))
                # Global pax headers and GNU long link names change nothing we accept.
                info = _parse_header(self._exact(tarfile.BLOCKSIZE))
            size = info.size
            if "size" in pax:
                try:
                    size = parse_ascii_int(pax["size"], "pax size")
                except ValueError as exc:
                    raise tarfile.HeaderError(str(exc)) from None
            name = pax.get("path") or long_name or info.name
            kind = info.type
            if kind == tarfile.AREGTYPE and name.endswith("/"):
                kind = tarfile.DIRTYPE
            carries_data = kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
            self._skip = _padded(size) if carries_data else 0
            yield _Entry(name, kind, size, info.mode)

    def read_data(self, size: int) -> Iterator[bytes]:
        """The data of the entry just yielded (``size`` bytes), in chunks."""
        remaining = size
        while remaining > 0:
            chunk = self._stream.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                raise tarfile.ReadError("unexpected end of data in a file")
            remaining -= len(chunk)
            self._skip -= len(chunk)
            yield chunk

    def _exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) < size:
            raise tarfile.ReadError("unexpected end of data in a header")
        return data

    def _discard(self, size: int) -> None:
        while size > 0:
            chunk = self._stream.read(min(CHUNK_SIZE, size))
            if not chunk:
                raise tarfile.ReadError("unexpected end of data")
            size -= len(chunk)


def _parse_header(block: bytes) -> tarfile.TarInfo:
    """One 512-byte header (checksum checked by tarfile); a negative size is refused too
    (GNU base-256 numbers can encode one)."""
    info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    if info.size < 0:
        raise tarfile.HeaderError(f"negative size {info.size} in a header")
    return info


def _padded(size: int) -> int:
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _pax_records(data: bytes) -> dict[str, str]:
    """``"LEN key=value\\n"`` records of a pax extended header."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        if data[position:].strip(b"\0") == b"":
            break
        space = data.find(b" ", position)
        try:
            end = position + parse_ascii_int(data[position:space], "pax record length")
        except ValueError:
            raise tarfile.HeaderError("malformed pax header") from None
        if space < 0 or end <= space:
            raise tarfile.HeaderError("malformed pax header")
        record = data[space + 1 : end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise tarfile.HeaderError("malformed pax header")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position = end
    return records


def new_staging_dir(parent: Path) -> Path:
    """A fresh directory under ``parent`` for :func:`extract_layer` (same filesystem)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="staging-", dir=parent))


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def extract_layer(
    archive: Path,
    artifact: str,
    staging_dir: Path,
    *,
    max_bytes: int | None = None,
    max_files: int = DEFAULT_MAX_FILES,
    expected_digest: str | None = None,
) -> list[ExtractedFile]:
    """Unpack the tar.gz ``archive`` into ``staging_dir`` (created if missing).

    Returns the regular files in archive order. With ``expected_digest`` the compressed
    bytes are checked too (IntegrityError on mismatch). On any error ``staging_dir`` is
    removed and the error names ``artifact`` and the offending entry.
    """
    with _open_raw(archive, artifact) as raw:
        return extract_stream(
            raw,
            artifact,
            staging_dir,
            max_bytes=max_bytes,
            max_files=max_files,
            expected_digest=expected_digest,
        )


def extract_stream(
    raw: ByteReader,
    artifact: str,
    staging_dir: Path,
    *,
    max_bytes: int | None = None,
    max_files: int = DEFAULT_MAX_FILES,
    expected_digest: str | None = None,
) -> list[ExtractedFile]:
    """:func:`extract_layer` from a readable of the compressed bytes (read to its end).

    A download can be extracted as it arrives (falcopkg.services.fetch tees it here): the
    reader then raises on the read that reaches the end if the bytes were not the expected
    ones, and the staging directory goes with the error.
    """
    limit = default_max_bytes() if max_bytes is None else max_bytes
    staging_dir.mkdir(parents=True, exist_ok=True)
    try:
        algorithm = split_digest(expected_digest)[0] if expected_digest else None
        stream = _LayerStream(raw, limit, hash_algorithm=algorithm)
        files = _extract_stream(stream, artifact, staging_dir, limit, max_files)
        if stream.hasher is not None and expected_digest:
            check_digest(
                f"{stream.hasher.name}:{stream.hasher.hexdigest()}",
                expected_digest,
                f"layer of {artifact}",
                "nothing was written; the cached copy is damaged: "
                "run `falcopkg cache clean` and retry",
            )
        return files
    except BaseException:
        remove_tree(staging_dir)
        raise


def list_layer(
    archive: Path,
    artifact: str,
    *,
    max_bytes: int | None = None,
    max_files: int = DEFAULT_MAX_FILES,
) -> list[str]:
    """The files a layer would install, after every safety check; nothing is written."""
    with _open_raw(archive, artifact) as raw:
        return [
            path for path, _ in scan_layer(raw, artifact, max_bytes=max_bytes, max_files=max_files)
        ]


def scan_layer(
    raw: ByteReader,
    artifact: str,
    *,
    keep: tuple[str, ...] = (),
    max_bytes: int | None = None,
    max_files: int = DEFAULT_MAX_FILES,
) -> list[tuple[str, bytes | None]]:
    """The files a layer would install (every safety check made), each with its contents
    when its name ends with one of ``keep`` (else None); nothing is written. Reads ``raw``
    to its end, so a download teed here is verified (`lock` reads rules YAML this way)."""
    limit = default_max_bytes() if max_bytes is None else max_bytes
    kept: dict[str, bytes] = {}
    stream = _LayerStream(raw, limit)
    files = _extract_stream(stream, artifact, None, limit, max_files, keep=(keep, kept))
    return [(f.path, kept.get(f.path)) for f in files]


def extract_into(
    archive: Path,
    artifact: str,
    destination: Path,
    *,
    max_bytes: int | None = None,
    max_files: int = DEFAULT_MAX_FILES,
    expected_digest: str | None = None,
) -> list[ExtractedFile]:
    """Unpack ``archive`` into ``destination``: all files or none, each renamed into place.

    Existing files at the same paths are replaced atomically; other files are untouched.
    A path whose parent exists as a file, or that exists as a directory or symlink, is an
    InstallError before anything is renamed. Returned ``staged`` paths are the final ones.
    """
    destination.mkdir(parents=True, exist_ok=True)
    staging = new_staging_dir(destination)
    try:
        files = extract_layer(
            archive,
            artifact,
            staging,
            max_bytes=max_bytes,
            max_files=max_files,
            expected_digest=expected_digest,
        )
        targets = [(f, destination.joinpath(*PurePosixPath(f.path).parts)) for f in files]
        for extracted, target in targets:
            check_target(destination, target, artifact, extracted.path)
        placed: list[ExtractedFile] = []
        for extracted, target in targets:
            place_file(extracted.staged, target, destination)
            placed.append(
                ExtractedFile(
                    extracted.path, target, extracted.sha256, extracted.size, extracted.mode
                )
            )
        fsync_directory(destination)
        return placed
    finally:
        remove_tree(staging)


def check_target(root: Path, target: Path, artifact: str, entry: str) -> None:
    """Refuse a destination that is not a plain file path inside ``root``."""
    if target.is_symlink() or (target.exists() and not target.is_file()):
        _refuse(artifact, entry, f"would replace {target}, which is not a regular file")
    parent = target.parent
    while parent != root and not parent.exists():
        parent = parent.parent
    if parent != root and (parent.is_symlink() or not parent.is_dir()):
        _refuse(artifact, entry, f"would be written below {parent}, which is not a directory")


def place_file(staged: Path, target: Path, root: Path) -> None:
    """Rename a staged file into place, creating missing parent directories under ``root``."""
    if target.parent != root:
        target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)


def fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable (best effort where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- internals --------------------------------------------------------------------------


@contextlib.contextmanager
def _open_raw(archive: Path, artifact: str) -> Iterator[BinaryIO]:
    try:
        handle = archive.open("rb")
    except OSError as exc:
        raise InstallError(
            f"cannot read the layer of {artifact} at {archive}: {exc.strerror or exc}",
            hint="run `falcopkg sync` again to fetch it",
        ) from None
    with handle:
        yield handle


def _extract_stream(
    stream: _LayerStream,
    artifact: str,
    staging: Path | None,
    limit: int,
    max_files: int,
    *,
    keep: tuple[tuple[str, ...], dict[str, bytes]] | None = None,
) -> list[ExtractedFile]:
    """Check every entry and write regular files under ``staging`` (None: only check;
    ``keep`` = (suffixes, into): the contents of files with those suffixes go into ``into``)."""
    files: list[ExtractedFile] = []
    seen: set[str] = set()
    parent_dirs: set[str] = set()  # directories implied by the files seen so far
    budget = limit
    entries = 0
    try:
        reader = _TarReader(stream)
        for entry in reader.entries():
            entries += 1
            if entries > max_files:
                raise InstallError(
                    f"archive of {artifact} has more than {max_files} entries; nothing was written",
                    hint="this is not a normal Falco artifact; check where it comes from",
                )
            name = _checked_name(entry, artifact)
            if entry.type == tarfile.DIRTYPE:
                continue
            if entry.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                _refuse(artifact, entry.name, "is a link")
            if not entry.is_regular:
                _refuse(artifact, entry.name, "is a device, FIFO or other special file")
            if name in seen:
                _refuse(artifact, entry.name, "appears twice in the archive")
            parents = {"/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)}
            if name in parent_dirs or parents & seen:
                _refuse(artifact, entry.name, "conflicts with another entry of the archive")
            seen.add(name)
            parent_dirs |= parents
            if entry.size > budget:
                raise _TooLarge
            budget -= entry.size
            files.append(_write_member(reader, entry, name, artifact, staging, keep))
        stream.drain()
        if staging is not None:
            # Only now that every entry passed: an archive refused at its last entry (too
            # many files, too large, unsafe) costs no fsync of what was staged before it.
            _fsync_files(files, artifact, staging)
    except _TooLarge:
        raise InstallError(
            f"archive of {artifact} expands beyond {limit} bytes; nothing was written",
            hint=f"this is not a normal Falco artifact; if it is legitimate, raise the bound "
            f"with {MAX_BYTES_ENV}=BYTES",
        ) from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise InstallError(
            f"layer of {artifact} is not a valid tar.gz archive ({exc}); nothing was written",
            hint="the artifact is broken; ask its publisher, or check the registry",
        ) from None
    return files


def _checked_name(info: _Entry, artifact: str) -> str:
    raw = info.name
    if "\x00" in raw:
        _refuse(artifact, raw, "has a NUL byte in its name")
    if raw.startswith("/"):
        _refuse(artifact, raw, "has an absolute path")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if ".." in parts:
        _refuse(artifact, raw, "escapes the destination with '..'")
    if not parts:
        if info.type == tarfile.DIRTYPE:
            return ""  # "./" itself
        _refuse(artifact, raw, "has an empty name")
    if parts[0] in RESERVED_NAMES:
        _refuse(artifact, raw, f"uses the reserved name {parts[0]}")
    return "/".join(parts)


def _write_member(
    reader: _TarReader,
    entry: _Entry,
    name: str,
    artifact: str,
    staging: Path | None,
    keep: tuple[tuple[str, ...], dict[str, bytes]] | None = None,
) -> ExtractedFile:
    mode = 0o755 if entry.mode & 0o111 else 0o644
    if staging is None:
        # Only listed (or kept in memory): no file, so no digest of it either ("").
        parts: list[bytes] | None = [] if keep and name.endswith(keep[0]) else None
        for chunk in reader.read_data(entry.size):
            if parts is not None:
                parts.append(chunk)
        if keep is not None and parts is not None:
            keep[1][name] = b"".join(parts)
        return ExtractedFile(name, Path(name), "", entry.size, mode)
    hasher = hashlib.sha256()
    target = staging.joinpath(*name.split("/"))
    try:
        if target.parent != staging:
            target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as out:
            for chunk in reader.read_data(entry.size):
                hasher.update(chunk)
                out.write(chunk)
        os.chmod(target, mode)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        _refuse(artifact, entry.name, "conflicts with another entry of the archive")
    except OSError as exc:
        raise InstallError(
            f"cannot write files of {artifact} into {staging.parent}: {exc.strerror or exc}",
            hint="check that the directory is writable and the disk has room",
        ) from None
    return ExtractedFile(name, target, f"sha256:{hasher.hexdigest()}", entry.size, mode)


def _fsync_files(files: list[ExtractedFile], artifact: str, staging: Path) -> None:
    try:
        for item in files:
            fd = os.open(item.staged, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise InstallError(
            f"cannot write files of {artifact} into {staging.parent}: {exc.strerror or exc}",
            hint="check that the directory is writable and the disk has room",
        ) from None


def _refuse(artifact: str, entry: str, why: str) -> NoReturn:
    raise InstallError(
        f"refusing to install {artifact}: archive entry {entry!r} {why}; nothing was written",
        hint="this artifact is unsafe to install; check where it comes from",
    )
