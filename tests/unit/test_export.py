"""`export helm|falcoctl|falco-config` content (falcopkg.core.export), against data.

The project in tests/data/export/project (falco.toml + falco.lock: official rules with the
container plugin, k8saudit rules with the k8saudit and json plugins, a private rules file
with two YAML files and a README) is exported and checked against:

- tests/data/helm/falco-chart-values.yaml, the chart's keys and defaults (chart 9.1.0),
  merged as Helm does and run through an emulation of the chart's own container/k8smeta
  helpers (templates/_helpers.tpl), so "nothing unpinned is ever installed" is checked
  after the chart had its say;
- falcoctl's config keys and Falco's config keys;
- golden files (byte for byte) in tests/data/export/golden.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from falcopkg.core import export as exports
from falcopkg.core.lockfile import Lock, LockedArtifact, LockedLayer, LockedPlatform, parse_lock
from falcopkg.core.manifest import Manifest
from falcopkg.errors import ConfigError, LockError, UsageError
from falcopkg.services.project_files import load_manifest

DATA = Path(__file__).resolve().parent.parent / "data"
PROJECT = DATA / "export" / "project"
GOLDEN = DATA / "export" / "golden"
CHART_VALUES = DATA / "helm" / "falco-chart-values.yaml"
PLATFORMS = ("linux/amd64", "linux/arm64")

# falcoctl 0.13's config keys (internal/config/config.go; viper keys are case-insensitive).
FALCOCTL_KEYS = {
    "indexes",
    "artifact",
    "artifact.install",
    "artifact.follow",
    "artifact.allowedTypes",
    "artifact.noVerify",
    "artifact.install.refs",
    "artifact.install.rulesfilesDir",
    "artifact.install.pluginsDir",
    "artifact.install.assetsDir",
    "artifact.install.stateDir",
    "artifact.install.resolveDeps",
    "artifact.follow.refs",
    "artifact.follow.every",
}
# Falco's config keys an export writes, and a plugins entry's keys (falco.yaml).
FALCO_KEYS = {"rules_files", "load_plugins", "plugins"}
FALCO_PLUGIN_KEYS = {"name", "library_path", "init_config", "open_params"}


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest(PROJECT / "falco.toml")


@pytest.fixture(scope="module")
def lock() -> Lock:
    return parse_lock((PROJECT / "falco.lock").read_text(), "falco.lock")


def chart_defaults() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CHART_VALUES.read_text())
    return data


# --- Helm's merge and the chart's helpers, emulated ----------------------------------------


def helm_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Values files as Helm coalesces them: maps merge key by key, anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def uniq(items: list[Any]) -> list[Any]:
    """sprig's `uniq`: first occurrences, equal items dropped."""
    kept: list[Any] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def apply_chart_helpers(values: dict[str, Any]) -> dict[str, Any]:
    """What `k8smeta.configuration` and `falco.containerPlugin` (chart 9.1.0) do to the values
    before falco.yaml and falcoctl.yaml are rendered."""
    values = copy.deepcopy(values)
    falco, collectors = values["falco"], values["collectors"]
    install = values["falcoctl"]["config"]["artifact"]["install"]
    artifact_config = values["falcoctl"]["config"]["artifact"]
    driver = values["driver"]["enabled"]
    steps = [
        ("k8smeta", collectors["kubernetes"], driver and collectors["kubernetes"]["enabled"]),
        (
            "container",
            collectors["containerEngine"],
            driver and collectors["enabled"] and collectors["containerEngine"]["enabled"],
        ),
    ]
    for name, collector, active in steps:
        if not active:
            continue
        if not any(entry.get("name") == name for entry in falco["plugins"]):
            entry = {"name": name, "library_path": f"lib{name}.so", "init_config": {"chart": 1}}
            falco["plugins"] = uniq([*falco["plugins"], entry])
            falco["load_plugins"] = uniq([*falco["load_plugins"], name])
        install["refs"] = uniq([*install["refs"], collector["pluginRef"]])
        artifact_config["allowedTypes"] = uniq([*artifact_config["allowedTypes"], "plugin"])
    return values


