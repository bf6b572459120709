"""Layer packing (reproducible tar.gz) and manifest/index bytes (Go-compatible JSON)."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from falcopkg.artifact.pack import (
    config_descriptor,
    created_timestamp,
    image_index_bytes,
    image_manifest_bytes,
    manifest_annotations,
    pack_files,
    prepare_layer,
)
from falcopkg.artifact.parallel_gzip import BLOCK_SIZE, WINDOW, ParallelGzipWriter
from falcopkg.digests import bytes_digest, file_digest
from falcopkg.errors import UsageError
from falcopkg.oci.descriptor import Descriptor

DATA = Path(__file__).parent.parent / "data" / "artifact"
CASES = json.loads((DATA / "manifest_cases.json").read_text(encoding="utf-8"))
FIXTURES = Path(__file__).parent.parent.parent / "fixtures"


def _write(path: Path, data: bytes, mode: int = 0o644, mtime: int = 1_700_000_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))
    return path


def test_pack_is_reproducible_and_hashed_while_written(tmp_path: Path) -> None:
    first = [
        _write(tmp_path / "a" / "rules.yaml", b"- rule: x\n", mtime=1),
        _write(tmp_path / "a" / "extra.yaml", b"- list: y\n"),
    ]
    second = [
        _write(tmp_path / "b" / "rules.yaml", b"- rule: x\n", mtime=999_999),
        _write(tmp_path / "b" / "extra.yaml", b"- list: y\n", mtime=5),
    ]
    one = pack_files(first, tmp_path / "out1")
    two = pack_files(second, tmp_path / "out2")
    assert one.digest == two.digest
    assert one.size == two.size == one.path.stat().st_size
    assert one.digest == file_digest(one.path)
    assert one.title == "rules.tar.gz"  # falcoctl's name: first file's stem + .tar.gz
    assert one.files == ("rules.yaml", "extra.yaml")
    # The gzip header holds neither a file name nor a time.
    header = one.path.read_bytes()[:10]
    assert header[3] & 0x08 == 0 and header[4:8] == b"\0\0\0\0"


def test_pack_members_at_root_with_normalized_metadata(tmp_path: Path) -> None:
    plugin = _write(tmp_path / "deep" / "dir" / "libx.so", b"\x7fELF...", mode=0o700)
    rules = _write(tmp_path / "r.yaml", b"- macro: m\n", mode=0o600)
    layer = pack_files([plugin, rules], tmp_path / "out", archive_name="custom.tar.gz")
    assert layer.title == "custom.tar.gz"
    with tarfile.open(layer.path, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"libx.so", "r.yaml"}
        assert members["libx.so"].mode == 0o755 and members["r.yaml"].mode == 0o644
        for member in members.values():
            assert member.isreg() and member.mtime == 0 and member.uid == member.gid == 0
            assert member.uname == member.gname == ""
        extracted = tar.extractfile("libx.so")
        assert extracted is not None and extracted.read() == b"\x7fELF..."


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file"),
        ("directory", "not a regular file"),
        ("duplicate", "several files are named 'same.yaml'"),
        ("archive-and-file", "is already a gzip archive"),
        ("unsafe-archive", "cannot be pushed: refusing to install"),
    ],
)
def test_prepare_layer_rejects_bad_inputs(tmp_path: Path, setup: str, message: str) -> None:
    files: list[Path]
    if setup == "missing":
        files = [tmp_path / "nope.yaml"]
    elif setup == "directory":
        (tmp_path / "dir").mkdir()
        files = [tmp_path / "dir"]
    elif setup == "duplicate":
        files = [
            _write(tmp_path / "x" / "same.yaml", b"a"),
            _write(tmp_path / "y" / "same.yaml", b"b"),
        ]
    elif setup == "archive-and-file":
        archive = pack_files([_write(tmp_path / "in.yaml", b"a")], tmp_path / "pre")
        files = [archive.path, _write(tmp_path / "other.yaml", b"b")]
    else:
        files = [_write(tmp_path / "evil.tar.gz", _tar_gz({"../evil.yaml": b"x"}))]
    with pytest.raises(UsageError, match=message):
        prepare_layer(files, tmp_path / "work")


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_prepare_layer_uses_a_ready_archive_as_is(tmp_path: Path) -> None:
    data = _tar_gz({"libdummy.so": b"plugin bytes"})
    archive = _write(tmp_path / "dummy-0.1.0-linux-x86_64.tar.gz", data)
    layer = prepare_layer([archive], tmp_path / "work")
    assert layer.path == archive
    assert layer.title == "dummy-0.1.0-linux-x86_64.tar.gz"
    assert layer.digest == bytes_digest(data)
    assert layer.files == ("libdummy.so",)


def test_prepare_layer_rejects_gzip_that_is_not_tar(tmp_path: Path) -> None:
    archive = _write(tmp_path / "x.tar.gz", gzip.compress(b"not a tar at all" * 100))
    with pytest.raises(UsageError, match=r"not a valid tar\.gz archive"):
        prepare_layer([archive], tmp_path / "work")


def test_sample_plugin_fixtures_differ_per_platform(tmp_path: Path) -> None:
    amd = prepare_layer([FIXTURES / "plugins/linux-amd64/libdummy.so"], tmp_path / "a")
    arm = prepare_layer([FIXTURES / "plugins/linux-arm64/libdummy.so"], tmp_path / "b")
    assert amd.files == arm.files == ("libdummy.so",)
    assert amd.digest != arm.digest


@pytest.mark.parametrize("case", CASES["manifests"], ids=[c["id"] for c in CASES["manifests"]])
def test_image_manifest_bytes(case: dict[str, Any]) -> None:
    data = image_manifest_bytes(
        Descriptor.from_dict(case["config"]),
        Descriptor.from_dict(case["layer"]),
        case["annotations"],
    )
    assert data == case["bytes"].encode()


@pytest.mark.parametrize("case", CASES["indexes"], ids=[c["id"] for c in CASES["indexes"]])
def test_image_index_bytes(case: dict[str, Any]) -> None:
    entries = [Descriptor.from_dict(m) for m in case["manifests"]]
    assert image_index_bytes(entries, case["annotations"]) == case["bytes"].encode()


def test_index_entries_need_a_platform() -> None:
    entry = Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "0" * 64, 1)
    with pytest.raises(ValueError, match="no platform"):
        image_index_bytes([entry])


def test_config_descriptor_and_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = config_descriptor("application/vnd.cncf.falco.rulesfile.config.v1+json", b"{}")
    assert descriptor.digest == bytes_digest(b"{}") and descriptor.size == 2
    assert descriptor.annotations is None
    assert created_timestamp(0) == "1970-01-01T00:00:00Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert created_timestamp() == "2023-11-14T22:13:20Z"
    assert manifest_annotations(created=None, source=None) == {}
    assert manifest_annotations(created="t", source="s") == {
        "org.opencontainers.image.created": "t",
        "org.opencontainers.image.source": "s",
    }


# --- parallel gzip -------------------------------------------------------------------------


def _text(size: int) -> bytes:
    """Real, compressible text: the standard library's sources, in a fixed order."""
    chunks, total = [], 0
    for path in sorted(Path(tarfile.__file__).parent.glob("*.py")):
        chunks.append(path.read_bytes())
        total += len(chunks[-1])
        if total >= size:
            break
    return b"".join(chunks)[:size]


