"""`verify` (alias `check`): compare the installed files with falco.lock, change nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from falcopkg.workflows.noop import DirectoryOverrides, install_directories

if TYPE_CHECKING:
    from pathlib import Path

    from falcopkg.core.lockfile import LockedArtifact
    from falcopkg.core.plan import ArtifactRecord
    from falcopkg.workflows.project import Project

# Planner causes (core.plan) as verify names them.
DRIFT_KIND = {
    "not-installed": "not-installed",
    "missing": "missing",
    "outdated": "outdated",
    "interrupted": "outdated",
    "modified": "modified",
    "unowned": "unowned",
    "unlocked": "extra",
}
# Besides: "other-platform", a file of the build of another locked platform (verify's own).


@dataclass(frozen=True)
class Drift:
    kind: str  # a DRIFT_KIND value
    path: str
    artifact: str
    detail: str


@dataclass(frozen=True)
class VerifyResult:
    lock_path: Path
    platform: str
    files: int  # locked files checked
    artifacts: int  # artifacts whose files are all as locked
    drift: tuple[Drift, ...]

    @property
    def ok(self) -> bool:
        return not self.drift


def verify(project: Project, *, platform: str, overrides: DirectoryOverrides) -> VerifyResult:
    """Hash every locked file on disk and compare (layers are read only for a lock that does
    not list their files, and only from the cache)."""
    from falcopkg.services.installer import BlobAccess, blob_fetcher, desired_for, make_plan
    from falcopkg.services.project_files import require_fresh_lock

    manifest = project.manifest
    lock = require_fresh_lock(
        manifest,
        project.existing_lock(),
        stale="ignore",  # verify compares the disk with the lock as it is
        hint="run `falcopkg lock`, then `falcopkg sync`",
    )
    directories = install_directories(manifest, overrides)
    cache_only = BlobAccess(project.cache, None, offline=True)
    desired = desired_for(
        lock.artifacts,
        platform,
        directories,
        manifest.install.allowed_types,
        blob_fetcher(lock.artifacts, platform, cache_only),
        lock_source=str(project.lock_path),
    )
    plan, states = make_plan(desired.files, force=False, prune=True, hash_all=True)
    by_name = lock.by_name
    drift = []
    for action in plan.actions:
        kind, detail = DRIFT_KIND[action.cause], action.reason
        if action.cause == "outdated" and action.artifact in by_name:
            installed = states[action.directory].artifacts.get(action.artifact)
            other = _platform_of(by_name[action.artifact], installed, platform)
            if other is not None:  # e.g. after `sync --platform linux/arm64`
                kind = "other-platform"
                detail = (
                    f"the {other} build is installed; verify checked {platform} "
                    f"(pass `--platform {other}`)"
                )
        drift.append(
            Drift(kind, os.path.join(action.directory, action.path), action.artifact, detail)
        )
    from falcopkg.workflows.falco_config import snippet_drift, snippet_text
    from falcopkg.workflows.noop import falco_config_dir

    config_dir = falco_config_dir(manifest, overrides)
    if config_dir is not None:
        text = snippet_text(lock, manifest, platform, directories) if lock.artifacts else None
        found = snippet_drift(config_dir, text, directories["rulesfiles_dir"])
        if found is not None:
            kind, path, detail = found
            drift.append(Drift(kind, str(path), "falco config", detail))
    checked = sum(len(files) for files in desired.files.values())
    return VerifyResult(
        project.lock_path, platform, checked, plan.up_to_date_artifacts, tuple(drift)
    )


def _platform_of(
    artifact: LockedArtifact, installed: ArtifactRecord | None, checked: str
) -> str | None:
    """The other locked platform whose layer is the one installed, if that is the case."""
    if installed is None:
        return None
    return next(
        (
            name
            for name, locked in sorted(artifact.platforms.items())
            if name != checked and locked.layer.digest == installed.layer_digest
        ),
        None,
    )
