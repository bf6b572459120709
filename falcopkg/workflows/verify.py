"""`verify` (alias `check`): compare the installed files with falco.lock, change nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from falcopkg.workflows.noop import DirectoryOverrides, install_directories

if TYPE_CHECKING:
    from pathlib import Path

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
    plan, _ = make_plan(desired.files, force=False, prune=True, hash_all=True)
    drift = tuple(
        Drift(
            DRIFT_KIND[action.cause],
            os.path.join(action.directory, action.path),
            action.artifact,
            action.reason,
        )
        for action in plan.actions
    )
    from falcopkg.workflows.falco_config import snippet_drift, snippet_text
    from falcopkg.workflows.noop import falco_config_dir

    config_dir = falco_config_dir(manifest, overrides)
    if config_dir is not None:
        text = snippet_text(lock, manifest, platform, directories) if lock.artifacts else None
        found = snippet_drift(config_dir, text, directories["rulesfiles_dir"])
        if found is not None:
            kind, path, detail = found
            drift = (*drift, Drift(kind, str(path), "falco config", detail))
    checked = sum(len(files) for files in desired.files.values())
    return VerifyResult(project.lock_path, platform, checked, plan.up_to_date_artifacts, drift)
