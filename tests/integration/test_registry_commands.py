"""`falcopkg registry push/pull/login/logout` against real registries (checked with skopeo)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from falcopkg.artifact.pack import config_descriptor, image_manifest_bytes
from falcopkg.artifact.push import push_artifact
from falcopkg.artifact.remote import inspect_artifact
from falcopkg.artifact.types import get_type
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.credentials import Credential, env_var_names
from falcopkg.oci.descriptor import Descriptor
from tests.fixtures.cli import CliResult
from tests.fixtures.cli import run_cli as run_in_process
from tests.fixtures.home import TmpHome
from tests.fixtures.registries import RunningRegistry

FIXTURES = Path(__file__).parent.parent.parent / "fixtures"
RULES = FIXTURES / "rules" / "acme_rules.yaml"
PLUGIN_AMD64 = FIXTURES / "plugins" / "linux-amd64" / "libdummy.so"
PLUGIN_ARM64 = FIXTURES / "plugins" / "linux-arm64" / "libdummy.so"
EPOCH = "1700000000"  # SOURCE_DATE_EPOCH: fixed created annotation → reproducible digests
CREATED = "2023-11-14T22:13:20Z"

RULES_CONFIG_MT = "application/vnd.cncf.falco.rulesfile.config.v1+json"
RULES_LAYER_MT = "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz"
PLUGIN_LAYER_MT = "application/vnd.cncf.falco.plugin.layer.v1+tar.gz"
MANIFEST_MT = "application/vnd.oci.image.manifest.v1+json"
INDEX_MT = "application/vnd.oci.image.index.v1+json"


def run_cli(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> CliResult:
    """tests.fixtures.cli.run_cli with a fixed SOURCE_DATE_EPOCH (reproducible digests)."""
    return run_in_process(*args, input=input, env={"SOURCE_DATE_EPOCH": EPOCH, **(env or {})})


def skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _plugin_push_args(reg: RunningRegistry, repo: str, *extra: str) -> list[str]:
    return [
        "registry",
        "push",
        f"{reg.host}/{repo}",
        "--type",
        "plugin",
        "--version",
        "0.3.0",
        "--plain-http",
        "--platform",
        "linux/amd64",
        str(PLUGIN_AMD64),
        "--platform",
        "linux/arm64",
        str(PLUGIN_ARM64),
        *extra,
    ]


# --- rules files ---------------------------------------------------------------------------


def test_push_raw_rules_yaml_wire_format_and_floating_tags(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome
) -> None:
    reg = plain_registry
    ref = f"{reg.host}/{unique_repo}"
    source = "https://github.com/acme/rules"
    result = run_cli(
        "registry", "push", ref, str(RULES), "--type", "rulesfile", "--version", "1.2.3",
        "--add-floating-tags", "--annotation-source", source, "--plain-http",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    digest = result.stdout.strip()
    assert digest.startswith("sha256:") and len(digest) == 71
    assert "Pushed rulesfile" in result.stderr

    tags = json.loads(skopeo("list-tags", *reg.skopeo_args(), f"docker://{ref}"))["Tags"]
    assert sorted(tags) == ["1", "1.2", "1.2.3", "latest"]

    raw = skopeo("inspect", "--raw", *reg.skopeo_args(), f"docker://{ref}:1").encode()
    assert _sha256(raw) == digest  # every tag points at the same bytes
    manifest = json.loads(raw)
    assert list(manifest) == ["schemaVersion", "mediaType", "config", "layers", "annotations"]
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == MANIFEST_MT
    assert "artifactType" not in manifest
    assert set(manifest["config"]) == {"mediaType", "digest", "size"}  # no annotations
    assert manifest["config"]["mediaType"] == RULES_CONFIG_MT
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == RULES_LAYER_MT
    assert layer["annotations"] == {"org.opencontainers.image.title": "acme_rules.tar.gz"}
    assert manifest["annotations"] == {
        "org.opencontainers.image.created": CREATED,
        "org.opencontainers.image.source": source,
    }

    config = skopeo("inspect", "--config", "--raw", *reg.skopeo_args(), f"docker://{ref}:latest")
    name = unique_repo.rsplit("/", 1)[-1]
    assert (
        config.encode()
        == (
            f'{{"name":"{name}","version":"1.2.3","dependencies":['
            '{"name":"container","version":"0.4.0"},'
            '{"name":"k8saudit","version":"0.18.0","alternatives":['
            '{"name":"k8saudit-aks","version":"0.6.0"},{"name":"k8saudit-eks","version":"0.12.0"}]}],'
            '"requirements":[{"name":"engine_version_semver","version":"0.50.0"}]}'
        ).encode()
    )
    assert _sha256(config.encode()) == manifest["config"]["digest"]

    # Same inputs, same digest: the layer and the manifest are reproducible.
    again = run_cli(
        "registry", "push", f"{ref}:again", str(RULES), "--type", "rulesfile",
        "--version", "1.2.3", "--annotation-source", source, "--plain-http",
    )  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert again.stdout.strip() == digest


def test_explicit_flags_win_over_rules_yaml(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome
) -> None:
    reg = plain_registry
    ref = f"{reg.host}/{unique_repo}"
    result = run_cli(
        "registry", "push", f"{ref}:edge", str(RULES), "--type", "rulesfile", "--version", "2.0.0",
        "--name", "acme-rules", "-d", "container:0.5.0|container-ng:1.0.0",
        "-r", "engine_version_semver:0.52.0", "-t", "stable", "--plain-http", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["tags"] == ["2.0.0", "edge", "stable"]
    assert payload["config"] == {
        "name": "acme-rules",
        "version": "2.0.0",
        "dependencies": [
            {
                "name": "container",
                "version": "0.5.0",
                "alternatives": [{"name": "container-ng", "version": "1.0.0"}],
            },
            {
                "name": "k8saudit",
                "version": "0.18.0",
                "alternatives": [
                    {"name": "k8saudit-aks", "version": "0.6.0"},
                    {"name": "k8saudit-eks", "version": "0.12.0"},
                ],
            },
        ],
        "requirements": [{"name": "engine_version_semver", "version": "0.52.0"}],
    }
    tags = json.loads(skopeo("list-tags", *reg.skopeo_args(), f"docker://{ref}"))["Tags"]
    assert sorted(tags) == ["2.0.0", "edge", "stable"]

    out = run_cli(
        "registry", "pull", f"{ref}:stable", "-o", str(tmp_home.home / "out"), "--plain-http"
    )
    assert out.exit_code == 0, out.stderr
    assert out.stdout.splitlines() == [str(tmp_home.home / "out" / "acme_rules.yaml")]
    assert (tmp_home.home / "out" / "acme_rules.yaml").read_bytes() == RULES.read_bytes()


# --- plugins -------------------------------------------------------------------------------


def test_plugin_index_copy_and_pull_per_platform(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    reg = plain_registry
    ref = f"{reg.host}/{unique_repo}"
    pushed = run_cli(*_plugin_push_args(reg, unique_repo))
    assert pushed.exit_code == 0, pushed.stderr
    digest = pushed.stdout.strip()

    raw = skopeo("inspect", "--raw", *reg.skopeo_args(), f"docker://{ref}:0.3.0").encode()
    assert _sha256(raw) == digest
    index = json.loads(raw)
    assert index["mediaType"] == INDEX_MT and index["schemaVersion"] == 2
    assert [(m["mediaType"], m["platform"]) for m in index["manifests"]] == [
        (MANIFEST_MT, {"architecture": "amd64", "os": "linux"}),
        (MANIFEST_MT, {"architecture": "arm64", "os": "linux"}),
    ]
    # A standard tool can copy the whole index with every platform.
    layout = tmp_path / "layout"
    skopeo("copy", "--all", *reg.skopeo_args("src"), f"docker://{ref}:0.3.0", f"oci:{layout}")
    assert json.loads((layout / "index.json").read_text())["manifests"][0]["digest"] == digest

    arm = run_cli("registry", "pull", f"{ref}:0.3.0", "--platform", "linux/arm64",
                  "-o", str(tmp_path / "arm"), "--plain-http")  # fmt: skip
    assert arm.exit_code == 0, arm.stderr
    assert (tmp_path / "arm" / "libdummy.so").read_bytes() == PLUGIN_ARM64.read_bytes()
    expected_mode = 0o755 if PLUGIN_ARM64.stat().st_mode & 0o111 else 0o644  # exec bit kept
    assert stat.S_IMODE((tmp_path / "arm" / "libdummy.so").stat().st_mode) == expected_mode

    by_digest = run_cli("registry", "pull", f"{ref}@{digest}", "--platform", "linux/amd64",
                        "-o", str(tmp_path / "amd"), "--plain-http", "--json")  # fmt: skip
    assert by_digest.exit_code == 0, by_digest.stderr
    payload = json.loads(by_digest.stdout)
    assert payload["digest"] == digest and payload["platform"] == "linux/amd64"
    assert payload["type"] == "plugin" and payload["config"]["version"] == "0.3.0"
    assert (tmp_path / "amd" / "libdummy.so").read_bytes() == PLUGIN_AMD64.read_bytes()


def test_inspect_artifact_reads_index_manifests_and_config(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome
) -> None:
    reg = plain_registry
    with RegistryClient(reg.host, RegistryOptions(plain_http=True)) as client:
        result = push_artifact(
            client, unique_repo, get_type("plugin"), [PLUGIN_AMD64, PLUGIN_ARM64],
            version="1.0.0", platforms=["linux/amd64", "linux/arm64"],
            requirements=[], created=None,
        )  # fmt: skip
        artifact = inspect_artifact(client, unique_repo, "1.0.0")
        assert inspect_artifact(client, unique_repo, result.digest) == artifact
    assert artifact.root_digest == result.digest and artifact.root_media_type == INDEX_MT
    assert artifact.type is get_type("plugin") and artifact.is_index
    assert artifact.config == result.config and artifact.config.name == unique_repo.split("/")[-1]
    assert artifact.platform_names == ["linux/amd64", "linux/arm64"]
    for pushed in result.manifests:
        remote = artifact.platforms[pushed.platform]
        assert remote.manifest_digest == pushed.digest
        assert remote.layer.digest == pushed.layer.digest
        assert remote.layer.media_type == PLUGIN_LAYER_MT
        assert remote.title == "libdummy.tar.gz"


def test_pull_errors_name_the_missing_thing(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    reg = plain_registry
    ref = f"{reg.host}/{unique_repo}"
    assert run_cli(*_plugin_push_args(reg, unique_repo)).exit_code == 0

    wrong = run_cli("registry", "pull", f"{ref}:0.3.0", "--platform", "linux/s390x",
                    "-o", str(tmp_path / "x"), "--plain-http")  # fmt: skip
    assert wrong.exit_code == 1
    assert "no manifest for platform linux/s390x" in wrong.stderr
    assert "available: linux/amd64, linux/arm64" in wrong.stderr
    assert not (tmp_path / "x").exists()

    no_tag = run_cli("registry", "pull", f"{ref}:9.9.9", "--plain-http", "-o", str(tmp_path))
    assert no_tag.exit_code == 1 and f"{ref} has no tag '9.9.9'" in no_tag.stderr
    assert "hint: available tags: 0.3.0" in no_tag.stderr
    assert "Traceback" not in no_tag.stderr

    no_repo = run_cli("registry", "pull", f"{reg.host}/tests/no-such-repo:1.0.0", "--plain-http")
    assert no_repo.exit_code == 1 and "tests/no-such-repo:1.0.0 not found" in no_repo.stderr


def test_pull_refuses_an_unsafe_layer_and_writes_nothing(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    # Published by some other tool: falcopkg itself refuses to push such an archive.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("ok.yaml", "../escape.yaml"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"x\n"))
    layer_bytes = buffer.getvalue()
    rules = get_type("rulesfile")
    config_bytes = b"{}"
    config = config_descriptor(rules.config_media_type, config_bytes)
    layer = Descriptor(
        rules.layer_media_type, _sha256(layer_bytes), len(layer_bytes),
        {"org.opencontainers.image.title": "evil.tar.gz"},
    )  # fmt: skip
    with RegistryClient(plain_registry.host, RegistryOptions(plain_http=True)) as client:
        client.upload_blob(unique_repo, config_bytes, config.digest, config.size)
        client.upload_blob(unique_repo, layer_bytes, layer.digest, layer.size)
        client.put_manifest(unique_repo, "1.0.0", image_manifest_bytes(config, layer), MANIFEST_MT)

    out = tmp_path / "out"
    result = run_cli("registry", "pull", f"{plain_registry.host}/{unique_repo}:1.0.0",
                     "-o", str(out), "--plain-http")  # fmt: skip
    assert result.exit_code == 1
    assert f"{unique_repo}:1.0.0" in result.stderr and "'../escape.yaml'" in result.stderr
    assert not out.exists() or list(out.iterdir()) == []
    assert not (tmp_path / "escape.yaml").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "rulesfile", "--platform", "linux/amd64"], "--platform is only for"),
        (["--type", "plugin", "--platform", "linux/amd64", "--platform", "linux/arm64"],
         "1 file(s) but 2 --platform value(s)"),
        (["--type", "plugin", "--platform", "linux"], "invalid --platform value 'linux'"),
        (["--type", "rulesfile", "-d", "container"], "invalid --depends-on value 'container'"),
        (["--type", "rulesfile", "-r", "engine"], "invalid --requires value 'engine'"),
        (["--type", "rulesfile", "-r", "engine_version_semver:abc"],
         "version 'abc' of 'engine_version_semver' is not a semver version"),
        (["--type", "driver"], "unknown artifact type 'driver'"),
    ],
)  # fmt: skip
def test_push_usage_errors(
    plain_registry: RunningRegistry, tmp_home: TmpHome, args: list[str], message: str
) -> None:
    result = run_cli(
        "registry", "push", f"{plain_registry.host}/tests/usage", str(RULES),
        "--version", "1.0.0", "--plain-http", *args,
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_exit_codes_through_the_real_entry_point(
    plain_registry: RunningRegistry, tmp_home: TmpHome
) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    missing = subprocess.run(
        [sys.executable, "-m", "falcopkg", "registry", "pull", "--plain-http",
         f"{plain_registry.host}/tests/never-pushed:1.0.0"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ") and "never-pushed:1.0.0 not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "falcopkg", "registry", "push", f"{plain_registry.host}/tests/x",
         str(RULES), "--version", "1.0.0"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert usage.returncode == 2 and "--type" in usage.stderr


# --- credentials ---------------------------------------------------------------------------


def _project_trusting(reg: RunningRegistry, directory: Path) -> Path:
    """A falco.toml whose [registries] entry trusts the test CA of ``reg``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "falco.toml").write_text(
        f'[registries."{reg.host}"]\nca_file = "{reg.ca_file}"\n', encoding="utf-8"
    )
    return directory


