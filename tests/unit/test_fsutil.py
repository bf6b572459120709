"""fsutil: atomic writes make their directories when missing; read_file reads whole files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from falcopkg import fsutil
from falcopkg.fsutil import atomic_write_bytes, read_file, replace_into


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 1024 * 1024 + 3])
def test_read_file_reads_every_byte(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f"
    data = os.urandom(size)
    path.write_bytes(data)
    assert read_file(path) == data


def test_read_file_reads_on_when_the_file_is_larger_than_its_size_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10_000)
    real_fstat = os.fstat

    class Shrunk:
        def __init__(self, fd: int) -> None:
            self.st_size = real_fstat(fd).st_size // 3  # as if it grew after the fstat

    monkeypatch.setattr(fsutil.os, "fstat", Shrunk)
    assert read_file(path) == b"x" * 10_000


def test_read_file_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_file(tmp_path / "missing")


def test_atomic_writes_make_missing_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.json"
    atomic_write_bytes(target, b"{}", durable=False)
    assert target.read_bytes() == b"{}"
    elsewhere = tmp_path / "x" / "y.bin"
    atomic_write_bytes(elsewhere, b"1", temp_dir=tmp_path / "tmp", durable=False)
    assert elsewhere.read_bytes() == b"1"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"old")
    target.chmod(0o600)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o600


def test_replace_into_a_missing_directory_and_from_a_missing_source(tmp_path: Path) -> None:
    source = tmp_path / "s"
    source.write_bytes(b"s")
    replace_into(source, tmp_path / "new" / "t")
    assert (tmp_path / "new" / "t").read_bytes() == b"s"
    with pytest.raises(FileNotFoundError):
        replace_into(tmp_path / "gone", tmp_path / "other" / "t")
    assert not (tmp_path / "other").exists()
