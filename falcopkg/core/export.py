"""Deploy files made from falco.lock (SPEC §11): Helm values, falcoctl.yaml, a Falco snippet.

PURE: no network and no filesystem; the caller reads falco.toml and falco.lock and writes
the text. Each export is a plain dict built in a fixed order, rendered by
:func:`render_yaml` with a header comment, so the same lock always gives the same bytes.

- :func:`helm_values`: values for the falcosecurity/falco chart. falcoctl's init container
  installs every locked artifact by digest (``host/repo@<root digest>``: the image index for
  plugins, so each node pulls its own platform) with dependency resolution off; Falco is
  told which rules files and plugins to load. The chart appends its own
  ``collectors.containerEngine.pluginRef`` (and ``collectors.kubernetes.pluginRef``) to the
  install refs and drops exact duplicates, so those are set to the same pinned refs, and the
  collector is disabled when its plugin is not locked (nothing unpinned is ever installed).
- :func:`falcoctl_config`: the same install as a falcoctl.yaml for a host.
- :func:`falco_config`: a Falco ``config.d`` snippet with the absolute paths of what `sync`
  installs for one platform.

Load order (:func:`load_order`): dependencies first; among artifacts free to go next, one
that installs ``falco_rules.yaml`` (the official base rules) goes first, then by name.
"""

from __future__ import annotations

import heapq
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from falcopkg.core.reference import registry_prefix
from falcopkg.errors import ConfigError, LockError, UsageError

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock, LockedArtifact, LockedLayer
    from falcopkg.core.manifest import Manifest

LOCK_HINT = "run `falcopkg lock`"

# Where the chart's falcoctl init container installs (its emptyDir mounts, chart 9.x), and
# where the Falco container sees the same volumes.
CHART_RULESFILES_DIR = "/rulesfiles"
CHART_PLUGINS_DIR = "/plugins"
FALCO_RULESFILES_DIR = "/etc/falco"
FALCO_PLUGINS_DIR = "/usr/share/falco/plugins"  # relative library_path resolves here
# Falco's (and the chart's) default rules_files after the base rules: kept last so local
# overrides still apply. Falco skips entries that do not exist.
FALCO_LOCAL_RULES = ("/etc/falco/falco_rules.local.yaml", "/etc/falco/rules.d")
OFFICIAL_BASE_RULES = "falco_rules.yaml"
RULES_SUFFIXES = (".yaml", ".yml")  # what Falco reads as rules files
# Types the chart's falcoctl can install: it mounts no assets directory.
HELM_TYPES = ("plugin", "rulesfile")
# Plugins the chart manages itself (Falco plugin name -> its values key under
# `collectors`): it appends `pluginRef` to the install refs when the collector is enabled,
# and adds its own `falco.plugins` entry unless one with that name is there.
CHART_COLLECTORS = {"container": "containerEngine", "k8smeta": "kubernetes"}


@dataclass(frozen=True)
class ExportedPlugin:
    """A locked plugin as Falco loads it."""

    artifact: str  # the locked artifact's name
    name: str  # the Falco plugin name (load_plugins, plugins[].name)
    library: str  # the library's path inside the install directory (from the layer)
    settings: Mapping[str, Any]  # [falco.plugins.NAME]: library_path, init_config, open_params
    configured: bool  # whether falco.toml has settings for it


# --- what is exported, in which order ------------------------------------------------------


def exported_artifacts(
    lock: Lock, allowed_types: Iterable[str], supported: Iterable[str] | None = None
) -> tuple[list[LockedArtifact], list[tuple[str, str]]]:
    """The locked artifacts an export installs, in load order, and the skipped ones with why.

    Like `sync`, an artifact whose type is not in ``[install] allowed_types`` is skipped;
    ``supported`` limits the types further (the chart cannot install assets).
    """
    allowed = set(allowed_types)
    possible = None if supported is None else set(supported)
    chosen: list[LockedArtifact] = []
    skipped: list[tuple[str, str]] = []
    for artifact in lock.artifacts:
        if artifact.type not in allowed:
            skipped.append(
                (artifact.name, f"type {artifact.type} is not in [install].allowed_types")
            )
        elif possible is not None and artifact.type not in possible:
            skipped.append((artifact.name, f"the falco chart cannot install {artifact.type}s"))
        else:
            chosen.append(artifact)
    return load_order(chosen), skipped


