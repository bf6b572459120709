"""Hostile local files and arguments (issue 12, Found #4/#5): each is exit 1 (2 for usage)
with one message naming the file and line, never a traceback. No network: every case fails
before a registry would be asked (the registry named is a closed port)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falcopkg.digests import bytes_digest
from tests.fixtures.cli import CliResult, run_cli
from tests.fixtures.home import TmpHome

DEPENDENCY = '[dependencies]\nx = { ref = "127.0.0.1:9/x", version = "1" }\n'
DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
LOCK = f"""version = 1

[manifest]
dependencies = {{ x = {{ ref = "127.0.0.1:9/x", version = "1" }} }}
platforms = ["linux/amd64"]

[[artifact]]
name = "x"
type = "rulesfile"
version = "1.0.0"
source = "127.0.0.1:9/x"
digest = "{DIGEST_A}"
requirements = {{ engine_version = "REQUIREMENT" }}
layer = {{ digest = "{DIGEST_B}", size = 10, files = ["x_rules.yaml"] }}
"""
MANIFEST = f'[target]\nengine_version = "0.40.0"\nplatforms = ["linux/amd64"]\n\n{DEPENDENCY}'
NESTED = "[" * 1000 + "]" * 1000
DIGITS = "9" * 5000


def _one_clear_error(result: CliResult, exit_code: int, where: str) -> None:
    assert result.exit_code == exit_code, result
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result
    assert where in errors[0], result


@pytest.fixture
def project(tmp_path: Path, tmp_home: TmpHome) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


# (falco.toml text, "file:line[:column]" the error must name)
MANIFEST_CASES = [
    # tomllib refuses, and the tomlkit fallback (for the position) raised KeyAlreadyPresent.
    pytest.param(
        '[dependencies]\nx = { ref = "127.0.0.1:9/x", ref = "127.0.0.1:9/y" }\n',
        "falco.toml:2:",
        id="duplicate-key-inline-table",
    ),
    pytest.param(
        '[dependencies]\nx.ref = "127.0.0.1:9/x"\nx.ref = "127.0.0.1:9/y"\n',
        "falco.toml:3:",
        id="duplicate-key-dotted",
    ),
    pytest.param('[dependencies]\nx = "1"\nx = "2"\n', "falco.toml:3:", id="duplicate-key"),
    # tomllib raised RecursionError.
    pytest.param(
        f"[target]\nplatforms = {NESTED}\n{DEPENDENCY}", "falco.toml:2:", id="nested-1000"
    ),
    # tomllib raised ValueError (int()'s 4,300-digit limit).
    pytest.param(f"[target]\nengine_version = {DIGITS}\n", "falco.toml:2:18", id="5000-digits"),
]


@pytest.mark.parametrize(("text", "where"), MANIFEST_CASES)
def test_hostile_falco_toml(project: Path, text: str, where: str) -> None:
    (project / "falco.toml").write_text(text, encoding="utf-8")
    result = run_cli("-C", project, "lock", "--offline")
    _one_clear_error(result, 1, where)
    assert "invalid TOML" in result.stderr


@pytest.mark.parametrize(("text", "where"), MANIFEST_CASES)
def test_hostile_falco_toml_when_editing(project: Path, text: str, where: str) -> None:
    """`add` reads falco.toml with tomlkit (to keep comments): the same clear error."""
    (project / "falco.toml").write_text(text, encoding="utf-8")
    before = (project / "falco.toml").read_bytes()
    result = run_cli("-C", project, "add", "127.0.0.1:9/other:1.0.0", "--offline")
    _one_clear_error(result, 1, "falco.toml:")
    assert (project / "falco.toml").read_bytes() == before


# (falco.lock text, "file:line[:column]")
LOCK_CASES = [
    pytest.param(f"version = 1\nx = {NESTED}\n", "falco.lock:2:", id="nested-1000"),
    pytest.param(f"version = {DIGITS}\n", "falco.lock:1:11", id="5000-digits-version"),
    pytest.param(
        LOCK.replace("size = 10", f"size = {DIGITS}"), "falco.lock:14:", id="5000-digits-size"
    ),
    pytest.param("version = 1\nversion = 1\n", "falco.lock:2:", id="duplicate-key"),
]


@pytest.mark.parametrize(("text", "where"), LOCK_CASES)
@pytest.mark.parametrize("command", [["tree"], ["verify"], ["sync", "--offline"]])
def test_hostile_falco_lock(project: Path, text: str, where: str, command: list[str]) -> None:
    (project / "falco.toml").write_text(MANIFEST, encoding="utf-8")
    (project / "falco.lock").write_text(text, encoding="utf-8")
    result = run_cli("-C", project, *command)
    _one_clear_error(result, 1, where)
    assert "hint: run `falcopkg lock` to write it again" in result.stderr


@pytest.mark.parametrize("requirement", ["²", "\u0661\u0665", DIGITS])
def test_unreadable_requirement_in_falco_lock_is_reported(project: Path, requirement: str) -> None:
    """`²` passed str.isdigit() and int() then raised: now the lock is stale, and says why."""
    (project / "falco.toml").write_text(MANIFEST, encoding="utf-8")
    (project / "falco.lock").write_text(LOCK.replace("REQUIREMENT", requirement), "utf-8")
    result = run_cli("-C", project, "tree")
    assert result.exit_code == 0, result
    assert "Traceback" not in result.output
    assert "x 1.0.0 has an unreadable requirement engine_version" in result.stderr


def test_non_ascii_version_in_falco_lock_is_no_version(project: Path) -> None:
    (project / "falco.toml").write_text(MANIFEST, encoding="utf-8")
    lock = LOCK.replace('version = "1.0.0"', 'version = "²"').replace("REQUIREMENT", "1")
    (project / "falco.lock").write_text(lock, encoding="utf-8")
    result = run_cli("-C", project, "tree")
    assert result.exit_code == 0, result
    assert "x ² does not satisfy" in result.stderr


@pytest.mark.parametrize("version", ["²", "\u0661\u0665", DIGITS, "0.².0"])
def test_hostile_requires_argument_is_a_usage_error(tmp_path: Path, version: str) -> None:
    rules = tmp_path / "x_rules.yaml"
    rules.write_text("- rule: r\n  desc: d\n", encoding="utf-8")
    result = run_cli(
        "registry", "push", "127.0.0.1:9/x", rules,
        "--type", "rulesfile", "--version", "1.0.0", "--requires", f"engine_version:{version}",
    )  # fmt: skip
    _one_clear_error(result, 2, "invalid --requires value")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f"- rule: r\n  desc: d\n- required_engine_version: {DIGITS}\n", "x_rules.yaml:3:"),
        (f"- list: l\n  items: [1, {DIGITS}]\n", "x_rules.yaml:2:"),
        ('- required_engine_version: "\u0661\u0665"\n', "x_rules.yaml:1:"),
    ],
    ids=["5000-digit-engine-version", "5000-digit-integer-anywhere", "arabic-indic-digits"],
)
def test_hostile_rules_yaml_is_refused_before_pushing(
    tmp_path: Path, tmp_home: TmpHome, text: str, where: str
) -> None:
    rules = tmp_path / "x_rules.yaml"
    rules.write_text(text, encoding="utf-8")
    result = run_cli(
        "registry", "push", "127.0.0.1:9/x", rules, "--type", "rulesfile", "--version", "1.0.0"
    )
    _one_clear_error(result, 1, where)


# -- install state (Found #6) -------------------------------------------------------------------


def _state_owning(path: str, victim: Path, *, pending: bool = False) -> str:
    info = victim.stat()
    digest = bytes_digest(victim.read_bytes())
    record = {"sha256": digest, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    files = {} if pending else {path: record}
    state = {
        "version": 1,
        "artifacts": {"x": {"version": "1.0.0", "layer": DIGEST_B, "files": files}},
        "pending": {path: [digest]} if pending else {},
    }
    return json.dumps(state)


@pytest.mark.parametrize(
    ("owned", "pending"),
    [
        ("../victim.txt", False),  # this one made `sync` delete the file
        ("sub/../../victim.txt", False),
        ("ABSOLUTE", False),
        ("../victim.txt", True),
        ("./victim.txt", False),
        ("a\\..\\victim.txt", False),
    ],
    ids=["dotdot", "dotdot-inside", "absolute", "pending-dotdot", "dot", "backslash"],
)
def test_state_paths_outside_the_directory_are_refused(
    tmp_path: Path, tmp_home: TmpHome, owned: str, pending: bool
) -> None:
    install = {kind: tmp_path / kind for kind in ("rules", "plugins", "assets")}
    for directory in install.values():
        directory.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("not falcopkg's\n", encoding="utf-8")
    owned = str(victim) if owned == "ABSOLUTE" else owned
    state = install["rules"] / ".falcopkg" / "state.json"
    state.parent.mkdir()
    state.write_text(_state_owning(owned, victim, pending=pending), encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    (project / "falco.toml").write_text(
        "[install]\n"
        + "".join(f'{kind}_dir = "{path}"\n' for kind, path in (
            ("rulesfiles", install["rules"]),
            ("plugins", install["plugins"]),
            ("assets", install["assets"]),
        ))
        + "[dependencies]\n",
        encoding="utf-8",
    )  # fmt: skip
    assert run_cli("-C", project, "lock", "--offline").exit_code == 0
    before = state.read_bytes()
    for command in (["sync", "--offline"], ["sync", "--offline", "--force"], ["verify"]):
        result = run_cli("-C", project, *command)
        _one_clear_error(result, 1, f"cannot read the install state {state}")
        assert "which is not a relative path inside the install directory" in result.stderr
        assert victim.read_text(encoding="utf-8") == "not falcopkg's\n"
        assert state.read_bytes() == before
