"""The Falco config snippet `sync` keeps in ``[install] falco_config_dir`` (SPEC §11).

With it, Falco on a host loads exactly what was installed: one file, ``falcopkg.yaml``, with
the ``rules_files``, ``load_plugins`` and ``plugins`` of `export falco-config` (the same
rendering). Falco loads every file in a config directory, dotfiles included, so the
temporary file is made beside that directory, never in it, and renamed in; falcopkg's
record of the snippet (its path, sha256, size and mtime) lives in the rules directory's
``.falcopkg`` state directory, not next to the snippet.

Owned like an installed file: a snippet changed by hand is kept (and reported) unless
``force``; a file falcopkg did not write is never replaced without ``force``; the snippet is
removed when nothing is locked or the setting is dropped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from falcopkg.workflows.noop import read_snippet_record
from falcopkg.workflows.noop import snippet_record_path as record_path

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock
    from falcopkg.core.manifest import Manifest

SNIPPET_NAME = "falcopkg.yaml"

Outcome = Literal["written", "updated", "removed", "unchanged", "kept-modified", "kept-unowned"]


@dataclass(frozen=True)
class SnippetChange:
    path: Path
    outcome: Outcome

    @property
    def kept(self) -> bool:
        return self.outcome.startswith("kept")


def snippet_text(
    lock: Lock, manifest: Manifest, platform: str, directories: dict[str, Path]
) -> str:
    from falcopkg.core.export import falco_config_text

    return falco_config_text(
        lock,
        manifest,
        platform=platform,
        rulesfiles_dir=os.path.normpath(directories["rulesfiles_dir"]),
        plugins_dir=os.path.normpath(directories["plugins_dir"]),
    )


def apply_snippet(
    config_dir: Path | None,
    text: str | None,
    rulesfiles_dir: Path,
    *,
    force: bool = False,
    dry_run: bool = False,
) -> SnippetChange | None:
    """Make ``config_dir/falcopkg.yaml`` hold ``text`` (None: nothing locked, or no
    ``config_dir``: remove the snippet falcopkg wrote before). None when nothing applies."""
    record = read_snippet_record(rulesfiles_dir)
    previous = Path(str(record["path"])) if record is not None else None
    target = config_dir / SNIPPET_NAME if config_dir is not None else None
    change: SnippetChange | None = None
    if previous is not None and previous != target:
        change = _remove(previous, record, rulesfiles_dir, force=force, dry_run=dry_run)
        record = None
    if target is None:
        return change
    if text is None:
        if record is not None:
            return _remove(target, record, rulesfiles_dir, force=force, dry_run=dry_run)
        return change
    data = text.encode("utf-8")
    current = _read(target)
    if current == data:
        if not dry_run and (record is None or not _matches(record, target)):
            _save_record(rulesfiles_dir, target, data)
        return SnippetChange(target, "unchanged")
    if current is not None and not force:
        if record is None:
            return SnippetChange(target, "kept-unowned")
        if _sha256(current) != record.get("sha256"):
            return SnippetChange(target, "kept-modified")
    if not dry_run:
        from falcopkg.fsutil import atomic_write_bytes

        target.parent.mkdir(parents=True, exist_ok=True)
        # Never a temporary file inside the directory Falco reads.
        atomic_write_bytes(target, data, temp_dir=target.parent.parent)
        _save_record(rulesfiles_dir, target, data)
    return SnippetChange(target, "written" if current is None else "updated")


def snippet_drift(
    config_dir: Path | None, text: str | None, rulesfiles_dir: Path
) -> tuple[str, Path, str] | None:
    """(kind, path, detail) when the snippet on disk is not what the lock makes; for verify."""
    if config_dir is None or text is None:
        return None
    target = config_dir / SNIPPET_NAME
    current = _read(target)
    if current is None:
        return ("missing", target, "the Falco config snippet is not there")
    if current != text.encode("utf-8"):
        record = read_snippet_record(rulesfiles_dir)
        if record is not None and _sha256(current) == record.get("sha256"):
            return ("outdated", target, "written for another falco.lock")
        return ("modified", target, "changed since falcopkg wrote it")
    return None


def _remove(
    path: Path,
    record: dict[str, object] | None,
    rulesfiles_dir: Path,
    *,
    force: bool,
    dry_run: bool,
) -> SnippetChange | None:
    current = _read(path)
    if current is None:
        if not dry_run:
            record_path(rulesfiles_dir).unlink(missing_ok=True)
        return None
    if not force and (record is None or _sha256(current) != record.get("sha256")):
        return SnippetChange(path, "kept-modified")
    if not dry_run:
        path.unlink(missing_ok=True)
        record_path(rulesfiles_dir).unlink(missing_ok=True)
    return SnippetChange(path, "removed")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _sha256(data: bytes) -> str:
    import hashlib  # here: the no-op sync imports this module, and hashlib costs it 3 ms

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _matches(record: dict[str, object], target: Path) -> bool:
    try:
        facts = target.lstat()
    except OSError:
        return False
    return (
        record.get("path") == str(target)
        and record.get("size") == facts.st_size
        and record.get("mtime_ns") == facts.st_mtime_ns
    )


def _save_record(rulesfiles_dir: Path, target: Path, data: bytes) -> None:
    from falcopkg.fsutil import atomic_write_text

    facts = target.lstat()
    record = {
        "path": str(target),
        "sha256": _sha256(data),
        "size": facts.st_size,
        "mtime_ns": facts.st_mtime_ns,
    }
    path = record_path(rulesfiles_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, sort_keys=True))