def _random(size: int, seed: int = 13) -> bytes:
    return random.Random(seed).randbytes(size)


def _gzip_parallel(data: bytes, *, threads: int, level: int = 6, piece: int = 65_536) -> bytes:
    out = io.BytesIO()
    with ParallelGzipWriter(out, level=level, threads=threads) as writer:
        for start in range(0, len(data), piece):
            writer.write(data[start : start + piece])
    return out.getvalue()


MIXED = _text(BLOCK_SIZE * 2 + 12_345) + _random(BLOCK_SIZE * 2) + _text(BLOCK_SIZE)


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_parallel_gzip_bytes_depend_on_neither_threads_nor_write_sizes(level: int) -> None:
    outputs = {
        _gzip_parallel(MIXED, threads=threads, level=level, piece=piece)
        for threads, piece in [(1, 65_536), (2, 1), (2, 999_983), (4, 4096), (4, len(MIXED))]
        if piece > 1 or level == 1  # byte-by-byte writes are slow: once is enough
    }
    assert len(outputs) == 1
    compressed = outputs.pop()
    assert gzip.decompress(compressed) == MIXED
    assert zlib.decompress(compressed, 31) == MIXED  # exactly one gzip member, nothing after
    # The header GzipFile(filename="", mtime=0) writes, as falcopkg's layers always had.
    reference = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=reference, compresslevel=level, mtime=0):
        pass
    assert compressed[:10] == reference.getvalue()[:10]


