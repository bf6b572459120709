"""falco.toml, the manifest (SPEC §5): parse and validate with precise errors, edit in place.

``parse_manifest`` (services.project_files.load_manifest reads the file) returns a frozen :class:`Manifest`. Every problem is a
ConfigError that names ``falco.toml:LINE`` and the dotted key (unknown keys, wrong types, bad
constraints, conflicting fields) with a hint.

Edits (`init`, `add`, `remove`) work on the tomlkit document so that comments, order and
formatting survive: ``add_dependency``, ``remove_dependency``, ``init_document_text``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falcopkg.core.reference import (
    DIGEST_RE,
    NAME_RE,
    TAG_RE,
    is_valid_host,
    parse_reference,
    registry_prefix,
)
from falcopkg.core.versions import Constraint, parse_version
from falcopkg.defaults import (
    DEFAULT_ALLOWED_TYPES,
    DEFAULT_ASSETS_DIR,
    DEFAULT_PLATFORMS,
    DEFAULT_PLUGINS_DIR,
    DEFAULT_RULESFILES_DIR,
    INSTALL_DIR_DEFAULTS,
)
from falcopkg.errors import ConfigError, InvalidReferenceError

if TYPE_CHECKING:
    from tomlkit.toml_document import TOMLDocument

    from falcopkg.core.index_config import IndexConfig


TOP_LEVEL_KEYS = ("target", "install", "index", "registries", "dependencies", "falco")
TARGET_KEYS = ("engine_version", "plugin_api_version", "platforms")
INSTALL_KEYS = (*INSTALL_DIR_DEFAULTS, "falco_config_dir", "allowed_types")
REGISTRY_KEYS = ("mirror", "fallback", "ca_file", "insecure", "plain_http", "timeout")
#: ``timeout`` bounds one request to a registry, in seconds.
MAX_REGISTRY_TIMEOUT = 3600
LAYOUT_MIRROR_PREFIX = "oci-layout:"
DEPENDENCY_KEYS = ("version", "ref", "index", "tag", "digest")
FALCO_PLUGIN_KEYS = ("library_path", "init_config", "open_params")


@dataclass(frozen=True)
class TargetSettings:
    """The Falco the artifacts are for; requirements are checked only for what is set."""

    engine_version: str | None = None
    plugin_api_version: str | None = None
    platforms: tuple[str, ...] = DEFAULT_PLATFORMS

    def as_inputs(self) -> dict[str, str]:
        """The set versions by name, as the lock records them."""
        values = {
            "engine_version": self.engine_version,
            "plugin_api_version": self.plugin_api_version,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class InstallSettings:
    rulesfiles_dir: str = DEFAULT_RULESFILES_DIR
    plugins_dir: str = DEFAULT_PLUGINS_DIR
    assets_dir: str = DEFAULT_ASSETS_DIR
    allowed_types: tuple[str, ...] = DEFAULT_ALLOWED_TYPES
    # Where `sync` keeps a Falco config snippet loading what it installed (SPEC §11); None: no.
    falco_config_dir: str | None = None

    def directory_for(self, artifact_type: str) -> str | None:
        """Where artifacts of ``artifact_type`` are installed (None: a type not installable)."""
        from falcopkg.artifact.types import install_dir_key

        key = install_dir_key(artifact_type)
        return None if key is None else str(getattr(self, key))


@dataclass(frozen=True)
class RegistrySettings:
    mirror: str | None = None
    ca_file: Path | None = None  # relative paths are resolved against the manifest's directory
    insecure: bool = False
    plain_http: bool = False
    fallback: bool = False  # a mirror that lacks something: ask the origin instead of failing
    timeout: float | None = None  # seconds for one request; None: the default (30 s)


@dataclass(frozen=True)
class DependencySpec:
    """One ``[dependencies]`` entry.

    ``version`` None means any release. ``ref`` is a registry location ``host/repo`` (no tag
    or digest: those are ``tag``/``digest``); without it the name is looked up in the indexes
    (only ``index`` when given). ``tag`` and ``digest`` pin instead of a version.
    """

    name: str
    version: Constraint | None = None
    ref: str | None = None
    index: str | None = None
    tag: str | None = None
    digest: str | None = None
    # Where falco.toml says it ("falco.toml:12"), for messages; not part of its meaning.
    where: str | None = field(default=None, compare=False)

    @property
    def constraint(self) -> Constraint:
        return self.version if self.version is not None else Constraint.any_version()

    @property
    def is_pinned(self) -> bool:
        return self.tag is not None or self.digest is not None

    def to_input(self) -> str | dict[str, str]:
        """The canonical form the lock records: a constraint string, or a table of the set keys."""
        fields = {
            "digest": self.digest,
            "index": self.index,
            "ref": self.ref,
            "tag": self.tag,
            "version": str(self.version) if self.version is not None else None,
        }
        table = {key: value for key, value in fields.items() if value is not None}
        if set(table) <= {"version"}:
            return table.get("version", "*")
        return table

    def describe(self) -> str:
        """How falco.toml states this dependency, for messages: ``container = "0.3"``."""
        value = self.to_input()
        if isinstance(value, str):
            return f'{self.name} = "{value}"'
        inner = ", ".join(f'{key} = "{text}"' for key, text in value.items())
        return f"{self.name} = {{ {inner} }}"


@dataclass(frozen=True)
class Manifest:
    path: Path
    target: TargetSettings = field(default_factory=TargetSettings)
    install: InstallSettings = field(default_factory=InstallSettings)
    indexes: tuple[IndexConfig, ...] = ()
    registries: dict[str, RegistrySettings] = field(default_factory=dict)
    dependencies: dict[str, DependencySpec] = field(default_factory=dict)
    falco_plugins: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def lock_path(self) -> Path:
        from falcopkg.paths import LOCKFILE_NAME

        return self.directory / LOCKFILE_NAME

    def index_named(self, name: str) -> IndexConfig | None:
        return next((index for index in self.indexes if index.name == name), None)


# --- reading ---------------------------------------------------------------------------


def manifest_from_data(data: dict[str, Any], text: str, path: Path) -> Manifest:
    """The manifest of TOML ``data`` parsed from ``text`` (for line numbers in errors)."""
    return _Reader(text, path).manifest(data)


def parse_manifest(text: str, path: Path) -> Manifest:
    from falcopkg.tomlfile import parse_toml_data

    return _Reader(text, path).manifest(parse_toml_data(text, str(path)))


def parse_registry_settings(
    data: Mapping[str, Any], text: str, path: Path
) -> dict[str, RegistrySettings]:
    """The ``[registries."host"]`` tables of a config file (falco.toml or the user config),
    validated like falco.toml's; relative ``ca_file`` paths are relative to ``path``."""
    value = data.get("registries")
    return _Reader(text, path).registries(value) if value is not None else {}


