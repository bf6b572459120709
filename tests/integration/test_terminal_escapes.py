"""Control characters from indexes and registries are escaped before they reach a terminal
(issue 12, Found #7); JSON output keeps them exactly (json.dumps escapes them itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falcopkg.artifact.config import Dependency
from falcopkg.artifact.push import push_artifact
from falcopkg.artifact.types import get_type
from falcopkg.oci.client import RegistryClient, RegistryOptions
from tests.fixtures.cli import CliResult, run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.registries import RunningRegistry

OSC_TITLE = "\x1b]0;HACKED\x07"  # sets the terminal window's title
CLEAR = "\x1b[2J\x1b[H"  # clears the screen
EVIL = f"nice {OSC_TITLE}rules{CLEAR}\rfake line \u202eevil"


def _no_raw_controls(result: CliResult) -> None:
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x07" not in stream and "\r" not in stream
        assert "\u202e" not in stream


def _index(tmp_path: Path, registry: str, repository: str) -> Path:
    path = tmp_path / "index.yaml"
    description = json.dumps(EVIL)  # a YAML double-quoted scalar is JSON-compatible
    path.write_text(
        f"- name: evil\n  type: rulesfile\n  registry: {registry}\n"
        f"  repository: {repository}\n  description: {description}\n  keywords: [demo]\n",
        encoding="utf-8",
    )
    return path


def test_index_description_is_escaped_in_search_and_exact_in_json(
    tmp_path: Path, tmp_home: TmpHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("index", "add", "local", _index(tmp_path, "ghcr.io", "a/evil")).exit_code == 0
    result = run_cli("artifact", "search", "evil")
    assert result.exit_code == 0, result
    _no_raw_controls(result)
    assert "nice \\x1b]0;HACKED\\x07rules\\x1b[2J" in result.stdout
    as_json = run_cli("artifact", "search", "evil", "--json")
    assert json.loads(as_json.stdout)[0]["description"] == EVIL
    _no_raw_controls(as_json)  # escaped by json.dumps as \u001b …


def test_config_name_and_dependencies_from_a_registry_are_escaped(
    tmp_path: Path,
    tmp_home: TmpHome,
    monkeypatch: pytest.MonkeyPatch,
    plain_registry: RunningRegistry,
    unique_repo: str,
) -> None:
    repository = f"{unique_repo}/evil"
    rules = tmp_path / "evil_rules.yaml"
    rules.write_text("- rule: r\n  desc: d\n", encoding="utf-8")
    push_artifact(
        RegistryClient(plain_registry.host, RegistryOptions(plain_http=True)),
        repository,
        get_type("rulesfile"),
        [rules],
        version="1.0.0",
        name=f"evil{OSC_TITLE}",
        dependencies=[Dependency(f"dep{CLEAR}", "1.0.0")],
        created=None,
    )
    monkeypatch.chdir(tmp_path)
    assert run_cli("index", "add", "local", _index(tmp_path, plain_registry.host, repository))
    result = run_cli("artifact", "info", "evil", "--plain-http")
    assert result.exit_code == 0, result
    _no_raw_controls(result)
    assert "dependencies: dep\\x1b[2J\\x1b[H 1.0.0" in result.stdout
    as_json = run_cli("artifact", "info", "evil", "--plain-http", "--json")
    assert as_json.exit_code == 0, as_json
    _no_raw_controls(as_json)
    assert EVIL in json.loads(as_json.stdout)["index_entry"]["description"]


def test_registry_error_text_is_escaped(tmp_home: TmpHome, plain_registry: RunningRegistry) -> None:
    """The reference is echoed in the error: an escape typed or pasted into it stays inert."""
    result = run_cli("artifact", "info", f"{plain_registry.host}/nope{OSC_TITLE}", "--plain-http")
    assert result.exit_code in (1, 2), result
    _no_raw_controls(result)
    assert "\\x1b]0;HACKED\\x07" in result.stderr
