"""Pushing an artifact (SPEC §2, `registry push`): pack, describe, upload, tag.

Everything is built locally first (layers, config, manifests), so bad input fails before
the first request. Then blobs are uploaded (skipped when the repository has them), then
the platform manifests by digest, then the root (image index for multi-platform types),
and finally the root is tagged with every tag: ``X.Y.Z`` always, the reference's tag and
``--tag`` values, and with ``--add-floating-tags`` also ``X.Y``, ``X`` and ``latest``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from falcopkg.artifact.config import (
    STRICT_SEMVER_RE,
    ArtifactConfig,
    Dependency,
    Requirement,
)
from falcopkg.artifact.pack import (
    PackedLayer,
    check_regular_files,
    config_descriptor,
    created_timestamp,
    image_index_bytes,
    image_manifest_bytes,
    manifest_annotations,
    prepare_layer,
)
from falcopkg.artifact.parallel_gzip import DEFAULT_LEVEL
from falcopkg.artifact.platforms import host_platform, platform_dict, validate_platform
from falcopkg.artifact.rules_yaml import (
    merge_dependencies,
    merge_requirements,
    read_rules_requirements,
)
from falcopkg.artifact.types import ArtifactType
from falcopkg.core.reference import TAG_RE
from falcopkg.core.versions import parse_version
from falcopkg.digests import bytes_digest
from falcopkg.errors import UsageError
from falcopkg.oci.descriptor import Descriptor
from falcopkg.oci.mediatypes import OCI_INDEX, OCI_MANIFEST
from falcopkg.oci.store import ContentStore

RULES_SUFFIXES = (".yaml", ".yml")
# Stand-in for "now" in created annotations; a string pins it, None omits it.
NOW = "now"

Log = Callable[[str], None]


@dataclass(frozen=True)
class PushedManifest:
    platform: str  # "" for single-manifest artifacts
    digest: str
    layer: PackedLayer  # its .path was a temporary file, gone after the push


@dataclass(frozen=True)
class PushResult:
    repository: str
    digest: str  # the root: image manifest, or image index
    media_type: str
    tags: tuple[str, ...]
    config: ArtifactConfig
    manifests: tuple[PushedManifest, ...]
    warnings: tuple[str, ...] = field(default=())
    floating_moved: tuple[str, ...] = ()  # X.Y, X, latest now pointing at this version
    floating_kept: tuple[tuple[str, str], ...] = ()  # (tag, the newer version it stays with)


@dataclass(frozen=True)
class FloatingTags:
    """Which of X.Y, X and latest a push moves: only those whose line has nothing newer."""

    moved: tuple[str, ...]
    kept: tuple[tuple[str, str], ...]  # (tag, newest existing version of its line)


def floating_tags(version: str, existing_tags: Sequence[str]) -> FloatingTags:
    """X.Y, X and latest for ``version``, each moved only if no release already in the
    repository (``existing_tags``) is newer within that tag's line: pushing 1.2.4 after
    1.3.0 moves ``1.2`` but leaves ``1`` and ``latest`` at 1.3.0. Pre-releases move none
    (a 2.0.0-rc.1 must not become `latest`)."""
    from falcopkg.core.versions import semver_tags

    pushed = parse_version(version)
    if pushed is None or pushed.prerelease:
        return FloatingTags((), ())
    releases = [
        found
        for found, tag in semver_tags(list(existing_tags))
        if not found.prerelease and STRICT_SEMVER_RE.match(tag)
    ]
    # Each floating tag and how many leading numbers its line shares with the version.
    lines = [(f"{pushed.major}.{pushed.minor}", 2), (f"{pushed.major}", 1), ("latest", 0)]
    line_of = (pushed.major, pushed.minor)
    moved: list[str] = []
    kept: list[tuple[str, str]] = []
    for tag, depth in lines:
        newest = max(
            (v for v in releases if (v.major, v.minor)[:depth] == line_of[:depth]), default=None
        )
        if newest is not None and newest > pushed:
            kept.append((tag, str(newest)))
        else:
            moved.append(tag)
    return FloatingTags(tuple(moved), tuple(kept))


def artifact_tags(
    version: str, extra: Sequence[str] = (), floating: Sequence[str] = ()
) -> list[str]:
    """Every tag a push applies, deduplicated in order: X.Y.Z, extras, then the floating
    tags to move (:func:`floating_tags`)."""
    version_tag = _check_version(version)
    tags = [version_tag, *extra, *floating]
    for tag in tags:
        if not TAG_RE.match(tag):
            raise UsageError(
                f"invalid tag {tag!r}",
                hint="tags are up to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'",
            )
    return list(dict.fromkeys(tags))


def _check_version(version: str) -> str:
    if not STRICT_SEMVER_RE.match(version):
        raise UsageError(
            f"invalid --version {version!r}: not a semver version",
            hint="write MAJOR.MINOR.PATCH, e.g. `--version 1.2.3` (no leading v)",
        )
    return version


def pair_platforms(
    artifact_type: ArtifactType, files: Sequence[Path], platforms: Sequence[str]
) -> list[tuple[str, Path]]:
    """``--platform`` values paired with FILEs in order, as falcoctl does.

    Multi-platform types need one platform per file (one file with no platform means the
    host's); other types take no platform at all.
    """
    if not files:
        raise UsageError(
            "no FILE to push", hint="pass the files of the artifact after the reference"
        )
    if not artifact_type.multi_platform:
        if platforms:
            raise UsageError(
                f"--platform is only for multi-platform artifacts, not {artifact_type.name}",
                hint="drop --platform; a single manifest serves every platform",
            )
        return [("", path) for path in files]
    checked = [validate_platform(p) for p in platforms]
    if not checked and len(files) == 1:
        checked = [host_platform()]
    if len(checked) != len(files):
        raise UsageError(
            f"{len(files)} file(s) but {len(checked)} --platform value(s): a {artifact_type.name} "
            "needs one --platform per file, in the same order",
            hint="e.g. `--platform linux/amd64 libx-amd64.tar.gz --platform linux/arm64 "
            "libx-arm64.tar.gz`",
        )
    duplicates = sorted({p for p in checked if checked.count(p) > 1})
    if duplicates:
        raise UsageError(f"platform {duplicates[0]} is given more than once")
    return list(zip(checked, files, strict=True))


def config_from_rules_files(files: Sequence[Path]) -> tuple[list[Dependency], list[Requirement]]:
    """Dependencies and requirements declared by the raw YAML rules files among ``files``."""
    dependencies: list[Dependency] = []
    requirements: list[Requirement] = []
    for path in files:
        if path.suffix.lower() not in RULES_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        deps, reqs = read_rules_requirements(text, str(path))
        dependencies += deps
        requirements += reqs
    return merge_dependencies(dependencies), merge_requirements(requirements)


def push_artifact(
    client: ContentStore,
    repository: str,
    artifact_type: ArtifactType,
    files: Sequence[Path],
    *,
    version: str,
    platforms: Sequence[str] = (),
    tags: Sequence[str] = (),
    add_floating_tags: bool = False,
    name: str | None = None,
    dependencies: Sequence[Dependency] = (),
    requirements: Sequence[Requirement] = (),
    annotation_source: str | None = None,
    created: str | None = NOW,
    compression_level: int = DEFAULT_LEVEL,
    threads: int | None = None,
    log: Log | None = None,
) -> PushResult:
    """Push ``files`` as one artifact of ``artifact_type`` and tag it.

    ``dependencies``/``requirements`` are the explicit ones (--depends-on/--requires); for
    types that read rules YAML, what raw YAML files declare fills in the names not given.
    ``name`` defaults to the repository's last component, as falcoctl does. ``created`` is
    an RFC 3339 time, ``NOW``, or None to leave the annotation out. ``compression_level``
    and ``threads`` set the gzip of packed layers; the thread count never changes a digest.
    """
    say = log or (lambda _message: None)
    artifact_tags(version, tags)  # usage errors before any request
    warnings: list[str] = []
    floating = FloatingTags((), ())
    if add_floating_tags:
        parsed_version = parse_version(version)
        if parsed_version is not None and parsed_version.prerelease:
            warnings.append(
                f"{version} is a pre-release: floating tags (X.Y, X, latest) were not moved"
            )
        else:
            floating = floating_tags(version, _existing_tags(client, repository))
    all_tags = artifact_tags(version, tags, floating.moved)
    pairs = pair_platforms(artifact_type, files, platforms)
    check_regular_files(files)

    config = ArtifactConfig(
        name=name or repository.rsplit("/", 1)[-1],
        version=version,
        dependencies=tuple(dependencies),
        requirements=tuple(requirements),
    )
    if artifact_type.reads_rules_yaml:
        config = config.filled_from(*config_from_rules_files(files))
    config_bytes = config.to_json_bytes()
    config_desc = config_descriptor(artifact_type.config_media_type, config_bytes)
    created_value = created_timestamp() if created == NOW else created
    annotations = manifest_annotations(created=created_value, source=annotation_source)

    with tempfile.TemporaryDirectory(prefix="falcopkg-push-") as work:
        work_dir = Path(work)

        def layer_of(paths: list[Path], directory: str) -> PackedLayer:
            return prepare_layer(
                paths, work_dir / directory, level=compression_level, threads=threads
            )

        # One layer per platform for multi-platform types, else one layer of every file.
        if artifact_type.multi_platform:
            layers = [
                (platform, layer_of([path], str(number)))
                for number, (platform, path) in enumerate(pairs)
            ]
        else:
            layers = [("", layer_of([path for _, path in pairs], "layer"))]
        manifests = [
            image_manifest_bytes(
                config_desc, layer.descriptor(artifact_type.layer_media_type), annotations
            )
            for _, layer in layers
        ]

        say(f"Uploading config ({config_desc.size} bytes)")
        client.upload_blob(repository, config_bytes, config_desc.digest, config_desc.size)
        for platform, layer in layers:
            label = f" for {platform}" if platform else ""
            uploaded = client.upload_blob(repository, layer.path, layer.digest, layer.size)
            state = "Uploaded" if uploaded else "Already present:"
            say(f"{state} layer {layer.title}{label} ({layer.size} bytes, {layer.digest})")

        pushed: list[PushedManifest] = []
        for (platform, layer), manifest in zip(layers, manifests, strict=True):
            digest = client.put_manifest(repository, bytes_digest(manifest), manifest, OCI_MANIFEST)
            pushed.append(PushedManifest(platform, digest, layer))

    if artifact_type.multi_platform:
        entries = [
            Descriptor(
                OCI_MANIFEST, item.digest, len(manifest), platform=platform_dict(item.platform)
            )
            for item, manifest in zip(pushed, manifests, strict=True)
        ]
        index_annotations = manifest_annotations(created=None, source=annotation_source)
        root_bytes, root_type = image_index_bytes(entries, index_annotations), OCI_INDEX
    else:
        root_bytes, root_type = manifests[0], OCI_MANIFEST
    for tag in all_tags:
        client.put_manifest(repository, tag, root_bytes, root_type)
        say(f"Tagged {client.host}/{repository}:{tag}")

    return PushResult(
        repository=repository,
        digest=bytes_digest(root_bytes),
        media_type=root_type,
        tags=tuple(all_tags),
        config=config,
        manifests=tuple(pushed),
        warnings=tuple(warnings),
        floating_moved=floating.moved,
        floating_kept=floating.kept,
    )


def _existing_tags(client: ContentStore, repository: str) -> list[str]:
    """The repository's tags before this push (none for a new repository)."""
    from falcopkg.oci.errors import NotFoundError

    try:
        return client.list_tags(repository)
    except NotFoundError:
        return []
