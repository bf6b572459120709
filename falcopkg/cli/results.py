"""The `--json` results of `lock`, `sync`, `add` and `remove`: the workflows' result
dataclasses as plain dicts (stable keys; paths as strings)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock
    from falcopkg.core.plan import Action
    from falcopkg.workflows.lock import EditResult, LockResult
    from falcopkg.workflows.sync import SyncResult


def lock_json(result: LockResult, lock_path: str, *, dry_run: bool = False) -> dict[str, Any]:
    return {
        "lockfile": lock_path,
        "written": result.written,
        "dry_run": dry_run,
        "changes": list(result.changes),
        "artifacts": artifacts_json(result.lock),
    }


def artifacts_json(lock: Lock) -> list[dict[str, Any]]:
    return [
        {
            "name": artifact.name,
            "type": artifact.type,
            "version": artifact.version,
            "source": artifact.source,
            "digest": artifact.digest,
        }
        for artifact in lock.artifacts
    ]


def sync_json(result: SyncResult, *, platform: str, dry_run: bool) -> dict[str, Any]:
    report = result.report
    if report is None:  # the no-op check answered: everything is as locked
        files, artifacts = result.up_to_date
        return {
            "ok": True,
            "dry_run": dry_run,
            "platform": platform,
            "lock_changed": result.lock_changed,
            "up_to_date": {"files": files, "artifacts": artifacts},
            "actions": [],
            "skipped": [],
        }
    plan = report.plan
    actions = (
        plan.actions
        if dry_run
        else tuple(report.added + report.updated + report.removed + report.kept)
    )
    return {
        "ok": not report.incomplete,
        "dry_run": dry_run,
        "platform": platform,
        "lock_changed": result.lock_changed,
        "up_to_date": {"files": plan.up_to_date_files, "artifacts": plan.up_to_date_artifacts},
        "actions": [action_json(action) for action in actions],
        "skipped": [{"artifact": name, "reason": why} for name, why in report.skipped],
    }


def action_json(action: Action) -> dict[str, str]:
    return {
        "kind": action.kind,
        "path": os.path.join(action.directory, action.path),
        "artifact": action.artifact,
        "reason": action.reason,
    }


def edit_json(
    edited: EditResult, synced: SyncResult | None, *, platform: str, dry_run: bool
) -> dict[str, Any]:
    """`add`/`remove`: the lock written (or not) and the sync that followed (None: --no-sync)."""
    return {
        "lock": lock_json(edited.lock, str(edited.project.lock_path), dry_run=dry_run),
        "sync": None if synced is None else sync_json(synced, platform=platform, dry_run=dry_run),
    }
