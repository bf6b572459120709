"""The `falcopkg` entry point: global options, lazy command loading, error rendering.

Subcommands are named here as ``module:attribute`` strings and imported only when
invoked, so `falcopkg --help` loads neither requests, YAML nor TOML parsers.
"""

from __future__ import annotations

import sys

import click

from falcopkg import __version__
from falcopkg.cli.context import AppContext
from falcopkg.cli.group import global_options, lazy_group
from falcopkg.deadline import set_wait_notifier
from falcopkg.errors import FalcopkgError

_COMMANDS = "falcopkg.cli.commands"

# name -> (import path, one-line help shown by --help without importing the module)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "init": (f"{_COMMANDS}.project:init", "Create a falco.toml in the current directory."),
    "add": (f"{_COMMANDS}.project:add", "Add artifacts to falco.toml, lock and sync."),
    "remove": (f"{_COMMANDS}.project:remove", "Remove artifacts from falco.toml, relock and sync."),
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
    "export": (f"{_COMMANDS}.export:export", "Make Helm values, falcoctl.yaml or a Falco snippet."),
    "completion": (
        f"{_COMMANDS}.completion:completion",
        "Print the shell completion script (bash, zsh, fish).",
    ),
    "mirror": (f"{_COMMANDS}.deploy:mirror", "Copy the locked artifacts to another registry."),
    "vendor": (f"{_COMMANDS}.deploy:vendor", "Write the locked artifacts into an OCI layout."),
    "follow": (f"{_COMMANDS}.follow:follow", "Keep installs on the newest allowed versions."),
}


# What falcoctl users type, and where it lives here (`falcopkg install x` is a usage error
# that points at `falcopkg artifact install x`).
FALCOCTL_COMMANDS: dict[str, str] = {
    "install": "artifact install",
    "search": "artifact search",
    "info": "artifact info",
    "list": "artifact list",
    "push": "registry push",
    "pull": "registry pull",
    "login": "registry login",
}


@lazy_group(
    LAZY_COMMANDS,
    elsewhere=FALCOCTL_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "-V", "--version", prog_name="falcopkg")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """A declarative, lockfile-based package manager for Falco rules files and plugins.

    Global options work before or after the command: `falcopkg -q sync` = `falcopkg sync -q`.
    """
    ctx.ensure_object(AppContext)


# The global options, shown in `falcopkg --help`; commands take them too (hidden there).
cli.params.extend(global_options(hidden=False))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one message with a hint and exit codes 0/1/2."""
    args = sys.argv[1:] if argv is None else argv
    verbose = any(
        a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in args
    )
    # The command's own AppContext: --color/--no-color set on it apply to the error lines
    # below too. (``verbose`` is scanned from the arguments: a traceback is wanted even when
    # the error comes before the option was parsed.)
    app = AppContext()
    console = app.console
    # A silent registry or index is worth a line on a terminal while we wait for it.
    set_wait_notifier(
        (lambda host: console.info(f"waiting for {host}…")) if console.is_tty else None
    )
    try:
        cli.main(args=args, prog_name="falcopkg", standalone_mode=False, obj=app)
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
