"""Helpers for the installer's integration tests (sync, verify, artifact install).

A :class:`Project` is a falco.toml in a temporary directory whose install directories live
under it and whose registry is a real docker-registry from tests/fixtures/registries.py.
Artifacts are pushed with the artifact engineer's ``push_artifact``; `falcopkg` runs in
process (``tests.cli.run_cli``) or as a subprocess (``run_process``, for kill and concurrency tests).

This module holds no tests; it is named ``test_sync_*`` only to sit with the tests it serves.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tarfile
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from falcopkg.artifact.push import PushResult, push_artifact
from falcopkg.artifact.types import get_type
from falcopkg.oci.client import RegistryClient, RegistryOptions
from tests.cli import CliResult, run_cli

REPO_ROOT = Path(__file__).resolve().parents[2]


def falcopkg_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "falcopkg", *(str(a) for a in args)]


def run_process(*args: str | Path, env: Mapping[str, str] | None = None) -> CliResult:
    proc = subprocess.run(
        falcopkg_command(*args),
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        cwd=REPO_ROOT,
        timeout=120,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def make_tar_gz(path: Path, entries: Mapping[str, bytes]) -> Path:
    """A layer archive with regular files (names as given, unchecked: may be hostile)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


@dataclass
class Project:
    """A falco.toml, its install directories and a registry to push artifacts to."""

    root: Path
    registry_host: str
    repo_prefix: str
    dependencies: dict[str, str] = field(default_factory=dict)
    allowed_types: tuple[str, ...] = ("rulesfile", "plugin", "asset")
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64")
    extra: str = ""
    # name -> type of everything pushed; listed in a local index so that transitive
    # dependencies (found by name) resolve. Dependencies are written by name.
    pushed: dict[str, str] = field(default_factory=dict)

    @property
    def rules_dir(self) -> Path:
        return self.root / "rules"

    @property
    def plugins_dir(self) -> Path:
        return self.root / "plugins"

    @property
    def assets_dir(self) -> Path:
        return self.root / "assets"

    @property
    def lock_path(self) -> Path:
        return self.root / "falco.lock"

    def client(self) -> RegistryClient:
        return RegistryClient(self.registry_host, RegistryOptions(plain_http=True))

    def ref(self, name: str) -> str:
        return f"{self.registry_host}/{self.repo_prefix}/{name}"

    def write_index(self) -> Path:
        lines = []
        for name, type_name in sorted(self.pushed.items()):
            lines += [
                f"- name: {name}",
                f"  type: {type_name}",
                f'  registry: "{self.registry_host}"',
                f"  repository: {self.repo_prefix}/{name}",
            ]
        path = self.root / "index.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def write_manifest(self) -> Path:
        self.write_index()
        deps = "\n".join(
            f'{name} = "{constraint}"' for name, constraint in sorted(self.dependencies.items())
        )
        text = textwrap.dedent(
            f"""\
            [target]
            platforms = {list(self.platforms)!r}

            [install]
            rulesfiles_dir = "rules"
            plugins_dir = "plugins"
            assets_dir = "assets"
            allowed_types = {list(self.allowed_types)!r}

            [registries."{self.registry_host}"]
            plain_http = true

            [[index]]
            name = "test"
            url = "index.yaml"
            """
        ).replace("'", '"')
        text += self.extra + "\n[dependencies]\n" + deps + "\n"
        path = self.root / "falco.toml"
        path.write_text(text)
        return path

    def push(
        self,
        name: str,
        version: str,
        files: Mapping[str, bytes] | Sequence[Path],
        *,
        type_name: str = "rulesfile",
        platforms: Sequence[str] = (),
        requires_plugins: Sequence[tuple[str, str]] = (),
    ) -> PushResult:
        """Push files (name → bytes, or paths) as ``name:version``."""
        from falcopkg.artifact.config import Dependency

        work = self.root.parent / "push-work" / f"{name}-{version}"
        if isinstance(files, Mapping):
            paths = []
            for index, (file_name, data) in enumerate(files.items()):
                # Plugins: one file per platform, same base name, in separate directories.
                target = work / str(index) / file_name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                paths.append(target)
        else:
            paths = list(files)
        self.pushed[name] = type_name
        with self.client() as client:
            return push_artifact(
                client,
                f"{self.repo_prefix}/{name}",
                get_type(type_name),
                paths,
                version=version,
                platforms=platforms,
                dependencies=[Dependency(n, v) for n, v in requires_plugins],
                created=None,
            )

    def sync(self, *args: str | Path) -> CliResult:
        return run_cli("-C", self.root, "sync", *args)

    def installed(self) -> dict[str, bytes]:
        """Every file under the install directories (not falcopkg's own), relative to root."""
        found = {}
        for directory in (self.rules_dir, self.plugins_dir, self.assets_dir):
            if not directory.is_dir():
                continue
            for path in sorted(directory.rglob("*")):
                relative = path.relative_to(self.root)
                if ".falcopkg" in relative.parts or not path.is_file():
                    continue
                found[str(relative)] = path.read_bytes()
        return found


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    old = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class RawPush:
    digest: str  # the image manifest
    layer_digest: str
    layer_size: int


def push_raw_layer(project: Project, name: str, version: str, archive: Path) -> RawPush:
    """Push ``archive`` as it is as the layer of a rulesfile (push_artifact refuses unsafe
    archives, which is exactly what the installer must be tested against)."""
    import hashlib

    from falcopkg.artifact.config import ArtifactConfig
    from falcopkg.artifact.pack import config_descriptor, image_manifest_bytes
    from falcopkg.oci.descriptor import Descriptor
    from falcopkg.oci.mediatypes import OCI_MANIFEST

    kind = get_type("rulesfile")
    data = archive.read_bytes()
    layer = Descriptor(
        kind.layer_media_type,
        "sha256:" + hashlib.sha256(data).hexdigest(),
        len(data),
        {"org.opencontainers.image.title": archive.name},
    )
    config_bytes = ArtifactConfig(name=name, version=version).to_json_bytes()
    config = config_descriptor(kind.config_media_type, config_bytes)
    manifest = image_manifest_bytes(config, layer)
    repository = f"{project.repo_prefix}/{name}"
    project.pushed[name] = "rulesfile"
    with project.client() as client:
        client.upload_blob(repository, config_bytes, config.digest, config.size)
        client.upload_blob(repository, archive, layer.digest, layer.size)
        digest = client.put_manifest(repository, version, manifest, OCI_MANIFEST)
    return RawPush(digest, layer.digest, layer.size)
