"""OciLayout against skopeo, an independent implementation of the image-layout spec: what
falcopkg writes skopeo reads and copies to a real registry, what skopeo writes falcopkg
reads, and the resolver's inspect gives the same answer on a layout as on the registry."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from falcopkg.artifact.remote import RemoteArtifact, inspect_artifact
from falcopkg.digests import file_digest
from falcopkg.oci import mediatypes
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.layout import OciLayout
from tests.fixtures.artifacts import PLATFORMS, push_plugin, push_rules
from tests.fixtures.registries import RunningRegistry

ORIGIN = "ghcr.io"
PLUGIN = "falcosecurity/plugins/plugin/demo"
RULES = "falcosecurity/rules/demo-rules"


def skopeo(*args: str) -> bytes:
    proc = subprocess.run(["skopeo", *args], capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed:\n{proc.stderr.decode()}")
    return proc.stdout


@pytest.fixture
def registry(plain_registry: RunningRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(plain_registry.host, RegistryOptions(plain_http=True)) as client:
        yield client


def _same_artifact(one: RemoteArtifact, other: RemoteArtifact) -> None:
    assert dataclasses.replace(one, repository="") == dataclasses.replace(other, repository="")


def test_skopeo_reads_and_copies_what_falcopkg_writes(
    tmp_path: Path, plain_registry: RunningRegistry, registry: RegistryClient, unique_repo: str
) -> None:
    layout = OciLayout(tmp_path / "layout", ORIGIN, create=True)
    with layout.transaction():
        plugin = push_plugin(layout, PLUGIN, tmp_path / "work", "0.1.0", floating=True)
        rules = push_rules(layout, RULES, tmp_path / "work", "1.0.0")

    for repository, tag, pushed in ((PLUGIN, "0.1", plugin), (RULES, "1.0.0", rules)):
        ref = f"oci:{layout.path}:{layout.ref_name(repository, tag)}"
        raw = skopeo("inspect", "--raw", ref)
        assert raw == layout.get_manifest(repository, tag).data
        assert raw == layout.get_manifest(repository, pushed.digest).data

        # skopeo reads every blob (verifying digests) and pushes them to a real registry.
        target = f"{unique_repo}/{repository.rsplit('/', 1)[-1]}"
        dest = f"docker://{plain_registry.host}/{target}:{tag}"
        skopeo("copy", "--all", *plain_registry.skopeo_args("dest"), ref, dest)
        assert registry.get_manifest(target, tag).data == raw
        _same_artifact(
            inspect_artifact(registry, target, tag), inspect_artifact(layout, repository, tag)
        )

    artifact = inspect_artifact(layout, PLUGIN, "latest")
    assert artifact.platform_names == sorted(PLATFORMS)
    assert artifact.root_media_type == mediatypes.OCI_INDEX

    # skopeo adds to falcopkg's layout (lock file and all); falcopkg sees it at once.
    before = layout.refs()
    source = f"docker://{plain_registry.host}/{unique_repo}/demo:0.1"
    back = "docker.io/copied/back:0.1"
    skopeo("copy", "--all", *plain_registry.skopeo_args("src"), source, f"oci:{layout.path}:{back}")
    assert layout.for_host("docker.io").list_tags("copied/back") == ["0.1"]
    assert layout.refs() == {**before, back: layout.refs()[back]}
    assert layout.refs()[back].digest == plugin.digest
    assert layout.verify() == []


def test_falcopkg_reads_what_skopeo_writes(
    tmp_path: Path, plain_registry: RunningRegistry, registry: RegistryClient, unique_repo: str
) -> None:
    repository = f"{unique_repo}/plugin"
    pushed = push_plugin(registry, repository, tmp_path / "work", "1.0.0")
    source = f"docker://{plain_registry.host}/{repository}:1.0.0"
    ref_name = "ghcr.io/x/y:1.0.0"
    layout_dir = tmp_path / "from-skopeo"
    skopeo(
        "copy", "--all", *plain_registry.skopeo_args("src"), source, f"oci:{layout_dir}:{ref_name}"
    )

    layout = OciLayout(layout_dir, "ghcr.io")
    assert layout.list_tags("x/y") == ["1.0.0"]
    assert (
        layout.get_manifest("x/y", "1.0.0").data == registry.get_manifest(repository, "1.0.0").data
    )
    _same_artifact(
        inspect_artifact(layout, "x/y", "1.0.0"), inspect_artifact(registry, repository, "1.0.0")
    )
    assert layout.verify() == []
    layer = pushed.manifests[1].layer
    out = tmp_path / "layer.tar.gz"
    layout.download_blob("x/y", layer.digest, out, expected_size=layer.size)
    assert file_digest(out) == layer.digest

    # falcopkg adds to skopeo's layout, and skopeo still reads both.
    rules = push_rules(
        layout.for_host("docker.io"), "falcosecurity/rules", tmp_path / "work", "2.0.0"
    )
    assert set(layout.refs()) == {ref_name, "docker.io/falcosecurity/rules:2.0.0"}
    raw = skopeo("inspect", "--raw", f"oci:{layout_dir}:docker.io/falcosecurity/rules:2.0.0")
    assert (
        raw == layout.for_host("docker.io").get_manifest("falcosecurity/rules", rules.digest).data
    )
    assert (
        skopeo("inspect", "--raw", f"oci:{layout_dir}:{ref_name}")
        == layout.get_manifest("x/y", "1.0.0").data
    )
