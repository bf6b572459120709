"""`falcopkg index add|remove|list|update` (SPEC §3, §10).

The commands edit the project's falco.toml inside a project and the user config outside
one or with ``--global``. Credentials given to ``index add`` go to the credentials file,
never into a config file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.output import render_table
from falcopkg.cli.params import json_option
from falcopkg.core.index_config import IndexConfig, add_index, has_userinfo, remove_index
from falcopkg.core.reference import NAME_RE
from falcopkg.errors import FalcopkgError, UsageError
from falcopkg.services.indexes import IndexStore, describe, redact_url
from falcopkg.services.userconfig import IndexScope, effective_indexes, index_scope

GLOBAL_HELP = "Act on the user config instead of the project's falco.toml."


@click.group()
def index() -> None:
    """Manage the indexes that artifact names are looked up in."""


# -- add ------------------------------------------------------------------------------------


@index.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--username", help="User name for HTTP basic auth (stored in the credentials file).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--global", "use_global", is_flag=True, help=GLOBAL_HELP)
@click.option("--no-fetch", is_flag=True, help="Do not fetch the index to validate it.")
@click.option("--allow-http", is_flag=True, help="Allow a plain http:// URL (insecure).")
@click.option("--ca-file", help="CA bundle that signed the index server's certificate.")
@pass_app
def add(
    app: AppContext,
    name: str,
    url: str,
    username: str | None,
    password_stdin: bool,
    use_global: bool,
    no_fetch: bool,
    allow_http: bool,
    ca_file: str | None,
) -> None:
    """Add index NAME at URL (https://, file:// or a local path)."""
    from falcopkg.oci.credentials import Credential, CredentialStore

    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid index name {name!r}",
            hint="index names use letters, digits, `.`, `_` and `-`",
        )
    scope = index_scope(app.find_manifest(), use_global=use_global)
    url = normalize_index_url(url, scope, allow_http)
    if ca_file is not None:
        ca_file = _relative_to_scope(Path(ca_file), scope)
    credential = None
    if username is not None:
        credential = Credential(username, _read_password(password_stdin))
    elif password_stdin:
        raise UsageError("--password-stdin needs --username")

    document = scope.load()
    existing = {config.name: config for config in scope.index_configs(document)}
    config = IndexConfig(name, url, allow_http, ca_file, base_dir=scope.base_dir)
    if name in existing and existing[name].url != url:
        # add_index raises the same error; checking first avoids a useless fetch.
        add_index(document, name, url)

    entries: int | None = None
    if not no_fetch:
        store = IndexStore(app.cache_dir)
        app.console.detail(f"fetching {describe(config)}")
        entries = len(store.update(config, allow_http=allow_http, credential=credential).entries)
    if credential is not None:
        CredentialStore().set_index(name, credential)
        app.console.detail(f"stored the credentials of index {name} in the credentials file")
    changed = add_index(document, name, url, allow_http=allow_http, ca_file=ca_file)
    if changed:
        scope.save(document)
    counted = f": {entries} entries" if entries is not None else ""
    if changed:
        app.console.success(f"added index {name} ({redact_url(url)}) to {scope.label}{counted}")
    else:
        app.console.info(f"index {name} ({redact_url(url)}) is already in {scope.label}{counted}")


def normalize_index_url(url: str, scope: IndexScope, allow_http: bool) -> str:
    """An index URL typed on the command line, checked, as ``scope`` stores it."""
    if has_userinfo(url):
        raise UsageError(
            "credentials do not belong in the index URL",
            hint="pass `--username U --password-stdin` instead; they go to your credentials file",
        )
    if url.startswith("http://") and not allow_http:
        raise UsageError(
            f"plain http:// is not allowed for indexes: {redact_url(url)}",
            hint="use an https:// URL, or pass --allow-http if you trust the network",
        )
    if url.startswith(("https://", "http://", "file://")):
        return url
    if "://" in url:
        raise UsageError(
            f"unsupported index URL {redact_url(url)}",
            hint="use https://, file:// or a local path",
        )
    return _relative_to_scope(Path(url), scope)


def _relative_to_scope(path: Path, scope: IndexScope) -> str:
    """A path typed on the command line, as stored: a relative one relative to falco.toml in
    a project (the project can move); an absolute one, and any in the user config, absolute."""
    absolute = Path(os.path.abspath(path.expanduser()))
    if not scope.is_project or path.expanduser().is_absolute():
        return str(absolute)
    return os.path.relpath(absolute, scope.base_dir.resolve())


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("no password on standard input", hint="pipe it: `echo $PW | …`")
        return password
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, err=True))
    raise UsageError(
        "--username needs a password", hint="pass --password-stdin and pipe the password in"
    )


# -- remove ---------------------------------------------------------------------------------


