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
from pathlib import Path

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
    if options is None or (options.get("frozen") and options.get("locked")):
        return None
    try:
        from falcopkg.defaults import INSTALL_DIR_ENV, host_platform
        from falcopkg.workflows.noop import DirectoryOverrides, nothing_to_do, quick_noop
        from falcopkg.workflows.project import Project

        manifest = _manifest_path(options.get("project"))
        if manifest is None:
            return None
        platform = options.get("platform") or host_platform()
        if "/" not in platform:
            return None  # the full CLI explains the mistake
        given = {key: os.environ.get(env) for key, env in INSTALL_DIR_ENV.items()}
        given["falco_config_dir"] = os.environ.get("FALCOPKG_FALCO_CONFIG_DIR")
        for key in (*INSTALL_DIR_ENV, "falco_config_dir"):
            if options.get(key):
                given[key] = options[key]
        overrides = DirectoryOverrides.of(**given)
        project = Project.open(manifest, cache_dir=manifest.parent, reporter=_NoReporter())
        counts = quick_noop(project, platform, overrides, frozen=bool(options.get("frozen")))
    except Exception:  # any doubt: the full CLI, which reports errors properly
        return None
    if counts is None:
        return None
    return "" if options.get("quiet") else nothing_to_do(*counts)


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


def _manifest_path(project: str | None) -> Path | None:
    """falco.toml as the full CLI finds it: -C DIR (or a falco.toml path), else the nearest
    in the current directory or its parents."""
    if project is not None:
        given = Path(project)
        candidate = given if given.name == "falco.toml" else given / "falco.toml"
        return candidate if candidate.is_file() else None
    start = Path.cwd()
    for directory in (start, *start.parents):
        candidate = directory / "falco.toml"
        if candidate.is_file():
            return candidate
    return None


class _NoReporter:
    """The fast path reports nothing but its one line."""

    def info(self, message: str) -> None:
        pass

    def detail(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def success(self, message: str) -> None:
        pass

    def download_progress(self) -> None:
        return None
