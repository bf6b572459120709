"""The install planner, driven by the cases in tests/data/plan/*.yaml (see their headers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from falcopkg.core.plan import (
    ABSENT,
    ArtifactRecord,
    DesiredFile,
    DirectoryState,
    DiskFact,
    FileRecord,
    desired_files,
    journal,
    needs_hash,
    next_state,
    plan_sync,
)
from falcopkg.defaults import INSTALL_DIR_DEFAULTS as DEFAULT_DIRS
from falcopkg.errors import InstallError
from falcopkg.workflows.noop import scan_install_dirs

DATA = Path(__file__).parent.parent / "data" / "plan"


def _cases(*files: str) -> list[Any]:
    params = []
    for name in files:
        for case in yaml.safe_load((DATA / name).read_text()):
            params.append(pytest.param(case, id=f"{name}:{case['name']}"))
    return params


def _record(raw: list[Any]) -> FileRecord:
    sha, size, mtime = raw
    return FileRecord(str(sha), int(size), int(mtime))


def _desired(case: dict[str, Any]) -> dict[str, dict[str, DesiredFile]]:
    return {
        directory: {
            path: DesiredFile(f["artifact"], str(f["version"]), f["layer"])
            for path, f in (files or {}).items()
        }
        for directory, files in (case.get("desired") or {}).items()
    }


def _states(raw: dict[str, Any] | None) -> dict[str, DirectoryState]:
    states = {}
    for directory, state in (raw or {}).items():
        artifacts = {
            name: ArtifactRecord(
                name,
                str(a["version"]),
                a["layer"],
                {p: _record(r) for p, r in (a.get("files") or {}).items()},
            )
            for name, a in (state.get("artifacts") or {}).items()
        }
        # pending: path -> sha256, or a list of them (content of several interrupted syncs)
        pending = {
            p: (str(s),) if isinstance(s, str) else tuple(map(str, s))
            for p, s in (state.get("pending") or {}).items()
        }
        states[directory] = DirectoryState(artifacts, pending)
    return states


def _disk(case: dict[str, Any]) -> dict[str, dict[str, DiskFact]]:
    return {
        directory: {
            path: DiskFact(True, int(f[0]), int(f[1]), str(f[2]) if len(f) > 2 else None)
            for path, f in (files or {}).items()
        }
        for directory, files in (case.get("disk") or {}).items()
    }


def _check_hashing_is_realistic(
    states: dict[str, DirectoryState], disk: dict[str, dict[str, DiskFact]]
) -> None:
    """A case may only give a sha256 where the observer would have computed one."""
    for directory, facts in disk.items():
        state = states.get(directory, DirectoryState())
        owners = state.owners()
        for path, fact in facts.items():
            record = owners[path][1] if path in owners else None
            expected = needs_hash(fact, record, state.pending.get(path))
            if fact.sha256 is not None and not expected:
                assert record is not None, f"{directory}/{path}: unowned files are never hashed"
                continue  # verify hashes every owned file
            assert (fact.sha256 is not None) == expected, f"{directory}/{path}: hash={expected}"


@pytest.mark.parametrize("case", _cases("install.yaml", "changes.yaml"))
def test_plan_cases(case: dict[str, Any]) -> None:
    states = _states(case.get("state"))
    disk = _disk(case)
    _check_hashing_is_realistic(states, disk)
    plan = plan_sync(
        _desired(case),
        states,
        disk,
        force=case.get("force", False),
        prune=case.get("prune", True),
    )
    expect = case["expect"]
    got = [[a.kind, a.directory, a.path, a.artifact, a.cause] for a in plan.actions]
    assert got == expect["actions"]
    for path, reason in (expect.get("reasons") or {}).items():
        assert [a.reason for a in plan.actions if a.path == path] == [reason]
    got_refreshes = [[r.directory, r.path, r.size, r.mtime_ns] for r in plan.refreshes]
    assert got_refreshes == expect.get("refreshes", [])
    for key in ("up_to_date_files", "up_to_date_artifacts"):
        if key in expect:
            assert getattr(plan, key) == expect[key], key
    if "noop" in expect:
        assert plan.is_noop == expect["noop"]


@pytest.mark.parametrize("case", _cases("next_state.yaml"))
def test_next_state_cases(case: dict[str, Any]) -> None:
    desired = _desired(case)
    states = _states(case.get("state"))
    disk = _disk(case)
    prune = case.get("prune", True)
    plan = plan_sync(desired, states, disk, prune=prune)
    written = {
        directory: {p: _record(r) for p, r in files.items()}
        for directory, files in (case.get("written") or {}).items()
    }
    expected = _states(case["expect"]["state"])
    for directory in sorted(set(desired) | set(states)):
        got = next_state(
            directory,
            states.get(directory, DirectoryState()),
            desired.get(directory, {}),
            plan,
            written.get(directory, {}),
            prune=prune,
        )
        assert got == expected.get(directory, DirectoryState()), directory


def test_plan_is_deterministic_and_independent_of_input_order() -> None:
    files = {f"f{i}.yaml": DesiredFile("a", "1.0.0", "L") for i in range(20)}
    reversed_files = dict(reversed(list(files.items())))
    one = plan_sync({"/b": files, "/a": files}, {}, {})
    two = plan_sync({"/a": reversed_files, "/b": reversed_files}, {}, {})
    assert one == two
    assert [(a.directory, a.path) for a in one.actions] == sorted(
        (a.directory, a.path) for a in one.actions
    )


def test_owned_file_with_changed_stamp_must_be_hashed() -> None:
    state = DirectoryState({"a": ArtifactRecord("a", "1", "L", {"x": FileRecord("S", 1, 1)})}, {})
    with pytest.raises(ValueError, match="not hashed"):
        plan_sync(
            {"/d": {"x": DesiredFile("a", "1", "L")}},
            {"/d": state},
            {"/d": {"x": DiskFact(True, 2, 2)}},
        )


def test_needs_hash_table() -> None:
    record = FileRecord("S", 10, 100)
    same = DiskFact(True, 10, 100)
    other = DiskFact(True, 10, 101)
    assert not needs_hash(ABSENT, record, None)
    assert not needs_hash(same, record, None)
    assert needs_hash(other, record, None)
    assert not needs_hash(other, None, None)  # unowned: never hashed by the planner
    assert needs_hash(other, None, ("P",))  # written by an interrupted sync
    assert not needs_hash(other, None, ())


_RECORDED = {"a": ArtifactRecord("a", "1", "L1", {"x": FileRecord("OLD", 1, 1)})}


@pytest.mark.parametrize(
    ("pending", "writes", "expected"),
    [
        ({}, {"x": "NEW"}, {"x": ("NEW",)}),
        # A sync to NEW died after its rename, the next one (back to OLD) journals OLD: NEW
        # may still be on disk and must stay falcopkg's own.
        ({"x": ("NEW",)}, {"x": "OLD"}, {"x": ("NEW", "OLD")}),
        ({"x": ("NEW", "OLD")}, {"x": "NEW"}, {"x": ("NEW", "OLD")}),
        ({"y": ("Y",)}, {"x": "NEW"}, {"x": ("NEW",), "y": ("Y",)}),
    ],
)
def test_journal_keeps_earlier_pending_content(
    pending: dict[str, tuple[str, ...]],
    writes: dict[str, str],
    expected: dict[str, tuple[str, ...]],
) -> None:
    old = DirectoryState(_RECORDED, pending, "stamp", ("/d",))
    assert journal(old, writes) == DirectoryState(_RECORDED, expected)


@pytest.mark.parametrize(
    ("on_disk", "kind", "cause"),
    [
        ("NEW", "update", "interrupted"),
        ("OLD", "update", "interrupted"),
        ("EDITED", "keep-modified", "modified"),
    ],
)
def test_any_journaled_content_is_an_interrupted_sync(on_disk: str, kind: str, cause: str) -> None:
    state = DirectoryState(
        {"a": ArtifactRecord("a", "1", "L1", {"x": FileRecord("REC", 1, 1)})},
        {"x": ("NEW", "OLD")},
    )
    plan = plan_sync(
        {"/d": {"x": DesiredFile("a", "2", "L2")}},
        {"/d": state},
        {"/d": {"x": DiskFact(True, 5, 5, on_disk)}},
    )
    assert [(a.kind, a.cause) for a in plan.actions] == [(kind, cause)]


# --- desired_files ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    digest: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class _Artifact:
    name: str
    type: str
    version: str
    layers: dict[str, _Layer]

    def layer_for(self, platform: str) -> _Layer | None:
        return self.layers.get(platform) or self.layers.get("")


DIRS = {"rulesfiles_dir": "/r", "plugins_dir": "/p", "assets_dir": "/a"}
RULES = _Artifact("falco-rules", "rulesfile", "4.0.0", {"": _Layer("L1", ("falco_rules.yaml",))})
PLUGIN = _Artifact(
    "container",
    "plugin",
    "0.4.1",
    {
        "linux/amd64": _Layer("PA", ("libcontainer.so",)),
        "linux/arm64": _Layer("PB", ("libcontainer.so",)),
    },
)


@pytest.mark.parametrize(
    ("platform", "allowed", "expected"),
    [
        (
            "linux/amd64",
            None,
            {
                "/r": {"falco_rules.yaml": ("falco-rules", "L1")},
                "/p": {"libcontainer.so": ("container", "PA")},
                "/a": {},
            },
        ),
        (
            "linux/arm64",
            ["rulesfile", "plugin"],
            {
                "/r": {"falco_rules.yaml": ("falco-rules", "L1")},
                "/p": {"libcontainer.so": ("container", "PB")},
                "/a": {},
            },
        ),
        (
            "linux/amd64",
            ["rulesfile"],
            {"/r": {"falco_rules.yaml": ("falco-rules", "L1")}, "/p": {}, "/a": {}},
        ),
    ],
)
def test_desired_files(
    platform: str, allowed: list[str] | None, expected: dict[str, dict[str, tuple[str, str]]]
) -> None:
    desired = desired_files([PLUGIN, RULES], platform, DIRS, allowed)
    got = {
        d: {p: (f.artifact, f.layer_digest) for p, f in files.items()}
        for d, files in desired.files.items()
    }
    assert got == expected
    if allowed == ["rulesfile"]:
        assert [name for name, _ in desired.skipped] == ["container"]


@pytest.mark.parametrize(
    ("artifacts", "platform", "message"),
    [
        ([PLUGIN], "linux/riscv64", "container 0.4.1 is not locked for platform linux/riscv64"),
        (
            [
                RULES,
                _Artifact("dup", "rulesfile", "1.0.0", {"": _Layer("D", ("falco_rules.yaml",))}),
            ],
            "linux/amd64",
            "both install falco_rules.yaml",
        ),
        (
            [_Artifact("x", "strange", "1.0.0", {"": _Layer("X", ("x",))})],
            "linux/amd64",
            "type 'strange'",
        ),
    ],
)
def test_desired_files_errors(artifacts: list[_Artifact], platform: str, message: str) -> None:
    with pytest.raises(InstallError, match=message) as info:
        desired_files(artifacts, platform, DIRS)
    assert info.value.hint


# --- the no-op fast path's reading of [install] ----------------------------------------

_RULES = {
    "rulesfiles_dir": "r",
    "plugins_dir": "/usr/share/falco/plugins",
    "assets_dir": "/etc/falco/assets",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", DEFAULT_DIRS),
        ('[install]\nrulesfiles_dir = "r"\n', _RULES),
        ('[install]  # dirs\n  rulesfiles_dir="r"   # comment\n[dependencies]\nx = "1"\n', _RULES),
        ('# rulesfiles_dir = "commented"\n[install]\nrulesfiles_dir = "r"\n', _RULES),
        (
            '[install]\nrulesfiles_dir = "a"\nplugins_dir = "b"\nassets_dir = "c"\nallowed_types = [\n  "asset",\n]\n',
            {"rulesfiles_dir": "a", "plugins_dir": "b", "assets_dir": "c"},
        ),
        # Anything else is left to the real TOML parser.
        ('install.rulesfiles_dir = "r"\n', None),
        ('install = { rulesfiles_dir = "r" }\n', None),
        ("[install]\nrulesfiles_dir = 'r'\n", None),
        ('[install]\nrulesfiles_dir = "a\\\\b"\n', None),
        ('[install]\nrulesfiles_dir = "a"\nrulesfiles_dir = "b"\n', None),
        ('[other]\nrulesfiles_dir = "r"\n', None),
        # Spellings the hand-written scan reads like TOML does.
        ('[install]\r\nrulesfiles_dir = "r"\r\n', _RULES),
        ('[ install ]\n\trulesfiles_dir\t=\t"r"\t\n', _RULES),
        ('[install]\nrulesfiles_dir = "r"#c\n[install.more]\nx = 1\n', _RULES),
        ('[install]\nrulesfiles_dir = ""\n', {**_RULES, "rulesfiles_dir": ""}),
        ('[install]\nrulesfiles_dir = "a b/# c"\n', {**_RULES, "rulesfiles_dir": "a b/# c"}),
        ('[dependencies]\nx = "1"\n[install]\nrulesfiles_dir = "r"\n', _RULES),
        ('[install]\n  # plugins_dir = "p"\nrulesfiles_dir = "r"\n', _RULES),
        # … and the ones it leaves to the parser.
        ('[install.x]\nrulesfiles_dir = "r"\n', None),
        ('[[install]]\nrulesfiles_dir = "r"\n', None),
        ('["install"]\nrulesfiles_dir = "r"\n', None),
        ('[install]\n"rulesfiles_dir" = "r"\n', None),
        ('[install]\nrulesfiles_dir = "r" x\n', None),
        ('[install]\nrulesfiles_dir = "r\n', None),
        ('[install]\nrulesfiles_dir = """r"""\n', None),
        ('[install]\nrulesfiles_dir = "a" "b"\n', None),
        ("[install]\nrulesfiles_dir\n", None),
        ('[dependencies]\nmy_plugins_dir = "1"\n', None),
    ],
)
def test_scan_install_dirs(text: str, expected: dict[str, str] | None) -> None:
    assert scan_install_dirs(text) == expected
    if expected is not None:  # what it reads, it reads as the TOML parser does
        tomllib = pytest.importorskip("tomllib")
        install = tomllib.loads(text).get("install", {})
        assert expected == {key: install.get(key, DEFAULT_DIRS[key]) for key in DEFAULT_DIRS}
