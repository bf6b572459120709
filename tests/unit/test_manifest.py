"""falco.toml (SPEC §5): validation errors name file, line and key; edits keep comments.

Bad manifests are data: ``tests/data/manifest/bad/*.toml`` start with ``# error: LINE: text``
(the message after the file name) and optionally ``# hint: text`` (a substring of the hint).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tomlkit

from falcopkg.core.manifest import (
    DependencySpec,
    add_dependency,
    init_document_text,
    parse_manifest,
    remove_dependency,
)
from falcopkg.core.versions import Version
from falcopkg.errors import ConfigError
from falcopkg.services.project_files import load_manifest

DATA = Path(__file__).parent.parent / "data" / "manifest"
BAD_CASES = sorted((DATA / "bad").glob("*.toml"))


def _expectations(text: str) -> tuple[str, str | None]:
    error = hint = None
    for line in text.splitlines():
        if line.startswith("# error: "):
            error = line.removeprefix("# error: ")
        elif line.startswith("# hint: "):
            hint = line.removeprefix("# hint: ")
    assert error is not None, "a bad case needs an `# error:` line"
    return error, hint


@pytest.mark.parametrize("case", BAD_CASES, ids=[c.stem for c in BAD_CASES])
def test_bad_manifests_name_file_line_and_key(case: Path, tmp_path: Path) -> None:
    text = case.read_text()
    expected, expected_hint = _expectations(text)
    manifest_path = tmp_path / "falco.toml"
    manifest_path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_manifest(manifest_path)
    assert caught.value.message.startswith(f"{manifest_path}:{expected}"), caught.value.message
    if expected_hint is not None:
        assert caught.value.hint is not None and expected_hint in caught.value.hint


def test_the_spec_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "falco.toml"
    path.write_text((DATA / "good" / "spec-example.toml").read_text())
    manifest = load_manifest(path)

    assert manifest.target.engine_version == "0.43.0"
    assert manifest.target.plugin_api_version == "3.10.0"
    assert manifest.target.platforms == ("linux/amd64", "linux/arm64")
    assert manifest.install.allowed_types == ("rulesfile", "plugin")
    assert [(i.name, i.url) for i in manifest.indexes] == [
        ("falcosecurity", "https://falcosecurity.github.io/falcoctl/index.yaml")
    ]
    registry = manifest.registries["ghcr.io"]
    assert registry.mirror == "registry.internal:5000/falco"
    assert registry.ca_file == tmp_path / "certs" / "ca.pem"
    assert list(manifest.dependencies) == [
        "falco-rules",
        "k8saudit-rules",
        "k8saudit",
        "acme-rules",
        "edge-rules",
        "pinned",
    ]
    deps = manifest.dependencies
    assert deps["falco-rules"].constraint.allows(Version.parse("4.9.0"))
    assert not deps["falco-rules"].constraint.allows(Version.parse("5.0.0"))
    assert deps["k8saudit-rules"].index == "falcosecurity"
    assert deps["acme-rules"].ref == "registry.example.com/acme/rules"
    assert deps["edge-rules"].tag == "main" and deps["edge-rules"].is_pinned
    assert deps["pinned"].digest is not None and deps["pinned"].version is None
    assert manifest.falco_plugins["k8saudit"]["init_config"] == {"maxEventSize": 262144}
    assert manifest.install.directory_for("plugin") == "/usr/share/falco/plugins"
    assert manifest.lock_path == tmp_path / "falco.lock"


def test_defaults_when_sections_are_missing(tmp_path: Path) -> None:
    manifest = parse_manifest('[dependencies]\nfalco-rules = "4"\n', tmp_path / "falco.toml")
    assert manifest.target.platforms == ("linux/amd64", "linux/arm64")
    assert manifest.target.engine_version is None
    assert manifest.install.rulesfiles_dir == "/etc/falco"
    assert manifest.install.plugins_dir == "/usr/share/falco/plugins"
    assert manifest.install.assets_dir == "/etc/falco/assets"
    assert manifest.indexes == ()


@pytest.mark.parametrize(
    ("spec", "canonical", "described"),
    [
        (DependencySpec("a"), "*", 'a = "*"'),
        (
            DependencySpec("a", ref="r.io/x", tag="main"),
            {"ref": "r.io/x", "tag": "main"},
            'a = { ref = "r.io/x", tag = "main" }',
        ),
    ],
)
def test_dependency_canonical_inputs(
    spec: DependencySpec, canonical: str | dict[str, str], described: str
) -> None:
    assert spec.to_input() == canonical
    assert spec.describe() == described


def test_constraints_are_normalized_in_inputs(tmp_path: Path) -> None:
    manifest = parse_manifest(
        '[dependencies]\na = " >=1.2 ,<2"\nb = { version = "0.16", ref = "r.io/b" }\n',
        tmp_path / "falco.toml",
    )
    assert manifest.dependencies["a"].to_input() == ">=1.2, <2"
    assert manifest.dependencies["b"].to_input() == {"ref": "r.io/b", "version": "0.16"}


COMMENTED = """\
# my Falco setup
[target]
platforms = ["linux/amd64"]  # only x86 nodes

[dependencies]  # what we run
falco-rules = "4"  # the default ruleset
# k8saudit needs the plugin, which comes along
k8saudit-rules = "0.16"
json = "0.7"  # keep json

