"""The CLI contract every command shares: fast start, exit codes, errors with hints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from falcopkg import __version__
from tests.fixtures.cli import CliResult, run_cli

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


# -- issue 11: what a new user trips over --------------------------------------------------


def in_process(*args: str | Path, env: dict[str, str] | None = None) -> CliResult:
    return run_cli(*args, env={"NO_COLOR": None, **(env or {})})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (["lok"], "Did you mean `lock`?"),
        (["sycn"], "Did you mean `sync`?"),
        (["install", "falco-rules"], "Did you mean `falcopkg artifact install`?"),
        (["search", "k8s"], "Did you mean `falcopkg artifact search`?"),
        (["artifact", "serch"], "Did you mean `search`?"),
    ],
)
def test_unknown_commands_get_a_suggestion(typed: list[str], expected: str) -> None:
    result = in_process(*typed)
    assert result.exit_code == 2
    assert expected in result.stderr


def test_color_options_apply_to_error_lines(tmp_path: Path) -> None:
    colored = in_process("--color", "-C", tmp_path, "lock")
    assert colored.exit_code == 1
    assert "\x1b[" in colored.stderr and "error:" in colored.stderr
    plain = in_process("-C", tmp_path, "lock", "--no-color", env={"FORCE_COLOR": "1"})
    assert "\x1b[" not in plain.stderr


def test_project_option_says_exactly_what_was_searched(tmp_path: Path) -> None:
    (tmp_path / "falco.toml").write_text("[dependencies]\n")
    child = tmp_path / "child"
    child.mkdir()
    result = in_process("-C", child, "lock")
    assert result.exit_code == 1
    assert f"no falco.toml at {child / 'falco.toml'} (given by -C)" in result.stderr
    assert "parents" not in result.stderr


def test_project_option_takes_a_path_to_falco_toml(tmp_path: Path) -> None:
    target = tmp_path / "proj"
    created = in_process("-C", target / "falco.toml", "init", "--no-index")
    assert created.exit_code == 0, created
    assert (target / "falco.toml").is_file()
    tree = in_process("-C", target / "falco.toml", "lock", "--offline")
    assert tree.exit_code == 0, tree
    assert (target / "falco.lock").is_file()
    other = tmp_path / "other.toml"
    other.write_text("")
    wrong = in_process("-C", other, "lock")
    assert wrong.exit_code == 2 and "not a directory nor a falco.toml" in wrong.stderr


def test_completion_scripts_and_completing(tmp_path: Path) -> None:
    for shell in ("bash", "zsh", "fish"):
        script = in_process("completion", shell)
        assert script.exit_code == 0, script
        assert "_FALCOPKG_COMPLETE" in script.stdout
    completed = in_process(
        env={"_FALCOPKG_COMPLETE": "bash_complete", "COMP_WORDS": "falcopkg lo", "COMP_CWORD": "1"}
    )
    assert "lock" in completed.stdout
    bad = in_process("completion", "powershell")
    assert bad.exit_code == 2


def test_an_empty_project_warns_that_it_has_no_dependencies(tmp_path: Path) -> None:
    assert in_process("-C", tmp_path, "init", "--no-index").exit_code == 0
    for command in (["lock", "--offline"], ["tree"], ["outdated", "--offline"]):
        result = in_process("-C", tmp_path, *command)
        assert result.exit_code == 0, result
        assert "warning: falco.toml has no dependencies" in result.stderr
        assert "hint: add one with `falcopkg add NAME`" in result.stderr
