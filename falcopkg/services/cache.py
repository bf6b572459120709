"""The content-addressed blob cache (SPEC §8), shared by every project of a user.

Layout: ``<cache>/blobs/sha256/<hex>`` holds verified content only. Entries are written to
a temporary file in ``<cache>/tmp`` and renamed into place after their digest was checked,
so concurrent processes can fill the cache at once: the last rename wins with identical
bytes, and a reader never sees a partial entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from falcopkg.errors import IntegrityError

CHUNK_SIZE = 1024 * 1024


def split_digest(digest: str) -> tuple[str, str]:
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm not in ("sha256", "sha512") or not hex_digest:
        raise IntegrityError(f"unsupported digest {digest!r}")
    return algorithm, hex_digest


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    hasher = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            hasher.update(chunk)
    return f"{algorithm}:{hasher.hexdigest()}"


def bytes_digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class BlobCache:
    """Verified blobs by digest. Paths returned by this class are complete, checked content."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        algorithm, hex_digest = split_digest(digest)
        return self.root / "blobs" / algorithm / hex_digest

    def has(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def get_bytes(self, digest: str) -> bytes | None:
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            return None

    def temp_path(self) -> Path:
        """A fresh temporary file name on the cache's filesystem (for streaming downloads)."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="blob-", suffix=".part", dir=tmp_dir)
        os.close(fd)
        return Path(name)

    def put_bytes(self, digest: str, data: bytes) -> Path:
        """Store ``data`` under ``digest`` after checking it; IntegrityError on mismatch."""
        algorithm, _ = split_digest(digest)
        actual = bytes_digest(data, algorithm)
        if actual != digest:
            raise IntegrityError(f"content does not match digest {digest} (got {actual})")
        tmp = self.temp_path()
        try:
            tmp.write_bytes(data)
            return self._commit(tmp, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def adopt(self, tmp: Path, digest: str, *, verified: bool = False) -> Path:
        """Move a downloaded temporary file into the cache, verifying it unless ``verified``.

        On a mismatch the temporary file is deleted, so no bad copy is ever kept.
        """
        try:
            if not verified:
                algorithm, _ = split_digest(digest)
                actual = file_digest(tmp, algorithm)
                if actual != digest:
                    raise IntegrityError(f"content does not match digest {digest} (got {actual})")
            return self._commit(tmp, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _commit(self, tmp: Path, digest: str) -> Path:
        target = self.path_for(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        return target

    def digests(self) -> Iterable[str]:
        blobs = self.root / "blobs"
        if not blobs.is_dir():
            return
        for algorithm_dir in sorted(blobs.iterdir()):
            for entry in sorted(algorithm_dir.iterdir()):
                yield f"{algorithm_dir.name}:{entry.name}"
