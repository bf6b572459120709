"""Parsing of command-line values shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from falcopkg.core.reference import parse_argument

# A reference typed on the command line: a malformed one is a usage error (exit 2).
reference_argument = parse_argument

# Options several commands share, declared once so their spelling and help stay alike.
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON on stdout."
)
plain_http_option = click.option(
    "--plain-http", is_flag=True, help="Talk to registries over plain HTTP (no TLS)."
)


def install_dir_options(command: Any) -> Any:
    """--rulesfiles-dir/--plugins-dir/--assets-dir with their environment variables."""
    from falcopkg.defaults import INSTALL_DIR_ENV

    for key, env in reversed(INSTALL_DIR_ENV.items()):
        flag = "--" + key.replace("_", "-")
        command = click.option(
            flag,
            key,
            type=click.Path(file_okay=False, path_type=Path),
            envvar=env,
            help=f"Install directory overriding [install] {key} [env: {env}].",
        )(command)
    return command


def chosen_platform(platform: str | None) -> str:
    """The platform a command installs for: ``platform`` checked, else this machine's."""
    from falcopkg.artifact.platforms import host_platform, validate_platform

    return validate_platform(platform) if platform else host_platform()


def platform_option(command: Any) -> Any:
    """--platform; the command receives the chosen platform (never None)."""
    return click.option(
        "--platform",
        metavar="OS/ARCH",
        callback=lambda _context, _param, value: chosen_platform(value),
        help="Platform whose plugin builds to install (default: this machine).",
    )(command)


def falco_config_dir_option(command: Any) -> Any:
    """--falco-config-dir: where sync keeps the Falco config snippet ([install] falco_config_dir)."""
    return click.option(
        "--falco-config-dir",
        "falco_config_dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="FALCOPKG_FALCO_CONFIG_DIR",
        help="Keep a Falco config snippet loading the installed files here, overriding "
        "[install] falco_config_dir [env: FALCOPKG_FALCO_CONFIG_DIR].",
    )(command)
