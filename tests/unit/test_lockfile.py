"""falco.lock (SPEC §7): exact bytes, round trip, precise parse errors, semantic staleness."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from falcopkg.core.lockfile import (
    LOCK_HEADER,
    Lock,
    LockedArtifact,
    LockedLayer,
    LockedPlatform,
    LockInputs,
    parse_lock,
    render_lock,
    stale_reasons,
)
from falcopkg.core.manifest import parse_manifest
from falcopkg.errors import ConfigError, LockError

D = {c: "sha256:" + c * 64 for c in "abcdef0123"}

MANIFEST = """\
[target]
engine_version = "0.57.0"
plugin_api_version = "3.10.0"

[[index]]
name = "falcosecurity"
url = "https://falcosecurity.github.io/falcoctl/index.yaml"

[dependencies]
falco-rules = "4"
edge = { ref = "registry.example.com/acme/edge", tag = "main" }
"""

RULES = LockedArtifact(
    name="falco-rules",
    type="rulesfile",
    version="4.1.0",
    source="ghcr.io/falcosecurity/rules/falco-rules",
    digest=D["a"],
    index="falcosecurity",
    layer=LockedLayer(D["b"], 1234, ("falco_rules.yaml",)),
    dependencies=("container",),
    dependency_constraints={"container": ">=0.4.0, <1.0.0"},
    requirements={"engine_version_semver": "0.57.0"},
)
CONTAINER = LockedArtifact(
    name="container",
    type="plugin",
    version="0.4.1",
    source="ghcr.io/falcosecurity/plugins/plugin/container",
    digest=D["c"],
    index="falcosecurity",
    platforms={
        "linux/arm64": LockedPlatform(D["d"], LockedLayer(D["e"], 5678, ("libcontainer.so",))),
        "linux/amd64": LockedPlatform(D["f"], LockedLayer(D["0"], 5600, ("libcontainer.so",))),
    },
    requirements={"plugin_api_version": "3.10.0"},
)
EDGE = LockedArtifact(
    name="edge",
    type="rulesfile",
    version=None,
    tag="main",
    source="registry.example.com/acme/edge",
    digest=D["1"],
    layer=LockedLayer(D["2"], 10, ("edge/a.yaml", "edge/b.yaml")),
)


def make_lock(manifest_text: str = MANIFEST) -> Lock:
    manifest = parse_manifest(manifest_text, Path("falco.toml"))
    return Lock(LockInputs.from_manifest(manifest), (RULES, EDGE, CONTAINER))


EXPECTED_TEXT = f"""\
{LOCK_HEADER}
version = 1

[manifest]
platforms = ["linux/amd64", "linux/arm64"]
target = {{ engine_version = "0.57.0", plugin_api_version = "3.10.0" }}
indexes = {{ falcosecurity = "https://falcosecurity.github.io/falcoctl/index.yaml" }}

[manifest.dependencies]
edge = {{ ref = "registry.example.com/acme/edge", tag = "main" }}
falco-rules = "4"

[[artifact]]
name = "container"
type = "plugin"
version = "0.4.1"
source = "ghcr.io/falcosecurity/plugins/plugin/container"
index = "falcosecurity"
digest = "{D["c"]}"
requirements = {{ plugin_api_version = "3.10.0" }}

[artifact.platforms."linux/amd64"]
manifest = "{D["f"]}"
layer = {{ digest = "{D["0"]}", size = 5600, files = ["libcontainer.so"] }}

[artifact.platforms."linux/arm64"]
manifest = "{D["d"]}"
layer = {{ digest = "{D["e"]}", size = 5678, files = ["libcontainer.so"] }}

[[artifact]]
name = "edge"
type = "rulesfile"
tag = "main"
source = "registry.example.com/acme/edge"
digest = "{D["1"]}"
layer = {{ digest = "{D["2"]}", size = 10, files = ["edge/a.yaml", "edge/b.yaml"] }}

