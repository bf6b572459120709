"""Safe layer extraction: a table of archives, each either unpacked exactly or refused.

Archives are built here from entry specs; refusals must name the artifact and the entry
and leave the destination exactly as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from falcopkg import archive as extract
from falcopkg.archive import extract_into, extract_layer, list_layer, scan_layer
from falcopkg.errors import InstallError, IntegrityError


@dataclass(frozen=True)
class Entry:
    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    linkname: str = ""
    pax: tuple[tuple[str, str], ...] = ()


def build(path: Path, entries: list[Entry], *, fmt: int = tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.mode = e.mode
            info.linkname = e.linkname
            info.pax_headers = dict(e.pax)
            if e.kind == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return path


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


RULES = b"- rule: x\n  desc: y\n"

GOOD = [
    pytest.param(
        [Entry("falco_rules.yaml", data=RULES)], {"falco_rules.yaml": RULES}, id="one-file"
    ),
    pytest.param(
        [Entry("./falco_rules.yaml", data=RULES)], {"falco_rules.yaml": RULES}, id="dot-slash"
    ),
    pytest.param(
        [
            Entry("rules", kind=tarfile.DIRTYPE, mode=0o755),
            Entry("rules/sub", kind=tarfile.DIRTYPE, mode=0o755),
            Entry("rules/sub/a.yaml", data=b"a"),
            Entry("b.yaml", data=b""),
        ],
        {"rules/sub/a.yaml": b"a", "b.yaml": b""},
        id="subdirectories-and-empty-file",
    ),
    pytest.param(
        [Entry("./", kind=tarfile.DIRTYPE), Entry("libx.so", data=b"\x7fELF", mode=0o755)],
        {"libx.so": b"\x7fELF"},
        id="root-dir-entry-and-executable",
    ),
    pytest.param(
        [Entry("a.yaml", data=b"x", pax=(("comment", "hello"),))],
        {"a.yaml": b"x"},
        id="small-pax-header",
    ),
]

BAD = [
    pytest.param(
        [Entry("/etc/passwd", data=b"x")], "'/etc/passwd' has an absolute path", id="absolute"
    ),
    pytest.param([Entry("../evil", data=b"x")], "'../evil' escapes", id="dotdot"),
    pytest.param([Entry("a/../../evil", data=b"x")], "escapes", id="dotdot-inside"),
    pytest.param(
        [Entry("ok.yaml", data=b"x"), Entry("link", kind=tarfile.SYMTYPE, linkname="/etc/shadow")],
        "'link' is a link",
        id="symlink",
    ),
    pytest.param(
        [Entry("ok.yaml", data=b"x"), Entry("hard", kind=tarfile.LNKTYPE, linkname="ok.yaml")],
        "'hard' is a link",
        id="hardlink",
    ),
    pytest.param([Entry("dev", kind=tarfile.CHRTYPE)], "'dev' is a device", id="char-device"),
    pytest.param([Entry("blk", kind=tarfile.BLKTYPE)], "'blk' is a device", id="block-device"),
    pytest.param([Entry("fifo", kind=tarfile.FIFOTYPE)], "'fifo' is a device", id="fifo"),
    pytest.param(
        [Entry("a.yaml", data=b"1"), Entry("./a.yaml", data=b"2")],
        "appears twice",
        id="duplicate",
    ),
    pytest.param(
        [Entry("a", data=b"1"), Entry("a/b", data=b"2")],
        "conflicts with another entry",
        id="file-and-directory",
    ),
    pytest.param(
        [Entry(".falcopkg/state.json", data=b"{}")],
        "reserved name .falcopkg",
        id="reserved-state-dir",
    ),
    pytest.param(
        [Entry("big.bin", data=b"\0" * (300 * 1024))],
        "expands beyond 262144 bytes",
        id="too-large",
    ),
    pytest.param(
        [Entry(f"f{i}", data=b"x") for i in range(12)],
        "more than 10 entries",
        id="too-many-files",
    ),
    pytest.param(
        [Entry("a.yaml", data=b"x", pax=(("comment", "c" * (2 * 1024 * 1024)),))],
        ("expands beyond", "extended header of"),  # whichever bound is reached first
        id="huge-pax-header",
    ),
]


@pytest.mark.parametrize(("entries", "expected"), GOOD)
def test_good_archives(tmp_path: Path, entries: list[Entry], expected: dict[str, bytes]) -> None:
    archive = build(tmp_path / "layer.tar.gz", entries)
    digest = sha(archive.read_bytes())
    staging = tmp_path / "dest" / ".falcopkg" / "staging"
    files = extract_layer(archive, "demo", staging, expected_digest=digest)
    assert {f.path: f.staged.read_bytes() for f in files} == expected
    for f in files:
        assert f.sha256 == sha(expected[f.path])
        assert f.size == len(expected[f.path])
        assert f.staged.is_relative_to(staging)
    assert sorted(list_layer(archive, "demo")) == sorted(expected)
    with archive.open("rb") as raw:
        scanned = dict(scan_layer(raw, "demo", keep=(".yaml",)))
    assert scanned == {p: data if p.endswith(".yaml") else None for p, data in expected.items()}
    executable = [f for f in files if f.path == "libx.so"]
    if executable:
        assert executable[0].mode == 0o755
        assert executable[0].staged.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize(("entries", "message"), BAD)
def test_bad_archives_are_refused_and_write_nothing(
    tmp_path: Path, entries: list[Entry], message: str | tuple[str, ...]
) -> None:
    archive = build(tmp_path / "layer.tar.gz", entries)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.yaml").write_text("user file")
    with pytest.raises(InstallError) as info:
        extract_into(archive, "evil-rules", dest, max_bytes=256 * 1024, max_files=10)
    messages = (message,) if isinstance(message, str) else message
    assert any(m in info.value.message for m in messages), info.value.message
    assert "evil-rules" in info.value.message
    assert info.value.hint
    assert sorted(p.name for p in dest.iterdir()) == ["mine.yaml"]
    assert (dest / "mine.yaml").read_text() == "user file"
    with pytest.raises(InstallError):
        list_layer(archive, "evil-rules", max_bytes=256 * 1024, max_files=10)
    with pytest.raises(InstallError), archive.open("rb") as raw:
        scan_layer(raw, "evil-rules", keep=(".yaml",), max_bytes=256 * 1024, max_files=10)


def test_extract_into_replaces_files_and_keeps_others(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "falco_rules.yaml").write_text("old")
    (dest / "mine.yaml").write_text("mine")
    archive = build(
        tmp_path / "l.tar.gz", [Entry("falco_rules.yaml", data=RULES), Entry("sub/x", data=b"x")]
    )
    placed = extract_into(archive, "demo", dest)
    assert (dest / "falco_rules.yaml").read_bytes() == RULES
    assert (dest / "sub" / "x").read_bytes() == b"x"
    assert (dest / "mine.yaml").read_text() == "mine"
    assert {p.staged for p in placed} == {dest / "falco_rules.yaml", dest / "sub" / "x"}
    assert sorted(p.name for p in dest.iterdir()) == ["falco_rules.yaml", "mine.yaml", "sub"]


def test_extract_into_refuses_to_replace_a_symlink(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "falco_rules.yaml").symlink_to("/etc/hostname")
    archive = build(tmp_path / "l.tar.gz", [Entry("falco_rules.yaml", data=RULES)])
    with pytest.raises(InstallError, match="not a regular file"):
        extract_into(archive, "demo", dest)
    assert (dest / "falco_rules.yaml").is_symlink()
    assert sorted(p.name for p in dest.iterdir()) == ["falco_rules.yaml"]


def test_digest_mismatch_is_an_integrity_error_and_removes_staging(tmp_path: Path) -> None:
    archive = build(tmp_path / "l.tar.gz", [Entry("a", data=b"a")])
    staging = tmp_path / "staging"
    with pytest.raises(IntegrityError, match="does not match its digest"):
        extract_layer(archive, "demo", staging, expected_digest=sha(b"other"))
    assert not staging.exists()


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_expected_digest_is_checked_with_its_own_algorithm(tmp_path: Path, algorithm: str) -> None:
    archive = build(tmp_path / "l.tar.gz", [Entry("a", data=b"a")])
    digest = f"{algorithm}:{hashlib.new(algorithm, archive.read_bytes()).hexdigest()}"
    files = extract_layer(archive, "demo", tmp_path / "staging", expected_digest=digest)
    assert [file.path for file in files] == ["a"]


def test_decompression_bomb_is_stopped_after_the_bound(tmp_path: Path) -> None:
    """64 MiB of zeros in a ~64 KiB archive; the bound is checked on real output."""
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 * 1024 * 1024
        tar.addfile(info, _Zeros(info.size))
    assert archive.stat().st_size < 1024 * 1024
    with pytest.raises(InstallError, match="expands beyond"):
        extract_into(archive, "bomb", tmp_path / "dest", max_bytes=1024 * 1024)
    assert list((tmp_path / "dest").iterdir()) == []


def test_stream_counts_real_output_not_headers(tmp_path: Path) -> None:
    """The bounded stream itself stops a gzip whose content exceeds the limit."""
    blob = gzip.compress(b"\0" * (8 * 1024 * 1024))
    stream = extract._LayerStream(io.BytesIO(blob), limit=1024 * 1024)
    with pytest.raises(extract._TooLarge):
        while stream.read(64 * 1024):
            pass
    assert stream.total_out <= 1024 * 1024 + 64 * 1024


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"not gzip at all", "not a valid tar"),
        (gzip.compress(b"\x01" * 2048)[:-30], "not a valid tar"),
    ],
    ids=["not-gzip", "truncated"],
)
def test_corrupt_archives(tmp_path: Path, blob: bytes, message: str) -> None:
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(blob)
    with pytest.raises(InstallError, match=message):
        extract_into(archive, "demo", tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_multi_member_gzip(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("a", b"A" * 5000), ("b", os.urandom(3000))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    payload = raw.getvalue()
    half = len(payload) // 2
    archive = tmp_path / "multi.tar.gz"
    archive.write_bytes(gzip.compress(payload[:half]) + gzip.compress(payload[half:]))
    files = extract_layer(
        archive, "demo", tmp_path / "s", expected_digest=sha(archive.read_bytes())
    )
    assert [f.path for f in files] == ["a", "b"]
    assert files[0].staged.read_bytes() == b"A" * 5000


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
def test_archive_made_by_gnu_tar(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "falco_rules.yaml").write_bytes(RULES)
    (src / "d" / "x.yaml").write_bytes(b"x")
    archive = tmp_path / "gnu.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(src), "."], check=True)
    assert sorted(list_layer(archive, "demo")) == ["d/x.yaml", "falco_rules.yaml"]


def test_random_content_round_trips(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    archive = build(tmp_path / "r.tar.gz", [Entry("libbig.so", data=data, mode=0o755)])
    (f,) = extract_layer(archive, "big", tmp_path / "s")
    assert f.sha256 == sha(data)
    assert f.staged.read_bytes() == data


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_zlib_error_is_reported(tmp_path: Path) -> None:
    good = gzip.compress(b"\x01" * 4096)
    broken = good[:12] + bytes(b ^ 0xFF for b in good[12:40]) + good[40:]
    archive = tmp_path / "z.tar.gz"
    archive.write_bytes(broken)
    with pytest.raises(InstallError, match="not a valid tar"):
        list_layer(archive, "demo")


def test_huge_pax_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    entries = [Entry("a.yaml", data=b"x", pax=(("comment", "c" * (2 * 1024 * 1024)),))]
    archive = build(tmp_path / "pax.tar.gz", entries)
    with pytest.raises(InstallError, match="extended header of"):
        list_layer(archive, "demo")


LONG = "deep/" * 12 + "x" * 60 + ".yaml"  # longer than ustar's 100-byte name field


@pytest.mark.parametrize(
    "fmt",
    [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT],
    ids=["gnu", "pax", "ustar"],
)
def test_long_names_in_every_header_format(tmp_path: Path, fmt: int) -> None:
    archive = build(tmp_path / "long.tar.gz", [Entry(LONG, data=b"deep")], fmt=fmt)
    (f,) = extract_layer(archive, "demo", tmp_path / "s")
    assert f.path == LONG and f.staged.read_bytes() == b"deep"


@pytest.mark.parametrize(
    ("fmt", "name", "message"),
    [
        (tarfile.PAX_FORMAT, "/" + "a" * 120, "absolute path"),
        (tarfile.GNU_FORMAT, "../" + "b" * 120, "escapes"),
        (tarfile.PAX_FORMAT, "sub/../../" + "c" * 120, "escapes"),
    ],
    ids=["pax-absolute", "gnu-dotdot", "pax-dotdot"],
)
def test_names_from_extended_headers_are_checked(
    tmp_path: Path, fmt: int, name: str, message: str
) -> None:
    archive = build(tmp_path / "x.tar.gz", [Entry(name, data=b"x")], fmt=fmt)
    with pytest.raises(InstallError, match=message):
        extract_into(archive, "evil", tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def _raw_tar(entries: list[Entry]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.size = len(e.data)
            tar.addfile(info, io.BytesIO(e.data))
    return raw.getvalue()


@pytest.mark.parametrize(
    "damage",
    ["checksum", "truncated-data", "bad-pax"],
)
def test_damaged_tar_streams(tmp_path: Path, damage: str) -> None:
    payload = bytearray(_raw_tar([Entry("a.yaml", data=b"a" * 3000), Entry("b.yaml", data=b"b")]))
    if damage == "checksum":
        payload[10] ^= 0x01  # inside the first header's name
    elif damage == "truncated-data":
        payload = payload[: 512 + 1000]
    else:
        record = b"11 path=x\n"  # the length says 11, the record is 10 bytes long
        header = tarfile.TarInfo("././@PaxHeader")
        header.type = tarfile.XHDTYPE
        header.size = len(record)
        payload = bytearray(header.tobuf(tarfile.USTAR_FORMAT) + record.ljust(512, b"\0") + payload)
    archive = tmp_path / "d.tar.gz"
    archive.write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(InstallError, match="not a valid tar"):
        extract_into(archive, "demo", tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def _pax_header(records: bytes) -> bytes:
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = len(records)
    padded = records.ljust(-(-len(records) // 512) * 512, b"\0")
    return header.tobuf(tarfile.USTAR_FORMAT) + padded


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    length += len(str(length)) - len(str(len(body)))
    return str(length).encode() + body


def _negative_size_header() -> bytes:
    block = bytearray(tarfile.TarInfo("a.yaml").tobuf(tarfile.USTAR_FORMAT))
    block[124:136] = b"\xff" * 12  # GNU base-256: -1
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % tarfile.calc_chksums(bytes(block))[0]
    return bytes(block)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        # str.isdigit() accepts "²" and int() then raised ValueError (a traceback).
        (_pax_header(_pax_record("size", "²")), "pax size must be a whole number"),
        (_pax_header(_pax_record("size", "\u0661")), "pax size must be a whole number"),
        # Over Python's 4,300-digit int-string limit: int() raised ValueError too.
        (_pax_header(_pax_record("size", "9" * 5000)), "pax size has 5000 digits"),
        (_pax_header(b"9" * 5000 + b" path=x\n"), "malformed pax header"),
        (_negative_size_header(), "negative size"),
    ],
    ids=[
        "size-superscript",
        "size-arabic-indic",
        "size-5000-digits",
        "length-5000-digits",
        "negative-size",
    ],
)
def test_hostile_header_numbers_are_refused(tmp_path: Path, prefix: bytes, message: str) -> None:
    payload = prefix + _raw_tar([Entry("b.yaml", data=b"b")])
    archive = tmp_path / "h.tar.gz"
    archive.write_bytes(gzip.compress(payload))
    with pytest.raises(InstallError, match="not a valid tar") as info:
        extract_into(archive, "demo", tmp_path / "dest")
    assert message in info.value.message
    assert list((tmp_path / "dest").iterdir()) == []


@pytest.mark.parametrize(
    ("value", "expected"), [("4096", 4096), ("²", None), ("0", None), ("9" * 5000, None)]
)
def test_unpacked_size_bound_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int | None
) -> None:
    monkeypatch.setenv(extract.MAX_BYTES_ENV, value)
    assert extract.default_max_bytes() == (expected or extract.DEFAULT_MAX_BYTES)


def test_an_archive_of_too_many_entries_is_refused_fast_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """12,000 small files: refused at entry 10,001, before any of the 10,000 staged files
    was fsynced (which took 18-56 s), with nothing left behind."""
    import time

    archive = tmp_path / "many.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for number in range(12_000):
            info = tarfile.TarInfo(f"f{number}.yaml")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"x\n"))
    staging = tmp_path / "staging"
    started = time.monotonic()
    with pytest.raises(InstallError) as caught:
        extract_layer(archive, "many 1.0.0", staging)
    assert time.monotonic() - started < 10
    assert "more than 10000 entries" in caught.value.message
    assert not staging.exists()
