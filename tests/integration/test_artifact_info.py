"""`falcopkg artifact info` against real registries (artifacts pushed with the OCI client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falcopkg.artifact.config import Dependency, Requirement
from falcopkg.artifact.push import PushResult, push_artifact
from falcopkg.artifact.types import get_type
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.credentials import Credential, env_var_names
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.registries import RunningRegistry

PLATFORMS = ["linux/amd64", "linux/arm64"]


def _fields(lines: list[str]) -> dict[str, str]:
    """``  label:   value`` lines of the text output."""
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _plugin_files(tmp_path: Path, version: str) -> list[Path]:
    files = []
    for platform in PLATFORMS:
        directory = tmp_path / version / platform.replace("/", "-")
        directory.mkdir(parents=True)
        library = directory / "libdemo.so"
        library.write_bytes(f"fake {platform} library {version}".encode())
        files.append(library)
    return files


def _push_plugin(
    client: RegistryClient, repository: str, tmp_path: Path, version: str, **options: object
) -> PushResult:
    return push_artifact(
        client,
        repository,
        get_type("plugin"),
        _plugin_files(tmp_path, version),
        version=version,
        platforms=PLATFORMS,
        created=None,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def plugin_repo(plain_registry: RunningRegistry, unique_repo: str, tmp_path: Path) -> str:
    """A plugin with versions 0.1.0, 0.2.0, 0.10.0 (floating tags moved by the last two)
    and a pre-release 0.11.0-rc.1, each for linux/amd64 and linux/arm64."""
    client = RegistryClient(plain_registry.host, RegistryOptions(plain_http=True))
    repository = f"{unique_repo}/plugin"
    _push_plugin(client, repository, tmp_path, "0.1.0")
    _push_plugin(client, repository, tmp_path, "0.2.0", add_floating_tags=True)
    _push_plugin(
        client,
        repository,
        tmp_path,
        "0.10.0",
        add_floating_tags=True,
        requirements=[Requirement("plugin_api_version", "3.10.0")],
    )
    _push_plugin(client, repository, tmp_path, "0.11.0-rc.1")
    return repository


@pytest.fixture
def index_file(
    tmp_home: TmpHome,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    plain_registry: RunningRegistry,
    plugin_repo: str,
) -> Path:
    """A user-config index naming the plugin `demo`; cwd outside any project."""
    path = tmp_path / "index.yaml"
    path.write_text(
        f"- name: demo\n  type: plugin\n  registry: {plain_registry.host}\n"
        f"  repository: {plugin_repo}\n  description: A demo plugin\n"
        "  home: https://example.com/demo\n  keywords: [demo, testing]\n"
    )
    monkeypatch.chdir(tmp_path)
    assert run_cli("index", "add", "local", path).exit_code == 0
    return path


def test_info_shows_versions_newest_first_floating_tags_and_both_platforms(
    index_file: Path, plain_registry: RunningRegistry, plugin_repo: str
) -> None:
    result = run_cli("artifact", "info", "demo", "--plain-http")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "demo (plugin)"
    fields = _fields(lines[1:])
    assert fields["reference"] == f"{plain_registry.host}/{plugin_repo}"
    assert fields["index"] == "local"
    assert fields["description"] == "A demo plugin"
    assert fields["home"] == "https://example.com/demo"
    assert fields["versions"] == "0.11.0-rc.1, 0.10.0, 0.2.0, 0.1.0"
    assert fields["floating tags"] == "0 -> 0.10.0, 0.10 -> 0.10.0, 0.2 -> 0.2.0, latest -> 0.10.0"
    # The newest release is shown by default; pre-releases only when asked for.
    assert fields["selected"].startswith("0.10.0 (sha256:")
    assert fields["platforms"] == "linux/amd64, linux/arm64"
    assert fields["dependencies"] == "none"
    assert fields["requirements"] == "plugin_api_version 3.10.0"


def test_info_json_for_a_chosen_version(
    index_file: Path, plain_registry: RunningRegistry, plugin_repo: str
) -> None:
    result = run_cli("artifact", "info", "demo:0.10.0", "--plain-http", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["name"] == "demo" and data["type"] == "plugin" and data["index"] == "local"
    assert data["index_entry"]["description"] == "A demo plugin"
    assert data["index_entry"]["keywords"] == ["demo", "testing"]
    assert data["versions"] == ["0.11.0-rc.1", "0.10.0", "0.2.0", "0.1.0"]
    assert data["floating_tags"] == {
        "0": "0.10.0",
        "0.10": "0.10.0",
        "0.2": "0.2.0",
        "latest": "0.10.0",
    }
    selected = data["selected"]
    assert selected["tag"] == "0.10.0" and selected["version"] == "0.10.0"
    assert sorted(selected["platforms"]) == PLATFORMS
    assert selected["media_type"] == "application/vnd.oci.image.index.v1+json"
    assert selected["requirements"] == [{"name": "plugin_api_version", "version": "3.10.0"}]

    # The same artifact by digest, through a registry reference (no index needed).
    by_digest = run_cli(
        "artifact",
        "info",
        f"{plain_registry.host}/{plugin_repo}@{selected['digest']}",
        "--plain-http",
        "--json",
    )
    assert by_digest.exit_code == 0, by_digest.output
    pinned = json.loads(by_digest.stdout)
    assert pinned["index"] is None and pinned["index_entry"] is None
    assert pinned["selected"]["tag"] == "0.10.0"
    assert pinned["selected"]["digest"] == selected["digest"]


def test_info_of_a_rulesfile_shows_dependencies_and_requirements(
    plain_registry: RunningRegistry, unique_repo: str, tmp_path: Path, tmp_home: TmpHome
) -> None:
    client = RegistryClient(plain_registry.host, RegistryOptions(plain_http=True))
    rules = tmp_path / "demo_rules.yaml"
    rules.write_text(
        "- rule: Demo\n  desc: demo\n  condition: evt.type=open\n  output: x\n  priority: INFO\n"
    )
    push_artifact(
        client,
        f"{unique_repo}/rules",
        get_type("rulesfile"),
        [rules],
        version="1.2.0",
        created=None,
        dependencies=[Dependency("demo", "0.2.0")],
        requirements=[Requirement("engine_version_semver", "0.43.0")],
    )
    result = run_cli(
        "artifact", "info", f"{plain_registry.host}/{unique_repo}/rules", "--plain-http"
    )
    assert result.exit_code == 0, result.output
    fields = _fields(result.stdout.splitlines()[1:])
    assert result.stdout.startswith("rules (rulesfile)\n")
    assert fields["versions"] == "1.2.0"
    assert fields["platforms"] == "any (single manifest)"
    assert fields["dependencies"] == "demo 0.2.0"
    assert fields["requirements"] == "engine_version_semver 0.43.0"


def test_registry_options_come_from_falco_toml(
    tls_registry: RunningRegistry,
    unique_repo: str,
    tmp_path: Path,
    tmp_home: TmpHome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert tls_registry.username and tls_registry.password and tls_registry.ca_file
    client = RegistryClient(
        tls_registry.host,
        RegistryOptions(ca_file=tls_registry.ca_file),
        Credential(tls_registry.username, tls_registry.password),
    )
    repository = f"{unique_repo}/plugin"
    _push_plugin(client, repository, tmp_path, "1.0.0")
    project = tmp_path / "project"
    project.mkdir()
    (project / "ca.pem").write_bytes(tls_registry.ca_file.read_bytes())
    (project / "falco.toml").write_text(f'[registries."{tls_registry.host}"]\nca_file = "ca.pem"\n')
    user_var, password_var = env_var_names(tls_registry.host)
    monkeypatch.setenv(user_var, tls_registry.username)
    monkeypatch.setenv(password_var, tls_registry.password)
    result = run_cli(
        "-C", project, "artifact", "info", f"{tls_registry.host}/{repository}", "--json"
    )
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.stdout)["selected"]["platforms"]) == PLATFORMS
    assert tls_registry.password not in result.output


def test_unknown_name_and_missing_repository_are_clear_errors(
    index_file: Path, plain_registry: RunningRegistry, unique_repo: str
) -> None:
    unknown = run_cli("artifact", "info", "dmeo")
    assert unknown.exit_code == 1
    assert "artifact 'dmeo' not found in index local" in unknown.stderr
    assert "did you mean `demo`?" in unknown.stderr
    missing = run_cli(
        "artifact", "info", f"{plain_registry.host}/{unique_repo}/nothing", "--plain-http"
    )
    assert missing.exit_code == 1
    assert plain_registry.host in missing.stderr and "Traceback" not in missing.stderr


# -- type vs shape (SPEC §2, §6): a plugin is always an image index -------------------------


def _upload_manifest(client: RegistryClient, repository: str, type_name: str, body: bytes) -> bytes:
    """Config and layer blobs of ``type_name`` plus the image manifest bytes naming them."""
    from falcopkg.artifact.pack import config_descriptor, image_manifest_bytes
    from falcopkg.digests import bytes_digest
    from falcopkg.oci.descriptor import Descriptor

    artifact_type = get_type(type_name)
    config = json.dumps({"name": "demo", "version": "1.0.0"}).encode()
    for blob in (config, body):
        client.upload_blob(repository, blob, bytes_digest(blob), len(blob))
    layer = Descriptor(artifact_type.layer_media_type, bytes_digest(body), len(body))
    return image_manifest_bytes(config_descriptor(artifact_type.config_media_type, config), layer)


def test_a_plugin_pushed_as_a_single_manifest_is_refused(
    plain_registry: RunningRegistry, unique_repo: str
) -> None:
    """Served to every platform, its one binary would land on the wrong architecture."""
    from falcopkg.artifact.remote import RemoteArtifact, inspect_artifact
    from falcopkg.oci import mediatypes
    from falcopkg.oci.errors import InvalidManifestError

    client = RegistryClient(plain_registry.host, RegistryOptions(plain_http=True))
    manifest = _upload_manifest(client, unique_repo, "plugin", b"an amd64 .so")
    client.put_manifest(unique_repo, "1.0.0", manifest, mediatypes.OCI_MANIFEST)

    with pytest.raises(InvalidManifestError) as caught:
        inspect_artifact(client, unique_repo, "1.0.0")
    assert f"{plain_registry.host}/{unique_repo}:1.0.0 is a plugin pushed as a single" in (
        caught.value.message
    )
    assert caught.value.hint is not None and "image index" in caught.value.hint

    # select() refuses it too, for a RemoteArtifact built elsewhere (e.g. from a cache).
    rules = _upload_manifest(client, unique_repo, "rulesfile", b"- rule: x")
    client.put_manifest(unique_repo, "rules", rules, mediatypes.OCI_MANIFEST)
    rulesfile = inspect_artifact(client, unique_repo, "rules")
    assert rulesfile.select("linux/arm64") is rulesfile.platforms[""]  # any platform: fine
    plugin = RemoteArtifact(**{**rulesfile.__dict__, "type": get_type("plugin")})
    with pytest.raises(InvalidManifestError, match="pushed as a single image manifest"):
        plugin.select("linux/arm64", where="demo:1.0.0")


def test_platform_manifests_must_agree_on_the_type(
    plain_registry: RunningRegistry, unique_repo: str
) -> None:
    from falcopkg.artifact.pack import image_index_bytes
    from falcopkg.artifact.remote import inspect_artifact
    from falcopkg.digests import bytes_digest
    from falcopkg.oci import mediatypes
    from falcopkg.oci.descriptor import Descriptor
    from falcopkg.oci.errors import InvalidManifestError

    client = RegistryClient(plain_registry.host, RegistryOptions(plain_http=True))
    entries = []
    for platform, type_name in (("linux/amd64", "plugin"), ("linux/arm64", "asset")):
        manifest = _upload_manifest(client, unique_repo, type_name, platform.encode())
        digest = client.put_manifest(
            unique_repo, bytes_digest(manifest), manifest, mediatypes.OCI_MANIFEST
        )
        os_name, arch = platform.split("/")
        entries.append(
            Descriptor(
                mediatypes.OCI_MANIFEST,
                digest,
                len(manifest),
                platform={"architecture": arch, "os": os_name},
            )
        )
    index = image_index_bytes(entries)
    client.put_manifest(unique_repo, "1.0.0", index, mediatypes.OCI_INDEX)

    with pytest.raises(InvalidManifestError) as caught:
        inspect_artifact(client, unique_repo, "1.0.0")
    assert "mixes artifact types across its platforms" in caught.value.message
    assert "linux/amd64: plugin, linux/arm64: asset" in caught.value.message


def test_info_of_a_floating_tag_shows_the_version_and_unknown_tags_list_some(
    index_file: Path, plain_registry: RunningRegistry, plugin_repo: str
) -> None:
    result = run_cli("artifact", "info", "demo:0", "--plain-http")
    assert result.exit_code == 0, result.output
    fields = _fields(result.stdout.splitlines()[1:])
    assert fields["selected"].startswith("0.10.0 (tag 0, sha256:")

    unknown = run_cli("artifact", "info", "demo:9.9.9", "--plain-http")
    assert unknown.exit_code == 1
    assert f"{plain_registry.host}/{plugin_repo} has no tag '9.9.9'" in unknown.stderr
    assert "hint: available tags: 0.11.0-rc.1, 0.10.0, 0.2.0, 0.1.0, 0, 0.10 (and 2 more)" in (
        unknown.stderr
    )


def test_list_with_an_unknown_type_is_a_usage_error(index_file: Path) -> None:
    result = run_cli("artifact", "list", "--type", "bogus")
    assert result.exit_code == 2
    assert "'bogus' is not one of" in result.stderr
