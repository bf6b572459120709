"""`mirror DEST_PREFIX` (SPEC §11): copy every locked artifact to another registry.

Each locked artifact ``host/repository`` goes to ``DEST_PREFIX/repository`` with every digest
unchanged (services.copy): the root, all platform manifests, configs and layers. Its version
tag (and, for a tag pin, that tag) is recreated, with the floating tags of the source that
name the same digest (``1``, ``1.2``, ``latest``). Signatures and other referrers of the
locked digests come along: cosign's ``sha256-<hex>.sig``/``.att``/``.sbom`` tags and the OCI
referrers tag schema (``sha256-<hex>``) from the source's tag list, and, where the source
registry has the referrers API, what it lists (recorded in the destination's
``sha256-<hex>`` index when the destination lacks that API). The source is read through
``[registries]`` (a configured mirror or layout serves too); the destination is the
registry itself. The result ends with the ``[registries."ORIGIN"] mirror = …`` stanza.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from falcopkg.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from falcopkg.core.lockfile import LockedArtifact
    from falcopkg.oci.descriptor import Descriptor
    from falcopkg.oci.store import ContentStore
    from falcopkg.services.copy import CopyJob, CopyReport
    from falcopkg.services.registries import Mirror, RegistryAccess
    from falcopkg.workflows.project import Project

# cosign's tags for what it attaches to a digest: signatures, attestations, SBOMs.
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
_RELEASE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
LOCK_HINT = "run `falcopkg lock`, then mirror again"


@dataclass(frozen=True)
class MirrorOptions:
    destination: str  # DEST_PREFIX: host[:port][/path]
    plain_http: bool = False  # for the destination registry
    jobs: int = 8
    dry_run: bool = False


@dataclass(frozen=True)
class MirrorResult:
    destination: Mirror
    report: CopyReport
    origins: tuple[str, ...]  # the registries the locked artifacts come from
    referrers: int  # referrer manifests found (signatures, attestations …)
    artifacts: int  # locked artifacts mirrored

    @property
    def prefix(self) -> str:
        return self.destination.describe()

    def stanza(self) -> str:
        """What to paste into falco.toml (or the user config) to read through the mirror."""
        return "\n".join(
            f'[registries."{origin}"]\nmirror = "{self.prefix}"\n' for origin in self.origins
        )


def parse_destination(text: str) -> Mirror:
    """``host[:port][/path]`` checked; a usage error names what is wrong."""
    from falcopkg.core.reference import REPOSITORY_RE, is_valid_host
    from falcopkg.services.registries import LAYOUT_PREFIX, parse_mirror

    if text.startswith(LAYOUT_PREFIX):
        raise UsageError(
            f"{text!r} is an OCI layout, not a registry",
            hint="write an OCI layout directory with `falcopkg vendor DIR`",
        )
    if "://" in text:
        raise UsageError(
            f"{text!r}: give DEST_PREFIX without a scheme (host[:port][/path])",
            hint="use --plain-http for a registry that does not speak TLS",
        )
    mirror = parse_mirror(text)
    if not mirror.host or not is_valid_host(mirror.host):
        raise UsageError(
            f"invalid registry host in {text!r}", hint="e.g. registry.local:5000/falco"
        )
    if mirror.prefix and not REPOSITORY_RE.match(mirror.prefix):
        raise UsageError(
            f"invalid repository prefix {mirror.prefix!r} in {text!r}",
            hint="lower-case path components like `mirror/falco`",
        )
    return mirror


def mirror(project: Project, options: MirrorOptions) -> MirrorResult:
    """Copy falco.lock's artifacts (and their referrers) to ``options.destination``."""
    from falcopkg.core.manifest import RegistrySettings
    from falcopkg.services.copy import copy_artifacts
    from falcopkg.services.project_files import require_fresh_lock
    from falcopkg.services.registries import RegistryAccess, effective_registry_settings

    if options.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    destination = parse_destination(options.destination)
    dest_host = destination.host or ""
    lock = require_fresh_lock(project.manifest, project.existing_lock(), hint=LOCK_HINT)
    settings = effective_registry_settings(project.manifest)
    if options.plain_http:
        settings[dest_host] = replace(settings.get(dest_host, RegistrySettings()), plain_http=True)
    reporter = project.reporter
    with RegistryAccess(settings, warn=reporter.warn) as access:
        target = access.origin(dest_host)
        jobs: list[CopyJob] = []
        homes: dict[str, str] = {}
        for artifact in lock.artifacts:
            repository = _join(destination.prefix, artifact.repository)
            other = homes.setdefault(repository, artifact.source)
            if other != artifact.source:
                raise ConfigError(
                    f"{other} and {artifact.source} would both be mirrored to "
                    f"{dest_host}/{repository}",
                    hint="mirror the registries to different prefixes, one project per registry",
                )
            jobs += _artifact_jobs(access, artifact, target, repository)
        artifact_jobs = len(lock.artifacts)
        report = copy_artifacts(
            jobs,
            project.cache,
            workers=options.jobs,
            dry_run=options.dry_run,
            progress=reporter.download_progress(),
            warn=reporter.warn,
        )
        if not options.dry_run:
            _record_referrers(access, jobs, target, report)
    origins = tuple(sorted({artifact.registry for artifact in lock.artifacts}))
    return MirrorResult(
        destination, report, origins, len(jobs) - artifact_jobs, len(lock.artifacts)
    )


