"""`mirror` and `vendor` (SPEC §11, issue 10): a lock copied to another registry or into an
OCI image layout installs and locks the same bytes with the origin gone; a second run
writes nothing; signatures come along; a damaged layout blob is named and replaced."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from falcopkg.core.lockfile import Lock, parse_lock
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.layout import OciLayout
from falcopkg.oci.mediatypes import OCI_MANIFEST
from tests.fixtures.cli import CliResult, run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.project import HOST, PLUGIN_FOR, RULES_V1, Project, standard_project
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry

WRITE_METHODS = ("PUT", "POST", "PATCH", "DELETE")
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/')


def _logged_registry(factory: Callable[..., RunningRegistry]) -> RunningRegistry:
    """A plain registry writing one access-log line per request (distribution's
    ``log.accesslog``), so a test can count what a client asked of it."""
    registry = factory("plain", start=False)
    config = yaml.safe_load(registry.config_path.read_text())
    config["log"] = {"level": "info", "formatter": "text", "accesslog": {"disabled": False}}
    registry.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    registry.start()
    return registry


def _requests(registry: RunningRegistry, since: int = 0) -> list[tuple[str, str]]:
    """(method, path) of every request logged after byte ``since`` of the log."""
    text = registry.log_path.read_bytes()[since:].decode(errors="replace")
    return [(m.group(1), m.group(2)) for m in _REQUEST.finditer(text)]


def _log_size(registry: RunningRegistry) -> int:
    return registry.log_path.stat().st_size


def _origin_project(tmp_path: Path, origin: RunningRegistry) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    project = standard_project(Project(root, origin.host, "acme"))
    result = project.sync()
    assert result.exit_code == 0, result
    return project


def _lock(project: Project) -> Lock:
    return parse_lock(project.lock_path.read_text(), "falco.lock")


def _with_mirror(project: Project, stanza: str) -> None:
    """Add ``stanza`` to falco.toml's table of the origin registry."""
    path = project.root / "falco.toml"
    origin = f'[registries."{project.registry_host}"]\nplain_http = true\n'
    path.write_text(path.read_text().replace(origin, origin + stanza))


def _sync_into_fresh_dirs(project: Project, name: str, *args: str) -> None:
    rules, plugins = project.root / f"{name}-rules", project.root / f"{name}-plugins"
    result = project.sync(*args, "--rulesfiles-dir", rules, "--plugins-dir", plugins)
    assert result.exit_code == 0, result
    assert (rules / "falco_rules.yaml").read_bytes() == RULES_V1
    assert (plugins / "libcontainer.so").read_bytes() == PLUGIN_FOR[HOST]


def _relock(project: Project, *args: str) -> bytes:
    locked = project.lock_path.read_bytes()
    project.lock_path.unlink()
    result = run_cli("-C", project.root, "lock", *args)
    assert result.exit_code == 0, result
    return locked


def _push_signature(project: Project, subject: str) -> tuple[str, str]:
    """A cosign-style signature: a small manifest tagged ``sha256-<hex>.sig``."""
    repository = f"{project.repo_prefix}/falco-rules"
    config = b"{}"
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subject}}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [
                {
                    **_descriptor("application/vnd.dev.cosign.simplesigning.v1+json", payload),
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ-test"},
                }
            ],
        }
    ).encode()
    tag = subject.replace(":", "-") + ".sig"
    with project.client() as client:
        client.upload_blob(repository, config, _digest(config), len(config))
        client.upload_blob(repository, payload, _digest(payload), len(payload))
        digest = client.put_manifest(repository, tag, manifest, OCI_MANIFEST)
    return tag, digest


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def _mirror(project: Project, *args: str) -> CliResult:
    result = run_cli("-C", project.root, "mirror", *args)
    assert result.exit_code == 0, result
    return result


# -- mirror ------------------------------------------------------------------------------------


