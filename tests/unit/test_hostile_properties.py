"""Every parser of outside input, fed hostile input (issue 12, Build #2): the result is valid
or the error is a FalcopkgError (or the parser's documented ValueError) with a message;
never another exception. Strategies live in tests/fixtures/hostile.py."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from falcopkg.archive import extract_stream, list_layer
from falcopkg.artifact.config import ArtifactConfig, parse_depends_on, parse_requires
from falcopkg.artifact.remote import inspect_artifact
from falcopkg.artifact.rules_yaml import read_rules_requirements
from falcopkg.core.index import parse_index
from falcopkg.core.lockfile import (
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
from falcopkg.core.reference import parse_reference
from falcopkg.core.versions import Constraint, falco_requirement, parse_version
from falcopkg.oci import mediatypes
from falcopkg.oci.auth import parse_www_authenticate
from falcopkg.oci.descriptor import Descriptor, FetchedManifest
from falcopkg.retry import parse_retry_after
from falcopkg.services.state import load_state
from tests.fixtures.hostile import (
    DIGEST,
    OTHER_DIGEST,
    PROPERTY_SETTINGS,
    hostile_text,
    json_documents,
    json_values,
    keyed_objects,
    tar_gz_archives,
    valid_or_clear_error,
)
from tests.fixtures.oci import digest_of

ROOT = Path(__file__).parent.parent.parent
MANIFEST_SEED = (ROOT / "falco.toml.example").read_text(encoding="utf-8")
MANIFEST_SEEDS = (
    MANIFEST_SEED,
    '[dependencies]\nx = { ref = "ghcr.io/a/x", version = ">=1.2, <2" }\ny = "0.16"\n'
    '[registries."ghcr.io"]\nplain_http = false\n',
)
LOCK_SEED = render_lock(
    Lock(
        LockInputs({"falco-rules": "4"}, ("linux/amd64",), {"engine_version": "0.40.0"}, {}),
        (
            LockedArtifact(
                name="falco-rules",
                type="rulesfile",
                version="4.1.0",
                source="ghcr.io/falcosecurity/rules/falco-rules",
                digest=DIGEST,
                layer=LockedLayer(OTHER_DIGEST, 1234, ("falco_rules.yaml",)),
                dependencies=("container",),
                dependency_constraints={"container": ">=0.4.0, <1.0.0"},
                requirements={"engine_version": "15"},
            ),
            LockedArtifact(
                name="container",
                type="plugin",
                version="0.4.1",
                source="ghcr.io/falcosecurity/plugins/plugin/container",
                digest=OTHER_DIGEST,
                platforms={
                    "linux/amd64": LockedPlatform(DIGEST, LockedLayer(DIGEST, 56, ("libc.so",)))
                },
                requirements={"plugin_api_version": "3.10.0"},
            ),
        ),
    )
)
INDEX_SEED = "\n".join(
    (ROOT / "tests" / "data" / "index" / "falcosecurity-like.yaml")
    .read_text(encoding="utf-8")
    .splitlines()[:45]
)
RULES_SEED = (ROOT / "fixtures" / "rules" / "acme_rules.yaml").read_text(encoding="utf-8")
RULES_SEEDS = (RULES_SEED, "- required_engine_version: 15\n- list: l\n  items: [1, 2]\n")


@PROPERTY_SETTINGS
@given(hostile_text(*MANIFEST_SEEDS))
def test_falco_toml(text: str) -> None:
    valid_or_clear_error(lambda: parse_manifest(text, Path("falco.toml")))


@PROPERTY_SETTINGS
@given(hostile_text(LOCK_SEED))
def test_falco_lock(text: str) -> None:
    lock = valid_or_clear_error(lambda: parse_lock(text, "falco.lock"))
    if lock is not None:  # what is parsed is also checked against falco.toml
        manifest = parse_manifest(MANIFEST_SEED, Path("falco.toml"))
        assert isinstance(stale_reasons(manifest, lock), list)


STATE_SEED = {
    "version": 1,
    "artifacts": {
        "falco-rules": {
            "version": "4.0.0",
            "layer": DIGEST,
            "files": {"falco_rules.yaml": {"sha256": DIGEST, "size": 12, "mtime_ns": 1}},
        }
    },
    "pending": {"falco_rules.yaml": [DIGEST]},
    "sync": {"stamp": "x", "directories": ["/etc/falco"]},
}
_files = st.dictionaries(st.text(max_size=12), keyed_objects(["sha256", "size", "mtime_ns"]))
_artifact = keyed_objects(["version", "layer", "files"], json_values | _files)
state_documents = json_documents(STATE_SEED) | st.builds(
    lambda artifacts, pending: json.dumps(
        {"version": 1, "artifacts": artifacts, "pending": pending}
    ).encode(),
    st.dictionaries(st.text(max_size=8), _artifact, max_size=2),
    json_values,
)


@pytest.fixture(scope="module")
def install_dir() -> Any:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / ".falcopkg").mkdir()
        yield Path(directory)


@PROPERTY_SETTINGS
@given(data=state_documents)
def test_state_json(install_dir: Path, data: bytes) -> None:
    (install_dir / ".falcopkg" / "state.json").write_bytes(data)
    state = valid_or_clear_error(lambda: load_state(install_dir))
    if state is not None:  # every path a sync may touch is inside the directory
        for path in [*state.owners(), *state.pending]:
            assert ".." not in path.split("/") and not path.startswith("/")


@PROPERTY_SETTINGS
@given(hostile_text(INDEX_SEED))
def test_index_yaml(text: str) -> None:
    valid_or_clear_error(lambda: parse_index(text, "index test"))


@PROPERTY_SETTINGS
@given(hostile_text(*RULES_SEEDS))
def test_rules_yaml_requirements(text: str) -> None:
    valid_or_clear_error(lambda: read_rules_requirements(text, "rules.yaml"))


CONFIG_SEED = {
    "name": "k8saudit-rules",
    "version": "0.7.0",
    "dependencies": [
        {"name": "k8saudit", "version": "0.7.0", "alternatives": [{"name": "x", "version": "1"}]}
    ],
    "requirements": [{"name": "engine_version", "version": "15"}],
}


@PROPERTY_SETTINGS
@given(json_documents(CONFIG_SEED))
def test_config_json(data: bytes) -> None:
    config = valid_or_clear_error(lambda: ArtifactConfig.from_json(data, source="config"))
    if config is not None:
        assert ArtifactConfig.from_json(config.to_json_bytes()) == config


@PROPERTY_SETTINGS
@given(
    st.lists(hostile_text("k8saudit:0.18.0|k8saudit-eks:0.12.0", "engine_version:15"), max_size=3)
)
def test_depends_on_and_requires_flags(values: list[str]) -> None:
    valid_or_clear_error(lambda: parse_depends_on(values))
    valid_or_clear_error(lambda: parse_requires(values))


@PROPERTY_SETTINGS
@given(
    hostile_text(
        "ghcr.io/falcosecurity/rules/falco-rules:3.0.0",
        f"localhost:5000/a/b@{DIGEST}",
        "falco-rules:latest",
        "[::1]:5000/x",
    )
)
def test_references(text: str) -> None:
    reference = valid_or_clear_error(lambda: parse_reference(text))
    if reference is not None and not reference.is_index_name:
        assert parse_reference(str(reference)) == reference


@PROPERTY_SETTINGS
@given(hostile_text(">=1.2, <2", "^0.16", "~1.2.3", "1.*", "=1.2.3-rc.1", "*"))
def test_constraints(text: str) -> None:
    constraint = valid_or_clear_error(lambda: Constraint.parse(text), also=(ValueError,))
    if constraint is not None:
        assert Constraint.parse(str(constraint)) == constraint
        constraint.allows(parse_version("1.2.3") or pytest.fail("seed version"))
    valid_or_clear_error(lambda: falco_requirement(text), also=(ValueError,))
    version = parse_version(text)
    if version is not None:
        str(version)  # printable: no number beyond int()'s digit limit


@PROPERTY_SETTINGS
@given(
    hostile_text(
        'Bearer realm="https://auth.example.com/token",service="registry",'
        'scope="repository:a/b:pull,push"',
        'Basic realm="x", Bearer realm="y", error="insufficient_scope"',
        "Basic abc==",
    )
)
def test_www_authenticate(text: str) -> None:
    for challenge in parse_www_authenticate(text):  # documented never to raise
        assert isinstance(challenge.scheme, str)
        assert all(isinstance(v, str) for v in challenge.params.values())


@PROPERTY_SETTINGS
@given(hostile_text("120", "Wed, 21 Oct 2015 07:28:00 GMT", "Mon, 01 Jan 9999 00:00:00 GMT"))
def test_retry_after(text: str) -> None:
    delay = parse_retry_after(text, now=1445412480.0)  # documented never to raise
    assert delay is None or (delay >= 0 and math.isfinite(delay))


MANIFEST_JSON = {
    "schemaVersion": 2,
    "mediaType": mediatypes.OCI_MANIFEST,
    "config": {
        "mediaType": "application/vnd.cncf.falco.rulesfile.config.v1+json",
        "digest": DIGEST,
        "size": 2,
    },
    "layers": [
        {
            "mediaType": "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz",
            "digest": OTHER_DIGEST,
            "size": 10,
            "annotations": {"org.opencontainers.image.title": "rules.tar.gz"},
        }
    ],
}
INDEX_JSON = {
    "schemaVersion": 2,
    "mediaType": mediatypes.OCI_INDEX,
    "manifests": [
        {
            "mediaType": mediatypes.OCI_MANIFEST,
            "digest": DIGEST,
            "size": 10,
            "platform": {"os": "linux", "architecture": "amd64"},
        }
    ],
}


class _FakeRegistry:
    """What inspect_artifact asks of a client: manifests by reference, blobs by digest.
    Every manifest is the hostile ``body``; the config is a valid one."""

    host = "registry.example.com"

    def __init__(self, body: bytes, media_type: str) -> None:
        self.body = body
        self.media_type = media_type

    def get_manifest(self, repository: str, reference: str, **_options: Any) -> FetchedManifest:
        return FetchedManifest(self.media_type, digest_of(self.body), self.body)

    def get_blob_bytes(self, repository: str, digest: str, **_options: Any) -> bytes:
        return b"{}"


@PROPERTY_SETTINGS
@given(
    json_documents(MANIFEST_JSON, INDEX_JSON),
    st.sampled_from([mediatypes.OCI_MANIFEST, mediatypes.OCI_INDEX]),
)
def test_manifests_and_image_indexes(body: bytes, media_type: str) -> None:
    fetched = FetchedManifest(media_type, digest_of(body), body)
    valid_or_clear_error(fetched.json)
    registry = _FakeRegistry(body, media_type)
    valid_or_clear_error(lambda: inspect_artifact(registry, "a/b", "1.0.0"))  # type: ignore[arg-type]


@PROPERTY_SETTINGS
@given(keyed_objects(["mediaType", "digest", "size", "annotations", "platform", "artifactType"]))
def test_descriptors(data: dict[str, Any]) -> None:
    descriptor = valid_or_clear_error(lambda: Descriptor.from_dict(data))
    if descriptor is not None:
        assert Descriptor.from_dict(descriptor.to_dict()) == descriptor


@pytest.fixture(scope="module")
def staging_parent() -> Any:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


@PROPERTY_SETTINGS
@given(archive=tar_gz_archives())
def test_tar_headers(staging_parent: Path, archive: bytes) -> None:
    import io

    staging = staging_parent / "staging"
    files = valid_or_clear_error(
        lambda: extract_stream(io.BytesIO(archive), "demo", staging, max_bytes=1 << 20)
    )
    if files is None:
        assert not staging.exists()  # nothing half-written
    else:
        for extracted in files:
            assert extracted.staged.resolve().is_relative_to(staging.resolve())
        import shutil

        shutil.rmtree(staging)
    path = staging_parent / "layer.tar.gz"
    path.write_bytes(archive)
    valid_or_clear_error(lambda: list_layer(path, "demo", max_bytes=1 << 20))