def _join(prefix: str, repository: str) -> str:
    return f"{prefix}/{repository}" if prefix else repository


def _artifact_jobs(
    access: RegistryAccess, artifact: LockedArtifact, target: ContentStore, repository: str
) -> list[CopyJob]:
    """The artifact's own copy (with its tags) and one per referrer of its digests."""
    from falcopkg.oci.errors import NotFoundError
    from falcopkg.services.copy import CopyJob

    source, source_repository = access.endpoint(artifact.source)
    try:
        tags = source.list_tags(source_repository)
    except NotFoundError:
        tags = []  # a layout with only untagged roots: digests are all the lock needs
    label = artifact.label()

    def job(digest: str, job_tags: Sequence[str], what: str) -> CopyJob:
        return CopyJob(what, source, source_repository, target, repository, digest, tuple(job_tags))

    jobs = [job(artifact.digest, _root_tags(artifact, source, source_repository, tags), label)]
    seen = {artifact.digest}
    for subject in _locked_digests(artifact):
        tag_schema = subject.replace(":", "-")
        for tag in tags:
            if tag == tag_schema or (
                tag.startswith(tag_schema) and tag[len(tag_schema) :] in COSIGN_SUFFIXES
            ):
                found = source.head_manifest(source_repository, tag)
                if found is not None:
                    jobs.append(job(found.digest, [tag], f"{label} {tag}"))
                    seen.add(found.digest)
        for referrer in _api_referrers(source, source_repository, subject) or ():
            if referrer.digest not in seen:
                seen.add(referrer.digest)
                jobs.append(job(referrer.digest, [], f"{label} referrer {referrer.digest[:19]}"))
    return jobs


def _locked_digests(artifact: LockedArtifact) -> list[str]:
    """The digests a signature may name: the root and each platform manifest."""
    return [artifact.digest, *sorted({p.manifest for p in artifact.platforms.values()})]


def _root_tags(
    artifact: LockedArtifact, source: ContentStore, repository: str, tags: Iterable[str]
) -> list[str]:
    """The source's tags that name the locked root among the version, the tag pin and the
    floating tags (X, X.Y, latest); the version (or pin) itself if the source has none."""
    candidates: list[str] = []
    if artifact.version:
        candidates += [artifact.version, f"v{artifact.version}"]
    if artifact.tag:
        candidates.append(artifact.tag)
    release = _RELEASE.match(artifact.version or "")
    if release:
        major, minor, _ = release.groups()
        candidates += [major, f"{major}.{minor}", f"v{major}", f"v{major}.{minor}"]
    candidates.append("latest")
    present = set(tags)
    chosen = []
    for tag in dict.fromkeys(candidates):
        if tag in present:
            found = source.head_manifest(repository, tag)
            if found is not None and found.digest == artifact.digest:
                chosen.append(tag)
    own = [t for t in (artifact.version, artifact.tag) if t]
    if not any(tag in chosen for tag in [*own, *(f"v{t}" for t in own)]):
        chosen = [*own, *chosen]
    return chosen


def _api_referrers(source: ContentStore, repository: str, digest: str) -> list[Descriptor] | None:
    """The OCI referrers API's answer (None: not a registry, or no such API there)."""
    from falcopkg.oci.client import RegistryClient

    if not isinstance(source, RegistryClient):
        return None
    return source.referrers(repository, digest)


def _record_referrers(
    access: RegistryAccess, jobs: Sequence[CopyJob], target: ContentStore, report: CopyReport
) -> None:
    """Where the destination has no referrers API, list the referrers copied by API in its
    ``sha256-<hex>`` tag (the OCI fallback tag schema), merged with what it lists already."""
    from falcopkg.oci import mediatypes
    from falcopkg.oci.client import RegistryClient
    from falcopkg.oci.descriptor import Descriptor
    from falcopkg.services.copy import CopyItem

    if not isinstance(target, RegistryClient):
        return
    by_subject: dict[tuple[str, str], list[Descriptor]] = {}
    for job in jobs:
        if job.tags:  # the artifact itself and tag-schema referrers: tagged already
            continue
        manifest = target.get_manifest(job.destination_repository, job.digest)
        body = manifest.json()
        subject = body.get("subject")
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            continue
        artifact_type = body.get("artifactType") or (body.get("config") or {}).get("mediaType")
        annotations = body.get("annotations")
        entry = Descriptor(
            manifest.media_type,
            manifest.digest,
            manifest.size,
            annotations=annotations if isinstance(annotations, dict) else None,
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
        )
        by_subject.setdefault((job.destination_repository, subject["digest"]), []).append(entry)
    for (repository, subject_digest), entries in sorted(by_subject.items()):
        if target.referrers(repository, subject_digest) is not None:
            continue  # the destination indexes referrers itself
        tag = subject_digest.replace(":", "-")
        existing: list[dict[str, object]] = []
        current = target.head_manifest(repository, tag)
        if current is not None:
            existing = target.get_manifest(repository, tag).json().get("manifests") or []
        listed = {entry.get("digest") for entry in existing}
        merged = existing + [e.to_dict() for e in entries if e.digest not in listed]
        if len(merged) == len(existing):
            continue
        data = json.dumps(
            {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": merged},
            separators=(",", ":"),
        ).encode()
        target.put_manifest(repository, tag, data, mediatypes.OCI_INDEX)
        report.items.append(
            CopyItem("referrers", "tag", f"{target.host}/{repository}:{tag}", len(data), "copy")
        )
