"""Every network command ends within its deadline against a registry (or index server) that
accepts connections and never answers (issue 12 "Must show"): exit 1, one clear error naming
the host, elapsed at most the deadline plus a small margin.

The registry's deadline is ``[registries."HOST"] timeout = 2`` in falco.toml; the index
deadline has no setting yet, so the test lowers its default as test_deadlines.py does. `lock`
and `add` are covered in tests/integration/test_deadlines.py; this module adds the others and
prints the measured table (``deadlines: …``) in the session summary.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import RULES_V1, Project
from tests.fixtures.registries import RunningRegistry
from tests.fixtures.slowserver import ELAPSED, MisbehavingServer, Reply, Request

DEADLINE = 2.0
MARGIN = 2.5  # start-up in process and scheduling on a loaded 2-core machine


def _stall(request: Request, reply: Reply) -> None:
    reply.stall()


@pytest.fixture
def silent() -> Iterator[MisbehavingServer]:
    with MisbehavingServer(_stall) as server:
        yield server


@pytest.fixture(scope="module")
def locked_texts(
    plain_registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, str]:
    """(registry host, falco.toml, falco.lock) of a project locked against the real registry;
    tests put the silent server's address in place of the host."""
    root = tmp_path_factory.mktemp("deadline-lock")
    project = Project(root, plain_registry.host, "tests/deadlines")
    project.push("deadline-rules", "1.0.0", {"deadline_rules.yaml": RULES_V1})
    project.dependencies = {"deadline-rules": "1"}
    project.write_manifest()
    result = run_cli("-C", root, "lock")
    assert result.exit_code == 0, result
    manifest = (
        (root / "falco.toml")
        .read_text()
        .replace("plain_http = true\n", f"plain_http = true\ntimeout = {DEADLINE:g}\n", 1)
    )
    return plain_registry.host, manifest, project.lock_path.read_text()


def _silent_project(
    root: Path, server: MisbehavingServer, texts: tuple[str, str, str], *, lock: bool
) -> Path:
    host, manifest, lock_text = texts
    root.mkdir()
    (root / "falco.toml").write_text(manifest.replace(host, server.netloc))
    (root / "index.yaml").write_text(
        f'- name: deadline-rules\n  type: rulesfile\n  registry: "{server.netloc}"\n'
        "  repository: tests/deadlines/deadline-rules\n"
    )
    if lock:
        (root / "falco.lock").write_text(lock_text.replace(host, server.netloc))
    return root


def _timed(command: str, *args: str | Path, input: str | None = None) -> tuple[float, str]:
    started = time.monotonic()
    result = run_cli(*args, input=input)
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result
    assert "Traceback" not in result.output
    ELAPSED[command] = (DEADLINE, elapsed)
    assert elapsed <= DEADLINE + MARGIN, f"{command}: {elapsed:.1f}s"
    return elapsed, result.stderr


COMMANDS = {
    "sync": ("sync", "--frozen"),
    "follow --once": ("follow", "--once"),
    "vendor": ("vendor", "LAYOUT"),
    "mirror": ("mirror", "SILENT/m", "--plain-http"),
    "artifact info": ("artifact", "info", "SILENT/tests/deadlines/deadline-rules:1.0.0"),
    "artifact install": (
        "artifact",
        "install",
        "SILENT/tests/deadlines/deadline-rules:1.0.0",
        "--plain-http",
        "--rulesfiles-dir",
        "OUT",
    ),
    "registry pull": (
        "registry",
        "pull",
        "SILENT/tests/deadlines/deadline-rules:1.0.0",
        "-o",
        "OUT",
    ),
    "registry push": (
        "registry",
        "push",
        "SILENT/tests/deadlines/deadline-rules:2.0.0",
        "RULES",
        "--type",
        "rulesfile",
        "--version",
        "2.0.0",
    ),
    "registry login": ("registry", "login", "SILENT", "-u", "someone", "--password-stdin"),
}


@pytest.mark.registry
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_silent_registry_ends_the_command_within_its_deadline(
    command: str,
    tmp_path: Path,
    tmp_home: TmpHome,
    silent: MisbehavingServer,
    plain_registry: RunningRegistry,
    locked_texts: tuple[str, str, str],
) -> None:
    # mirror reads a real lock from the real registry and writes to the silent one; every
    # other command reads from the silent registry (its lock rewritten to point there).
    on_silent_lock = command != "mirror"
    project = _silent_project(tmp_path / "project", silent, locked_texts, lock=True)
    if not on_silent_lock:
        host, manifest, lock_text = locked_texts
        (project / "falco.toml").write_text(
            manifest + f'\n[registries."{silent.netloc}"]\nplain_http = true\n'
            f"timeout = {DEADLINE:g}\n"
        )
        (project / "falco.lock").write_text(lock_text)
        (project / "index.yaml").write_text(
            "- name: deadline-rules\n  type: rulesfile\n"
            f'  registry: "{host}"\n  repository: tests/deadlines/deadline-rules\n'
        )
    rules = tmp_path / "deadline_rules.yaml"
    rules.write_bytes(RULES_V1)
    substitutions = {
        "SILENT": silent.netloc,
        "LAYOUT": str(tmp_path / "layout"),
        "OUT": str(tmp_path / "out"),
        "RULES": str(rules),
    }
    args = [
        next((arg.replace(k, v) for k, v in substitutions.items() if k in arg), arg)
        for arg in COMMANDS[command]
    ]
    shutil.rmtree(tmp_home.cache_dir, ignore_errors=True)  # nothing may come from the cache
    _, stderr = _timed(
        command,
        "-C",
        project,
        *args,
        input="pw\n" if command == "registry login" else None,
    )
    assert silent.netloc in stderr, stderr
    assert f"did not answer within {DEADLINE:g}s" in stderr, stderr
    assert silent.requests, "the command never reached the registry"


def test_a_silent_index_ends_index_update_within_its_deadline(
    tmp_path: Path, tmp_home: TmpHome, silent: MisbehavingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("falcopkg.services.indexes.DEFAULT_TIMEOUT", DEADLINE)
    project = tmp_path / "project"
    project.mkdir()
    (project / "falco.toml").write_text(
        f'[[index]]\nname = "silent"\nurl = "http://{silent.netloc}/index.yaml"\n'
        "allow_http = true\n\n[dependencies]\n"
    )
    _, stderr = _timed("index update", "-C", project, "index", "update")
    assert "index silent" in stderr and silent.netloc in stderr, stderr
