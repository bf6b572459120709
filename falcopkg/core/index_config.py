"""The ``[[index]]`` tables of falco.toml and of the user config (SPEC §3, §5, §10).

Pure: reads and edits already-parsed TOML documents. Reading accepts any mapping (a
tomlkit document, or a plain dict from the stdlib ``tomllib`` on the fast read-only path);
editing needs a tomlkit document so that comments and order survive.

    [[index]]
    name = "falcosecurity"
    url = "https://falcosecurity.github.io/falcoctl/index.yaml"
    # allow_http = false      # plain http:// only when set
    # ca_file = "certs/ca.pem" # extra CA for this index's https server

Credentials never live here: `index add --username U --password-stdin` stores them in the
user's credentials file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falcopkg.core.reference import NAME_RE
from falcopkg.errors import ConfigError

INDEX_KEY = "index"
ALLOWED_KEYS = ("name", "url", "allow_http", "ca_file")
CREDENTIAL_KEYS = ("username", "password", "token", "auth")
# What an index URL may be; anything else with `scheme://` is an error, not a local path.
INDEX_URL_SCHEMES = ("https", "http", "file")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class IndexConfig:
    """A configured index. Relative local paths and ``ca_file`` are resolved against
    ``base_dir`` (the directory of the file that declared the index)."""

    name: str
    url: str
    allow_http: bool = False
    ca_file: str | None = None
    base_dir: Path | None = field(default=None, compare=False)

    @property
    def is_remote(self) -> bool:
        return self.url.startswith(("https://", "http://"))

    def local_path(self) -> Path:
        """The file of a ``file://`` or path index (relative paths from ``base_dir``)."""
        if self.url.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            return Path(unquote(urlsplit(self.url).path))
        path = Path(self.url).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def ca_path(self) -> Path | None:
        if self.ca_file is None:
            return None
        path = Path(self.ca_file).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path


OFFICIAL_INDEX = IndexConfig("falcosecurity", "https://falcosecurity.github.io/falcoctl/index.yaml")


def read_index_configs(
    document: Mapping[str, Any],
    source: str | Path,
    *,
    text: str | None = None,
    base_dir: Path | None = None,
) -> list[IndexConfig]:
    """Validate the ``[[index]]`` tables of ``document`` (from the file ``source``).

    Errors name the file and, where it can be found, the line. ``text`` is the source text
    for line numbers (taken from a tomlkit document when omitted); ``base_dir`` defaults
    to the directory of ``source``.
    """
    raw = document.get(INDEX_KEY)
    if raw is None:
        return []
    if text is None and hasattr(document, "as_string"):
        text = document.as_string()
    if base_dir is None:
        base_dir = Path(source).parent
    # Plain values from tomlkit items; tomllib gives them already (no tomlkit import here).
    raw = raw.unwrap() if hasattr(raw, "unwrap") else raw
    if not isinstance(raw, list):
        raise ConfigError(
            f"{_at(source, text)}`index` must be an array of tables",
            hint='write each index as `[[index]]` with `name = "…"` and `url = "…"`',
        )
    configs: list[IndexConfig] = []
    seen: set[str] = set()
    for position, table in enumerate(raw):
        label = f"[[index]] #{position + 1}"

        def at(key: str | None = None, position: int = position) -> str:
            return _at(source, text, position, key)

        if not isinstance(table, dict):
            raise ConfigError(
                f"{at()}{label} must be a table",
                hint='write `[[index]]` followed by `name = "…"` and `url = "…"`',
            )
        for key in table:
            if key in ALLOWED_KEYS:
                continue
            if key in CREDENTIAL_KEYS:
                raise ConfigError(
                    f"{at(key)}{label}: credentials do not belong in {Path(source).name} (`{key}`)",
                    hint="remove the key and run `falcopkg index add NAME URL --username U "
                    "--password-stdin` to store them in your credentials file",
                )
            raise ConfigError(
                f"{at(key)}{label}: unknown key `{key}`",
                hint=f"allowed keys: {', '.join(ALLOWED_KEYS)}",
            )
        name = table.get("name")
        url = table.get("url")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f"{at('name')}{label}: `name` is required and must be a string",
                hint='add `name = "…"` to the table',
            )
        if not NAME_RE.match(name):
            raise ConfigError(
                f"{at('name')}invalid index name {name!r}",
                hint="index names use letters, digits, `.`, `_` and `-`",
            )
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(
                f"{at('url')}index {name!r}: `url` is required and must be a string",
                hint='add `url = "https://…/index.yaml"` (or a local path) to the table',
            )
        if has_userinfo(url):
            raise ConfigError(
                f"{at('url')}index {name!r}: credentials do not belong in the URL",
                hint="remove `user:password@` from the URL and run `falcopkg index add NAME URL "
                "--username U --password-stdin` to store them in your credentials file",
            )
        scheme = url_scheme(url.strip())
        if scheme is not None and scheme not in INDEX_URL_SCHEMES:
            raise ConfigError(
                f"{at('url')}index {name!r}: unsupported URL scheme `{scheme}://`",
                hint="use an https:// URL (http:// with `allow_http = true`), a file:// URL "
                "or a local path",
            )
        allow_http = table.get("allow_http", False)
        if not isinstance(allow_http, bool):
            raise ConfigError(
                f"{at('allow_http')}index {name!r}: `allow_http` must be true or false"
            )
        ca_file = table.get("ca_file")
        if ca_file is not None and not isinstance(ca_file, str):
            raise ConfigError(f"{at('ca_file')}index {name!r}: `ca_file` must be a path string")
        if name in seen:
            raise ConfigError(
                f"{at('name')}duplicate index name {name!r}",
                hint="each [[index]] needs its own name; remove or rename one of them",
            )
        seen.add(name)
        configs.append(
            IndexConfig(name, url.strip(), allow_http, ca_file or None, base_dir=base_dir)
        )
    return configs


