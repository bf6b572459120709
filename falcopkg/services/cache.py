"""The content-addressed blob cache (SPEC §8), shared by every project of a user.

Layout: ``<cache>/blobs/sha256/<hex>`` holds verified content only. Entries are written to
a temporary file in ``<cache>/tmp`` and renamed into place after their digest was checked,
so concurrent processes can fill the cache at once: the last rename wins with identical
bytes, and a reader never sees a partial entry. Small blobs that are only ever read whole
(manifests, configs: ``put_bytes``/``read_bytes``) are records in ``<cache>/packs``
instead, verified on every read (``services.packs``).

Other services keep their own subdirectories here (``metadata/``, ``indexes/``).
``clean_cache`` empties it all; ``prune_cache`` removes what was not used for a while
(see its docstring), ``cache_usage`` counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from falcopkg.digests import bytes_digest, check_digest, file_digest, split_digest

if TYPE_CHECKING:
    from falcopkg.services.packs import PackStore


def source_key(source: str) -> str:
    """A file-name-safe key for a cache entry of ``source`` (a URL, path or repository)."""
    # surrogateescape: a path with bytes that are not UTF-8 still has a key.
    return hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()


class BlobCache:
    """Verified blobs by digest. Paths returned by this class are complete, checked content."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs_dir = os.path.join(root, "blobs")
        self._packs: PackStore | None = None

    def path_for(self, digest: str) -> Path:
        return Path(self._blob_file(digest))

    def _blob_file(self, digest: str) -> str:
        # A string, not Path joins: a cold lock asks for thousands of blobs (most not there).
        algorithm, hex_digest = split_digest(digest)
        return f"{self._blobs_dir}/{algorithm}/{hex_digest}"

    @property
    def packs(self) -> PackStore:
        """The packs of small blobs (``put_bytes``/``read_bytes``)."""
        if self._packs is None:
            from falcopkg.services.packs import PackKind, packs_in

            self._packs = packs_in(self.root / "packs", PackKind.BLOBS)
        return self._packs

    def has(self, digest: str) -> bool:
        return os.path.isfile(self._blob_file(digest))

    def temp_path(self) -> Path:
        """A fresh temporary file name on the cache's filesystem (for streaming downloads)."""
        # Imported here: `artifact search` reads index keys from this module.
        from falcopkg.fsutil import make_temp_file

        fd, path = make_temp_file(self.root / "tmp", prefix="blob-", suffix=".part")
        os.close(fd)
        return path

    def adopt(self, tmp: Path, digest: str, *, verified: bool = False) -> Path:
        """Move a downloaded temporary file into the cache, verifying it unless ``verified``.

        On a mismatch the temporary file is deleted, so no bad copy is ever kept.
        """
        try:
            if not verified:
                algorithm, _ = split_digest(digest)
                check_digest(file_digest(tmp, algorithm), digest, "content")
            return self._commit(tmp, digest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def _commit(self, tmp: Path, digest: str) -> Path:
        from falcopkg.fsutil import replace_into

        target = self.path_for(digest)
        os.chmod(tmp, 0o644)
        replace_into(tmp, target)
        return target

    def lookup(self, digest: str) -> Path | None:
        """The cached blob's path, its age refreshed (``cache prune`` removes what was not
        used for a while), or None when it is not cached."""
        path = self._blob_file(digest)
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return None
        except (OSError, ValueError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return Path(path)

    def read_bytes(self, digest: str, max_size: int) -> bytes | None:
        """A small cached blob (a manifest, a config), verified again; None when it is not
        cached, too large or damaged (a damaged copy is removed)."""
        packed = self.packs.read(digest, max_size)
        if packed is not None:
            return packed
        path = self.lookup(digest)  # a large one, or one a falcopkg before packs wrote
        if path is None:
            return None
        try:
            with path.open("rb") as handle:
                data = handle.read(max_size + 1)
        except OSError:
            return None
        if len(data) > max_size:
            return None
        if bytes_digest(data, split_digest(digest)[0]) != digest:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return data

    def put_bytes(self, data: bytes, digest: str) -> None:
        """Keep ``data`` under ``digest`` (verified first, in memory) for ``read_bytes``:
        appended to a pack when it is small (services.packs), else a file of its own."""
        from falcopkg.services.packs import PACKED_BLOB_LIMIT

        check_digest(bytes_digest(data, split_digest(digest)[0]), digest, "content")
        if len(data) <= PACKED_BLOB_LIMIT:
            self.packs.append(digest, data)
            return
        from falcopkg.fsutil import atomic_write_bytes

        # Not fsynced: a cached blob is verified whenever it is read.
        target = self.path_for(digest)
        atomic_write_bytes(target, data, mode=0o644, temp_dir=self.root / "tmp", durable=False)


# --- maintenance: `falcopkg cache dir|clean|prune` ----------------------------------------

# Temporary downloads younger than this may belong to a running falcopkg: prune keeps them.
TEMP_GRACE_SECONDS = 3600.0
DEFAULT_MAX_AGE_SECONDS = 30 * 24 * 3600.0


@dataclass(frozen=True)
class CacheUsage:
    files: int = 0
    bytes: int = 0

    def __add__(self, other: CacheUsage) -> CacheUsage:
        return CacheUsage(self.files + other.files, self.bytes + other.bytes)


def cache_usage(root: Path) -> CacheUsage:
    """How many files and bytes are under ``root``."""
    usage = CacheUsage()
    for path in _files_under(root):
        with contextlib.suppress(OSError):
            usage += CacheUsage(1, path.lstat().st_size)
    return usage


def clean_cache(root: Path) -> CacheUsage:
    """Remove everything in the cache (blobs, metadata, indexes); returns what was removed.

    Safe while another falcopkg runs: it downloads again what it misses.
    """
    import shutil

    removed = cache_usage(root)
    if root.is_dir():
        for entry in root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
    return removed


def prune_cache(
    root: Path, *, max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS, now: float | None = None
) -> CacheUsage:
    """Remove what no sync used for ``max_age_seconds``, and leftovers of interrupted runs.

    There is no registry of the projects sharing a cache, so "unused" means "not read for a
    while": a sync touches each blob it installs from (mtime), a read of any entry of a pack
    touches the pack (services.packs), index entries are rewritten when refreshed.
    Temporary files and staging directories older than an hour are leftovers of killed
    processes.
    """
    current = time.time() if now is None else now
    removed = CacheUsage()
    tmp_dir = root / "tmp"
    if tmp_dir.is_dir():
        for entry in tmp_dir.iterdir():
            if _age(entry, current) > TEMP_GRACE_SECONDS:
                removed += _remove(entry)
    for path in _files_under(root, skip=tmp_dir):
        if _age(path, current) > max_age_seconds:
            removed += _remove(path)
    _remove_empty_directories(root)
    return removed


def _files_under(root: Path, skip: Path | None = None) -> Iterable[Path]:
    for directory, dirnames, filenames in os.walk(root):
        if skip is not None and Path(directory) == skip:
            dirnames[:] = []
            continue
        for name in filenames:
            yield Path(directory) / name


def _age(path: Path, now: float) -> float:
    try:
        return now - path.lstat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> CacheUsage:
    import shutil

    try:
        if path.is_dir() and not path.is_symlink():
            usage = cache_usage(path)
            shutil.rmtree(path)
            return usage
        size = path.lstat().st_size
        path.unlink()
        return CacheUsage(1, size)
    except OSError:
        return CacheUsage()


def _remove_empty_directories(root: Path) -> None:
    # The skeleton stays: a concurrent download may be about to rename a blob into it.
    skeleton = {root, root / "tmp", root / "blobs", *(root / "blobs").glob("*")}
    for directory, _, _ in sorted(os.walk(root), key=lambda item: -len(item[0])):
        if Path(directory) not in skeleton:
            with contextlib.suppress(OSError):
                os.rmdir(directory)  # only succeeds when empty
