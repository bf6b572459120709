"""The no-op fast path's pieces without a registry: the entry point's reading of the command
line, the snippet record reader, and the compact no-op record (services.state)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from falcopkg import entry, paths
from falcopkg.core.plan import ArtifactRecord, DirectoryState, FileRecord
from falcopkg.services import state
from falcopkg.workflows import noop

STAMP = "sha256:" + "ab" * 32


def test_the_fast_path_names_the_files_as_falcopkg_paths_does() -> None:
    assert (noop.MANIFEST_NAME, noop.LOCKFILE_NAME) == (paths.MANIFEST_NAME, paths.LOCKFILE_NAME)
    assert noop._STATE_DIR_NAME == state.STATE_DIR_NAME


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sync"], {}),
        (["-q", "sync", "--frozen"], {"quiet": "1", "frozen": "1"}),
        (
            ["-C", "dir", "sync", "--platform=linux/arm64"],
            {"project": "dir", "platform": "linux/arm64"},
        ),
        (["sync", "--rulesfiles-dir", "r", "--color"], {"rulesfiles_dir": "r"}),
        (["--project=a", "sync", "-C", "b"], {"project": "b"}),  # the last one wins, as in click
        # Anything else: the full CLI.
        (["sync", "--force"], None),
        (["sync", "--dry-run"], None),
        (["sync", "sync"], None),
        (["sync", "--platform"], None),
        (["sync", "--frozen=1"], None),
        (["sync", "-vq"], None),
        (["sync", "--", "x"], None),
        (["lock"], None),
        (["artifact", "install", "sync"], None),
    ],
)
def test_the_entry_point_parses_only_a_plain_sync(
    args: list[str], expected: dict[str, str] | None
) -> None:
    assert entry._parse(args) == expected


def test_the_manifest_is_found_as_the_cli_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "falco.toml").write_text("")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert entry._manifest_path(None) == str(tmp_path / "falco.toml")
    assert entry._manifest_path(str(tmp_path)) == str(tmp_path / "falco.toml")
    assert entry._manifest_path(str(nested)) is None  # -C names the directory itself
    assert entry._manifest_path(str(tmp_path / "falco.toml")) is None  # as click refuses it


def test_an_empty_option_value_is_left_to_the_full_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(noop, "fast_noop", lambda *a, **k: pytest.fail("fast path taken"))
    assert entry._quick_sync(["sync", "--rulesfiles-dir", ""]) is None


RECORDS = [
    {"mtime_ns": 1, "path": "/x/falcopkg.yaml", "sha256": "sha256:00", "size": 0},
    {"path": "a b, c: {d}", "size": 12345678901234567890},
    {},
]


@pytest.mark.parametrize("record", RECORDS)
@pytest.mark.parametrize("indent", [None, 1])
def test_the_snippet_record_reader_reads_what_json_dumps_writes(
    record: dict[str, object], indent: int | None
) -> None:
    text = json.dumps(record, sort_keys=True, indent=indent)
    assert noop.flat_json_object(text) == record


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"path": "a\\b"}),
        json.dumps({"path": "é"}),  # escaped by json.dumps: doubted
        '{"path": "a\tb"}',  # a raw control character is not JSON
        '{"size": -1}',
        '{"size": 1.5}',
        '{"size": 01}',
        '{"size": true}',
        '{"a": 1,}',
        '{"a": 1 "b": 2}',
        '{"a": 1, "a": 2}',
        '{"a": [1]}',
        '{"a": {"b": 1}}',
        '{"a": 1',
        "[]",
        "",
    ],
)
def test_the_snippet_record_reader_doubts_anything_else(text: str) -> None:
    assert noop.flat_json_object(text) is None


# --- the compact no-op record ---------------------------------------------------------


def _installed(directory: Path, files: dict[str, bytes]) -> DirectoryState:
    """Files written into ``directory`` and a state stamped for them, as a sync leaves it."""
    records = {}
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
        records[name] = state.file_record(directory / name, "sha256:" + "0" * 64)
    artifacts = {"a": ArtifactRecord("a", "1.0.0", "sha256:" + "1" * 64, records)}
    return DirectoryState(artifacts, {}, STAMP, (str(directory),))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    return folder


FILES = {"falco_rules.yaml": b"- list: x\n", "odd name\nwith, newline.yaml": b"y", "d/e.yaml": b""}


def test_a_stamped_state_gets_a_record_that_the_fast_path_accepts(directory: Path) -> None:
    installed = _installed(directory, FILES)
    state.save_state(directory, installed)
    assert state.load_state(directory) == installed
    assert state.has_noop_record(directory, STAMP)
    assert state.quick_noop_check([str(directory)], STAMP) == (3, 1)
    assert state.quick_noop_check([str(directory) + "/./"], STAMP) == (3, 1)  # normalised
    assert state.quick_noop_check([str(directory)], STAMP.replace("a", "c")) is None


@pytest.mark.parametrize(
    "change",
    [
        lambda d: os.utime(d / "d/e.yaml", ns=(0, 0)),
        lambda d: (d / "falco_rules.yaml").write_bytes(b"- list: y\n"),
        lambda d: (d / "d/e.yaml").unlink(),
        lambda d: ((d / "d/e.yaml").unlink(), (d / "d/e.yaml").mkdir()),
        lambda d: ((d / "d/e.yaml").unlink(), (d / "d/e.yaml").symlink_to("/dev/null")),
        lambda d: (d / ".falcopkg" / "staging-1").mkdir(),
        lambda d: (d / ".falcopkg" / ".noop.x.tmp").write_bytes(b""),
        lambda d: (d / ".falcopkg" / "noop").write_bytes(
            (d / ".falcopkg" / "noop").read_bytes()[:-2]
        ),
        lambda d: (d / ".falcopkg" / "noop").write_bytes(
            (d / ".falcopkg" / "noop").read_bytes().replace(b"\x001\x00/", b"\x002\x00/", 1)
        ),
        lambda d: (d / ".falcopkg" / "state.json").write_text(
            (d / ".falcopkg" / "state.json").read_text() + " "
        ),
        lambda d: (d / ".falcopkg" / "state.json").unlink(),
    ],
    ids=[
        "mtime",
        "content",
        "deleted",
        "directory",
        "symlink",
        "staging",
        "temporary record",
        "torn",
        "directory count",
        "state edited",
        "state deleted",
    ],
)
def test_any_change_makes_the_record_doubtful(directory: Path, change: object) -> None:
    state.save_state(directory, _installed(directory, FILES))
    change(directory)  # type: ignore[operator]
    assert state.quick_noop_check([str(directory)], STAMP) is None


def test_every_directory_the_sync_covered_must_have_its_record(tmp_path: Path) -> None:
    rules, plugins = tmp_path / "rules", tmp_path / "plugins"
    for folder in (rules, plugins):
        folder.mkdir()
    both = (str(rules), str(plugins))
    state.save_state(rules, _stamped(_installed(rules, {"r.yaml": b"r"}), both))
    state.save_state(plugins, _stamped(_installed(plugins, {"p.so": b"p"}), both))
    assert state.quick_noop_check(both, STAMP) == (2, 2)
    assert state.quick_noop_check([str(rules), str(tmp_path / "elsewhere")], STAMP) is None
    state.save_state(plugins, DirectoryState())  # changed without a stamp: record removed
    assert not (plugins / ".falcopkg" / "noop").exists()
    assert state.quick_noop_check(both, STAMP) is None


def _stamped(current: DirectoryState, directories: tuple[str, ...]) -> DirectoryState:
    return DirectoryState(current.artifacts, {}, STAMP, directories)


def test_a_journaled_state_has_no_record(directory: Path) -> None:
    installed = _installed(directory, FILES)
    state.save_state(directory, installed)
    state.save_state(
        directory, DirectoryState(installed.artifacts, {"x.yaml": ("sha256:00",)}, STAMP, ())
    )
    assert not (directory / ".falcopkg" / "noop").exists()
    assert state.quick_noop_check([str(directory)], STAMP) is None


def test_a_path_the_record_cannot_hold_leaves_no_record(directory: Path) -> None:
    installed = _installed(directory, {"ok.yaml": b""})
    record = FileRecord("sha256:" + "0" * 64, 0, 0)
    odd = DirectoryState(
        {"a": ArtifactRecord("a", "1", "sha256:00", {"bad\0name": record})}, {}, STAMP, ()
    )
    state.save_state(directory, installed)
    state.save_state(directory, odd)
    assert not (directory / ".falcopkg" / "noop").exists()
    from falcopkg.errors import InstallError

    with pytest.raises(InstallError, match="not a relative path"):
        state.load_state(directory)  # and the full path refuses such a state


def test_a_record_is_never_older_than_its_state(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between state.json and its record: the old record is already gone."""
    state.save_state(directory, _installed(directory, FILES))
    from falcopkg import fsutil

    real = fsutil.atomic_write_bytes

    def no_record(path: Path, data: bytes, **kwargs: object) -> None:
        if path.name == state.NOOP_FILE_NAME:
            raise KeyboardInterrupt
        real(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fsutil, "atomic_write_bytes", no_record)
    with pytest.raises(KeyboardInterrupt):
        state.save_state(directory, _installed(directory, {"new.yaml": b"n"}))
    assert not (directory / ".falcopkg" / "noop").exists()
    assert state.quick_noop_check([str(directory)], STAMP) is None