[falco.plugins.k8saudit]
open_params = "http://:9765/k8s-audit"  # audit webhook
"""


def test_add_and_remove_keep_comments_and_order() -> None:
    document = tomlkit.parse(COMMENTED)
    add_dependency(document, "container", "0.4.1")
    add_dependency(
        document, "acme-rules", {"ref": "registry.example.com/acme/rules", "version": "1.0.0"}
    )
    add_dependency(document, "falco-rules", "4.2.0")  # replaced where it stands
    assert remove_dependency(document, "json")
    assert not remove_dependency(document, "nope")
    text = tomlkit.dumps(document)

    for comment in (
        "# my Falco setup",
        "# only x86 nodes",
        "# what we run",
        "# the default ruleset",
        "# k8saudit needs the plugin, which comes along",
        "# audit webhook",
    ):
        assert comment in text
    assert "keep json" not in text
    lines = [line for line in text.splitlines() if " = " in line and not line.startswith("#")]
    names = [line.split(" = ")[0] for line in lines]
    assert names == [
        "platforms",
        "falco-rules",
        "k8saudit-rules",
        "container",
        "acme-rules",
        "open_params",
    ]
    assert 'falco-rules = "4.2.0"  # the default ruleset' in text
    reparsed = parse_manifest(text, Path("falco.toml"))
    assert reparsed.dependencies["acme-rules"].ref == "registry.example.com/acme/rules"


def test_add_creates_the_dependencies_table() -> None:
    document = tomlkit.parse('[target]\nplatforms = ["linux/amd64"]\n')
    add_dependency(document, "falco-rules", "4.0.0")
    assert (
        parse_manifest(tomlkit.dumps(document), Path("falco.toml"))
        .dependencies["falco-rules"]
        .to_input()
        == "4.0.0"
    )


def test_init_text_is_a_valid_commented_manifest(tmp_path: Path) -> None:
    text = init_document_text(
        [("falcosecurity", "https://falcosecurity.github.io/falcoctl/index.yaml")]
    )
    manifest = parse_manifest(text, tmp_path / "falco.toml")
    assert manifest.dependencies == {}
    assert [i.name for i in manifest.indexes] == ["falcosecurity"]
    assert "# rulesfiles_dir = " in text and "# engine_version = " in text
    document = tomlkit.parse(text)
    add_dependency(document, "falco-rules", "4.0.0")
    assert 'falco-rules = "4.0.0"' in tomlkit.dumps(document)


def test_add_writes_inline_tables_like_cargo() -> None:
    document = tomlkit.parse('[dependencies]\nfalco-rules = "4"  # default rules\n')
    add_dependency(document, "acme", {"ref": "registry.example.com/acme/rules", "version": '1"x'})
    text = tomlkit.dumps(document)
    assert 'acme = { ref = "registry.example.com/acme/rules", version = "1\\"x" }\n' in text
    assert 'falco-rules = "4"  # default rules\n' in text
    assert document["dependencies"]["acme"]["version"] == '1"x'


def test_init_text_writes_given_install_dirs_and_indexes(tmp_path: Path) -> None:
    text = init_document_text(
        [("corp", "https://corp.example/index.yaml"), ("local", "idx/index.yaml")],
        {"rulesfiles_dir": "rules", "plugins_dir": '/opt/my "plugins"'},
    )
    manifest = parse_manifest(text, tmp_path / "falco.toml")
    assert [(i.name, i.url) for i in manifest.indexes] == [
        ("corp", "https://corp.example/index.yaml"),
        ("local", "idx/index.yaml"),
    ]
    assert manifest.install.rulesfiles_dir == "rules"
    assert manifest.install.plugins_dir == '/opt/my "plugins"'
    assert '# assets_dir = "' in text


def test_init_text_without_an_index_explains_ref(tmp_path: Path) -> None:
    text = init_document_text([])
    manifest = parse_manifest(text, tmp_path / "falco.toml")
    assert manifest.indexes == () and "[[index]]" not in text
    assert "ref = " in text and "falcopkg index add" in text


def test_the_example_parses_and_meets_current_rules_requirements() -> None:
    """falco.toml.example's [target] accepts what today's falco_rules.yaml asks
    (`required_engine_version: 0.57.0`) and the legacy integer form of older files."""
    from falcopkg.core.lockfile import unmet_requirements

    example = Path(__file__).parents[2] / "falco.toml.example"
    manifest = load_manifest(example)
    assert manifest.dependencies["falco-rules"].to_input() == "5"
    for required in ("0.57.0", "15", "0.31.0"):
        assert unmet_requirements("rules", {"engine_version": required}, manifest.target) == []


def test_registry_timeout_becomes_the_request_timeout(tmp_path: Path) -> None:
    from falcopkg.services.registries import registry_options

    path = tmp_path / "falco.toml"
    path.write_text('[registries."slow.example"]\ntimeout = 90\n\n[registries."ghcr.io"]\n')
    manifest = load_manifest(path)
    assert manifest.registries["slow.example"].timeout == 90.0
    assert registry_options(manifest.registries["slow.example"]).request_timeout == 90.0
    assert registry_options(manifest.registries["ghcr.io"]).request_timeout == 30.0
