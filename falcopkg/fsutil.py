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

# A buffer size given explicitly: io.open asks the kernel whether the file is a terminal
# (an ioctl) when left to choose, and a cold lock writes thousands of files.
_WRITE_BUFFER = 64 * 1024


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
    Missing directories are made (when a system call says they are missing, so a write
    into an existing directory costs no mkdir).
    """
    directory = temp_dir if temp_dir is not None else path.parent
    fd, tmp = make_temp_file(directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb", buffering=_WRITE_BUFFER) as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if mode is None:
            try:
                mode = os.stat(path).st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        replace_into(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def make_temp_file(directory: Path, *, prefix: str, suffix: str) -> tuple[int, Path]:
    """``tempfile.mkstemp`` in ``directory``, made if it is missing (tried first, so a file in
    an existing directory costs no mkdir): the open descriptor and the path."""
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    except FileNotFoundError:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    return fd, Path(name)


def replace_into(source: Path, target: Path) -> None:
    """``os.replace(source, target)``, making ``target``'s directory if it is missing."""
    try:
        os.replace(source, target)
    except FileNotFoundError:
        if not os.path.lexists(source):
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


# Linux reads at most 2 GiB per call: larger files are read in a loop.
_ONE_READ_LIMIT = 1 << 30


def read_file(path: Path | str) -> bytes:
    """The bytes of ``path`` in four system calls (open, fstat, read, close) where
    ``Path.read_bytes`` makes up to eight: the lock reads thousands of small cache records."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        parts = []
        if size < _ONE_READ_LIMIT:
            data = os.read(fd, size + 1)  # one byte more: a short read is the end of the file
            if len(data) <= size:
                return data
            parts.append(data)  # it grew meanwhile: read on to the end
        while chunk := os.read(fd, 1024 * 1024):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


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