class _Reader:
    """Validation with the source text at hand, so each error can name its line."""

    def __init__(self, text: str, path: Path) -> None:
        self.text = text
        self.path = path

    def error(
        self, key_path: tuple[str | int, ...], problem: str, hint: str | None = None
    ) -> ConfigError:
        from falcopkg.tomlfile import key_path_line

        line = key_path_line(self.text, key_path) if key_path else None
        where = f"{self.path}:{line}" if line else str(self.path)
        dotted = ".".join(_key_text(part) for part in key_path)
        return ConfigError(
            f"{where}: {dotted}: {problem}" if dotted else f"{where}: {problem}", hint=hint
        )

    def check_keys(
        self, table: Mapping[str, Any], allowed: tuple[str, ...], at: tuple[str, ...]
    ) -> None:
        for key in table:
            if key not in allowed:
                # Quoted as TOML needs them: [registries."localhost:5000"].
                where = (
                    "in [" + ".".join(_key_text(p) for p in at) + "]" if at else "at the top level"
                )
                raise self.error(
                    (*at, key),
                    "unknown key",
                    hint=f"the keys allowed {where} are: {', '.join(allowed)}",
                )

    def table(self, value: Any, at: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(at, f"must be a table, not {_kind(value)}")
        return value

    def string(self, value: Any, at: tuple[str, ...], example: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(
                at, f"must be a non-empty string, not {_kind(value)}", hint=f"write e.g. {example}"
            )
        return value.strip()

    def boolean(self, value: Any, at: tuple[str, ...]) -> bool:
        if not isinstance(value, bool):
            raise self.error(at, f"must be true or false, not {_kind(value)}")
        return value

    def seconds(self, value: Any, at: tuple[str, ...]) -> float:
        """A positive number of seconds, at most MAX_REGISTRY_TIMEOUT (TOML parsed it)."""
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number_ok or not 0 < value <= MAX_REGISTRY_TIMEOUT:
            raise self.error(
                at,
                f"must be a number of seconds between 0 and {MAX_REGISTRY_TIMEOUT}, not {value!r}"
                if number_ok
                else f"must be a number of seconds, not {_kind(value)}",
                hint="write e.g. timeout = 60",
            )
        return float(value)

    def strings(self, value: Any, at: tuple[str, ...], example: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.error(
                at, f"must be an array of strings, not {_kind(value)}", hint=f"write e.g. {example}"
            )
        wrong = next((item for item in value if not isinstance(item, str)), None)
        if wrong is not None:
            raise self.error(
                at, f"must hold only strings, not {_kind(wrong)}", hint=f"write e.g. {example}"
            )
        if len(set(value)) != len(value):
            raise self.error(at, "lists an entry twice")
        return tuple(item.strip() for item in value)

    # -- sections -------------------------------------------------------------------------

    def manifest(self, data: dict[str, Any]) -> Manifest:
        self.check_keys(data, TOP_LEVEL_KEYS, ())
        indexes = self.indexes(data)
        return Manifest(
            path=self.path,
            target=self.target(data.get("target", {})),
            install=self.install(data.get("install", {})),
            indexes=indexes,
            registries=self.registries(data.get("registries", {})),
            dependencies=self.dependencies(data.get("dependencies", {}), indexes),
            falco_plugins=self.falco(data.get("falco", {})),
        )

    def target(self, value: Any) -> TargetSettings:
        at = ("target",)
        table = self.table(value, at)
        self.check_keys(table, TARGET_KEYS, at)
        versions: dict[str, str | None] = {}
        for key in ("engine_version", "plugin_api_version"):
            raw = table.get(key)
            if raw is None:
                versions[key] = None
                continue
            text = self.string(raw, (*at, key), f'{key} = "0.50.0"')
            if parse_version(text) is None or text[:1] in ("v", "V"):
                raise self.error(
                    (*at, key),
                    f"{text!r} is not a semver version",
                    hint=f'write e.g. {key} = "0.50.0"',
                )
            versions[key] = text
        platforms = DEFAULT_PLATFORMS
        if "platforms" in table:
            from falcopkg.artifact.platforms import PLATFORM_RE

            example = 'platforms = ["linux/amd64", "linux/arm64"]'
            platforms = self.strings(table["platforms"], (*at, "platforms"), example)
            if not platforms:
                raise self.error(
                    (*at, "platforms"),
                    "must list at least one platform",
                    hint=f"write e.g. {example}",
                )
            for platform in platforms:
                if not PLATFORM_RE.match(platform):
                    raise self.error(
                        (*at, "platforms"),
                        f"{platform!r} is not an OS/ARCH platform",
                        hint=f"write e.g. {example}",
                    )
        return TargetSettings(versions["engine_version"], versions["plugin_api_version"], platforms)

    def install(self, value: Any) -> InstallSettings:
        at = ("install",)
        table = self.table(value, at)
        self.check_keys(table, INSTALL_KEYS, at)
        defaults = InstallSettings()
        dirs = {
            key: self.string(table[key], (*at, key), f'{key} = "{getattr(defaults, key)}"')
            if key in table
            else getattr(defaults, key)
            for key in INSTALL_DIR_DEFAULTS
        }
        allowed = defaults.allowed_types
        if "allowed_types" in table:
            from falcopkg.artifact.types import ARTIFACT_TYPES

            example = 'allowed_types = ["rulesfile", "plugin"]'
            allowed = self.strings(table["allowed_types"], (*at, "allowed_types"), example)
            for name in allowed:
                if name not in ARTIFACT_TYPES:
                    raise self.error(
                        (*at, "allowed_types"),
                        f"unknown artifact type {name!r}",
                        hint=f"known types: {', '.join(ARTIFACT_TYPES)}",
                    )
        falco_config_dir = None
        if "falco_config_dir" in table:
            falco_config_dir = self.string(
                table["falco_config_dir"],
                (*at, "falco_config_dir"),
                'falco_config_dir = "/etc/falco/falcopkg.d"',
            )
        return InstallSettings(
            dirs["rulesfiles_dir"],
            dirs["plugins_dir"],
            dirs["assets_dir"],
            allowed,
            falco_config_dir,
        )

    def indexes(self, data: dict[str, Any]) -> tuple[IndexConfig, ...]:
        from falcopkg.core.index_config import read_index_configs

        return tuple(read_index_configs(data, self.path, text=self.text))

    def registries(self, value: Any) -> dict[str, RegistrySettings]:
        table = self.table(value, ("registries",))
        result: dict[str, RegistrySettings] = {}
        for host, settings in table.items():
            at = ("registries", host)
            if not is_valid_host(host):
                raise self.error(
                    at,
                    f"{host!r} is not a registry host",
                    hint='write the host with an optional port, e.g. [registries."ghcr.io"] or '
                    '[registries."localhost:5000"] (no scheme, path or spaces)',
                )
            entry = self.table(settings, at)
            self.check_keys(entry, REGISTRY_KEYS, at)
            mirror = (
                self.string(
                    entry["mirror"], (*at, "mirror"), 'mirror = "registry.internal:5000/falco"'
                )
                if "mirror" in entry
                else None
            )
            if mirror is not None:
                mirror = self.mirror(mirror, (*at, "mirror"))
            ca_file = None
            if "ca_file" in entry:
                ca_file = self.path.parent / self.string(
                    entry["ca_file"], (*at, "ca_file"), 'ca_file = "certs/ca.pem"'
                )
            result[host] = RegistrySettings(
                mirror=mirror,
                ca_file=ca_file,
                insecure=self.boolean(entry["insecure"], (*at, "insecure"))
                if "insecure" in entry
                else False,
                plain_http=self.boolean(entry["plain_http"], (*at, "plain_http"))
                if "plain_http" in entry
                else False,
                fallback=self.boolean(entry["fallback"], (*at, "fallback"))
                if "fallback" in entry
                else False,
                timeout=self.seconds(entry["timeout"], (*at, "timeout"))
                if "timeout" in entry
                else None,
            )
        return result

    def mirror(self, text: str, at: tuple[str, ...]) -> str:
        """A mirror as given, checked; an ``oci-layout:`` path made relative to this file's
        directory (so the same setting works from any current directory)."""
        if text.startswith(LAYOUT_MIRROR_PREFIX):
            layout = text[len(LAYOUT_MIRROR_PREFIX) :]
            if not layout.strip():
                raise self.error(
                    at,
                    "the oci-layout: mirror names no directory",
                    hint='mirror = "oci-layout:vendor"',
                )
            return LAYOUT_MIRROR_PREFIX + str(self.path.parent / Path(layout).expanduser())
        prefix = registry_prefix(text)
        if prefix is None:
            raise self.error(
                at,
                f"{text!r} is neither a registry (HOST[:PORT][/PREFIX]) nor oci-layout:DIR",
                hint='mirror = "registry.internal:5000/falco" or mirror = "oci-layout:vendor"',
            )
        return prefix

    def dependencies(
        self, value: Any, indexes: tuple[IndexConfig, ...]
    ) -> dict[str, DependencySpec]:
        table = self.table(value, ("dependencies",))
        index_names = [index.name for index in indexes]
        from dataclasses import replace

        from falcopkg.tomlfile import table_key_lines

        lines = table_key_lines(self.text, ("dependencies",))  # one pass for all of them
        found = {}
        for name, raw in table.items():
            line = lines.get(name)
            where = f"{self.path.name}:{line}" if line else self.path.name
            found[name] = replace(self.dependency(name, raw, index_names), where=where)
        return found

    def dependency(self, name: str, raw: Any, index_names: list[str]) -> DependencySpec:
        at = ("dependencies", name)
        if not NAME_RE.match(name):
            raise self.error(
                at,
                f"{name!r} is not a valid artifact name",
                hint="use letters, digits, `-`, `_` and `.`",
            )
        if isinstance(raw, str):
            return DependencySpec(name, self.constraint(raw, at))
        if not isinstance(raw, Mapping):
            raise self.error(
                at,
                f"must be a version constraint string or a table, not {_kind(raw)}",
                hint=f'write e.g. {name} = "1.2" or {name} = {{ ref = "ghcr.io/org/repo", version = "1" }}',
            )
        self.check_keys(raw, DEPENDENCY_KEYS, at)
        values = {key: self.string(raw[key], (*at, key), _DEPENDENCY_EXAMPLES[key]) for key in raw}
        for first, second in (
            ("version", "tag"),
            ("version", "digest"),
            ("tag", "digest"),
            ("ref", "index"),
        ):
            if first in values and second in values:
                raise self.error(
                    (*at, second),
                    f"`{first}` and `{second}` cannot be used together",
                    hint=_CONFLICT_HINTS[(first, second)],
                )
        version = (
            self.constraint(values["version"], (*at, "version")) if "version" in values else None
        )
        ref = values.get("ref")
        if ref is not None:
            ref = self.registry_location(ref, (*at, "ref"))
        index = values.get("index")
        if index is not None and index not in index_names:
            known = ", ".join(index_names) or "none"
            raise self.error(
                (*at, "index"),
                f"no [[index]] is named {index!r} (known: {known})",
                hint="add it with `falcopkg index add NAME URL`",
            )
        tag = values.get("tag")
        if tag is not None and not TAG_RE.match(tag):
            raise self.error((*at, "tag"), f"{tag!r} is not a valid tag")
        digest = values.get("digest")
        if digest is not None and not DIGEST_RE.match(digest):
            raise self.error(
                (*at, "digest"),
                f"{digest!r} is not a digest",
                hint="a digest looks like sha256: followed by 64 lowercase hex digits",
            )
        return DependencySpec(name, version, ref, index, tag, digest)

    def constraint(self, text: str, at: tuple[str, ...]) -> Constraint:
        try:
            return Constraint.parse(text)
        except ValueError as exc:
            raise self.error(
                at,
                f"invalid version constraint: {exc}",
                hint='use cargo syntax: "4", "0.16", "~1.2", ">=1.2, <2", "=1.2.3" or "*"',
            ) from None

    def registry_location(self, text: str, at: tuple[str, ...]) -> str:
        try:
            reference = parse_reference(text)
        except InvalidReferenceError as exc:
            raise self.error(at, exc.message, hint=exc.hint) from None
        if reference.is_index_name:
            raise self.error(
                at,
                f"{text!r} is not a registry reference",
                hint='write host/repository, e.g. ref = "ghcr.io/acme/rules"; for an index name drop `ref`',
            )
        if reference.tag or reference.digest:
            key = "digest" if reference.digest else "tag"
            raise self.error(
                at,
                f"{text!r} includes a {key}",
                hint=f'write the {key} in its own key: {{ ref = "{reference.locator}", {key} = "{reference.version_ref}" }}',
            )
        return reference.locator

    def falco(self, value: Any) -> dict[str, dict[str, Any]]:
        table = self.table(value, ("falco",))
        self.check_keys(table, ("plugins",), ("falco",))
        plugins = self.table(table.get("plugins", {}), ("falco", "plugins"))
        result: dict[str, dict[str, Any]] = {}
        for name, settings in plugins.items():
            at = ("falco", "plugins", name)
            entry = self.table(settings, at)
            self.check_keys(entry, FALCO_PLUGIN_KEYS, at)
            for key in ("library_path", "open_params"):
                if key in entry and not isinstance(entry[key], str):
                    raise self.error((*at, key), f"must be a string, not {_kind(entry[key])}")
            if "init_config" in entry and not isinstance(entry["init_config"], (str, Mapping)):
                raise self.error(
                    (*at, "init_config"),
                    f"must be a string or a table, not {_kind(entry['init_config'])}",
                )
            result[name] = dict(entry)
        return result


_DEPENDENCY_EXAMPLES = {
    "version": 'version = "1.2"',
    "ref": 'ref = "ghcr.io/acme/rules"',
    "index": 'index = "falcosecurity"',
    "tag": 'tag = "main"',
    "digest": 'digest = "sha256:…"',
}
_CONFLICT_HINTS = {
    ("version", "tag"): "a tag pins one artifact; keep either the version constraint or the tag",
    (
        "version",
        "digest",
    ): "a digest pins one artifact; keep either the version constraint or the digest",
    ("tag", "digest"): "keep the digest to pin exact content, or the tag to follow it",
    ("ref", "index"): "`ref` names the registry directly; `index` looks the name up; keep one",
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def _key_text(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    return part if NAME_RE.match(part) and "." not in part else f'"{part}"'


# --- editing ---------------------------------------------------------------------------


def add_dependency(document: TOMLDocument, name: str, value: str | Mapping[str, str]) -> None:
    """Set ``[dependencies] name`` (a constraint string or an inline table).

    An existing entry is replaced where it stands; a new one goes at the end of the table.
    Comments and the order of everything else are kept.
    """
    import tomlkit

    dependencies = document.get("dependencies")
    if dependencies is None:
        dependencies = tomlkit.table()
        document["dependencies"] = dependencies
    if isinstance(value, str):
        dependencies[name] = value
        return
    # Spelled out so that it reads like cargo's `{ version = "1", index = "x" }`;
    # tomlkit's own inline tables omit the inner spaces.
    pairs = ", ".join(f"{key} = {tomlkit.string(text).as_string()}" for key, text in value.items())
    dependencies[name] = tomlkit.parse(f"inline = {{ {pairs} }}\n")["inline"]


def remove_dependency(document: TOMLDocument, name: str) -> bool:
    """Delete ``[dependencies] name``; False when it was not there."""
    dependencies = document.get("dependencies")
    if dependencies is None or name not in dependencies:
        return False
    del dependencies[name]
    return True


def init_document_text(
    indexes: Sequence[tuple[str, str]], install_dirs: Mapping[str, str] | None = None
) -> str:
    """The commented falco.toml `falcopkg init` writes: ``indexes`` as ``[[index]]`` tables
    (none: dependencies then need ``ref``), ``install_dirs`` written into ``[install]`` (the
    others stay commented out with falcoctl's defaults)."""
    install_dirs = install_dirs or {}
    install_lines = [
        f"{key} = {_toml_string(install_dirs[key])}"
        if key in install_dirs
        else f"# {key} = {_toml_string(default)}"
        for key, default in INSTALL_DIR_DEFAULTS.items()
    ]
    if indexes:
        index_text = "\n".join(
            f"[[index]]\nname = {_toml_string(name)}\nurl = {_toml_string(url)}\n"
            for name, url in indexes
        )
    else:
        index_text = _NO_INDEX_TEXT
    return _INIT_TEMPLATE.format(
        platforms=", ".join(f'"{p}"' for p in DEFAULT_PLATFORMS),
        install="\n".join(install_lines),
        allowed_types=", ".join(f'"{t}"' for t in DEFAULT_ALLOWED_TYPES),
        indexes=index_text,
    )


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are all valid TOML escapes)."""
    import json

    return json.dumps(value, ensure_ascii=False)


_NO_INDEX_TEXT = """\
# No index: dependencies name their registry, e.g.
#   falco-rules = { ref = "ghcr.io/falcosecurity/rules/falco-rules", version = "5" }
# or add one with `falcopkg index add NAME URL`.
"""

_INIT_TEMPLATE = """\
# The Falco rules files and plugins of this project (see `falcopkg --help`).
# `falcopkg add NAME` adds one, `falcopkg lock` pins them in falco.lock, `falcopkg sync` installs.

[target]
# The Falco these artifacts are for; their requirements are checked when set.
# engine_version is Falco's *engine* version, not the Falco release: `falco --version`
# prints it as "Engine:", and Falco's web server's /versions as engine_version_semver
# (the current falco_rules.yaml requires 0.57.0).
# engine_version = "0.57.0"
# plugin_api_version = "3.10.0"
platforms = [{platforms}]

[install]
# Where `falcopkg sync` installs (commented out: falcoctl's defaults); relative paths
# are relative to this file. --rulesfiles-dir etc. and FALCOPKG_RULESFILES_DIR etc.
# override them for one command.
{install}
# allowed_types = [{allowed_types}]

{indexes}
[dependencies]
# falco-rules = "5"
"""
