"""The `falcopkg` console script: a no-op `sync` answered before click is even imported.

A plain `falcopkg sync` (with the global options and sync flags listed below) on a project
whose last complete sync is intact costs little more than starting Python: this module and
the workflows' no-op check import only the standard library. Anything else, or any doubt
(an unknown option, a value it does not parse, a changed input), goes to the full CLI in
falcopkg.cli.main, which gives the same answer the long way.
"""

from __future__ import annotations

import os
import sys

# Flags the fast path understands: (takes a value, key). Everything else → the full CLI.
_FLAGS = {
    "-q": (False, "quiet"),
    "--quiet": (False, "quiet"),
    "-v": (False, "verbose"),
    "--verbose": (False, "verbose"),
    "--color": (False, None),
    "--no-color": (False, None),
    "--frozen": (False, "frozen"),
    "--locked": (False, "locked"),
    "--offline": (False, None),
    "-C": (True, "project"),
    "--project": (True, "project"),
    "--cache-dir": (True, None),
    "--platform": (True, "platform"),
    "--rulesfiles-dir": (True, "rulesfiles_dir"),
    "--plugins-dir": (True, "plugins_dir"),
    "--assets-dir": (True, "assets_dir"),
    "--falco-config-dir": (True, "falco_config_dir"),
}


def main() -> None:
    args = sys.argv[1:]
    if "sync" in args:
        message = _quick_sync(args)
        if message is not None:
            if message:
                sys.stderr.write(message + "\n")
            sys.exit(0)
    from falcopkg.cli.main import main as full_main

    full_main()


def _quick_sync(args: list[str]) -> str | None:
    """The message of a no-op sync ("" when quiet), or None: let the full CLI decide."""
    options = _parse(args)
    if options is None or ("frozen" in options and "locked" in options):
        return None
    if any(not value for value in options.values()):
        return None  # an empty value: the full CLI says what it means
    try:
        from falcopkg.defaults import INSTALL_DIR_ENV, host_platform
        from falcopkg.workflows.noop import (
            FALCO_CONFIG_ENV,
            FALCO_CONFIG_KEY,
            absolute_dir,
            fast_noop,
            nothing_to_do,
        )

        manifest = _manifest_path(options.get("project"))
        if manifest is None:
            return None
        platform = options.get("platform") or host_platform()
        if "/" not in platform:
            return None  # the full CLI explains the mistake
        overrides: dict[str, str] = {}
        for key, env in (*INSTALL_DIR_ENV.items(), (FALCO_CONFIG_KEY, FALCO_CONFIG_ENV)):
            value = options.get(key) or os.environ.get(env)  # click: an empty variable is unset
            if value:
                overrides[key] = absolute_dir(value)
        counts = fast_noop(manifest, platform, overrides, frozen="frozen" in options)
    except Exception:  # any doubt: the full CLI, which reports errors properly
        return None
    if counts is None:
        return None
    return "" if "quiet" in options else nothing_to_do(*counts)


def _parse(args: list[str]) -> dict[str, str] | None:
    """The options of ``args`` if they are exactly `sync` with known flags, else None."""
    options: dict[str, str] = {}
    seen_sync = False
    position = 0
    while position < len(args):
        arg = args[position]
        position += 1
        if arg == "sync" and not seen_sync:
            seen_sync = True
            continue
        name, equals, inline = arg.partition("=")
        spec = _FLAGS.get(name if equals else arg)
        if spec is None:
            return None
        takes_value, key = spec
        if takes_value:
            if equals:
                value = inline
            elif position < len(args):
                value = args[position]
                position += 1
            else:
                return None
            if key is not None:
                options[key] = value
        elif equals:
            return None
        elif key is not None:
            options[key] = "1"
    return options if seen_sync else None


def _manifest_path(project: str | None) -> str | None:
    """falco.toml as the full CLI finds it (falcopkg.cli.context): in the -C directory, else
    the nearest in the current directory or its parents."""
    from falcopkg.workflows.noop import MANIFEST_NAME

    if project is not None:
        candidate = os.path.join(project, MANIFEST_NAME)
        return candidate if os.path.isfile(candidate) else None
    directory = os.getcwd()
    while True:
        candidate = os.path.join(directory, MANIFEST_NAME)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
