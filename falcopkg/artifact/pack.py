"""Building artifacts locally (SPEC §2): the tar.gz layer, image manifest and image index bytes.

The layer is a gzip tar with the files at the archive root under their base names, like
falcoctl builds it, but reproducible: fixed mtime, owner and gzip header, so the same
files always give the same digest. It is deflated on several threads in fixed-size blocks
(parallel_gzip), so the thread count changes the speed, never the bytes. Archives are
streamed to disk while their sha256 and size are computed; no file is held in memory.

Manifest and index bytes follow Go's field order and compact encoding (see gojson), so
they can be compared byte for byte with what falcoctl/ORAS push.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from falcopkg.archive import list_layer
from falcopkg.artifact.gojson import go_json_bytes, sorted_map
from falcopkg.artifact.parallel_gzip import BLOCK_SIZE, DEFAULT_LEVEL, ParallelGzipWriter
from falcopkg.digests import bytes_digest, file_digest
from falcopkg.errors import InstallError, UsageError
from falcopkg.oci.descriptor import Descriptor
from falcopkg.oci.mediatypes import OCI_INDEX, OCI_MANIFEST

TITLE_ANNOTATION = "org.opencontainers.image.title"
CREATED_ANNOTATION = "org.opencontainers.image.created"
SOURCE_ANNOTATION = "org.opencontainers.image.source"

ARCHIVE_SUFFIX = ".tar.gz"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class PackedLayer:
    """A tar.gz on disk with its digest, size, archive name and the files it holds."""

    path: Path
    digest: str
    size: int
    title: str
    files: tuple[str, ...]

    def descriptor(self, media_type: str) -> Descriptor:
        return Descriptor(media_type, self.digest, self.size, {TITLE_ANNOTATION: self.title})


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self._hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        self.size += len(data)
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()

    @property
    def digest(self) -> str:
        return f"sha256:{self._hasher.hexdigest()}"


def archive_name_for(files: Sequence[Path]) -> str:
    """falcoctl's archive name: the first file's name up to its first dot, plus .tar.gz."""
    stem = files[0].name.split(".", 1)[0] or files[0].name
    return stem + ARCHIVE_SUFFIX


def is_gzip_file(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def prepare_layer(
    files: Sequence[Path],
    work_dir: Path,
    *,
    archive_name: str | None = None,
    level: int = DEFAULT_LEVEL,
    threads: int | None = None,
) -> PackedLayer:
    """The layer for ``files``: one ready-made .tar.gz is used as it is; anything else is packed.

    This is what falcoctl's push does with its FILE arguments. ``level`` (0-9) and
    ``threads`` (default: the usable CPUs) are the gzip settings of packing.
    """
    check_regular_files(files)
    if len(files) == 1 and is_gzip_file(files[0]):
        return describe_archive(files[0], title=archive_name)
    archives = [f for f in files if is_gzip_file(f)]
    if archives:
        raise UsageError(
            f"{archives[0]} is already a gzip archive; it cannot be packed together with other files",
            hint="push one .tar.gz on its own, or pass the plain files to pack them into one layer",
        )
    return pack_files(files, work_dir, archive_name=archive_name, level=level, threads=threads)


def pack_files(
    files: Sequence[Path],
    work_dir: Path,
    *,
    archive_name: str | None = None,
    level: int = DEFAULT_LEVEL,
    threads: int | None = None,
) -> PackedLayer:
    """Pack regular ``files`` at the archive root into a reproducible tar.gz in ``work_dir``.

    The bytes depend on the files and ``level`` only, not on ``threads``.
    """
    if not files:
        raise UsageError("no files to pack", hint="pass at least one FILE")
    check_regular_files(files)
    names = [f.name for f in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(
            f"several files are named {duplicates[0]!r}; the archive holds files by base name",
            hint="rename one of them or push them as separate artifacts",
        )
    title = archive_name or archive_name_for(files)
    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / title
    with target.open("wb") as raw:
        writer = _HashingWriter(raw)
        # The gzip header holds no name and mtime 0; files are read a block at a time.
        with (
            ParallelGzipWriter(writer, level=level, threads=threads) as gz,
            tarfile.TarFile(
                fileobj=cast(IO[bytes], gz),  # in mode "w" tarfile only writes and tells
                mode="w",
                format=tarfile.PAX_FORMAT,
                copybufsize=BLOCK_SIZE,
            ) as tar,
        ):
            for path in files:
                _add_file(tar, path)
    return PackedLayer(target, writer.digest, writer.size, title, tuple(names))


def _add_file(tar: tarfile.TarFile, path: Path) -> None:
    with path.open("rb") as handle:
        st = os.fstat(handle.fileno())
        info = tarfile.TarInfo(path.name)
        info.size = st.st_size
        # Only the executable bit matters to Falco; owners and times would break reproducibility.
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        tar.addfile(info, handle)


def check_regular_files(files: Sequence[Path]) -> None:
    """UsageError naming the first path that is missing or not a regular file."""
    for path in files:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise UsageError(f"{path}: no such file", hint="check the FILE arguments") from None
        if not stat.S_ISREG(mode):
            raise UsageError(
                f"{path}: not a regular file",
                hint="pass the files to pack (directories, devices and sockets are not packed)",
            )


def describe_archive(path: Path, *, title: str | None = None) -> PackedLayer:
    """Digest, size and files of an existing .tar.gz; UsageError if it is not a safe one."""
    digest = file_digest(path)
    size = path.stat().st_size
    # The same checks an install makes: an archive falcopkg would refuse is not pushed.
    try:
        members = tuple(list_layer(path, path.name))
    except InstallError as exc:
        raise UsageError(
            f"{path} cannot be pushed: {exc.message}",
            hint="pass a .tar.gz of regular files made with `tar -czf`, or the plain files to pack",
        ) from None
    return PackedLayer(path, digest, size, title or path.name, members)


# --- manifests ---------------------------------------------------------------------------


def created_timestamp(now: float | None = None) -> str:
    """RFC 3339 UTC time for org.opencontainers.image.created.

    SOURCE_DATE_EPOCH (the reproducible-builds convention) pins it for identical digests.
    """
    if now is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        now = float(epoch) if epoch.isdigit() else time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def manifest_annotations(*, created: str | None, source: str | None) -> dict[str, str]:
    annotations: dict[str, str] = {}
    if created:
        annotations[CREATED_ANNOTATION] = created
    if source:
        annotations[SOURCE_ANNOTATION] = source
    return annotations


def config_descriptor(media_type: str, config_bytes: bytes) -> Descriptor:
    """The config's descriptor, without annotations (some registries reject them there)."""
    return Descriptor(media_type, bytes_digest(config_bytes), len(config_bytes))


def image_manifest_bytes(
    config: Descriptor, layer: Descriptor, annotations: Mapping[str, str] | None = None
) -> bytes:
    """An OCI image manifest (schemaVersion 2, no artifactType) with one layer."""
    bare_config = Descriptor(config.media_type, config.digest, config.size)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": bare_config.to_dict(),
        "layers": [layer.to_dict()],
    }
    if annotations:
        manifest["annotations"] = sorted_map(annotations)
    return go_json_bytes(manifest)


def image_index_bytes(
    manifests: Sequence[Descriptor], annotations: Mapping[str, str] | None = None
) -> bytes:
    """An OCI image index whose entries carry ``platform`` {architecture, os}."""
    for entry in manifests:
        if not entry.platform:
            raise ValueError(f"index entry {entry.digest} has no platform")
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry.to_dict() for entry in manifests],
    }
    if annotations:
        index["annotations"] = sorted_map(annotations)
    return go_json_bytes(index)