@pytest.mark.parametrize("level", [0, 6])
@pytest.mark.parametrize(
    "size", [0, 1, 0xFFFF, 2 * 0xFFFF, WINDOW, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE]
)
def test_parallel_gzip_block_edges(size: int, level: int) -> None:
    data = _text(size)
    assert gzip.decompress(_gzip_parallel(data, threads=2, level=level)) == data


def test_parallel_gzip_is_one_member_for_the_gzip_tool(tmp_path: Path) -> None:
    if shutil.which("gzip") is None:
        pytest.skip("no gzip tool")
    archive = tmp_path / "mixed.gz"
    archive.write_bytes(_gzip_parallel(MIXED, threads=2))
    subprocess.run(["gzip", "-t", str(archive)], check=True, timeout=60)
    listed = subprocess.run(
        ["gzip", "-l", "--verbose", str(archive)], capture_output=True, text=True, check=True
    )
    assert str(len(MIXED)) in listed.stdout  # the trailer's size: one member holds it all


def test_parallel_gzip_stores_what_does_not_compress() -> None:
    data = _random(4 * BLOCK_SIZE + 777)
    compressed = _gzip_parallel(data, threads=2)
    assert gzip.decompress(compressed) == data
    # Stored blocks cost 5 bytes per 64 KiB, plus header, trailer and flush markers.
    assert len(compressed) <= len(data) * 1.001 + 64


def test_parallel_gzip_ratio_close_to_plain_gzip() -> None:
    data = _text(4 * 1024 * 1024)
    ours = len(_gzip_parallel(data, threads=2))
    assert ours <= len(gzip.compress(data, 6, mtime=0)) * 1.03


def test_parallel_gzip_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="level"):
        ParallelGzipWriter(io.BytesIO(), level=10)
    with pytest.raises(ValueError, match="threads"):
        ParallelGzipWriter(io.BytesIO(), threads=0)


def test_pack_digest_does_not_depend_on_the_thread_count(tmp_path: Path) -> None:
    files = [
        _write(tmp_path / "in" / "libbig.so", MIXED, mode=0o755),
        _write(tmp_path / "in" / "rules.yaml", _text(100_000)),
    ]
    layers = [
        pack_files(files, tmp_path / f"out{threads}", threads=threads) for threads in (1, 2, 4)
    ]
    assert len({layer.digest for layer in layers}) == 1
    with tarfile.open(layers[0].path, "r:gz") as tar:
        extracted = tar.extractfile("libbig.so")
        assert extracted is not None and extracted.read() == MIXED
    stored = pack_files(files, tmp_path / "level0", level=0)
    assert stored.digest != layers[0].digest and stored.size > layers[0].size


class _FullDisk:
    """A sink that fails like a full disk after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        self.room = room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            raise OSError(28, "No space left on device")
        self.room -= len(data)
        return len(data)


@pytest.mark.parametrize("threads", [1, 3])
def test_parallel_gzip_passes_write_errors_on_and_stops_its_threads(threads: int) -> None:
    before = threading.active_count()
    with (
        pytest.raises(OSError, match="No space left"),
        ParallelGzipWriter(_FullDisk(BLOCK_SIZE), threads=threads) as writer,
    ):
        for start in range(0, len(MIXED), 100_000):
            writer.write(MIXED[start : start + 100_000])
    assert threading.active_count() == before
