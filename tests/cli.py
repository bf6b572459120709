"""Run `falcopkg` in this process, as the tests do: one runner, one result type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from falcopkg.cli.main import main


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:  # what a failed `assert result.exit_code == 0, result` shows
        return f"exit {self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_cli(
    *args: str | Path, input: str | None = None, env: Mapping[str, str] | None = None
) -> CliResult:
    """main() in-process (fast), with its exit-code mapping; stdout and stderr apart.

    ``env`` sets (or, with None values, unsets) variables for this run only.
    """
    runner = CliRunner()
    with runner.isolation(input=input, env=dict(env) if env else None) as streams:
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
        return CliResult(code, streams[0].getvalue().decode(), streams[1].getvalue().decode())


def _exit_code(exc: SystemExit) -> int:
    """SystemExit's meaning: None is success, an int is the status, anything else is 1."""
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1
