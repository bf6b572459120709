"""`lock`, `add`, `remove`, `outdated` (SPEC §5 to §7).

falco.toml is edited with comments and order kept; every workflow that changes it resolves
first and writes falco.toml and falco.lock only when that succeeded, so a conflict leaves
both files as they were.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falcopkg.errors import ConfigError
from falcopkg.text import quantity

if TYPE_CHECKING:
    from tomlkit.toml_document import TOMLDocument

    from falcopkg.core.lockfile import Lock
    from falcopkg.core.manifest import Manifest
    from falcopkg.services.lock_stamp import LockStamp
    from falcopkg.services.resolution import OutdatedArtifact
    from falcopkg.workflows.project import Project


@dataclass(frozen=True)
class LockResult:
    lock: Lock
    changes: tuple[str, ...]  # describe_changes lines
    written: bool


def lock(
    project: Project,
    *,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    offline: bool = False,
    dry_run: bool = False,
) -> LockResult:
    """Resolve falco.toml and write falco.lock (unless ``dry_run``), saying what changed."""
    from falcopkg.services.resolution import describe_changes

    warn_if_no_dependencies(project)
    existing = project.existing_lock(damaged="warn")
    stamp = None if dry_run else _stamp(project, existing)
    new = resolve_project(
        project,
        existing,
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        offline=offline,
        stamp=stamp,
    )
    if stamp is not None and stamp.matched:  # falco.lock as it is: nothing to render
        _say_locked(project, new, written=False)
        return LockResult(new, (), written=False)
    if dry_run:
        changes = tuple(describe_changes(existing, new, dry_run=True))
        return LockResult(new, changes, written=False)
    result = write_lock(project, existing, new, list_first_lock=False)
    if stamp is not None and project.lock_bytes is not None:  # as found, or as written
        stamp.save(project.lock_bytes)  # the next `lock` with these files may skip the resolver
    return result


def _stamp(project: Project, existing: Lock | None) -> LockStamp | None:
    """The project's lock stamp (services.lock_stamp), when falco.toml was read as bytes and
    falco.lock, if there is one, too (a damaged one is resolved anew, not stamped)."""
    if project.manifest_bytes is None or (existing is None) != (project.lock_bytes is None):
        return None
    from falcopkg.services.lock_stamp import LockStamp

    return LockStamp.of_project(
        project.manifest,
        project.manifest_bytes,
        project.lock_path,
        project.lock_bytes,
        project.cache_dir,
    )


def warn_if_no_dependencies(project: Project) -> None:
    """An empty project is not an error, but "Locked 0 artifacts" or a blank tree would look
    like success at something: say why there is nothing."""
    if not project.manifest.dependencies:
        project.reporter.warn(f"{project.manifest_path.name} has no dependencies")
        project.reporter.info("hint: add one with `falcopkg add NAME` (e.g. `falco-rules`)")


def check_lock(project: Project) -> Lock:
    """`lock --check`: the lock if it is fresh, else a LockError saying why."""
    from falcopkg.services.project_files import require_fresh_lock

    return require_fresh_lock(project.manifest, project.existing_lock())


def resolve_project(
    project: Project,
    existing: Lock | None,
    *,
    manifest: Manifest | None = None,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    offline: bool = False,
    stamp: LockStamp | None = None,
) -> Lock:
    """The new lock of ``manifest`` (default: the project's); nothing is written."""
    from falcopkg.services.resolution import resolve_lock

    manifest = manifest if manifest is not None else project.manifest
    with project.registries(offline=offline) as registries:
        return resolve_lock(
            manifest,
            existing_lock=existing,
            upgrade=upgrade,
            upgrade_packages=upgrade_packages,
            offline=offline,
            stores=registries,
            cache=project.cache,
            console=project.reporter,
            stamp=stamp,
        )


def write_lock(
    project: Project,
    existing: Lock | None,
    new: Lock,
    *,
    list_first_lock: bool = True,
    compare_with: Lock | None = None,
) -> LockResult:
    """Write falco.lock if it changed and say what changed (a first `lock` of a project only
    says how many artifacts it locked, like uv, instead of listing them all).
    ``compare_with`` replaces ``existing`` as what the changes are relative to."""
    from falcopkg.services.resolution import describe_changes

    reporter = project.reporter
    before = compare_with if compare_with is not None else existing
    changes: tuple[str, ...] = ()
    if before is not None or list_first_lock:
        changes = tuple(describe_changes(before, new))
        for line in changes:
            reporter.info(line)
    written = project.write_lock(new)
    _say_locked(project, new, written=written)
    return LockResult(new, changes, written)


def _say_locked(project: Project, lock: Lock, *, written: bool) -> None:
    count = quantity(len(lock.artifacts), "artifact")
    if written:
        project.reporter.success(f"Locked {count} in {project.lock_path.name}")
    else:
        project.reporter.info(f"{project.lock_path.name} is up to date ({count})")


# -- add / remove --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EditResult:
    """falco.toml and falco.lock as `add`/`remove` wrote them; ``project`` is the session over
    the written files (for the sync that follows)."""

    project: Project
    lock: LockResult


def add(
    project: Project, refs: Sequence[str], *, offline: bool = False, dry_run: bool = False
) -> EditResult:
    """Add ``refs`` (index names or registry references) to falco.toml and lock (with
    ``dry_run``: resolve and say what would change, write nothing).

    ``NAME`` takes the newest release and writes its version like `cargo add` (``"4.1.0"``
    allows 4.x from 4.1.0 on); ``NAME:4`` writes that constraint; ``NAME:main`` pins a tag,
    ``NAME@sha256:…`` a digest; ``host/repo[:tag|@digest]`` adds a registry reference.
    """
    from falcopkg.core.manifest import add_dependency

    wanted = [_dependency_for(text) for text in refs]  # usage errors before any read
    document, current = _read_manifest(project.manifest_path)  # a broken falco.toml fails first
    for name, value, _ in wanted:
        add_dependency(document, name, value)
    manifest, text = _edited(project.manifest_path, document)
    existing = project.existing_lock(damaged="warn")
    new = resolve_project(project, existing, manifest=manifest, offline=offline)
    # Like `cargo add`: what resolved becomes the constraint ("4.1.0" = ^4.1.0).
    versions_written = False
    for name, value, needs_version in wanted:
        artifact = new.artifact(name)
        if needs_version and artifact is not None and artifact.parsed_version is not None:
            from falcopkg.core.versions import caret_for

            add_dependency(document, name, _with_version(value, caret_for(artifact.parsed_version)))
            versions_written = True
    if versions_written:
        manifest, text = _edited(project.manifest_path, document)
        new = _with_inputs(new, manifest)
    added = {name for name, _, _ in wanted}
    # Without a lock to compare with, what the other declared artifacts bring was there
    # before this `add`: report only what the added names bring in.
    baseline = existing or _closure(
        new, [name for name in current.dependencies if name not in added]
    )
    return _finish_edit(project, manifest, text, existing, new, baseline, dry_run=dry_run)


def remove(
    project: Project, names: Sequence[str], *, offline: bool = False, dry_run: bool = False
) -> EditResult:
    """Remove artifacts from falco.toml and lock again (a sync then uninstalls their files);
    with ``dry_run`` write nothing."""
    from falcopkg.core.manifest import remove_dependency

    document, current = _read_manifest(project.manifest_path)
    for name in names:
        if not remove_dependency(document, name):
            raise ConfigError(
                f"{name} is not a dependency in {project.manifest_path}",
                hint=_known_hint(name, current.dependencies),
            )
    manifest, text = _edited(project.manifest_path, document)
    existing = project.existing_lock(damaged="warn")
    new = resolve_project(project, existing, manifest=manifest, offline=offline)
    return _finish_edit(project, manifest, text, existing, new, existing, dry_run=dry_run)


def _finish_edit(
    project: Project,
    manifest: Manifest,
    text: str,
    existing: Lock | None,
    new: Lock,
    baseline: Lock | None,
    *,
    dry_run: bool,
) -> EditResult:
    """Write falco.toml and falco.lock (or, with ``dry_run``, only say what would change)."""
    if dry_run:
        from falcopkg.services.resolution import describe_changes

        changes = tuple(describe_changes(baseline, new, dry_run=True))
        for line in changes:
            project.reporter.info(line)
        return EditResult(
            project.written(manifest, text, new), LockResult(new, changes, written=False)
        )
    _save_text(project.manifest_path, text)
    result = write_lock(project, existing, new, compare_with=baseline)
    return EditResult(project.written(manifest, text, new), result)


@contextmanager
def unfinished_sync_explained(command: str) -> Iterator[None]:
    """Around the sync that follows a written `add`/`remove`: an error then also says that
    falco.toml and falco.lock were already updated, and that `falcopkg sync` finishes."""
    from falcopkg.errors import FalcopkgError

    try:
        yield
    except FalcopkgError as exc:
        exc.message = (
            f"`{command}` updated falco.toml and falco.lock, but the sync did not finish: "
            f"{exc.message}"
        )
        finish = "then run `falcopkg sync` to finish installing"
        if not exc.hint:
            exc.hint = f"fix that, {finish}"
        elif "falcopkg sync" not in exc.hint:  # a hint naming `sync --force` already finishes
            exc.hint = f"{exc.hint}; {finish}"
        exc.args = (exc.message,)
        raise


def _closure(lock: Lock, names: Sequence[str]) -> Lock:
    """``lock`` with only ``names`` and what they depend on, directly or not."""
    by_name = lock.by_name
    todo = [name for name in names if name in by_name]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [child for child in by_name[name].dependencies if child in by_name]
    return replace(lock, artifacts=tuple(a for a in lock.artifacts if a.name in seen))


def _dependency_for(text: str) -> tuple[str, str | dict[str, str], bool]:
    """(name, falco.toml value, whether the resolved version should be written in)."""
    from falcopkg.core.reference import parse_argument

    reference = parse_argument(text)
    value: dict[str, str] = {} if reference.is_index_name else {"ref": reference.locator}
    constraint = _as_constraint(reference.tag) if reference.tag else None
    needs_version = False
    if reference.digest:
        value["digest"] = reference.digest
    elif constraint is not None:
        value["version"] = constraint
    elif reference.tag and reference.tag != "latest":
        value["tag"] = reference.tag
    else:
        needs_version = True
    return reference.name, _compact(value), needs_version


def _as_constraint(tag: str) -> str | None:
    """A tag like ``4``, ``4.1`` or ``4.1.0`` read as a version constraint (falcoctl's
    floating tags mean "that version line")."""
    from falcopkg.core.versions import Constraint

    if not tag[:1].isdigit():
        return None
    try:
        return str(Constraint.parse(tag))
    except ValueError:
        return None


def _compact(value: dict[str, str]) -> str | dict[str, str]:
    """A bare constraint string when that is all there is, as cargo writes."""
    if set(value) <= {"version"}:
        return value.get("version", "*")
    return value


def _with_version(value: str | dict[str, str], version: str) -> str | dict[str, str]:
    if isinstance(value, str):
        return version
    return {**value, "version": version}


def _known_hint(name: str, dependencies: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(dependencies), n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    if dependencies:
        return "falco.toml depends on: " + ", ".join(dependencies)
    return "falco.toml has no dependencies"


def _with_inputs(lock: Lock, manifest: Manifest) -> Lock:
    from falcopkg.core.lockfile import LockInputs

    return replace(lock, inputs=LockInputs.from_manifest(manifest))


def _read_manifest(path: Path) -> tuple[TOMLDocument, Manifest]:
    """falco.toml as a document to edit (comments and order kept) and as the model, from one
    read of the file."""
    from falcopkg.tomlfile import load_document

    document = load_document(path)
    return document, _edited(path, document)[0]


def _edited(path: Path, document: TOMLDocument) -> tuple[Manifest, str]:
    """The model of an edited falco.toml document and the text to write (validated alike)."""
    import tomlkit

    from falcopkg.core.manifest import parse_manifest

    text = tomlkit.dumps(document)
    return parse_manifest(text, path), text


def _save_text(path: Path, text: str) -> None:
    from falcopkg.fsutil import atomic_write_text

    atomic_write_text(path, text)


# -- read-only views -----------------------------------------------------------------------------


def require_lock(project: Project) -> Lock:
    """falco.lock for a read-only view (`tree`, `outdated`, `export`): missing is an error,
    out of date only a warning."""
    from falcopkg.services.project_files import require_fresh_lock

    return require_fresh_lock(
        project.manifest, project.existing_lock(), stale="warn", warn=project.reporter.warn
    )


def outdated(project: Project, *, offline: bool = False) -> list[OutdatedArtifact]:
    """For every locked artifact: its version, what `lock --upgrade` would pick, the newest."""
    from falcopkg.services.resolution import find_outdated

    warn_if_no_dependencies(project)
    locked = require_lock(project)
    with project.registries(offline=offline) as registries:
        return find_outdated(
            project.manifest,
            locked,
            offline=offline,
            stores=registries,
            cache=project.cache,
            console=project.reporter,
        )