def load_order(artifacts: Sequence[LockedArtifact]) -> list[LockedArtifact]:
    """Dependencies before their dependents; the official base rules first, then by name.

    Dependencies outside ``artifacts`` are ignored; a cycle (a hand-edited lock) cannot
    be ordered, so its members follow the rest by name.
    """
    by_name = {artifact.name: artifact for artifact in artifacts}
    waiting_on = {
        artifact.name: {d for d in artifact.dependencies if d in by_name and d != artifact.name}
        for artifact in artifacts
    }
    dependents: dict[str, list[str]] = {name: [] for name in by_name}
    for name, dependencies in waiting_on.items():
        for dependency in dependencies:
            dependents[dependency].append(name)

    def priority(name: str) -> tuple[int, str]:
        return (0 if _is_base_rules(by_name[name]) else 1, name)

    ready = [priority(name) for name, deps in waiting_on.items() if not deps]
    heapq.heapify(ready)
    ordered: list[LockedArtifact] = []
    while ready:
        _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for dependent in dependents[name]:
            waiting_on[dependent].discard(name)
            if not waiting_on[dependent]:
                heapq.heappush(ready, priority(dependent))
    placed = {artifact.name for artifact in ordered}
    ordered += [by_name[name] for name in sorted(by_name) if name not in placed]
    return ordered


def _is_base_rules(artifact: LockedArtifact) -> bool:
    return (
        artifact.type == "rulesfile"
        and artifact.layer is not None
        and OFFICIAL_BASE_RULES in artifact.layer.files
    )


def rules_file_paths(artifact: LockedArtifact) -> list[str]:
    """The rules files (``*.yaml``/``*.yml``) a rulesfile artifact installs, relative, sorted."""
    layer = _listed_layer(artifact, artifact.layer)
    return sorted(path for path in layer.files if path.endswith(RULES_SUFFIXES))


def plugin_for(
    artifact: LockedArtifact, manifest: Manifest, platform: str | None = None
) -> ExportedPlugin:
    """How Falco loads a locked plugin: its name, library file and [falco.plugins] settings.

    The library is the layer's one ``*.so`` file (``lib<artifact>.so`` when there are
    several). ``platform`` None means every locked platform, which must agree (the chart
    serves every node with one `falco.plugins` entry). The Falco name is the library's
    ``lib<NAME>.so``, as the official plugins are named, else the artifact's name; settings
    are ``[falco.plugins.<artifact>]``, else ``[falco.plugins.<plugin name>]``.
    """
    if platform is None:
        layers = [locked.layer for _, locked in sorted(artifact.platforms.items())]
        if artifact.layer is not None:
            layers.append(artifact.layer)
    else:
        layer = artifact.layer_for(platform)
        if layer is None:
            raise LockError(
                f"falco.lock: {artifact.label()} is not locked for platform {platform}",
                hint=f"add {platform!r} to [target].platforms in falco.toml and run "
                "`falcopkg lock`, or pass another `--platform`",
            )
        layers = [layer]
    settings = manifest.falco_plugins.get(artifact.name)
    libraries = {_library(artifact, _listed_layer(artifact, layer), settings) for layer in layers}
    if not libraries:
        raise LockError(
            f"falco.lock: plugin {artifact.label()} has no locked platform", hint=LOCK_HINT
        )
    if len(libraries) > 1:
        raise ConfigError(
            f"plugin {artifact.label()}: its platforms install differently named libraries "
            f"({', '.join(sorted(libraries))})",
            hint=f"set library_path in [falco.plugins.{artifact.name}] in falco.toml",
        )
    library = libraries.pop()
    name = _plugin_name(library) or artifact.name
    if settings is None:
        settings = manifest.falco_plugins.get(name)
    return ExportedPlugin(artifact.name, name, library, settings or {}, settings is not None)