def test_mirror_then_sync_and_lock_from_it_with_the_origin_down(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin = registry_factory("plain")
    destination = _logged_registry(registry_factory)
    project = _origin_project(tmp_path, origin)
    lock = _lock(project)
    rules = next(a for a in lock.artifacts if a.name == "falco-rules")
    signature_tag, signature = _push_signature(project, rules.digest)

    first = _mirror(project, f"{destination.host}/mirror", "--plain-http")
    assert first.stdout == f'[registries."{origin.host}"]\nmirror = "{destination.host}/mirror"\n'
    writes = [r for r in _requests(destination) if r[0] in WRITE_METHODS]
    assert any(method == "PUT" and "/manifests/" in path for method, path in writes)

    client = RegistryClient(destination.host, RegistryOptions(plain_http=True))
    with client:
        for artifact in lock.artifacts:
            repository = f"mirror/{artifact.repository}"
            found = client.head_manifest(repository, artifact.version or "")
            assert found is not None and found.digest == artifact.digest, artifact.name
            for platform in artifact.platforms.values():  # every platform, not only this one
                assert client.head_manifest(repository, platform.manifest) is not None
        # The signature of the locked digest arrived, under its cosign tag.
        signed = client.head_manifest(f"mirror/{rules.repository}", signature_tag)
        assert signed is not None and signed.digest == signature

    # A second run writes nothing: no PUT, POST or PATCH reaches the destination.
    offset = _log_size(destination)
    again = _mirror(project, f"{destination.host}/mirror", "--plain-http")
    assert "0 blobs, 0 manifests, 0 tags" in again.stderr, again
    after = _requests(destination, offset)
    assert after, "the access log records requests"
    assert [r for r in after if r[0] in WRITE_METHODS] == []

    origin.stop()
    _with_mirror(
        project,
        f'mirror = "{destination.host}/mirror"\n\n'
        f'[registries."{destination.host}"]\nplain_http = true\n',
    )
    shutil.rmtree(tmp_home.cache_dir)
    _sync_into_fresh_dirs(project, "via-mirror")
    shutil.rmtree(tmp_home.cache_dir)
    locked = _relock(project)
    assert project.lock_path.read_bytes() == locked


def test_mirror_dry_run_lists_what_it_would_copy_and_writes_nothing(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin = registry_factory("plain")
    destination = _logged_registry(registry_factory)
    project = _origin_project(tmp_path, origin)
    result = _mirror(project, f"{destination.host}/m", "--plain-http", "--dry-run")
    lock = _lock(project)
    for artifact in lock.artifacts:
        assert f"{destination.host}/m/{artifact.repository}@{artifact.digest}" in result.stdout
        assert f"{destination.host}/m/{artifact.repository}:{artifact.version}" in result.stdout
    assert "Would mirror" in result.stderr and "would copy" in result.stderr
    assert [r for r in _requests(destination) if r[0] in WRITE_METHODS] == []


def test_mirror_within_one_registry_mounts_blobs(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin = _logged_registry(registry_factory)
    project = _origin_project(tmp_path, origin)
    offset = _log_size(origin)
    result = _mirror(project, f"{origin.host}/copy")
    assert "mounted" in result.stderr, result
    mounts = [p for m, p in _requests(origin, offset) if m == "POST" and "mount=" in p]
    assert mounts
    # Mounted, not uploaded: no blob was PUT.
    assert not [p for m, p in _requests(origin, offset) if m in ("PUT", "PATCH") and "/blobs/" in p]


def test_mirror_refuses_a_stale_lock_and_a_layout_destination(
    tmp_home: TmpHome, tmp_path: Path, plain_registry: RunningRegistry
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    project = Project(root, plain_registry.host, "acme-stale")
    project.write_manifest()
    result = run_cli("-C", root, "mirror", "oci-layout:x")
    assert result.exit_code == 2 and "falcopkg vendor" in result.stderr
    result = run_cli("-C", root, "mirror", f"{plain_registry.host}/m")
    assert result.exit_code == 1 and "falco.lock" in result.stderr
    assert "Traceback" not in result.stderr


# -- vendor ------------------------------------------------------------------------------------


def _skopeo(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=60)


def test_vendor_then_sync_and_lock_from_the_layout_with_no_registry(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin = registry_factory("plain")
    copy_target = registry_factory("plain")
    project = _origin_project(tmp_path, origin)
    lock = _lock(project)
    layout = project.root / "vendor"
    shutil.rmtree(tmp_home.cache_dir)  # the first vendor reads from the registry

    result = run_cli("-C", project.root, "vendor", layout)
    assert result.exit_code == 0, result
    refs = result.stdout.split()
    assert sorted(refs) == sorted(f"{a.source}:{a.version}" for a in lock.artifacts)
    assert OciLayout(layout, origin.host).verify() == []

    # skopeo reads every root as the registry serves it, and copies it on.
    for artifact in lock.artifacts:
        ref = f"{artifact.source}:{artifact.version}"
        raw = _skopeo("inspect", "--raw", f"oci:{layout}:{ref}").stdout
        assert _digest(raw) == artifact.digest
        _skopeo(
            "copy",
            "--all",
            "--dest-tls-verify=false",
            f"oci:{layout}:{ref}",
            f"docker://{copy_target.host}/copied/{artifact.repository}:{artifact.version}",
        )
        with RegistryClient(copy_target.host, RegistryOptions(plain_http=True)) as client:
            found = client.head_manifest(f"copied/{artifact.repository}", artifact.version or "")
        assert found is not None and found.digest == artifact.digest

    origin.stop()
    # A second run with no registry and an empty cache: everything is there, nothing fetched.
    shutil.rmtree(tmp_home.cache_dir)
    index_before = (layout / "index.json").stat().st_mtime_ns
    again = run_cli("-C", project.root, "vendor", layout)
    assert again.exit_code == 0, again
    assert "0 blobs, 0 manifests, 0 tags" in again.stderr
    assert (layout / "index.json").stat().st_mtime_ns == index_before

    _with_mirror(project, 'mirror = "oci-layout:vendor"\n')
    _sync_into_fresh_dirs(project, "from-layout")
    shutil.rmtree(tmp_home.cache_dir)
    locked = _relock(project)
    assert project.lock_path.read_bytes() == locked


def test_vendor_from_a_warm_cache_needs_no_registry(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    """What a sync left in the cache (layers as files, manifests and configs in its packs)
    is enough for `vendor`: the origin is stopped before it runs."""
    origin = registry_factory("plain")
    project = _origin_project(tmp_path, origin)
    assert list((tmp_home.cache_dir / "packs").rglob("*.pack"))
    origin.stop()
    result = run_cli("-C", project.root, "vendor", project.root / "vendor")
    assert result.exit_code == 0, result
    layout = OciLayout(project.root / "vendor", host=origin.host)
    assert layout.list_tags(f"{project.repo_prefix}/falco-rules")


def test_a_damaged_blob_in_the_layout_is_refused_by_sync_and_replaced_by_vendor(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    origin = registry_factory("plain")
    project = _origin_project(tmp_path, origin)
    layer = next(a for a in _lock(project).artifacts if a.name == "falco-rules").layer
    assert layer is not None
    layout = project.root / "vendor"
    assert run_cli("-C", project.root, "vendor", layout).exit_code == 0
    blob = OciLayout(layout, origin.host).blob_path(layer.digest)
    damaged = bytearray(blob.read_bytes())
    damaged[-1] ^= 0xFF
    blob.write_bytes(bytes(damaged))

    _with_mirror(project, 'mirror = "oci-layout:vendor"\n')
    shutil.rmtree(tmp_home.cache_dir)
    refused = project.sync(
        "--frozen", "--rulesfiles-dir", project.root / "r", "--plugins-dir", project.root / "p"
    )
    assert refused.exit_code == 1
    assert layer.digest in refused.stderr and "Traceback" not in refused.stderr
    assert not (project.root / "r" / "falco_rules.yaml").exists()

    # vendor reads the layout back, names the damaged copy and replaces it (from the origin:
    # the layout is only this project's mirror for reading, not its own source of truth).
    (project.root / "falco.toml").write_text(
        (project.root / "falco.toml").read_text().replace('mirror = "oci-layout:vendor"\n', "")
    )
    repaired = run_cli("-C", project.root, "vendor", layout)
    assert repaired.exit_code == 0, repaired
    assert layer.digest in repaired.stderr and "replac" in repaired.stderr
    assert OciLayout(layout, origin.host).verify() == []


def test_mirror_copies_oci_referrers_listed_in_the_referrers_tag_schema(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    """A registry without the referrers API (distribution 2.8) lists a digest's referrers in
    an image index tagged ``sha256-<hex>``: that index and every referrer in it arrive."""
    origin, destination = registry_factory("plain"), registry_factory("plain")
    project = _origin_project(tmp_path, origin)
    rules = next(a for a in _lock(project).artifacts if a.name == "falco-rules")
    repository = f"{project.repo_prefix}/falco-rules"
    with project.client() as client:
        subject = client.get_manifest(repository, rules.digest)
        bundle = b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'
        empty = b"{}"
        referrer = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "config": _descriptor("application/vnd.oci.empty.v1+json", empty),
                "layers": [_descriptor("application/vnd.dev.sigstore.bundle.v0.3+json", bundle)],
                "subject": {
                    "mediaType": subject.media_type,
                    "digest": subject.digest,
                    "size": subject.size,
                },
            }
        ).encode()
        client.upload_blob(repository, empty, _digest(empty), len(empty))
        client.upload_blob(repository, bundle, _digest(bundle), len(bundle))
        referrer_digest = client.put_manifest(repository, _digest(referrer), referrer, OCI_MANIFEST)
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                        "digest": referrer_digest,
                        "size": len(referrer),
                    }
                ],
            }
        ).encode()
        tag = rules.digest.replace(":", "-")
        index_digest = client.put_manifest(
            repository, tag, index, "application/vnd.oci.image.index.v1+json"
        )

    _mirror(project, f"{destination.host}/m", "--plain-http")
    with RegistryClient(destination.host, RegistryOptions(plain_http=True)) as client:
        listed = client.head_manifest(f"m/{repository}", tag)
        assert listed is not None and listed.digest == index_digest
        copied = client.get_manifest(f"m/{repository}", referrer_digest)
        assert copied.data == referrer
        assert client.head_blob(f"m/{repository}", _digest(bundle)) == len(bundle)


def test_mirror_to_a_registry_that_needs_credentials_uses_the_usual_chain(
    tmp_home: TmpHome, tmp_path: Path, registry_factory: Callable[..., RunningRegistry]
) -> None:
    from falcopkg.oci.credentials import env_var_names

    origin, destination = registry_factory("plain"), registry_factory("basic")
    project = _origin_project(tmp_path, origin)
    refused = run_cli("-C", project.root, "mirror", f"{destination.host}/m", "--plain-http")
    assert refused.exit_code == 1 and "login" in refused.stderr, refused
    user_var, password_var = env_var_names(destination.host)
    env = {user_var: destination.username or "", password_var: destination.password or ""}
    result = run_cli("-C", project.root, "mirror", f"{destination.host}/m", "--plain-http", env=env)
    assert result.exit_code == 0, result
    assert (destination.password or "?") not in result.output
