"""`vendor DIR` (SPEC §11): every locked artifact into an OCI image layout.

The layout is the ``oci-layout:DIR`` mirror of every registry the lock names: each root is
in ``index.json`` as ``HOST/REPOSITORY:VERSION`` (a tag pin also under its tag; an artifact
with neither under ``digest-<hex>``), with all its platforms, so `sync` and `lock` work from
it with no registry, and skopeo/oras read it as ``oci:DIR:HOST/REPOSITORY:VERSION``.

Incremental and verified: what the layout holds is read back and checked, kept when intact
and replaced when damaged (a warning names it); only what is missing is fetched — from the
blob cache when it has it (a warm cache needs no network), else through ``[registries]``.
Atomic: blobs are renamed into place after their digest check, manifests are written after
what they list, and ``index.json`` once, last (one layout transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from falcopkg.errors import UsageError

if TYPE_CHECKING:
    from falcopkg.core.lockfile import LockedArtifact
    from falcopkg.services.copy import CopyJob, CopyReport
    from falcopkg.workflows.project import Project

LOCK_HINT = "run `falcopkg lock`, then vendor again"


@dataclass(frozen=True)
class VendorResult:
    directory: Path
    report: CopyReport
    refs: tuple[str, ...]  # the ref names of the locked roots, as skopeo takes them


def ref_tags(artifact: LockedArtifact) -> tuple[str, ...]:
    """The tags naming the artifact's root in the layout."""
    tags = tuple(dict.fromkeys(tag for tag in (artifact.version, artifact.tag) if tag))
    return tags or ("digest-" + artifact.digest.partition(":")[2],)


def vendor(project: Project, directory: Path, *, jobs: int = 8) -> VendorResult:
    """Write falco.lock's artifacts into the OCI image layout ``directory``."""
    from falcopkg.oci.layout import OciLayout
    from falcopkg.services.copy import CopyJob, copy_artifacts
    from falcopkg.services.project_files import require_fresh_lock

    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    lock = require_fresh_lock(project.manifest, project.existing_lock(), hint=LOCK_HINT)
    directory = directory.absolute()
    if not lock.artifacts:
        raise UsageError(f"{project.lock_path} locks no artifact: nothing to vendor")
    layout = OciLayout(directory, host=lock.artifacts[0].registry, create=True)
    reporter = project.reporter
    refs: list[str] = []
    with project.registries() as registries, layout.transaction():
        copies: list[CopyJob] = []
        for artifact in lock.artifacts:
            source, source_repository = registries.endpoint(artifact.source)
            view = layout.for_host(artifact.registry)
            tags = ref_tags(artifact)
            refs += [view.ref_name(artifact.repository, tag) for tag in tags]
            copies.append(
                CopyJob(
                    artifact.label(),
                    source,
                    source_repository,
                    view,
                    artifact.repository,
                    artifact.digest,
                    tags,
                )
            )
        report = copy_artifacts(
            copies,
            project.cache,
            workers=jobs,
            verify_existing=True,
            progress=reporter.download_progress(),
            warn=reporter.warn,
        )
    return VendorResult(directory, report, tuple(refs))