def test_login_checks_saves_0600_and_logout_removes(
    tls_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    reg = tls_registry
    assert reg.username and reg.password
    project = _project_trusting(reg, tmp_path / "project")
    credentials = tmp_home.config_dir / "credentials.json"
    push_args = ["-C", str(project), "registry", "push", f"{reg.host}/{unique_repo}", str(RULES),
                 "--type", "rulesfile", "--version", "1.0.0"]  # fmt: skip

    anonymous = run_cli(*push_args)
    assert anonymous.exit_code == 1 and "registry login" in anonymous.stderr

    wrong = run_cli("-C", str(project), "registry", "login", reg.host, "-u", reg.username,
                    "--password-stdin", input="not-the-password\n")  # fmt: skip
    assert wrong.exit_code == 1
    assert "refused the credentials" in wrong.stderr and "not-the-password" not in wrong.stderr
    assert not credentials.exists()

    right = run_cli("-C", str(project), "registry", "login", f"https://{reg.host}/",
                    "-u", reg.username, "--password-stdin", input=reg.password + "\n")  # fmt: skip
    assert right.exit_code == 0, right.stderr
    assert reg.password not in right.stderr + right.stdout
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    saved = json.loads(credentials.read_text())["registries"][reg.host]
    assert saved == {"username": reg.username, "password": reg.password}
    assert "could not be checked" not in right.stderr  # this registry did check them
    assert "Login succeeded" in right.stderr

    pushed = run_cli(*push_args)
    assert pushed.exit_code == 0, pushed.stderr

    out = run_cli("registry", "logout", reg.host)
    assert out.exit_code == 0 and reg.host not in json.loads(credentials.read_text())["registries"]
    again = run_cli("registry", "logout", reg.host)
    assert again.exit_code == 0 and f"warning: not logged in to {reg.host}" in again.stderr


def test_login_to_a_registry_without_auth_saves_with_a_warning(
    plain_registry: RunningRegistry, tmp_home: TmpHome
) -> None:
    """Like docker, the credentials are kept; the user learns nothing vouched for them."""
    # http:// means plain HTTP (no --plain-http needed); the path is ignored.
    result = run_cli("registry", "login", f"http://{plain_registry.host}/", "-u", "alice",
                     "--password-stdin", input="unchecked-pw\n")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (
        f"registry {plain_registry.host} did not ask for credentials, so they could not be "
        "checked; saved them in"
    ) in " ".join(result.stderr.split())
    assert "Login succeeded" not in result.stderr  # nothing vouched for them
    assert "unchecked-pw" not in result.stderr + result.stdout
    credentials = json.loads((tmp_home.config_dir / "credentials.json").read_text())
    assert credentials["registries"][plain_registry.host]["username"] == "alice"


def test_docker_config_and_env_credentials(
    tls_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    reg = tls_registry
    assert reg.username and reg.password
    project = _project_trusting(reg, tmp_path / "project")
    auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    (tmp_home.docker_config / "config.json").write_text(
        json.dumps({"auths": {f"https://{reg.host}": {"auth": auth}}})
    )
    result = run_cli("-C", str(project), "repo", "push", f"{reg.host}/{unique_repo}", str(RULES),
                     "--type", "rulesfile", "--version", "1.0.0")  # fmt: skip
    assert result.exit_code == 0, result.stderr

    (tmp_home.docker_config / "config.json").unlink()
    user_var, password_var = env_var_names(reg.host)
    pulled = run_cli(
        "-C", str(project), "registry", "pull", f"{reg.host}/{unique_repo}:1.0.0",
        "-o", str(tmp_path / "out"), env={user_var: reg.username, password_var: reg.password},
    )  # fmt: skip
    assert pulled.exit_code == 0, pulled.stderr
    assert (tmp_path / "out" / "acme_rules.yaml").read_bytes() == RULES.read_bytes()


def test_token_registry_push_to_two_repositories_in_one_run(
    token_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    reg = token_registry
    assert reg.username and reg.password
    credential = Credential(reg.username, reg.password)
    with RegistryClient(reg.host, RegistryOptions(plain_http=True), credential) as client:
        rules = push_artifact(
            client, f"{unique_repo}/rules", get_type("rulesfile"), [RULES], version="1.0.0"
        )
        plugin = push_artifact(
            client, f"{unique_repo}/plugin", get_type("plugin"), [PLUGIN_AMD64],
            version="0.1.0", platforms=["linux/amd64"],
        )  # fmt: skip
        assert inspect_artifact(client, f"{unique_repo}/rules", "1.0.0").root_digest == rules.digest
        assert (
            inspect_artifact(client, f"{unique_repo}/plugin", "0.1.0").root_digest == plugin.digest
        )

    user_var, password_var = env_var_names(reg.host)
    pulled = run_cli(
        "registry", "pull", f"{reg.host}/{unique_repo}/plugin:0.1.0", "--platform", "linux/amd64",
        "-o", str(tmp_path / "out"), "--plain-http",
        env={user_var: reg.username, password_var: reg.password},
    )  # fmt: skip
    assert pulled.exit_code == 0, pulled.stderr
    assert (tmp_path / "out" / "libdummy.so").read_bytes() == PLUGIN_AMD64.read_bytes()


def test_user_config_registries_apply_outside_a_project(
    tls_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    """A private CA trusted once in the user config serves every command, project or not."""
    reg = tls_registry
    assert reg.username and reg.password
    env = dict(zip(env_var_names(reg.host), (reg.username, reg.password), strict=True))
    push_args = ["registry", "push", f"{reg.host}/{unique_repo}", str(RULES),
                 "--type", "rulesfile", "--version", "1.0.0"]  # fmt: skip
    untrusted = run_cli(*push_args, env=env)
    assert untrusted.exit_code == 1 and "ca_file" in untrusted.stderr

    user_config = Path(os.environ["FALCOPKG_CONFIG"])
    config_file = user_config / "config.toml" if user_config.suffix != ".toml" else user_config
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(f'[registries."{reg.host}"]\nca_file = "{reg.ca_file}"\n')
    trusted = run_cli(*push_args, env=env)
    assert trusted.exit_code == 0, trusted.stderr

    config_file.write_text('[registries."not a host"]\nplain_http = true\n')
    broken = run_cli(*push_args, env=env)
    assert broken.exit_code == 1
    assert f"{config_file}:1: " in broken.stderr
    assert "'not a host' is not a registry host" in broken.stderr


def test_floating_tags_move_only_when_the_version_is_the_newest_of_its_line(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome
) -> None:
    reg = plain_registry
    ref = f"{reg.host}/{unique_repo}"

    def push(version: str) -> CliResult:
        result = run_cli(
            "registry", "push", ref, str(RULES), "--type", "rulesfile", "--version", version,
            "--add-floating-tags", "--plain-http", "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result
        return result

    def points_at(tag: str) -> str:
        config = skopeo("inspect", "--config", "--raw", *reg.skopeo_args(), f"docker://{ref}:{tag}")
        return str(json.loads(config)["version"])

    push("1.3.0")
    older = push("1.2.4")
    assert "Moved 1.2 to 1.2.4" in older.stderr
    assert "Left 1 at 1.3.0 (newer than 1.2.4)" in older.stderr
    assert "Left latest at 1.3.0" in older.stderr
    payload = json.loads(older.stdout)
    assert payload["floating_tags"] == {"moved": ["1.2"], "kept": {"1": "1.3.0", "latest": "1.3.0"}}
    assert "manifests" not in payload and payload["manifest"]["files"] == ["acme_rules.yaml"]
    assert [points_at(t) for t in ("1.2", "1", "latest")] == ["1.2.4", "1.3.0", "1.3.0"]

    newer = push("2.0.1")
    assert json.loads(newer.stdout)["floating_tags"]["moved"] == ["2.0", "2", "latest"]
    assert [points_at(t) for t in ("1", "2", "latest")] == ["1.3.0", "2.0.1", "2.0.1"]


def test_login_host_spelling(tmp_home: TmpHome) -> None:
    for bad in ("ftp://example.com", "exa mple.com", "https://"):
        result = run_cli("registry", "login", bad, "-u", "alice", "--password-stdin", input="x\n")
        assert result.exit_code == 2, (bad, result)
        assert "invalid registry host" in result.stderr


def test_push_and_pull_by_full_reference_ignore_a_broken_falco_toml(
    plain_registry: RunningRegistry,
    unique_repo: str,
    tmp_home: TmpHome,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "falco.toml").write_text('[dependencies\nfalco-rules = "4"\n')
    ref = f"{plain_registry.host}/{unique_repo}:1.0.0"
    pushed = run_cli("registry", "push", ref, str(RULES), "--type", "rulesfile",
                     "--version", "1.0.0", "--plain-http")  # fmt: skip
    assert pushed.exit_code == 0, pushed
    assert "warning: ignoring falco.toml's [registries]" in pushed.stderr
    pulled = run_cli("registry", "pull", ref, "--plain-http", "-o", str(tmp_path / "out"))
    assert pulled.exit_code == 0, pulled
    assert (tmp_path / "out" / "acme_rules.yaml").is_file()