def _plugin_name(library: str) -> str | None:
    """``NAME`` of a ``lib<NAME>.so`` library file, the official plugins' naming."""
    stem = posixpath.basename(library)
    if stem.startswith("lib") and stem.endswith(".so") and len(stem) > len("lib.so"):
        return stem[len("lib") : -len(".so")]
    return None


def _library(
    artifact: LockedArtifact, layer: LockedLayer, settings: Mapping[str, Any] | None
) -> str:
    libraries = [path for path in layer.files if path.endswith(".so")]
    if len(libraries) == 1:
        return libraries[0]
    preferred = f"lib{artifact.name}.so"
    if preferred in libraries:
        return preferred
    configured = settings.get("library_path") if settings is not None else None
    if isinstance(configured, str):
        return posixpath.basename(configured)
    problem = "no *.so library" if not libraries else f"several libraries ({', '.join(libraries)})"
    raise ConfigError(
        f"plugin {artifact.label()}: its layer holds {problem}, so falcopkg cannot tell "
        "which one Falco should load",
        hint=f"set library_path in [falco.plugins.{artifact.name}] in falco.toml",
    )


def _listed_layer(artifact: LockedArtifact, layer: LockedLayer | None) -> LockedLayer:
    if layer is None or not layer.files:
        raise LockError(
            f"falco.lock does not list the files {artifact.label()} installs",
            hint=f"{LOCK_HINT} to record them",
        )
    return layer


def unmatched_plugin_settings(manifest: Manifest, lock: Lock) -> list[str]:
    """``[falco.plugins.NAME]`` tables that name no locked plugin (likely a typo)."""
    names: set[str] = set()
    for artifact in lock.artifacts:
        if artifact.type != "plugin":
            continue
        names.add(artifact.name)
        layers = [locked.layer for locked in artifact.platforms.values()]
        for layer in [*layers, artifact.layer]:
            names.update(filter(None, map(_plugin_name, layer.files if layer else ())))
    return sorted(name for name in manifest.falco_plugins if name not in names)


# --- the three exports ---------------------------------------------------------------------


def helm_values(lock: Lock, manifest: Manifest, *, mirror: str | None = None) -> dict[str, Any]:
    """Values for the falcosecurity/falco chart (9.x) that install and load exactly the lock.

    Lists replace the chart's (and a user's earlier values file's) lists when Helm merges;
    maps merge. ``mirror`` (``host[/prefix]``) moves every ref to ``mirror/<repository>``
    with the same digest.
    """
    prefix = parse_mirror_prefix(mirror) if mirror is not None else None
    artifacts, _ = exported_artifacts(lock, manifest.install.allowed_types, HELM_TYPES)
    refs = {artifact.name: _ref(artifact, prefix) for artifact in artifacts}
    plugins = _plugins(artifacts, manifest, None)
    by_plugin_name = {plugin.name: plugin for plugin in plugins}

    collectors: dict[str, Any] = {}
    for plugin_name, key in sorted(CHART_COLLECTORS.items(), key=lambda item: item[1]):
        managed = by_plugin_name.get(plugin_name)
        if managed is None:
            # Left enabled, the chart would install its own unpinned plugin.
            collectors[key] = {"enabled": False}
        else:
            collectors[key] = {"enabled": True, "pluginRef": refs[managed.artifact]}
    # A chart-managed plugin without falco.toml settings keeps the chart's own entry (its
    # init_config matches the sockets and services the chart sets up); the chart adds it
    # to load_plugins itself, and listing it here without an entry would stop Falco.
    loaded = [p for p in plugins if p.name not in CHART_COLLECTORS or p.configured]
    rules = _rules_files(artifacts, FALCO_RULESFILES_DIR)
    allowed = set(manifest.install.allowed_types) & set(HELM_TYPES)
    types = sorted({artifact.type for artifact in artifacts} | allowed)
    return {
        "collectors": collectors,
        "falco": {
            "rules_files": rules,
            "load_plugins": [plugin.name for plugin in loaded],
            "plugins": [_plugin_entry(plugin, plugin.library) for plugin in loaded],
        },
        "falcoctl": {
            "artifact": {"install": {"enabled": True}, "follow": {"enabled": False}},
            "config": {
                "indexes": _indexes(manifest),
                "artifact": {
                    "allowedTypes": types,
                    "install": {
                        "refs": sorted(refs.values()),
                        "resolveDeps": False,
                        "rulesfilesDir": CHART_RULESFILES_DIR,
                        "pluginsDir": CHART_PLUGINS_DIR,
                    },
                    "follow": {"refs": []},
                },
            },
        },
    }


