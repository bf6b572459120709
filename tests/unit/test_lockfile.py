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
    lock_document,
    parse_lock,
    render_lock,
    stale_reasons,
)
from falcopkg.core.manifest import parse_manifest
from falcopkg.errors import ConfigError, LockError
from falcopkg.services.project_files import PARSED_LOCK_MIN_BYTES, parse_lock_bytes
from falcopkg.services.resolution import describe_changes

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


def _strange_lock() -> Lock:
    odd = replace(
        RULES,
        name="acme.rules",
        tag="v4.1.0",
        requirements={"z_last": "1.0.0", "a_first": "0.1.0"},
        dependency_constraints={"container": ">=0.4.0", "b.dep": "1"},
        dependencies=("container", "b.dep"),
    )
    dep = replace(EDGE, name="b.dep", layer=LockedLayer(D["3"], 0, ()))
    return replace(make_lock(), artifacts=(odd, dep, CONTAINER))


@pytest.mark.parametrize("lock", [make_lock(), _strange_lock()], ids=["plain", "strange"])
def test_the_document_is_what_parsing_the_rendered_lock_gives(lock: Lock) -> None:
    import json

    from falcopkg.core.lockfile import load_lock_toml

    document = lock_document(lock)
    parsed = load_lock_toml(render_lock(lock), "falco.lock")
    assert document == parsed
    # Key order too: the cache stores the document where a parse would have been.
    assert json.dumps(document) == json.dumps(parsed)


def test_layer_for_platforms() -> None:
    assert CONTAINER.layer_for("linux/amd64") == LockedLayer(D["0"], 5600, ("libcontainer.so",))
    assert CONTAINER.layer_for("linux/s390x") is None
    assert RULES.layer_for("linux/s390x") == RULES.layer
    assert CONTAINER.pinned_reference == f"ghcr.io/falcosecurity/plugins/plugin/container@{D['c']}"


def test_strange_names_and_strings_are_quoted() -> None:
    odd = replace(
        RULES,
        name="acme.rules",
        dependencies=(),
        dependency_constraints={},
        requirements={"engine_version": '0.1"2'},
    )
    lock = Lock(LockInputs(dependencies={"acme.rules": "*"}), (odd,))
    text = render_lock(lock)
    assert '"acme.rules" = "*"' in text
    assert parse_lock(text, "falco.lock") == lock


# One valid artifact (lines 2-7), to break one value at a time. (Errors inside a plugin's
# platform table name the line of its [[artifact]].)
ARTIFACT_A = (
    'version = 1\n[[artifact]]\nname = "a"\ntype = "rulesfile"\nsource = "r.io/a"\n'
    f'digest = "{D["a"]}"\nlayer = {{ digest = "{D["b"]}", size = 1, files = ["a.yaml"] }}\n'
)
PLUGIN_B = (
    f'\n[[artifact]]\nname = "b"\ntype = "plugin"\nsource = "r.io/b"\ndigest = "{D["c"]}"\n'
    '[artifact.platforms."linux/amd64"]\n'
    f'manifest = "{D["d"]}"\nlayer = {{ digest = "{D["e"]}", size = 2, files = ["libb.so"] }}\n'
)


