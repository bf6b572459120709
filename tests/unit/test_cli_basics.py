"""The CLI contract every command shares: fast start, exit codes, errors with hints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from falcopkg import __version__

HEAVY_MODULES = ("requests", "urllib3", "yaml", "tomlkit", "tomllib", "semver")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "falcopkg", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["registry", "--help"]])
def test_help_and_version_import_no_heavy_module(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from falcopkg.cli.main import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_malformed_reference_on_the_command_line_is_a_usage_error() -> None:
    result = run("registry", "pull", "falcosecurity/rules")
    assert result.returncode == 2
    assert "error: reference 'falcosecurity/rules' has no registry host" in result.stderr
    assert "hint: write the registry first" in result.stderr
    assert "Traceback" not in result.stderr


def test_errors_have_no_traceback_unless_verbose(tmp_path: Path) -> None:
    quiet = run("lock", cwd=tmp_path)
    assert quiet.returncode == 1
    assert quiet.stderr.startswith("error: no falco.toml found")
    assert "hint: run `falcopkg init`" in quiet.stderr
    assert "Traceback" not in quiet.stderr
    verbose = run("-v", "lock", cwd=tmp_path)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr


def test_global_options_work_after_the_command(tmp_path: Path) -> None:
    before = run("-C", str(tmp_path), "init")
    assert before.returncode == 0, before.stderr
    other = tmp_path / "other"
    other.mkdir()
    after = run("init", "-C", str(other), "-q")
    assert after.returncode == 0, after.stderr
    assert (other / "falco.toml").is_file()
    assert after.stderr == ""  # -q after the command silences the messages