[[artifact]]
name = "falco-rules"
type = "rulesfile"
version = "4.1.0"
source = "ghcr.io/falcosecurity/rules/falco-rules"
index = "falcosecurity"
digest = "{D["a"]}"
layer = {{ digest = "{D["b"]}", size = 1234, files = ["falco_rules.yaml"] }}
dependencies = ["container"]
dependency_constraints = {{ container = ">=0.4.0, <1.0.0" }}
requirements = {{ engine_version_semver = "0.57.0" }}
"""


def test_render_is_exact_sorted_and_deterministic() -> None:
    lock = make_lock()
    text = render_lock(lock)
    assert text == EXPECTED_TEXT
    shuffled = Lock(lock.inputs, (CONTAINER, EDGE, RULES))
    assert render_lock(shuffled) == text


def test_round_trip() -> None:
    lock = make_lock()
    assert parse_lock(render_lock(lock), "falco.lock") == lock


def test_layer_for_platforms() -> None:
    assert CONTAINER.layer_for("linux/amd64") == LockedLayer(D["0"], 5600, ("libcontainer.so",))
    assert CONTAINER.layer_for("linux/s390x") is None
    assert RULES.layer_for("linux/s390x") == RULES.layer
    assert CONTAINER.pinned_reference == f"ghcr.io/falcosecurity/plugins/plugin/container@{D['c']}"


def test_strange_names_and_strings_are_quoted() -> None:
    odd = replace(RULES, name="acme.rules", source='r.io/x"y')
    lock = Lock(LockInputs(dependencies={"acme.rules": "*"}), (odd,))
    text = render_lock(lock)
    assert '"acme.rules" = "*"' in text
    assert parse_lock(text, "falco.lock") == lock


@pytest.mark.parametrize(
    ("text", "error", "fragment"),
    [
        ("version = 2\n", LockError, "unsupported lockfile version 2"),
        ("[manifest]\n", LockError, "unsupported lockfile version None"),
        ("version = 1\n[manifest\n", ConfigError, "falco.lock: invalid TOML"),
        (
            'version = 1\n[[artifact]]\nname = "a"\ntype = "rulesfile"\nsource = "r.io/a"\n'
            'digest = "sha256:x"\nlayer = { digest = "sha256:y", size = 1 }\n'
            '\n[[artifact]]\nname = "b"\ntype = "plugin"\ndigest = "sha256:z"\n',
            ConfigError,
            "falco.lock:9: `source` must be a non-empty string",
        ),
        (
            'version = 1\n[[artifact]]\nname = "a"\ntype = "rulesfile"\nsource = "r.io/a"\n'
            'digest = "sha256:x"\nlayer = { digest = "sha256:y", size = -1 }\n',
            ConfigError,
            "falco.lock:7: layer `size` must be a non-negative integer",
        ),
        (
            'version = 1\n[[artifact]]\nname = "a"\ntype = "rulesfile"\nsource = "r.io/a"\n'
            'digest = "sha256:x"\n',
            ConfigError,
            "artifact 'a' has neither `layer` nor `platforms`",
        ),
    ],
)
def test_parse_errors_name_the_line_and_say_what_to_do(
    text: str, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        parse_lock(text, "falco.lock")
    assert fragment in str(caught.value)
    assert getattr(caught.value, "hint", None)


def test_duplicate_artifacts_are_an_error() -> None:
    text = render_lock(Lock(LockInputs(), (RULES,)))
    body = text.split("[[artifact]]", 1)[1]
    with pytest.raises(ConfigError, match="locked twice"):
        parse_lock(text + "\n[[artifact]]" + body, "falco.lock")


# manifest edit, expected reason substrings ([] = fresh)
STALENESS = [
    ("no change", MANIFEST, []),
    ("same meaning, other text", MANIFEST.replace('falco-rules = "4"', 'falco-rules = "^4.0"'), []),
    ("still satisfied", MANIFEST.replace('falco-rules = "4"', 'falco-rules = ">=4.1, <5"'), []),
    (
        "no longer satisfied",
        MANIFEST.replace('falco-rules = "4"', 'falco-rules = "~4.2"'),
        ['falco-rules 4.1.0 does not satisfy falco-rules = "~4.2"'],
    ),
    ("added", MANIFEST + 'k8saudit = "0.18"\n', ["k8saudit was added to falco.toml"]),
    ("transitive made direct", MANIFEST + 'container = "0.4"\n', []),
    (
        "transitive made direct, other version",
        MANIFEST + 'container = "0.5"\n',
        ['container 0.4.1 does not satisfy container = "0.5"'],
    ),
    (
        "removed",
        MANIFEST.replace('falco-rules = "4"\n', ""),
        ["falco-rules was removed from falco.toml"],
    ),
    (
        "ref changed",
        MANIFEST.replace("acme/edge", "acme/edge2"),
        ["edge: falco.toml names registry.example.com/acme/edge2"],
    ),
    (
        "tag changed",
        MANIFEST.replace('tag = "main"', 'tag = "dev"'),
        ["edge: falco.toml pins tag 'dev', the lock main"],
    ),
    (
        "platforms changed",
        MANIFEST.replace("[target]\n", '[target]\nplatforms = ["linux/amd64"]\n'),
        ["[target] platforms changed to linux/amd64"],
    ),
    (
        "target still meets requirements",
        MANIFEST.replace('engine_version = "0.57.0"', 'engine_version = "0.58.0"'),
        [],
    ),
    (
        "target no longer meets requirements",
        MANIFEST.replace('engine_version = "0.57.0"', 'engine_version = "0.50.0"'),
        ["falco-rules 4.1.0 requires engine_version_semver 0.57.0"],
    ),
    (
        "plugin API too old",
        MANIFEST.replace('plugin_api_version = "3.10.0"', 'plugin_api_version = "3.9.0"'),
        ["container 0.4.1 requires plugin_api_version 3.10.0"],
    ),
    (
        "index URL changed",
        MANIFEST.replace("falcoctl/index.yaml", "falcoctl/other.yaml"),
        ["falco-rules: the URL of index 'falcosecurity' changed"],
    ),
    (
        "type no longer allowed",
        MANIFEST + '[install]\nallowed_types = ["rulesfile"]\n',
        ["container 0.4.1 is a plugin, which [install] allowed_types excludes"],
    ),
]


@pytest.mark.parametrize(
    ("manifest_text", "expected"), [c[1:] for c in STALENESS], ids=[c[0] for c in STALENESS]
)
def test_staleness_is_semantic(manifest_text: str, expected: list[str]) -> None:
    manifest = parse_manifest(manifest_text, Path("falco.toml"))
    reasons = stale_reasons(manifest, make_lock())
    if not expected:
        assert reasons == []
    for fragment in expected:
        assert any(fragment in reason for reason in reasons), reasons
