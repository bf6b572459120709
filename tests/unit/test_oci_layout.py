"""OciLayout: an OCI image layout directory as a content store (read, write, verify)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from falcopkg.artifact.pack import config_descriptor, image_manifest_bytes
from falcopkg.artifact.push import PushResult
from falcopkg.artifact.remote import inspect_artifact
from falcopkg.digests import bytes_digest
from falcopkg.errors import ConfigError, FalcopkgError, IntegrityError
from falcopkg.oci import layout as layout_module
from falcopkg.oci import mediatypes
from falcopkg.oci.descriptor import Descriptor
from falcopkg.oci.errors import InvalidManifestError, NotFoundError
from falcopkg.oci.layout import REF_NAME, OciLayout
from tests.fixtures.artifacts import PLATFORMS, push_plugin, push_rules

HOST = "ghcr.io"
PLUGIN = "falcosecurity/plugins/plugin/demo"
RULES = "falcosecurity/rules/demo-rules"


@pytest.fixture
def layout(tmp_path: Path) -> OciLayout:
    return OciLayout(tmp_path / "layout", HOST, create=True)


@pytest.fixture
def plugin(layout: OciLayout, tmp_path: Path) -> PushResult:
    return push_plugin(layout, PLUGIN, tmp_path / "work", "0.1.0", floating=True)


def _index(layout: OciLayout) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((layout.path / "index.json").read_bytes())
    return value


def _layer_digest(result: PushResult, number: int = 0) -> str:
    return result.manifests[number].layer.digest


def _assert_only_content(layout: OciLayout) -> None:
    """No temporary file anywhere: every blob is named by the digest of its bytes."""
    for path in layout.path.rglob("*"):
        relative = path.relative_to(layout.path).as_posix()
        if path.is_dir():
            assert relative in ("blobs", "blobs/sha256"), relative
        elif relative.startswith("blobs/"):
            assert relative == f"blobs/sha256/{hashlib.sha256(path.read_bytes()).hexdigest()}"
        else:
            assert relative in ("oci-layout", "index.json", layout_module.LOCK_FILE), relative


# -- round trip ----------------------------------------------------------------------------------


def test_new_layout_is_empty_and_valid(layout: OciLayout) -> None:
    assert json.loads((layout.path / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    assert _index(layout) == {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_INDEX,
        "manifests": [],
    }
    assert (layout.path / "blobs").is_dir()
    assert layout.refs() == {}
    assert layout.verify() == []


def test_round_trip_of_a_multi_platform_artifact(
    layout: OciLayout, plugin: PushResult, tmp_path: Path
) -> None:
    rules = push_rules(layout, RULES, tmp_path / "work", "1.2.3")
    assert layout.list_tags(PLUGIN) == ["0.1.0", "0.1", "0", "latest"]
    assert layout.list_tags(RULES) == ["1.2.3"]

    # index.json names each root HOST/REPOSITORY:TAG; platform manifests are blobs only.
    entries = _index(layout)["manifests"]
    assert [e["annotations"][REF_NAME] for e in entries] == [
        f"{HOST}/{PLUGIN}:0.1.0",
        f"{HOST}/{PLUGIN}:0.1",
        f"{HOST}/{PLUGIN}:0",
        f"{HOST}/{PLUGIN}:latest",
        f"{HOST}/{RULES}:1.2.3",
    ]
    assert {e["digest"] for e in entries[:4]} == {plugin.digest}
    assert entries[4]["mediaType"] == mediatypes.OCI_MANIFEST

    head = layout.head_manifest(PLUGIN, "0.1")
    root = layout.get_manifest(PLUGIN, "0.1")
    assert head == root.descriptor
    assert (root.digest, root.media_type) == (plugin.digest, mediatypes.OCI_INDEX)
    assert layout.get_manifest(PLUGIN, plugin.digest).data == root.data
    assert layout.head_manifest(PLUGIN, plugin.digest) == head

    # A platform manifest, found by digest only (any manifest blob of the layout).
    body = root.json()
    assert [m["platform"]["architecture"] for m in body["manifests"]] == ["amd64", "arm64"]
    arm = layout.get_manifest(PLUGIN, body["manifests"][1]["digest"])
    assert arm.media_type == mediatypes.OCI_MANIFEST
    assert arm.digest == plugin.manifests[1].digest

    # The resolver's view: the same as on a registry.
    artifact = inspect_artifact(layout, PLUGIN, "0.1.0")
    assert artifact.root_digest == plugin.digest
    assert artifact.platform_names == sorted(PLATFORMS)
    assert artifact.config.version == "0.1.0"
    assert artifact.platforms["linux/arm64"].layer.digest == _layer_digest(plugin, 1)
    assert inspect_artifact(layout, RULES, rules.digest).type.name == "rulesfile"

    # Blobs, three ways, each verified.
    layer = plugin.manifests[0].layer
    dest = tmp_path / "out" / "layer.tar.gz"
    seen: list[int] = []
    layout.download_blob(PLUGIN, layer.digest, dest, expected_size=layer.size, progress=seen.append)
    assert bytes_digest(dest.read_bytes()) == layer.digest and sum(seen) == layer.size
    with layout.open_blob(PLUGIN, layer.digest, layer.size) as chunks:
        assert b"".join(chunks) == dest.read_bytes()
    config = layout.get_blob_bytes(PLUGIN, arm.json()["config"]["digest"])
    assert json.loads(config)["version"] == "0.1.0"
    assert layout.head_blob(PLUGIN, layer.digest) == layer.size

    assert layout.verify() == []
    _assert_only_content(layout)


def test_pushing_again_writes_nothing(
    layout: OciLayout, plugin: PushResult, tmp_path: Path
) -> None:
    before = {p: p.stat().st_mtime_ns for p in layout.path.rglob("*") if p.is_file()}
    again = push_plugin(layout, PLUGIN, tmp_path / "work", "0.1.0", floating=True)
    assert again.digest == plugin.digest
    after = {p: p.stat().st_mtime_ns for p in layout.path.rglob("*") if p.is_file()}
    blobs = {p for p in before if "blobs" in p.parts}
    assert {p: after[p] for p in blobs} == {p: before[p] for p in blobs}


def test_a_moved_tag_replaces_its_entry_in_place(
    layout: OciLayout, plugin: PushResult, tmp_path: Path
) -> None:
    newer = push_plugin(layout, PLUGIN, tmp_path / "work", "0.1.1", floating=True)
    names = [e["annotations"][REF_NAME] for e in _index(layout)["manifests"]]
    assert names == [f"{HOST}/{PLUGIN}:{tag}" for tag in ("0.1.0", "0.1", "0", "latest", "0.1.1")]
    assert layout.get_manifest(PLUGIN, "latest").digest == newer.digest
    assert layout.get_manifest(PLUGIN, "0.1.0").digest == plugin.digest


def test_other_hosts_and_foreign_entries(layout: OciLayout, plugin: PushResult) -> None:
    """A layout serves every host it holds, each through its own view; entries it did not
    write (skopeo's bare tags, unnamed manifests, extra fields) are kept as they are."""
    other = layout.for_host("registry.example:5000")
    with pytest.raises(NotFoundError):
        other.list_tags(PLUGIN)
    root = layout.get_manifest(PLUGIN, "0.1.0")
    other.put_manifest(PLUGIN, "9.0.0", root.data, root.media_type)
    assert other.list_tags(PLUGIN) == ["9.0.0"]
    assert "9.0.0" not in layout.list_tags(PLUGIN)

    document = _index(layout)
    foreign = [
        {"mediaType": root.media_type, "digest": root.digest, "size": root.size},
        {**root.descriptor.to_dict(), "annotations": {REF_NAME: "1.0.0"}},
    ]
    document["manifests"] += foreign
    document["annotations"] = {"made.by": "another tool"}
    (layout.path / "index.json").write_text(json.dumps(document))
    assert layout.list_tags(PLUGIN)[-1] == "latest"  # "1.0.0" names no HOST/REPOSITORY
    with pytest.raises(NotFoundError) as caught:
        layout.list_tags(RULES)
    assert "without their repository (1.0.0)" in (caught.value.hint or "")
    layout.put_manifest(PLUGIN, "0.2.0", root.data, root.media_type)
    rewritten = _index(layout)
    assert rewritten["manifests"][-3:-1] == foreign
    assert rewritten["annotations"] == {"made.by": "another tool"}


# -- damage and absence --------------------------------------------------------------------------


def _damage(layout: OciLayout, digest: str) -> Path:
    """Flip one byte, keeping the size (the worst case: only the digest can tell)."""
    path = layout.blob_path(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_layer_is_refused_naming_it_and_leaves_nothing(
    layout: OciLayout, plugin: PushResult, tmp_path: Path
) -> None:
    layer = plugin.manifests[1].layer
    _damage(layout, layer.digest)
    out = tmp_path / "out"
    with pytest.raises(IntegrityError) as caught:
        layout.download_blob(PLUGIN, layer.digest, out / "layer", expected_size=layer.size)
    message = str(caught.value)
    assert layer.digest in message and str(layout.path) in message
    assert "vendor" in (caught.value.hint or "")
    assert not out.exists() or list(out.iterdir()) == []
    with (
        pytest.raises(IntegrityError, match=layer.digest),
        layout.open_blob(PLUGIN, layer.digest, layer.size) as chunks,
    ):
        for _ in chunks:
            pass
    with pytest.raises(IntegrityError, match=layer.digest):
        layout.get_blob_bytes(PLUGIN, layer.digest)

    problems = layout.verify()
    assert [(p.digest, p.ref) for p in problems] == [(layer.digest, f"{HOST}/{PLUGIN}:0.1.0")]

    # Writing the blob again repairs the layout (an intact copy would be kept).
    fresh = push_plugin(layout, PLUGIN, tmp_path / "work", "0.1.0")
    assert fresh.digest == plugin.digest
    assert layout.verify() == []
    _assert_only_content(layout)


def test_verify_checks_only_the_roots_given(
    layout: OciLayout, plugin: PushResult, tmp_path: Path
) -> None:
    rules = push_rules(layout, RULES, tmp_path / "work", "1.0.0")
    layer = rules.manifests[0].layer
    _damage(layout, layer.digest)
    assert layout.verify([layout.refs()[f"{HOST}/{PLUGIN}:0"]]) == []
    problems = layout.verify([layout.refs()[f"{HOST}/{RULES}:1.0.0"]])
    assert [(p.ref, p.digest) for p in problems] == [(f"{HOST}/{RULES}:1.0.0", layer.digest)]
    assert "does not match its digest" in str(problems[0])
    assert layout.verify() == problems


def test_a_damaged_or_resized_manifest_is_refused(layout: OciLayout, plugin: PushResult) -> None:
    _damage(layout, plugin.digest)
    with pytest.raises(IntegrityError, match=plugin.digest):
        layout.get_manifest(PLUGIN, "0.1.0")
    with pytest.raises(IntegrityError, match=plugin.digest):
        inspect_artifact(layout, PLUGIN, plugin.digest)
    path = layout.blob_path(plugin.digest)
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(IntegrityError, match="bytes, expected"):
        layout.head_manifest(PLUGIN, "0.1.0")
    with pytest.raises(IntegrityError, match="bytes, expected"):
        layout.get_manifest(PLUGIN, "0.1.0")


def test_a_wrong_expected_digest_is_refused(layout: OciLayout, plugin: PushResult) -> None:
    other = "sha256:" + "0" * 64
    with pytest.raises(IntegrityError, match=other):
        layout.get_manifest(PLUGIN, "0.1.0", expected_digest=other)


def test_missing_things_are_not_found_errors_naming_the_layout(
    layout: OciLayout, plugin: PushResult, tmp_path: Path
) -> None:
    absent = "sha256:" + "a" * 64
    cases = [
        lambda: layout.get_manifest(PLUGIN, "9.9.9"),
        lambda: layout.get_manifest(PLUGIN, absent),
        lambda: layout.list_tags("falcosecurity/nothing"),
        lambda: layout.get_blob_bytes(PLUGIN, absent),
        lambda: layout.download_blob(PLUGIN, absent, tmp_path / "x"),
    ]
    for case in cases:
        with pytest.raises(NotFoundError) as caught:
            case()
        assert str(layout.path) in caught.value.message
        assert caught.value.hint and "vendor" in caught.value.hint
    assert "9.9.9" in _message(lambda: layout.get_manifest(PLUGIN, "9.9.9"))
    assert layout.head_manifest(PLUGIN, "9.9.9") is None
    assert layout.head_manifest(PLUGIN, absent) is None
    assert layout.head_blob(PLUGIN, absent) is None
    assert not (tmp_path / "x").exists()

    layout.blob_path(plugin.manifests[0].digest).unlink()
    problems = layout.verify()
    assert [p.digest for p in problems] == [plugin.manifests[0].digest]
    assert "not in the OCI layout" in problems[0].message


def _message(call: Any) -> str:
    try:
        call()
    except FalcopkgError as exc:
        return exc.message
    raise AssertionError("no error")


# -- writing -------------------------------------------------------------------------------------


def _tiny_manifest(layout: OciLayout, repository: str, payload: bytes) -> bytes:
    config = json.dumps({"name": repository, "version": "1.0.0"}).encode()
    config_desc = config_descriptor("application/vnd.cncf.falco.rulesfile.config.v1+json", config)
    layer = Descriptor(
        "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz", bytes_digest(payload), len(payload)
    )
    layout.upload_blob(repository, config, config_desc.digest, config_desc.size)
    layout.upload_blob(repository, payload, layer.digest, layer.size)
    return image_manifest_bytes(config_desc, layer)


def test_put_manifest_refuses_what_a_registry_refuses(layout: OciLayout) -> None:
    manifest = _tiny_manifest(layout, RULES, b"layer")
    orphan = manifest.replace(bytes_digest(b"layer").encode(), bytes_digest(b"other").encode())
    with pytest.raises(InvalidManifestError, match="not in the OCI layout"):
        layout.put_manifest(RULES, "1.0.0", orphan, mediatypes.OCI_MANIFEST)
    with pytest.raises(IntegrityError):
        layout.put_manifest(RULES, bytes_digest(b"x"), manifest, mediatypes.OCI_MANIFEST)
    with pytest.raises(InvalidManifestError, match="declares media type"):
        layout.put_manifest(RULES, "1.0.0", manifest, mediatypes.OCI_INDEX)
    with pytest.raises(IntegrityError, match="4 bytes, not 5"):
        layout.upload_blob(RULES, b"abcd", bytes_digest(b"abcd"), 5)
    with pytest.raises(IntegrityError, match="does not match"):
        layout.upload_blob(RULES, b"abcd", bytes_digest(b"abce"), 4)
    assert layout.refs() == {}
    # By digest: a blob, no ref name.
    digest = layout.put_manifest(RULES, bytes_digest(manifest), manifest, mediatypes.OCI_MANIFEST)
    assert layout.get_manifest(RULES, digest).data == manifest
    assert layout.refs() == {}
    _assert_only_content(layout)


def test_transaction_writes_index_json_once_at_the_end(
    layout: OciLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    real_write = layout_module.fsutil.atomic_write_bytes

    def counting(path: Path, data: bytes, **kwargs: Any) -> None:
        writes.append(path.name)
        real_write(path, data, **kwargs)

    monkeypatch.setattr(layout_module.fsutil, "atomic_write_bytes", counting)
    before = (layout.path / "index.json").read_bytes()
    other = layout.for_host("docker.io")
    with layout.transaction():
        plugin = push_plugin(layout, PLUGIN, tmp_path / "work", "0.1.0", floating=True)
        with other.transaction():  # nested, another view: still one batch
            push_rules(other, RULES, tmp_path / "work", "1.0.0")
        assert (layout.path / "index.json").read_bytes() == before
        assert layout.list_tags(PLUGIN) == ["0.1.0", "0.1", "0", "latest"]  # pending refs seen
        assert other.get_manifest(RULES, "1.0.0").media_type == mediatypes.OCI_MANIFEST
        assert writes == []
    assert writes == ["index.json"]
    assert len(layout.refs()) == 5
    assert layout.get_manifest(PLUGIN, "latest").digest == plugin.digest


def test_a_failed_transaction_records_no_ref(layout: OciLayout, tmp_path: Path) -> None:
    before = (layout.path / "index.json").read_bytes()
    with pytest.raises(RuntimeError), layout.transaction():
        push_plugin(layout, PLUGIN, tmp_path / "work", "0.1.0")
        raise RuntimeError("interrupted")
    assert (layout.path / "index.json").read_bytes() == before
    assert layout.refs() == {}
    _assert_only_content(layout)


def test_concurrent_writers_lose_no_ref(tmp_path: Path) -> None:
    """Two stores on one directory (as two processes would be) writing at once: the file
    lock and the re-read under it keep every ref."""
    first = OciLayout(tmp_path / "layout", HOST, create=True)
    second = OciLayout(tmp_path / "layout", HOST)
    manifest = _tiny_manifest(first, RULES, b"shared layer")
    errors: list[BaseException] = []

    def tag_many(store: OciLayout, prefix: str) -> None:
        try:
            for number in range(15):
                store.put_manifest(RULES, f"{prefix}{number}", manifest, mediatypes.OCI_MANIFEST)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=tag_many, args=(store, prefix))
        for store, prefix in ((first, "a"), (second, "b"), (first.for_host(HOST), "c"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(second.list_tags(RULES)) == sorted(
        f"{prefix}{number}" for prefix in "abc" for number in range(15)
    )


# -- bad layouts ---------------------------------------------------------------------------------


def _write_layout(path: Path, oci_layout: str | None, index: str | None) -> Path:
    path.mkdir(parents=True)
    (path / "blobs").mkdir()
    if oci_layout is not None:
        (path / "oci-layout").write_text(oci_layout)
    if index is not None:
        (path / "index.json").write_text(index)
    return path


GOOD_MARKER = '{"imageLayoutVersion": "1.0.0"}'
DIGEST = "sha256:" + "b" * 64


def _entry(size: str) -> str:
    entry = f'{{"mediaType": "{mediatypes.OCI_MANIFEST}", "digest": "{DIGEST}", "size": {size}}}'
    return f'{{"schemaVersion": 2, "manifests": [{entry}]}}'


@pytest.mark.parametrize(
    ("oci_layout", "index", "file", "message"),
    [
        (None, "{}", "", "has no `oci-layout` file"),
        ("not json", "{}", "oci-layout", "not valid JSON"),
        ('{"imageLayoutVersion": 1}', "{}", "oci-layout", "imageLayoutVersion"),
        ('{"imageLayoutVersion": "2.0.0"}', "{}", "oci-layout", "not supported"),
        (GOOD_MARKER, None, "index.json", "is missing"),
        (GOOD_MARKER, "[]", "index.json", "not a JSON object"),
        (GOOD_MARKER, '{"schemaVersion": 1, "manifests": []}', "index.json", "schemaVersion"),
        (GOOD_MARKER, '{"schemaVersion": 2.0, "manifests": []}', "index.json", "schemaVersion"),
        (GOOD_MARKER, '{"schemaVersion": 2}', "index.json", "`manifests` must be a list"),
        (
            GOOD_MARKER,
            '{"schemaVersion": 2, "mediaType": "text/plain", "manifests": []}',
            "index.json",
            "mediaType",
        ),
        (GOOD_MARKER, _entry("1.5"), "index.json", "invalid size"),
        (GOOD_MARKER, _entry('"12"'), "index.json", "invalid size"),
        (GOOD_MARKER, _entry("true"), "index.json", "invalid size"),
        (GOOD_MARKER, _entry("-1"), "index.json", "invalid size"),
        (GOOD_MARKER, _entry("NaN"), "index.json", "not valid JSON"),
        (GOOD_MARKER, _entry("1" * 30), "index.json", "too large"),
        (
            GOOD_MARKER,
            '{"schemaVersion": 2, "manifests": [{"size": 1}]}',
            "index.json",
            "mediaType",
        ),
        (GOOD_MARKER, '{"schemaVersion": 2, "manifests": [', "index.json", "not valid JSON"),
    ],
)
def test_bad_layouts_are_config_errors_naming_the_file(
    tmp_path: Path, oci_layout: str | None, index: str | None, file: str, message: str
) -> None:
    path = _write_layout(tmp_path / "layout", oci_layout, index)
    with pytest.raises(ConfigError) as caught:
        OciLayout(path, HOST).list_tags(RULES)
    assert message in caught.value.message
    assert str(path / file) in caught.value.message


def test_index_json_entry_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout_module, "MAX_INDEX_ENTRIES", 2)
    entry = {"mediaType": mediatypes.OCI_MANIFEST, "digest": DIGEST, "size": 1}
    index = json.dumps({"schemaVersion": 2, "manifests": [entry] * 3})
    path = _write_layout(tmp_path / "layout", GOOD_MARKER, index)
    with pytest.raises(ConfigError, match="lists 3 manifests, more than the 2"):
        OciLayout(path, HOST).list_tags(RULES)


def test_missing_or_foreign_directories(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        OciLayout(tmp_path / "nowhere", HOST)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        OciLayout(tmp_path / "file", HOST)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        OciLayout(busy, HOST, create=True)
    assert sorted(p.name for p in busy.iterdir()) in (
        ["notes.txt"],
        sorted(["notes.txt", layout_module.LOCK_FILE]),
    )
    # create=True on an existing layout keeps what it holds.
    first = OciLayout(tmp_path / "layout", HOST, create=True)
    manifest = _tiny_manifest(first, RULES, b"x")
    first.put_manifest(RULES, "1.0.0", manifest, mediatypes.OCI_MANIFEST)
    assert OciLayout(tmp_path / "layout", HOST, create=True).list_tags(RULES) == ["1.0.0"]


def test_digests_cannot_name_paths_outside_blobs(layout: OciLayout) -> None:
    with pytest.raises(IntegrityError):
        layout.blob_path("sha256:../../index.json")
    with pytest.raises(IntegrityError):
        layout.head_blob(RULES, "md5:" + "0" * 32)


@pytest.mark.parametrize(
    "leftovers",
    [
        {"blobs/": b""},
        {"blobs/": b"", ".index.json.k3j2.tmp": b'{"schemaVersion"'},
        {"blobs/": b"", "index.json": layout_module._render_index({}, [])},
        {
            "blobs/": b"",
            "index.json": layout_module._render_index({}, []),
            ".oci-layout.x.tmp": b"",
        },
    ],
    ids=["blobs", "index-temp", "index", "marker-temp"],
)
def test_a_creation_killed_before_the_marker_is_created_again(
    tmp_path: Path, leftovers: dict[str, bytes]
) -> None:
    """What a `vendor` SIGKILLed mid-creation leaves (found by tests/integration/
    test_kill_loops.py): the next run makes the layout instead of refusing the directory."""
    path = tmp_path / "layout"
    path.mkdir()
    for name, data in leftovers.items():
        if name.endswith("/"):
            (path / name).mkdir()
        else:
            (path / name).write_bytes(data)
    layout = OciLayout(path, "registry.example", create=True)
    assert layout.verify() == [] and layout.refs() == {}
    assert sorted(p.name for p in path.iterdir() if p.name != ".falcopkg.lock") == [
        "blobs",
        "index.json",
        "oci-layout",
    ]


@pytest.mark.parametrize(
    "foreign",
    [{"notes.txt": b"mine"}, {"index.json": b'{"mine": true}'}, {"blobs/sha256": b"x"}],
    ids=["other-file", "other-index", "blob"],
)
def test_a_directory_with_anything_else_is_still_refused(
    tmp_path: Path, foreign: dict[str, bytes]
) -> None:
    path = tmp_path / "layout"
    for name, data in foreign.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    with pytest.raises(ConfigError, match="not empty"):
        OciLayout(path, "registry.example", create=True)
    assert (path / next(iter(foreign))).read_bytes() == next(iter(foreign.values()))