def _broken(old: str, new: str, text: str = ARTIFACT_A) -> str:
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("text", "error", "fragment"),
    [
        ("version = 2\n", LockError, "unsupported lockfile version 2"),
        ("[manifest]\n", LockError, "unsupported lockfile version None"),
        ("version = 1\n[manifest\n", ConfigError, "falco.lock:2:9: invalid TOML"),
        (
            ARTIFACT_A + '\n[[artifact]]\nname = "b"\ntype = "plugin"\ndigest = "sha256:z"\n',
            ConfigError,
            "falco.lock:9: `source` must be a non-empty string",
        ),
        (
            _broken("size = 1", "size = -1"),
            ConfigError,
            "falco.lock:7: layer `size` must be a non-negative integer",
        ),
        (
            ARTIFACT_A.split("layer =")[0],
            ConfigError,
            "artifact 'a' has neither `layer` nor `platforms`",
        ),
        # Digests must be digests (an install checks content against them).
        (
            _broken(f'digest = "{D["a"]}"', 'digest = "sha256:zz"'),
            ConfigError,
            "falco.lock:6: artifact 'a': `digest` is not a digest",
        ),
        (
            _broken(f'digest = "{D["b"]}"', 'digest = "sha256:zz"'),
            ConfigError,
            "falco.lock:7: artifact 'a': `digest` is not a digest",
        ),
        (
            ARTIFACT_A + _broken(f'manifest = "{D["d"]}"', 'manifest = "md5:00"', PLUGIN_B),
            ConfigError,
            "falco.lock:9: artifact 'b': `manifest` is not a digest",
        ),
        # `source` is a registry location: no scheme, credentials, tag or digest.
        *(
            (
                _broken('source = "r.io/a"', f"source = {bad!r}".replace("'", '"')),
                ConfigError,
                "falco.lock:5: artifact 'a': `source` must be a registry location",
            )
            for bad in (
                "http://user:pw@x/y",
                "user:pw@r.io/a",
                "r.io/a:1.0.0",
                f"r.io/a@{D['a']}",
                "a",
                "acme/a",
                "r.io/A",
            )
        ),
        # Files are relative paths inside the install directory.
        *(
            (
                _broken('files = ["a.yaml"]', f"files = [{bad!r}]".replace("'", '"')),
                ConfigError,
                "falco.lock:7: artifact 'a': layer file",
            )
            for bad in (
                "../../etc/passwd",
                "rules/../../x",
                "/etc/passwd",
                "a//b",
                "./a.yaml",
                "a/",
                "",
                "..",
            )
        ),
        (
            _broken('files = ["a.yaml"]', 'files = ["a\\\\b.yaml"]'),
            ConfigError,
            "falco.lock:7: artifact 'a': layer file",
        ),
        (
            ARTIFACT_A + _broken('files = ["libb.so"]', 'files = ["../libb.so"]', PLUGIN_B),
            ConfigError,
            "falco.lock:9: artifact 'b': layer file '../libb.so'",
        ),
        # Dependencies name locked artifacts.
        (
            ARTIFACT_A + 'dependencies = ["nothere"]\n',
            ConfigError,
            "falco.lock:8: artifact 'a' depends on 'nothere', which is not locked",
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
    assert "pw" not in str(caught.value)  # a bad source is not echoed: it may hold secrets


def test_the_valid_base_of_the_parse_error_cases_parses() -> None:
    lock = parse_lock(ARTIFACT_A + 'dependencies = ["b"]\n' + PLUGIN_B, "falco.lock")
    assert lock.by_name["a"].dependencies == ("b",)
    assert lock.by_name["b"].layer_for("linux/amd64") == LockedLayer(D["e"], 2, ("libb.so",))
    assert lock.by_name["a"].layer == LockedLayer(D["b"], 1, ("a.yaml",))


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


FIRST_INDEX = '[[index]]\nname = "first"\nurl = "https://example.com/first.yaml"\n\n'
OFFICIAL_INDEX = '[[index]]\nname = "falcosecurity"\n'
# (locked with, now, which locked artifacts are stale by index order); §3: the first index
# in manifest order that names an artifact wins.
INDEX_ORDER = [
    ("unchanged", MANIFEST, MANIFEST, []),
    (
        "index added before the one used",
        MANIFEST,
        MANIFEST.replace(OFFICIAL_INDEX, FIRST_INDEX + OFFICIAL_INDEX),
        ["falco-rules: index 'first' was added before 'falcosecurity'", "container: index 'first'"],
    ),
    ("index added after the one used", MANIFEST, MANIFEST + "\n" + FIRST_INDEX, []),
    (
        "index moved ahead of the one used",
        MANIFEST + "\n" + FIRST_INDEX,
        MANIFEST.replace(OFFICIAL_INDEX, FIRST_INDEX + OFFICIAL_INDEX),
        ["falco-rules: index 'first' was moved before 'falcosecurity'", "container: index 'first'"],
    ),
    (
        "URL of an index ahead changed",
        MANIFEST.replace(OFFICIAL_INDEX, FIRST_INDEX + OFFICIAL_INDEX),
        MANIFEST.replace(
            OFFICIAL_INDEX, FIRST_INDEX.replace("first.yaml", "new.yaml") + OFFICIAL_INDEX
        ),
        [
            "falco-rules: the URL of index 'first', which comes before 'falcosecurity', changed",
            "container: the URL of index 'first'",
        ],
    ),
    (
        "a dependency that names its index is not looked up elsewhere",
        MANIFEST,
        MANIFEST.replace(OFFICIAL_INDEX, FIRST_INDEX + OFFICIAL_INDEX).replace(
            'falco-rules = "4"', 'falco-rules = { version = "4", index = "falcosecurity" }'
        ),
        ["container: index 'first' was added before 'falcosecurity'"],
    ),
]


@pytest.mark.parametrize(
    ("locked_with", "now", "expected"),
    [c[1:] for c in INDEX_ORDER],
    ids=[c[0] for c in INDEX_ORDER],
)
def test_staleness_follows_index_order(locked_with: str, now: str, expected: list[str]) -> None:
    lock = parse_lock(render_lock(make_lock(locked_with)), "falco.lock")  # order survives
    manifest = parse_manifest(now, Path("falco.toml"))
    reasons = stale_reasons(manifest, lock)
    assert len(reasons) == len(expected), reasons
    for fragment in expected:
        assert any(reason.startswith(fragment) for reason in reasons), reasons


# (before, after, the line describe_changes prints)
CHANGES = [
    (RULES, replace(RULES, version="4.2.0", digest=D["3"]), "Updated falco-rules 4.1.0 -> 4.2.0"),
    (
        RULES,
        replace(RULES, digest=D["3"]),
        f"Updated falco-rules 4.1.0 (new digest {D['3'][:19]})",
    ),
    (
        RULES,
        replace(RULES, version="4.2.0", digest=D["3"], source="r.io/other/falco-rules"),
        "Updated falco-rules 4.1.0 -> 4.2.0 (from r.io/other/falco-rules)",
    ),
    (
        RULES,
        replace(RULES, source="r.io/other/falco-rules"),
        "Updated falco-rules 4.1.0 (from r.io/other/falco-rules)",
    ),
    (RULES, RULES, None),
]


@pytest.mark.parametrize(("before", "after", "line"), CHANGES)
def test_describe_changes_names_version_digest_and_source_changes(
    before: LockedArtifact, after: LockedArtifact, line: str | None
) -> None:
    old = Lock(LockInputs(), (replace(before, dependencies=()),))
    new = Lock(LockInputs(), (replace(after, dependencies=()),))
    assert describe_changes(old, new) == ([line] if line else [])
    if line:
        assert describe_changes(old, new, dry_run=True) == [line.replace("Updated", "Would update")]


# -- the parsed-lock cache (large locks skip tomllib) ----------------------------------------


def _large_lock_text() -> str:
    artifacts = tuple(
        replace(RULES, name=f"rules{n:03d}", dependencies=(), dependency_constraints={})
        for n in range(100)
    )
    text = render_lock(replace(make_lock(), artifacts=artifacts))
    assert len(text.encode()) >= PARSED_LOCK_MIN_BYTES
    return text


def test_a_large_lock_is_parsed_once_then_loaded_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import falcopkg.core.lockfile as lockfile

    path, cache = tmp_path / "falco.lock", tmp_path / "cache"
    data = _large_lock_text().encode()
    first = parse_lock_bytes(data, path, cache_dir=cache)
    assert list((cache / "locks").iterdir())
    parses: list[str] = []
    real = lockfile.load_lock_toml
    monkeypatch.setattr(lockfile, "load_lock_toml", lambda *a: parses.append("x") or real(*a))
    assert parse_lock_bytes(data, path, cache_dir=cache) == first
    assert parses == []
    # Other bytes at the same path: the cache does not describe them, they are parsed.
    edited = data.replace(b'"4.1.0"', b'"4.1.1"', 1)
    assert parse_lock_bytes(edited, path, cache_dir=cache).artifacts[0].version == "4.1.1"
    assert parses == ["x"]


def test_a_lock_written_by_a_session_is_read_without_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import falcopkg.core.lockfile as lockfile
    from falcopkg.workflows.project import Project
    from falcopkg.workflows.reporter import SilentReporter

    (tmp_path / "falco.toml").write_text(MANIFEST)
    cache = tmp_path / "cache"
    lock = parse_lock(_large_lock_text(), "falco.lock")
    reporter = SilentReporter()
    project = Project.open(tmp_path / "falco.toml", cache_dir=cache, reporter=reporter)
    assert project.write_lock(lock)
    parses: list[str] = []
    real = lockfile.load_lock_toml
    monkeypatch.setattr(lockfile, "load_lock_toml", lambda *a: parses.append("x") or real(*a))
    again = Project.open(tmp_path / "falco.toml", cache_dir=cache, reporter=reporter)
    assert again.existing_lock() == lock
    assert parses == []


def test_a_damaged_parsed_lock_cache_reads_as_missing(tmp_path: Path) -> None:
    path, cache = tmp_path / "falco.lock", tmp_path / "cache"
    data = _large_lock_text().encode()
    expected = parse_lock_bytes(data, path, cache_dir=cache)
    (cached,) = (cache / "locks").iterdir()
    for damage in (b"", cached.read_bytes()[:-7], cached.read_bytes().replace(b"lock", b"lokk")):
        cached.write_bytes(damage)
        assert parse_lock_bytes(data, path, cache_dir=cache) == expected


def test_a_cached_lock_is_still_validated(tmp_path: Path) -> None:
    path, cache = tmp_path / "falco.lock", tmp_path / "cache"
    data = _large_lock_text().replace(f'digest = "{D["a"]}"', 'digest = "md5:x"', 1).encode()
    messages = []
    for _ in range(2):  # the second read loads the cached TOML and must refuse it the same way
        with pytest.raises(ConfigError) as caught:
            parse_lock_bytes(data, path, cache_dir=cache)
        messages.append(caught.value.message)
    assert messages[0] == messages[1]
    assert f"{path}:" in messages[0]


@pytest.mark.parametrize(
    ("roots", "reached"),
    [
        (["falco-rules"], ["falco-rules", "container"]),  # through its locked dependency
        (["container"], ["container"]),
        (["edge", "falco-rules"], ["edge", "falco-rules", "container"]),  # first reached first
        (["gone", "edge"], ["edge"]),  # a name not locked is skipped
        ([], []),
    ],
)
def test_reachable_from_follows_locked_dependencies(roots: list[str], reached: list[str]) -> None:
    lock = Lock(LockInputs(), (RULES, CONTAINER, EDGE))
    assert [artifact.name for artifact in lock.reachable_from(roots)] == reached


def test_reachable_from_ends_on_a_cycle() -> None:
    a = replace(EDGE, name="a", dependencies=("b",))
    b = replace(EDGE, name="b", dependencies=("a",))
    assert [x.name for x in Lock(LockInputs(), (a, b)).reachable_from(["a"])] == ["a", "b"]
