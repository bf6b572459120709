"""Click plumbing shared by the top-level command and its groups.

- ``LazyGroup`` imports a subcommand's module only when that subcommand runs, so that
  `falcopkg --help` and fast paths like `artifact search` pay for nothing else.
- ``GLOBAL_OPTIONS`` are accepted before or after the command, as uv and cargo do
  (`falcopkg -q lock` and `falcopkg lock -q`): they are added to every command a
  LazyGroup hands out and write into the one AppContext.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from falcopkg.cli.context import AppContext


def _app(ctx: click.Context) -> AppContext:
    return ctx.ensure_object(AppContext)


def _set_project(ctx: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _app(ctx).project_option = value


def _add_verbosity(ctx: click.Context, _: click.Parameter, value: int) -> None:
    if value:
        console = _app(ctx).console
        console.verbosity = max(console.verbosity, 0) + value


def _set_quiet(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        _app(ctx).console.verbosity = -1


def _set_color(ctx: click.Context, _: click.Parameter, value: bool | None) -> None:
    if value is not None:
        _app(ctx).console.color = value


def _set_cache_dir(ctx: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _app(ctx).cache_dir_option = value


def global_options(*, hidden: bool) -> list[click.Option]:
    """The options of SPEC §10 that every command takes (fresh objects for each command)."""
    directory = click.Path(file_okay=False, path_type=Path)
    return [
        click.Option(
            ["-C", "--project"],
            type=click.Path(path_type=Path),
            metavar="DIR",
            expose_value=False,
            is_eager=True,
            callback=_set_project,
            hidden=hidden,
            help="Use the project in DIR (or the falco.toml at that path); no parent search.",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_add_verbosity,
            hidden=hidden,
            help="More output; tracebacks on errors.",
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_set_quiet,
            hidden=hidden,
            help="Only errors, warnings and data.",
        ),
        click.Option(
            ["--color/--no-color"],
            default=None,
            expose_value=False,
            callback=_set_color,
            hidden=hidden,
            help="Force or disable colour (NO_COLOR honoured).",
        ),
        click.Option(
            ["--cache-dir"],
            type=directory,
            expose_value=False,
            callback=_set_cache_dir,
            hidden=hidden,
            help="Cache directory [env: FALCOPKG_CACHE_DIR].",
        ),
    ]


_GLOBAL_NAMES = {"project", "verbose", "quiet", "color", "cache_dir"}


def add_global_options(command: click.Command) -> click.Command:
    """Let ``command`` (and, for a group, its commands) take the global options too."""
    if not any(param.name in _GLOBAL_NAMES for param in command.params):
        command.params.extend(global_options(hidden=True))
    if isinstance(command, click.Group) and not isinstance(command, LazyGroup):
        for sub in command.commands.values():
            add_global_options(sub)
    return command


class LazyGroup(click.Group):
    """A group whose subcommands, given as ``name -> ("module:attribute", short help)``, are
    imported on first use; the short help lets `--help` list them without importing them."""

    def __init__(
        self,
        *args: Any,
        lazy: dict[str, tuple[str, str]] | None = None,
        elsewhere: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}
        self.elsewhere = elsewhere or {}  # a name users try -> the command that does it

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """An unknown command is a usage error that says what was probably meant: the
        nearest command name (`lok` -> `lock`), or where a falcoctl command lives here."""
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            raise click.UsageError(self._unknown_command(ctx, name), ctx)
        return super().resolve_command(ctx, args)

    def _unknown_command(self, ctx: click.Context, name: str) -> str:
        import difflib

        message = f"No such command {name!r}."
        if name in self.elsewhere:
            return f"{message} Did you mean `{ctx.command_path} {self.elsewhere[name]}`?"
        close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
        if close:
            return f"{message} Did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
        return message

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, _, attr = self.lazy[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self.lazy[cmd_name][0]} is not a click command")
        else:
            command = super().get_command(ctx, cmd_name)
        return add_global_options(command) if command is not None else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in self.lazy.items()]
        rows += [
            (name, command.get_short_help_str(limit=60))
            for name, command in self.commands.items()
            if name not in self.lazy and not command.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


def lazy_group(
    lazy: dict[str, tuple[str, str]], **kwargs: Any
) -> Callable[[Callable[..., Any]], LazyGroup]:
    """``@lazy_group({...})``: a click group decorator for a LazyGroup."""
    return click.group(cls=LazyGroup, lazy=lazy, **kwargs)
