"""The `falcopkg` entry point: global options, lazy command loading, error rendering.

Subcommands are named here as ``module:attribute`` strings and imported only when
invoked, so `falcopkg --help` loads neither requests, YAML nor TOML parsers.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from falcopkg import __version__
from falcopkg.cli.context import AppContext
from falcopkg.cli.output import Console
from falcopkg.errors import FalcopkgError

_COMMANDS = "falcopkg.cli.commands"

# name -> (import path, one-line help shown by --help without importing the module)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "init": (f"{_COMMANDS}.project:init", "Create a falco.toml in the current directory."),
    "add": (f"{_COMMANDS}.project:add", "Add artifacts to falco.toml, lock and sync."),
    "remove": (f"{_COMMANDS}.project:remove", "Remove artifacts from falco.toml."),
    "lock": (f"{_COMMANDS}.project:lock", "Resolve falco.toml and write falco.lock."),
    "sync": (f"{_COMMANDS}.install:sync", "Make the install directories match falco.lock."),
    "tree": (f"{_COMMANDS}.project:tree", "Show who brings in which artifact and why."),
    "outdated": (f"{_COMMANDS}.project:outdated", "Show locked, allowed and newest versions."),
    "verify": (f"{_COMMANDS}.install:verify", "Compare installed files with falco.lock."),
    "check": (f"{_COMMANDS}.install:verify", "Alias of `verify`."),
    "index": (f"{_COMMANDS}.index:index", "Manage artifact indexes."),
    "registry": (f"{_COMMANDS}.registry:registry", "Push, pull and log in to OCI registries."),
    "repo": (f"{_COMMANDS}.registry:registry", "Alias of `registry`."),
    "artifact": (f"{_COMMANDS}.artifact:artifact", "Search, inspect and install artifacts."),
    "cache": (f"{_COMMANDS}.cache:cache", "Inspect and clean the blob cache."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, _, attr = self.lazy[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table so that --help imports no command module.
        rows = [(name, help_text) for name, (_, help_text) in sorted(self.lazy.items())]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "-V", "--version", prog_name="falcopkg")
@click.option(
    "-C",
    "--project",
    "project",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if started in DIR (the directory of falco.toml).",
)
@click.option("-v", "--verbose", count=True, help="More output; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and data.")
@click.option(
    "--color/--no-color", default=None, help="Force or disable colour (NO_COLOR honoured)."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FALCOPKG_CACHE_DIR",
    help="Cache directory [env: FALCOPKG_CACHE_DIR].",
)
@click.pass_context
def cli(
    ctx: click.Context,
    project: Path | None,
    verbose: int,
    quiet: bool,
    color: bool | None,
    cache_dir: Path | None,
) -> None:
    """A declarative, lockfile-based package manager for Falco rules files and plugins."""
    verbosity = -1 if quiet else verbose
    ctx.obj = AppContext(
        project_option=project,
        cache_dir_option=cache_dir,
        console=Console(verbosity=verbosity, color=color),
    )


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one message with a hint and exit codes 0/1/2."""
    args = sys.argv[1:] if argv is None else argv
    verbose = any(
        a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in args
    )
    console = Console(verbosity=1 if verbose else 0)
    try:
        cli.main(args=args, prog_name="falcopkg", standalone_mode=False)
    except FalcopkgError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        console.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        console.error("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        console.error(str(exc))
        sys.exit(1)
    sys.exit(0)
