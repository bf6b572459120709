"""The copy engine of `mirror` and `vendor` (services.copy) between two OCI layouts: the whole
graph with digests unchanged, children before parents, nothing written twice, a damaged
destination copy replaced, a dry run writing nothing, a warm cache needing no source."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from falcopkg.artifact.push import PushResult
from falcopkg.oci.layout import OciLayout
from falcopkg.services.cache import BlobCache
from falcopkg.services.copy import CopyJob, copy_artifacts
from tests.fixtures.artifacts import push_plugin, push_rules

HOST = "ghcr.io"
PLUGIN = "falcosecurity/plugins/plugin/demo"
RULES = "falcosecurity/rules/demo-rules"


@pytest.fixture
def source(tmp_path: Path) -> OciLayout:
    return OciLayout(tmp_path / "source", HOST, create=True)


@pytest.fixture
def destination(tmp_path: Path) -> OciLayout:
    return OciLayout(tmp_path / "destination", HOST, create=True)


@pytest.fixture
def pushed(source: OciLayout, tmp_path: Path) -> list[PushResult]:
    return [
        push_plugin(source, PLUGIN, tmp_path / "work", "0.1.0"),
        push_rules(source, RULES, tmp_path / "work", "1.0.0"),
    ]


def _jobs(source: OciLayout, destination: OciLayout, pushed: list[PushResult]) -> list[CopyJob]:
    return [
        CopyJob(p.repository, source, p.repository, destination, p.repository, p.digest, p.tags)
        for p in pushed
    ]


def _blobs(layout: OciLayout) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in (layout.path / "blobs").rglob("*")
        if path.is_file()
    }


def test_the_whole_graph_is_copied_once_with_digests_unchanged(
    source: OciLayout, destination: OciLayout, pushed: list[PushResult], tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    report = copy_artifacts(_jobs(source, destination, pushed), cache, verify_existing=True)
    assert _blobs(destination) == _blobs(source)
    assert destination.verify() == []
    assert set(destination.refs()) == set(source.refs())
    # index, 2 platform manifests, 2 layers, 1 shared config + rules: manifest, config, layer
    kinds = sorted(item.kind for item in report.items if item.action == "copy")
    assert kinds == sorted(["manifest"] * 4 + ["config"] * 2 + ["layer"] * 3 + ["tag"] * 2)

    again = copy_artifacts(_jobs(source, destination, pushed), cache, verify_existing=True)
    assert again.written == []


def test_a_dry_run_writes_nothing(
    source: OciLayout, destination: OciLayout, pushed: list[PushResult], tmp_path: Path
) -> None:
    report = copy_artifacts(
        _jobs(source, destination, pushed), BlobCache(tmp_path / "cache"), dry_run=True
    )
    assert report.written and _blobs(destination) == {}
    assert destination.refs() == {}


def test_a_damaged_destination_blob_is_named_and_replaced(
    source: OciLayout, destination: OciLayout, pushed: list[PushResult], tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    copy_artifacts(_jobs(source, destination, pushed), cache, verify_existing=True)
    layer = pushed[1].manifests[0].layer.digest
    blob = destination.blob_path(layer)
    blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    warnings: list[str] = []
    report = copy_artifacts(
        _jobs(source, destination, pushed), cache, verify_existing=True, warn=warnings.append
    )
    assert [item.kind for item in report.written] == ["layer"]
    assert report.written[0].action == "replace"
    assert any(layer in warning for warning in warnings)
    assert destination.verify() == []


def test_a_warm_cache_copies_without_the_source(
    source: OciLayout, destination: OciLayout, pushed: list[PushResult], tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    first = OciLayout(tmp_path / "first", HOST, create=True)
    copy_artifacts(_jobs(source, first, pushed), cache)  # fills the cache
    shutil.rmtree(source.path / "blobs")
    copy_artifacts(_jobs(source, destination, pushed), cache, verify_existing=True)
    assert destination.verify() == [] and set(destination.refs()) == set(first.refs())