def url_scheme(url: str) -> str | None:
    """The ``scheme`` of ``scheme://…``, or None for a plain path."""
    match = _SCHEME_RE.match(url)
    return match.group(1) if match else None


def has_userinfo(url: str) -> bool:
    """Whether ``url`` embeds ``user[:password]@`` (never allowed in config files)."""
    _, sep, rest = url.partition("://")
    return bool(sep) and "@" in rest.split("/", 1)[0]


def add_index(
    document: Any,
    name: str,
    url: str,
    *,
    allow_http: bool = False,
    ca_file: str | None = None,
) -> bool:
    """Append an ``[[index]]`` table to a tomlkit ``document``; comments are kept.

    Returns False when an index with this name and URL is already there (nothing changes).
    An index with this name but another URL is an error: remove it first.
    """
    import tomlkit
    from tomlkit.items import AoT

    existing = document.get(INDEX_KEY)
    for table in existing or ():
        if table.get("name") != name:
            continue
        if table.get("url") == url:
            return False
        raise ConfigError(
            f"an index named {name!r} already exists with URL {table.get('url')}",
            hint=f"run `falcopkg index remove {name}` first, or choose another name",
        )
    if existing is None:
        existing = tomlkit.aot()
        if document.body and not document.as_string().endswith("\n\n"):
            document.add(tomlkit.nl())
        document.append(INDEX_KEY, existing)
    new_table = tomlkit.table() if isinstance(existing, AoT) else tomlkit.inline_table()
    new_table["name"] = name
    new_table["url"] = url
    if allow_http:
        new_table["allow_http"] = True
    if ca_file:
        new_table["ca_file"] = ca_file
    existing.append(new_table)
    _separate_tables(document)
    return True


def remove_index(document: Any, name: str) -> IndexConfig:
    """Remove the ``[[index]]`` named ``name``; returns what it was. Unknown name: error."""
    existing = document.get(INDEX_KEY)
    for position, table in enumerate(existing or ()):
        if table.get("name") == name:
            removed = IndexConfig(
                name,
                str(table.get("url", "")),
                bool(table.get("allow_http", False)),
                table.get("ca_file"),
            )
            del existing[position]
            if len(existing) == 0:
                del document[INDEX_KEY]
            else:
                _separate_tables(document)
            return removed
    raise ConfigError(
        f"no index named {name!r}",
        hint="run `falcopkg index list` to see the configured indexes",
    )


def _separate_tables(document: Any) -> None:
    """Keep a blank line after each [[index]] table that another table follows (tomlkit
    stores that line inside the table, so added or removed tables would lose it)."""
    import tomlkit
    from tomlkit.items import AoT, Whitespace

    tables = document.get(INDEX_KEY)
    if not isinstance(tables, AoT) or list(document.keys())[-1] == INDEX_KEY:
        return
    for table in tables:
        body = table.value.body
        if not body or not (isinstance(body[-1][1], Whitespace) and "\n" in body[-1][1].s):
            table.add(tomlkit.nl())


def _at(
    source: str | Path, text: str | None, position: int | None = None, key: str | None = None
) -> str:
    """``file:line: `` for messages, ``file: `` when no line is found (best effort).

    The line is that of ``key`` inside the ``position``-th ``[[index]]`` table, else of that
    table's header, else of the ``index`` key.
    """
    line = None
    if text is not None:
        if position is not None:
            line = _table_line(text, position, key)
        if line is None:
            from falcopkg.tomlfile import key_line

            line = key_line(text, INDEX_KEY)
    return f"{source}:{line}: " if line is not None else f"{source}: "


def _table_line(text: str, position: int, key: str | None) -> int | None:
    """Line of ``key`` in the ``position``-th ``[[index]]`` table (or of its header)."""
    lines = text.splitlines()
    headers = [n for n, line in enumerate(lines) if line.replace(" ", "").startswith("[[index]]")]
    if position >= len(headers):
        return None
    start = headers[position]
    if key is not None:
        for number in range(start + 1, len(lines)):
            stripped = lines[number].strip()
            if stripped.startswith("["):
                break
            if stripped.replace(" ", "").startswith((f"{key}=", f'"{key}"=')):
                return number + 1
    return start + 1