@index.command("remove")
@click.argument("names", nargs=-1, required=True)
@click.option("--global", "use_global", is_flag=True, help=GLOBAL_HELP)
@click.option(
    "--force", is_flag=True, help="Remove even if dependencies name the index (`index = NAME`)."
)
@pass_app
def remove(app: AppContext, names: tuple[str, ...], use_global: bool, force: bool) -> None:
    """Remove indexes (and their cached copies) by NAME."""
    from falcopkg.oci.credentials import CredentialStore
    from falcopkg.services.userconfig import read_index_configs_fast

    manifest = app.find_manifest()
    scope = index_scope(manifest, use_global=use_global)
    document = scope.load()
    configured = {config.name: config for config in scope.index_configs(document)}
    # The other scope may still use a name or URL: keep its credentials and cache then.
    other = index_scope(manifest, use_global=scope.is_project) if manifest else None
    still_used = (
        read_index_configs_fast(other.path, missing_ok=True)
        if other is not None and other.path != scope.path
        else []
    )
    unknown = [name for name in names if name not in configured]
    if unknown:
        hint = "run `falcopkg index list` to see the configured indexes"
        if other is not None and all(any(c.name == n for c in still_used) for n in unknown):
            flag = "with --global" if scope.is_project else "without --global"
            hint = f"it is in {other.label}: run the command {flag}"
        raise FalcopkgError(
            f"no index named {', '.join(repr(n) for n in unknown)} in {scope.label}", hint=hint
        )
    users = _dependencies_naming(document, names) if scope.is_project else {}
    if users and not force:
        raise FalcopkgError(
            f"{scope.label}: {_naming_text(users)}; removing it would leave falco.toml invalid",
            hint="change or remove those dependencies first (`falcopkg remove NAME`), or pass "
            "--force to remove the index anyway",
        )
    for name in dict.fromkeys(names):
        remove_index(document, name)
    scope.save(document)
    if users:
        app.console.warn(
            f"{_naming_text(users)}: `falcopkg lock`, `sync` and `add` fail until the "
            "index is added back or those dependencies change"
        )

    store = IndexStore(app.cache_dir)
    credentials = CredentialStore()
    for name in dict.fromkeys(names):
        config = configured[name]
        if not any(c.name == name for c in still_used) and credentials.get_index(name):
            credentials.remove_index(name)
            app.console.detail(f"removed the stored credentials of index {name}")
        if not any(store.cache_key(c) == store.cache_key(config) for c in still_used):
            store.remove(config)
        app.console.success(f"removed index {name} from {scope.label}")


def _dependencies_naming(document: Any, names: Sequence[str]) -> dict[str, list[str]]:
    """index name -> the dependencies of ``document`` that say ``index = "NAME"``."""
    dependencies = document.get("dependencies")
    users: dict[str, list[str]] = {}
    if not isinstance(dependencies, dict):
        return users
    for dependency, value in dependencies.items():
        index_name = value.get("index") if isinstance(value, dict) else None
        if isinstance(index_name, str) and index_name in names:
            users.setdefault(str(index_name), []).append(str(dependency))
    return users


def _naming_text(users: dict[str, list[str]]) -> str:
    return "; ".join(
        f"{'dependencies' if len(deps) > 1 else 'dependency'} {', '.join(deps)} "
        f"{'use' if len(deps) > 1 else 'uses'} index {name!r}"
        for name, deps in users.items()
    )


# -- list -----------------------------------------------------------------------------------


@index.command("list")
@click.option("--global", "use_global", is_flag=True, help=GLOBAL_HELP)
@json_option
@pass_app
def list_(app: AppContext, use_global: bool, as_json: bool) -> None:
    """List the configured indexes with their cached entry counts."""
    from falcopkg.services.userconfig import read_index_configs_fast

    scope = index_scope(app.find_manifest(), use_global=use_global)
    configs = read_index_configs_fast(scope.path, missing_ok=not scope.is_project)
    store = IndexStore(app.cache_dir)
    rows = []
    for config in configs:
        info = store.cache_info(config)
        rows.append(
            {
                "name": config.name,
                "url": redact_url(config.url),
                "entries": info.entries if info else None,
                "fetched_at": info.fetched_at if info else None,
            }
        )
    if as_json:
        app.console.json(rows)
    elif rows:
        app.console.data(
            render_table(
                ("NAME", "URL", "ENTRIES", "FETCHED"),
                [
                    (
                        str(row["name"]),
                        str(row["url"]),
                        "-" if row["entries"] is None else str(row["entries"]),
                        str(row["fetched_at"] or "never"),
                    )
                    for row in rows
                ],
            )
        )
    if not rows:
        app.console.info(f"no indexes configured in {scope.label}")
        app.console.info(
            "hint: artifact commands use the official falcosecurity index; add another with "
            "`falcopkg index add NAME URL`"
        )


# -- update ---------------------------------------------------------------------------------


@index.command("update")
@click.argument("names", nargs=-1)
@click.option("--global", "use_global", is_flag=True, help=GLOBAL_HELP)
@pass_app
def update(app: AppContext, names: tuple[str, ...], use_global: bool) -> None:
    """Fetch the indexes again (all, or NAME…); unchanged ones are answered 304."""
    from falcopkg.services.userconfig import read_index_configs_fast

    manifest = app.find_manifest()
    scope = index_scope(manifest, use_global=use_global)
    configs = read_index_configs_fast(scope.path, missing_ok=not scope.is_project)
    if not configs:
        # Nothing here: refresh what artifact commands would use (possibly the official one).
        configs = effective_indexes(None if use_global else manifest).configs
    selected = _select(configs, names, scope)
    store = IndexStore(app.cache_dir)
    failures = 0
    for config in selected:
        try:
            result = store.update(config)
        except FalcopkgError as exc:
            failures += 1
            app.console.error(exc.message, exc.hint)
            continue
        if result.not_modified:
            app.console.info(f"{config.name}: up to date (304)")
        elif not result.changed:
            app.console.info(f"{config.name}: up to date (unchanged)")
        else:
            app.console.info(f"{config.name}: updated: {len(result.entries)} entries")
    if failures:
        raise FalcopkgError(
            f"{failures} of {len(selected)} indexes could not be updated (see above)"
        )


def _select(
    configs: Sequence[IndexConfig], names: Sequence[str], scope: IndexScope
) -> list[IndexConfig]:
    if not names:
        return list(configs)
    by_name = {config.name: config for config in configs}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise FalcopkgError(
            f"no index named {', '.join(repr(n) for n in unknown)} in {scope.label}",
            hint="run `falcopkg index list` to see the configured indexes",
        )
    return [by_name[name] for name in dict.fromkeys(names)]