def falcoctl_config(
    lock: Lock,
    manifest: Manifest,
    *,
    rulesfiles_dir: str,
    plugins_dir: str,
    assets_dir: str,
    mirror: str | None = None,
) -> dict[str, Any]:
    """A falcoctl.yaml that installs exactly the lock (`falcoctl artifact install`, no args)."""
    prefix = parse_mirror_prefix(mirror) if mirror is not None else None
    artifacts, _ = exported_artifacts(lock, manifest.install.allowed_types)
    types = sorted({a.type for a in artifacts} | set(manifest.install.allowed_types))
    install: dict[str, Any] = {
        "refs": sorted(_ref(artifact, prefix) for artifact in artifacts),
        "resolveDeps": False,
        "rulesfilesDir": rulesfiles_dir,
        "pluginsDir": plugins_dir,
    }
    if "asset" in types:
        install["assetsDir"] = assets_dir
    return {
        "indexes": _indexes(manifest),
        "artifact": {"allowedTypes": types, "install": install},
    }


def falco_config(
    lock: Lock, manifest: Manifest, *, platform: str, rulesfiles_dir: str, plugins_dir: str
) -> dict[str, Any]:
    """A Falco config.d snippet loading what `sync` installs for ``platform``.

    ``rulesfiles_dir``/``plugins_dir`` are the absolute install directories. The snippet
    lists everything itself (rules files in load order, then Falco's local rules entries),
    so it is meant to replace the main config's lists (``strategy: override``).
    """
    artifacts, _ = exported_artifacts(lock, manifest.install.allowed_types)
    rules = _rules_files(artifacts, rulesfiles_dir)
    plugins = _plugins(artifacts, manifest, platform)
    return {
        "rules_files": rules,
        "load_plugins": [plugin.name for plugin in plugins],
        "plugins": [
            _plugin_entry(plugin, posixpath.join(plugins_dir, plugin.library)) for plugin in plugins
        ],
    }


def _rules_files(artifacts: Sequence[LockedArtifact], directory: str) -> list[str]:
    """Absolute paths of the installed rules files in load order, then Falco's local ones."""
    paths: list[str] = []
    providers: dict[str, str] = {}
    for artifact in artifacts:
        if artifact.type != "rulesfile":
            continue
        for path in rules_file_paths(artifact):
            _claim(providers, path, artifact, "install")
            paths.append(posixpath.join(directory, path))
    return [*paths, *(p for p in FALCO_LOCAL_RULES if p not in paths)]


def _plugins(
    artifacts: Sequence[LockedArtifact], manifest: Manifest, platform: str | None
) -> list[ExportedPlugin]:
    """The locked plugins in load order; no two may share a library file or a Falco name."""
    plugins: list[ExportedPlugin] = []
    libraries: dict[str, str] = {}
    names: dict[str, str] = {}
    for artifact in artifacts:
        if artifact.type != "plugin":
            continue
        plugin = plugin_for(artifact, manifest, platform)
        _claim(libraries, plugin.library, artifact, "install")
        _claim(names, plugin.name, artifact, "are the Falco plugin")
        plugins.append(plugin)
    return plugins


def _claim(claimed: dict[str, str], key: str, artifact: LockedArtifact, verb: str) -> None:
    """Two locked artifacts providing one file (or plugin name) cannot both be loaded."""
    other = claimed.setdefault(key, artifact.name)
    if other != artifact.name:
        raise ConfigError(
            f"falco.lock: {other} and {artifact.name} both {verb} {key}",
            hint="remove one of them from falco.toml and run `falcopkg lock`",
        )


