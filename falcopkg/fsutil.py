"""Filesystem primitives that never leave a half-written file behind.

Every write of a user-visible file (falco.toml, falco.lock, credentials, state, cache
entries, installed files) goes through here: temporary file in the destination directory,
fsync, rename. Readers see the old or the new content, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, mode: int | None = None, temp_dir: Path | None = None, durable: bool = True
) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces ``path`` atomically when the block succeeds.

    On any exception the temporary file is removed and ``path`` is untouched.
    ``mode`` sets the permission bits (e.g. 0o600 for credentials) before the rename.
    ``temp_dir`` (same filesystem) holds the temporary file instead of ``path``'s directory,
    for directories whose every file is read (Falco's config.d loads dotfiles too).
    ``durable=False`` skips the fsync before the rename: for caches whose every reader
    treats a damaged or empty file as missing (a power cut may leave one behind).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.",
        suffix=".tmp",
        dir=temp_dir if temp_dir is not None else path.parent,
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(
    path: Path,
    data: bytes,
    *,
    mode: int | None = None,
    temp_dir: Path | None = None,
    durable: bool = True,
) -> None:
    with atomic_writer(path, mode=mode, temp_dir=temp_dir, durable=durable) as handle:
        handle.write(data)


def atomic_write_text(
    path: Path,
    text: str,
    *,
    mode: int | None = None,
    temp_dir: Path | None = None,
    durable: bool = True,
) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode, temp_dir=temp_dir, durable=durable)


def _read_umask() -> int:
    """The process umask, read without changing it where the kernel tells it (Linux 4.7+).

    The portable probe (set, then restore) briefly changes a process-wide setting: another
    thread creating a directory in that window would get mode 0777, so it is done once only.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


_UMASK = _read_umask()