def deployed(
    exported: Mapping[str, Any], user_values: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`helm -f user.yaml -f falcopkg.yaml` over the chart defaults, after its helpers."""
    values = chart_defaults()
    if user_values is not None:
        values = helm_merge(values, user_values)
    return apply_chart_helpers(helm_merge(values, exported))


def key_paths(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of every key in nested maps (lists are leaves)."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, Mapping):
            yield from key_paths(value, f"{path}.")


def locked_refs(lock: Lock, types: tuple[str, ...] = ("plugin", "rulesfile")) -> set[str]:
    return {a.pinned_reference for a in lock.artifacts if a.type in types}


# --- export helm -----------------------------------------------------------------------------


def test_every_key_helm_writes_exists_in_the_chart(lock: Lock, manifest: Manifest) -> None:
    chart_keys = set(key_paths(chart_defaults()))
    written = set(key_paths(exports.helm_values(lock, manifest)))
    assert written - chart_keys == set()


def test_helm_refs_are_the_locked_root_digests(lock: Lock, manifest: Manifest) -> None:
    values = exports.helm_values(lock, manifest)
    install = values["falcoctl"]["config"]["artifact"]["install"]
    assert set(install["refs"]) == locked_refs(lock)
    assert len(install["refs"]) == len(lock.artifacts)
    container = lock.by_name["container"]
    # The image index, not a platform's manifest: every node picks its own platform.
    assert f"{container.source}@{container.digest}" in install["refs"]
    assert not {p.manifest for p in container.platforms.values()} & {
        ref.partition("@")[2] for ref in install["refs"]
    }
    assert install["resolveDeps"] is False
    assert (install["rulesfilesDir"], install["pluginsDir"]) == ("/rulesfiles", "/plugins")
    assert values["falcoctl"]["artifact"] == {
        "install": {"enabled": True},
        "follow": {"enabled": False},
    }
    config = values["falcoctl"]["config"]
    # Only remote indexes: a local index file means nothing inside the pod.
    assert config["indexes"] == [
        {"name": "falcosecurity", "url": "https://falcosecurity.github.io/falcoctl/index.yaml"}
    ]
    assert config["artifact"]["allowedTypes"] == ["plugin", "rulesfile"]


def test_after_the_charts_helpers_refs_are_still_exactly_the_locked_digests(
    lock: Lock, manifest: Manifest
) -> None:
    exported = exports.helm_values(lock, manifest)
    # A user's own values file asks for the k8smeta collector and its own plugins: the
    # export comes last and still decides.
    user = {
        "collectors": {"kubernetes": {"enabled": True}},
        "falco": {"plugins": [{"name": "cloudtrail", "library_path": "libcloudtrail.so"}]},
        "falcoctl": {"config": {"artifact": {"install": {"refs": ["cloudtrail-rules:0"]}}}},
    }
    for values in (deployed(exported), deployed(exported, user)):
        refs = values["falcoctl"]["config"]["artifact"]["install"]["refs"]
        assert sorted(refs) == sorted(locked_refs(lock))
        assert all("@sha256:" in ref for ref in refs)
        assert values["falcoctl"]["artifact"]["follow"]["enabled"] is False


def test_without_a_locked_container_plugin_the_collector_is_off(manifest: Manifest) -> None:
    lock = _lock_of(
        _rules("falco-rules", "1", ("falco_rules.yaml",)), _rules("b-rules", "2", ("b.yaml",))
    )
    exported = exports.helm_values(lock, manifest)
    assert exported["collectors"]["containerEngine"] == {"enabled": False}
    values = deployed(exported)
    assert sorted(values["falcoctl"]["config"]["artifact"]["install"]["refs"]) == sorted(
        locked_refs(lock)
    )
    assert values["falco"]["load_plugins"] == [] and values["falco"]["plugins"] == []


def test_a_locked_k8smeta_plugin_is_pinned_for_the_chart(manifest: Manifest) -> None:
    lock = _lock_of(
        _plugin("k8smeta", "a", "libk8smeta.so"),
        _plugin("container", "b", "libcontainer.so"),
    )
    exported = exports.helm_values(lock, manifest)
    kubernetes = exported["collectors"]["kubernetes"]
    assert kubernetes == {"enabled": True, "pluginRef": lock.by_name["k8smeta"].pinned_reference}
    values = deployed(exported)
    assert sorted(values["falcoctl"]["config"]["artifact"]["install"]["refs"]) == sorted(
        locked_refs(lock)
    )
    # Without [falco.plugins.*] settings the chart's own entries (collector address,
    # engine sockets) are used; Falco loads both.
    assert sorted(values["falco"]["load_plugins"]) == ["container", "k8smeta"]
    assert [entry["name"] for entry in values["falco"]["plugins"]] == ["k8smeta", "container"]


def test_helm_plugins_match_the_locked_plugins_and_their_settings(
    lock: Lock, manifest: Manifest
) -> None:
    values = deployed(exports.helm_values(lock, manifest))
    plugins = {entry["name"]: entry for entry in values["falco"]["plugins"]}
    locked = {a.name for a in lock.artifacts if a.type == "plugin"}
    assert set(values["falco"]["load_plugins"]) == locked == set(plugins)
    assert plugins["k8saudit"] == {
        "name": "k8saudit",
        "library_path": "libk8saudit.so",  # resolved by Falco under /usr/share/falco/plugins
        "init_config": {"maxEventSize": 262144, "sslCertificate": "/etc/falco/falco.pem"},
        "open_params": "http://:9765/k8s-audit",
    }
    assert plugins["json"] == {"name": "json", "library_path": "libjson.so", "init_config": ""}
    # No [falco.plugins.container]: the chart's managed entry (engines matching its mounts).
    assert plugins["container"]["init_config"] == {"chart": 1}


def test_plugin_settings_for_a_chart_managed_plugin_replace_the_charts_entry(
    lock: Lock, manifest: Manifest
) -> None:
    settings = {"init_config": {"label_max_len": 50}, "library_path": "/opt/libcontainer.so"}
    configured = dataclasses.replace(
        manifest, falco_plugins={**manifest.falco_plugins, "container": settings}
    )
    exported = exports.helm_values(lock, configured)
    assert "container" in exported["falco"]["load_plugins"]
    values = deployed(exported)
    containers = [entry for entry in values["falco"]["plugins"] if entry["name"] == "container"]
    assert containers == [
        {
            "name": "container",
            "library_path": "/opt/libcontainer.so",
            "init_config": settings["init_config"],
        }
    ]


def test_helm_rules_files_list_every_installed_rules_file_base_rules_first(
    lock: Lock, manifest: Manifest
) -> None:
    rules = exports.helm_values(lock, manifest)["falco"]["rules_files"]
    assert rules == [
        "/etc/falco/falco_rules.yaml",
        # acme-rules depends on falco-rules; both its YAML files, not its README.
        "/etc/falco/acme_rules.yaml",
        "/etc/falco/extra/acme_network.yml",
        "/etc/falco/k8s_audit_rules.yaml",
        # The chart's (and Falco's) local entries stay last.
        "/etc/falco/falco_rules.local.yaml",
        "/etc/falco/rules.d",
    ]
    installed = {
        f"/etc/falco/{path}"
        for a in lock.artifacts
        if a.type == "rulesfile" and a.layer is not None
        for path in a.layer.files
        if path.endswith((".yaml", ".yml"))
    }
    assert set(rules[:-2]) == installed


def test_mirror_rewrites_hosts_only(lock: Lock, manifest: Manifest) -> None:
    plain = exports.helm_values(lock, manifest)
    mirrored = exports.helm_values(lock, manifest, mirror="registry.internal:5000/falco/")
    refs = mirrored["falcoctl"]["config"]["artifact"]["install"]["refs"]
    expected = sorted(
        f"registry.internal:5000/falco/{a.repository}@{a.digest}" for a in lock.artifacts
    )
    assert refs == expected
    container = lock.by_name["container"]
    assert mirrored["collectors"]["containerEngine"]["pluginRef"] == (
        f"registry.internal:5000/falco/{container.repository}@{container.digest}"
    )
    assert sorted(deployed(mirrored)["falcoctl"]["config"]["artifact"]["install"]["refs"]) == refs
    # Nothing but the refs changed.
    for values in (plain, mirrored):
        values["falcoctl"]["config"]["artifact"]["install"].pop("refs")
        values["collectors"]["containerEngine"].pop("pluginRef")
    assert mirrored == plain


@pytest.mark.parametrize(
    "prefix",
    [
        "https://registry.internal/falco",
        "user:secret@registry.internal/falco",
        "registry.internal/falco:tag",
        "registry.internal/Falco",
        "falco",
        "",
    ],
)
def test_a_bad_mirror_prefix_is_a_usage_error(lock: Lock, manifest: Manifest, prefix: str) -> None:
    with pytest.raises(UsageError) as caught:
        exports.helm_values(lock, manifest, mirror=prefix)
    assert "secret" not in caught.value.message and caught.value.hint


# --- export falcoctl -------------------------------------------------------------------------


def test_falcoctl_config_installs_exactly_the_lock(lock: Lock, manifest: Manifest) -> None:
    config = exports.falcoctl_config(
        lock, manifest, rulesfiles_dir="/r", plugins_dir="/p", assets_dir="/a"
    )
    assert set(key_paths(config)) <= FALCOCTL_KEYS
    install = config["artifact"]["install"]
    assert set(install["refs"]) == locked_refs(lock) and len(install["refs"]) == 6
    assert install == {
        "refs": install["refs"],
        "resolveDeps": False,
        "rulesfilesDir": "/r",
        "pluginsDir": "/p",
    }
    assert "follow" not in config["artifact"]
    assert config["artifact"]["allowedTypes"] == ["plugin", "rulesfile"]
    mirrored = exports.falcoctl_config(
        lock, manifest, rulesfiles_dir="/r", plugins_dir="/p", assets_dir="/a", mirror="m.example"
    )
    assert all(ref.startswith("m.example/") for ref in mirrored["artifact"]["install"]["refs"])


def test_falcoctl_config_skips_types_outside_allowed_types(lock: Lock, manifest: Manifest) -> None:
    rules_only = dataclasses.replace(
        manifest, install=dataclasses.replace(manifest.install, allowed_types=("rulesfile",))
    )
    config = exports.falcoctl_config(
        lock, rules_only, rulesfiles_dir="/r", plugins_dir="/p", assets_dir="/a"
    )
    assert set(config["artifact"]["install"]["refs"]) == locked_refs(lock, ("rulesfile",))
    _, skipped = exports.exported_artifacts(lock, ("rulesfile",))
    assert [name for name, _ in skipped] == ["container", "json", "k8saudit"]


# --- export falco-config ---------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_falco_config_loads_what_sync_installs(
    lock: Lock, manifest: Manifest, platform: str
) -> None:
    config = exports.falco_config(
        lock, manifest, platform=platform, rulesfiles_dir="/srv/rules", plugins_dir="/srv/plugins"
    )
    assert set(config) == FALCO_KEYS
    assert config["rules_files"] == [
        "/srv/rules/falco_rules.yaml",
        "/srv/rules/acme_rules.yaml",
        "/srv/rules/extra/acme_network.yml",
        "/srv/rules/k8s_audit_rules.yaml",
        "/etc/falco/falco_rules.local.yaml",
        "/etc/falco/rules.d",
    ]
    # Dependencies first (container before the rules that need it), then by name.
    assert config["load_plugins"] == ["container", "json", "k8saudit"]
    for entry in config["plugins"]:
        assert set(entry) <= FALCO_PLUGIN_KEYS
        layer = lock.by_name[entry["name"]].layer_for(platform)
        assert layer is not None
        assert entry["library_path"] == f"/srv/plugins/{layer.files[0]}"
    k8saudit = next(e for e in config["plugins"] if e["name"] == "k8saudit")
    assert k8saudit["open_params"] == manifest.falco_plugins["k8saudit"]["open_params"]
    assert k8saudit["init_config"] == manifest.falco_plugins["k8saudit"]["init_config"]


def test_falco_config_for_an_unlocked_platform_names_it(lock: Lock, manifest: Manifest) -> None:
    with pytest.raises(LockError) as caught:
        exports.falco_config(
            lock, manifest, platform="linux/s390x", rulesfiles_dir="/r", plugins_dir="/p"
        )
    assert "container 0.4.1 is not locked for platform linux/s390x" in caught.value.message


# --- order, plugin names, errors -------------------------------------------------------------


def test_load_order_puts_dependencies_first_and_survives_a_cycle() -> None:
    base = _rules("falco-rules", "1", ("falco_rules.yaml",), deps=("helpers",))
    helpers = _rules("helpers", "2", ("helpers.yaml",))
    zeta = _rules("zeta", "3", ("z.yaml",))
    alpha = _rules("alpha", "4", ("a.yaml",), deps=("zeta",))
    order = [a.name for a in exports.load_order([zeta, alpha, base, helpers])]
    # The base rules go as early as their own dependencies allow.
    assert order == ["helpers", "falco-rules", "zeta", "alpha"]
    one = _rules("one", "5", ("1.yaml",), deps=("two",))
    two = _rules("two", "6", ("2.yaml",), deps=("one",))
    assert [a.name for a in exports.load_order([two, one, zeta])] == ["zeta", "one", "two"]


def test_plugin_names_come_from_the_library(manifest: Manifest) -> None:
    aliased = _plugin("my-container", "1", "libcontainer.so")
    plugin = exports.plugin_for(aliased, manifest)
    assert (plugin.name, plugin.library) == ("container", "libcontainer.so")
    odd = _plugin("odd", "2", "plugin.so")
    assert exports.plugin_for(odd, manifest).name == "odd"


def test_a_plugin_whose_library_is_ambiguous_needs_library_path(manifest: Manifest) -> None:
    two = _plugin("two", "1", "liba.so", "libb.so")
    with pytest.raises(ConfigError) as caught:
        exports.plugin_for(two, manifest)
    assert "several libraries" in caught.value.message
    assert caught.value.hint and "[falco.plugins.two]" in caught.value.hint
    configured = dataclasses.replace(
        manifest, falco_plugins={"two": {"library_path": "/opt/libb.so"}}
    )
    plugin = exports.plugin_for(two, configured)
    assert (plugin.name, plugin.library) == ("b", "libb.so")


def test_a_lock_without_file_lists_is_an_error(manifest: Manifest) -> None:
    bare = _lock_of(_rules("falco-rules", "1", ()))
    with pytest.raises(LockError) as caught:
        exports.helm_values(bare, manifest)
    assert caught.value.hint and "falcopkg lock" in caught.value.hint


def test_unmatched_plugin_settings_are_reported(lock: Lock, manifest: Manifest) -> None:
    typo = dataclasses.replace(
        manifest, falco_plugins={**manifest.falco_plugins, "k8sadit": {"open_params": "x"}}
    )
    assert exports.unmatched_plugin_settings(typo, lock) == ["k8sadit"]
    assert exports.unmatched_plugin_settings(manifest, lock) == []


# --- byte stability --------------------------------------------------------------------------


def _rendered(lock: Lock, manifest: Manifest) -> dict[str, str]:
    header = exports.export_header("Test", "falcopkg export", lock)
    return {
        "helm.yaml": exports.render_yaml(exports.helm_values(lock, manifest), header),
        "helm-mirror.yaml": exports.render_yaml(
            exports.helm_values(lock, manifest, mirror="registry.internal:5000/falco"), header
        ),
        "falcoctl.yaml": exports.render_yaml(
            exports.falcoctl_config(
                lock,
                manifest,
                rulesfiles_dir="/etc/falco",
                plugins_dir="/usr/share/falco/plugins",
                assets_dir="/etc/falco/assets",
            ),
            header,
        ),
        "falco-config.yaml": exports.render_yaml(
            exports.falco_config(
                lock,
                manifest,
                platform="linux/amd64",
                rulesfiles_dir="/etc/falco",
                plugins_dir="/usr/share/falco/plugins",
            ),
            header,
        ),
    }


def test_output_is_byte_stable_and_matches_the_golden_files(lock: Lock, manifest: Manifest) -> None:
    first = _rendered(lock, manifest)
    # The same lock in another artifact order, and the settings in another key order.
    shuffled = Lock(lock.inputs, tuple(reversed(lock.artifacts)))
    reordered = dataclasses.replace(
        manifest,
        falco_plugins={
            name: dict(reversed(list(settings.items())))
            for name, settings in reversed(list(manifest.falco_plugins.items()))
        },
    )
    assert _rendered(shuffled, reordered) == first
    for name, text in first.items():
        assert text == (GOLDEN / name).read_text(encoding="utf-8"), name
        assert yaml.safe_load(text) is not None
        assert text.startswith("# Test, generated by falcopkg from falco.lock\n")


# --- building locks --------------------------------------------------------------------------


def _digest(seed: str) -> str:
    return "sha256:" + (seed * 64)[:64]


def _rules(
    name: str, seed: str, files: tuple[str, ...], *, deps: tuple[str, ...] = ()
) -> LockedArtifact:
    return LockedArtifact(
        name,
        "rulesfile",
        "1.0.0",
        f"ghcr.io/example/rules/{name}",
        _digest(seed),
        layer=LockedLayer(_digest(seed + "f"), 10, files),
        dependencies=deps,
    )


def _plugin(name: str, seed: str, *files: str) -> LockedArtifact:
    return LockedArtifact(
        name,
        "plugin",
        "1.0.0",
        f"ghcr.io/example/plugins/{name}",
        _digest(seed),
        platforms={
            platform: LockedPlatform(
                _digest(seed + str(n)), LockedLayer(_digest(seed + "e" + str(n)), 10, files)
            )
            for n, platform in enumerate(PLATFORMS)
        },
    )


def _lock_of(*artifacts: LockedArtifact) -> Lock:
    from falcopkg.core.lockfile import LockInputs

    return Lock(LockInputs(), artifacts)


def test_two_artifacts_providing_one_rules_file_or_plugin_are_an_error(
    manifest: Manifest,
) -> None:
    twice = _lock_of(_rules("a-rules", "1", ("same.yaml",)), _rules("b-rules", "2", ("same.yaml",)))
    with pytest.raises(ConfigError) as caught:
        exports.helm_values(twice, manifest)
    assert "a-rules and b-rules both install same.yaml" in caught.value.message
    aliases = _lock_of(
        _plugin("container", "3", "libcontainer.so"), _plugin("box", "4", "libcontainer.so")
    )
    with pytest.raises(ConfigError) as caught:
        exports.falco_config(
            aliases, manifest, platform="linux/amd64", rulesfiles_dir="/r", plugins_dir="/p"
        )
    assert "box and container both install libcontainer.so" in caught.value.message


def test_assets_go_to_falcoctl_but_not_to_the_chart(manifest: Manifest) -> None:
    asset = dataclasses.replace(_rules("geo-db", "1", ("geo.mmdb",)), type="asset")
    lock = _lock_of(asset, _rules("falco-rules", "2", ("falco_rules.yaml",)))
    with_assets = dataclasses.replace(
        manifest,
        install=dataclasses.replace(manifest.install, allowed_types=("asset", "rulesfile")),
    )
    config = exports.falcoctl_config(
        lock, with_assets, rulesfiles_dir="/r", plugins_dir="/p", assets_dir="/a"
    )
    assert config["artifact"]["allowedTypes"] == ["asset", "rulesfile"]
    assert config["artifact"]["install"]["assetsDir"] == "/a"
    assert set(config["artifact"]["install"]["refs"]) == locked_refs(lock, ("asset", "rulesfile"))
    values = exports.helm_values(lock, with_assets)
    assert values["falcoctl"]["config"]["artifact"]["install"]["refs"] == [
        lock.by_name["falco-rules"].pinned_reference
    ]
    assert values["falcoctl"]["config"]["artifact"]["allowedTypes"] == ["rulesfile"]
    _, skipped = exports.exported_artifacts(lock, ("asset", "rulesfile"), exports.HELM_TYPES)
    assert skipped == [("geo-db", "the falco chart cannot install assets")]
