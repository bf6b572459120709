"""Digests: parse, compute, compare (sha256/sha512). The one low module oci/, artifact/ and
services/ share, so none of them imports another for a hash."""

from __future__ import annotations

import hashlib
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


def check_digest(actual: str, expected: str, what: str, hint: str | None = None) -> None:
    """IntegrityError naming ``what`` and both digests unless ``actual`` is ``expected``."""
    if actual != expected:
        raise IntegrityError(
            f"{what} does not match its digest {expected} (got {actual})", hint=hint
        )