def _plugin_entry(plugin: ExportedPlugin, library_path: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": plugin.name,
        "library_path": plugin.settings.get("library_path", library_path),
    }
    for key in ("init_config", "open_params"):
        if key in plugin.settings:
            entry[key] = _sorted_data(plugin.settings[key])
    return entry


def _sorted_data(value: Any) -> Any:
    """Mappings with sorted keys, all the way down (user tables: their order means nothing)."""
    if isinstance(value, Mapping):
        return {str(key): _sorted_data(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_sorted_data(item) for item in value]
    return value


def _indexes(manifest: Manifest) -> list[dict[str, str]]:
    """falco.toml's remote indexes, as falcoctl lists them (local files mean nothing there)."""
    return [{"name": i.name, "url": i.url} for i in manifest.indexes if i.is_remote]


def _ref(artifact: LockedArtifact, prefix: str | None) -> str:
    if prefix is None:
        return artifact.pinned_reference
    return f"{prefix}/{artifact.repository}@{artifact.digest}"


def parse_mirror_prefix(text: str) -> str:
    """``host[:port][/path]`` for `--mirror`: the registry and repository prefix refs move to."""
    value = registry_prefix(text)
    if value is None:
        # Not echoed when it could hold credentials (user:password@host).
        shown = "" if "@" in text else f" {text!r}"
        raise UsageError(
            f"--mirror{shown} is not a registry prefix",
            hint="write host[:port][/path], e.g. --mirror registry.internal:5000/falco "
            "(no scheme, credentials, tag or digest)",
        )
    return value


# --- the files, as text --------------------------------------------------------------------


def helm_values_text(lock: Lock, manifest: Manifest, *, mirror: str | None = None) -> str:
    """`falcopkg export helm`'s output."""
    header = export_header("Values for the falcosecurity/falco chart", "falcopkg export helm", lock)
    return render_yaml(helm_values(lock, manifest, mirror=mirror), header)


def falcoctl_config_text(
    lock: Lock,
    manifest: Manifest,
    *,
    rulesfiles_dir: str,
    plugins_dir: str,
    assets_dir: str,
    mirror: str | None = None,
) -> str:
    """`falcopkg export falcoctl`'s output."""
    config = falcoctl_config(
        lock,
        manifest,
        rulesfiles_dir=rulesfiles_dir,
        plugins_dir=plugins_dir,
        assets_dir=assets_dir,
        mirror=mirror,
    )
    return render_yaml(config, export_header("falcoctl.yaml", "falcopkg export falcoctl", lock))


def falco_config_text(
    lock: Lock, manifest: Manifest, *, platform: str, rulesfiles_dir: str, plugins_dir: str
) -> str:
    """`falcopkg export falco-config`'s output: also the snippet `sync` keeps in
    ``[install] falco_config_dir``, so both always agree."""
    config = falco_config(
        lock, manifest, platform=platform, rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir
    )
    header = export_header(
        f"Falco configuration ({platform}) for config_files", "falcopkg export falco-config", lock
    )
    return render_yaml(config, header)


# --- rendering -----------------------------------------------------------------------------


def render_yaml(data: Mapping[str, Any], header: Sequence[str]) -> str:
    """``data`` as block YAML in the given key order, after ``# header`` comment lines."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(
        dict(data),
        Dumper=dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    return "".join(f"# {line}\n" if line else "#\n" for line in header) + body


def export_header(what: str, command: str, lock: Lock) -> list[str]:
    """The header comment: what this is, that falcopkg made it, from which falco.lock.

    The lock is named by the sha256 of its text; no version or time: the same lock gives
    the same bytes.
    """
    from falcopkg.core.lockfile import render_lock
    from falcopkg.digests import bytes_digest

    count = len(lock.artifacts)
    return [
        f"{what}, generated by falcopkg from falco.lock",
        f"({bytes_digest(render_lock(lock).encode('utf-8'))}, "
        f"{count} locked artifact{'s' if count != 1 else ''}).",
        f"Do not edit by hand: regenerate with `{command}`.",
    ]
