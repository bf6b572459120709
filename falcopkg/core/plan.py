"""The install planner (SPEC §8): what must change so the install directories match a lock.

PURE: the caller reads the state files and stats the disk; this module only decides.

Inputs, per install directory (an absolute path as a string):

- ``desired``: relative path → :class:`DesiredFile` (the artifact and layer that should
  provide it), built from the lock by :func:`desired_files`;
- ``states``: the :class:`DirectoryState` falcopkg recorded there (which files each artifact
  installed, with sha256, size and mtime);
- ``disk``: a :class:`DiskFact` per path of interest. The observer hashes a file only when
  it is owned and its size or mtime differ from the record, so a no-op sync hashes nothing.

The plan works at the layer level: an artifact whose locked layer digest equals the
recorded one and whose files are intact needs nothing; otherwise each of its files is
added or updated from the layer. Files falcopkg installed that nobody locks any more are
removed; files it did not install are never touched, and files it installed that were
changed since are kept (reported) unless ``force``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from falcopkg.artifact.types import ARTIFACT_TYPES, install_dir_key
from falcopkg.errors import InstallError, known

ActionKind = Literal["add", "update", "remove", "keep-modified", "keep-unowned"]
# Why an action is needed; `verify` reports these as drift kinds.
Cause = Literal[
    "not-installed",  # the artifact was never installed here
    "missing",  # installed, then deleted from disk
    "outdated",  # the locked layer differs from the installed one
    "interrupted",  # content an interrupted sync was writing; rewritten to be sure
    "modified",  # changed since falcopkg installed it
    "unowned",  # a file falcopkg did not install is in the way
    "unlocked",  # installed by falcopkg, no longer locked
]

# A record no real file matches: kept local changes whose artifact moved to a new layer.
UNKNOWN_FACT = -1
UNKNOWN_SHA256 = ""


# --- install state (what falcopkg put into one directory) ------------------------------


@dataclass(frozen=True)
class FileRecord:
    """An installed file: the sha256 of what falcopkg wrote and the stat stamp after writing."""

    sha256: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ArtifactRecord:
    name: str
    version: str
    layer_digest: str
    files: Mapping[str, FileRecord]


@dataclass(frozen=True)
class DirectoryState:
    """What falcopkg installed in one directory.

    ``pending`` maps paths to the sha256s of content syncs were about to rename into place
    when they stopped (written before the first rename, cleared by the final state write):
    such content is falcopkg's own, not a user's change. A path can have several: a sync
    to version B killed after its rename, then a sync back to A killed before its rename,
    leave B on disk while A is the last content journaled; both must stay recognized (see
    :func:`journal`). :func:`next_state` drops the sync stamp; the installer sets it again
    once a sync completed.
    """

    artifacts: Mapping[str, ArtifactRecord] = field(default_factory=dict)
    pending: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Set by a sync that ended exactly in the locked state: a fingerprint of its inputs and
    # every directory it covered, so the next sync with the same inputs can check the files'
    # stamps without reading falco.toml or falco.lock (see falcopkg.cli.commands.install).
    sync_stamp: str = ""
    sync_directories: tuple[str, ...] = ()

    def owners(self) -> dict[str, tuple[ArtifactRecord, FileRecord]]:
        """Relative path → (artifact, file record) for every recorded file."""
        return {
            path: (artifact, record)
            for artifact in self.artifacts.values()
            for path, record in artifact.files.items()
        }


EMPTY_STATE = DirectoryState()


# --- what should be installed, and what is on disk -------------------------------------


@dataclass(frozen=True)
class DesiredFile:
    artifact: str
    version: str
    layer_digest: str


@dataclass(frozen=True)
class DiskFact:
    """What the disk says about one path. ``sha256`` is set only when it was hashed;
    it is "" for something that is not a regular file (a directory, a symlink)."""

    exists: bool
    size: int = 0
    mtime_ns: int = 0
    sha256: str | None = None


ABSENT = DiskFact(exists=False)


def stamp_matches(fact: DiskFact, record: FileRecord) -> bool:
    return fact.exists and fact.size == record.size and fact.mtime_ns == record.mtime_ns


def needs_hash(fact: DiskFact, record: FileRecord | None, pending: Collection[str] | None) -> bool:
    """Whether the observer must hash this existing file for the planner to decide.

    Only files falcopkg owns (or was writing) whose stamp changed: unowned files are never
    hashed by the planner, and a no-op sync hashes nothing.
    """
    if not fact.exists:
        return False
    if record is not None:
        return not stamp_matches(fact, record)
    return bool(pending)


# --- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    directory: str
    path: str  # relative to directory, POSIX separators
    artifact: str
    cause: Cause
    reason: str  # for people: "falco-rules 4.0.0 -> 4.1.0"

    @property
    def needs_layer(self) -> bool:
        """Whether applying (or checking) this action needs the artifact's layer content."""
        return self.kind in ("add", "update", "keep-unowned")

    @property
    def writes(self) -> bool:
        return self.kind in ("add", "update")


@dataclass(frozen=True)
class RecordRefresh:
    """An owned file whose content is intact but whose size/mtime changed (e.g. touched):
    the state records the new size and mtime so the next sync does not hash it again."""

    directory: str
    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    refreshes: tuple[RecordRefresh, ...]
    up_to_date_files: int
    up_to_date_artifacts: int

    @property
    def is_noop(self) -> bool:
        return not self.actions and not self.refreshes

    @property
    def changes(self) -> tuple[Action, ...]:
        """Actions that write or delete a file."""
        return tuple(a for a in self.actions if a.kind in ("add", "update", "remove"))

    def layers_needed(self) -> set[tuple[str, str]]:
        """(directory, artifact) pairs whose layer must be fetched and extracted."""
        return {(a.directory, a.artifact) for a in self.actions if a.needs_layer}

    def for_directory(self, directory: str) -> list[Action]:
        return [a for a in self.actions if a.directory == directory]


_Condition = Literal["absent", "intact", "interrupted", "modified", "unowned"]


def _condition(fact: DiskFact, record: FileRecord | None, pending: Collection[str]) -> _Condition:
    if not fact.exists:
        return "absent"
    if record is not None and stamp_matches(fact, record) and fact.sha256 is None:
        return "intact"  # a hash, when there is one (verify hashes all), has the last word
    if record is None and not pending:
        return "unowned"
    if fact.sha256 is None:
        raise ValueError(f"owned file with a changed stamp was not hashed: {fact}")
    if record is not None and fact.sha256 == record.sha256:
        return "intact"
    if fact.sha256 in pending:
        return "interrupted"
    return "modified"


def plan_sync(
    desired: Mapping[str, Mapping[str, DesiredFile]],
    states: Mapping[str, DirectoryState],
    disk: Mapping[str, Mapping[str, DiskFact]],
    *,
    force: bool = False,
    prune: bool = True,
) -> Plan:
    """Decide every add/update/remove/keep, in a deterministic (directory, path) order.

    ``prune=False`` (imperative `artifact install`) leaves the files of installed artifacts
    that are not in ``desired`` alone; ``sync`` prunes them.
    """
    actions: list[Action] = []
    refreshes: list[RecordRefresh] = []
    up_to_date_files = 0
    stale_artifacts: set[tuple[str, str]] = set()
    desired_artifacts: set[tuple[str, str]] = set()
    for directory in sorted(set(desired) | set(states)):
        wanted = desired.get(directory, {})
        state = states.get(directory, EMPTY_STATE)
        facts = disk.get(directory, {})
        owners = state.owners()
        wanted_artifacts = {want.artifact for want in wanted.values()}
        desired_artifacts.update((directory, name) for name in wanted_artifacts)
        for path in sorted(set(wanted) | set(owners) | set(state.pending)):
            want = wanted.get(path)
            owner, record = owners.get(path, (None, None))
            if want is None and not prune and (owner is None or owner.name not in wanted_artifacts):
                continue  # another artifact's file: `artifact install` leaves it alone
            fact = facts.get(path, ABSENT)
            condition = _condition(fact, record, state.pending.get(path, ()))
            if want is None:
                decision = _decide_unwanted(condition, owner, wanted_artifacts, force)
            elif condition == "intact" and owner is not None and _same_layer(owner, want):
                up_to_date_files += 1
                if record is not None and not stamp_matches(fact, record):
                    refreshes.append(RecordRefresh(directory, path, fact.size, fact.mtime_ns))
                continue
            else:
                stale_artifacts.add((directory, want.artifact))
                installed = state.artifacts.get(want.artifact)
                decision = _decide_wanted(condition, want, owner, installed, force)
            if decision is not None:
                kind, cause, reason, artifact = decision
                actions.append(Action(kind, directory, path, artifact, cause, reason))
    return Plan(
        actions=tuple(actions),
        refreshes=tuple(refreshes),
        up_to_date_files=up_to_date_files,
        up_to_date_artifacts=len(desired_artifacts - stale_artifacts),
    )


_Decision = tuple[ActionKind, Cause, str, str]  # kind, cause, reason, artifact


def _same_layer(owner: ArtifactRecord, want: DesiredFile) -> bool:
    return owner.name == want.artifact and owner.layer_digest == want.layer_digest


def _decide_unwanted(
    condition: _Condition, owner: ArtifactRecord | None, wanted_artifacts: set[str], force: bool
) -> _Decision | None:
    """An owned (or half-written) file nothing locks any more."""
    name = owner.name if owner is not None else "(interrupted sync)"
    if condition in ("intact", "interrupted") or (condition == "modified" and force):
        gone = owner is None or owner.name not in wanted_artifacts
        why = f"{name} is no longer locked" if gone else f"no longer part of {name}"
        return ("remove", "unlocked", why + (" (--force)" if condition == "modified" else ""), name)
    if condition == "modified":
        reason = "changed since falcopkg installed it; kept, and no longer managed"
        return ("keep-modified", "unlocked", reason, name)
    return None  # already gone: the state forgets it


def _decide_wanted(
    condition: _Condition,
    want: DesiredFile,
    owner: ArtifactRecord | None,
    installed: ArtifactRecord | None,
    force: bool,
) -> _Decision:
    """A locked file that is not up to date."""
    name = want.artifact
    if condition == "absent":
        if installed is None:
            return ("add", "not-installed", f"install {name} {want.version}", name)
        if installed.layer_digest == want.layer_digest:
            return ("add", "missing", "missing on disk", name)
        return ("add", "outdated", _upgrade(installed, want), name)
    if condition == "intact":
        owner = known(owner, f"the owner of {name}'s file")
        if owner.name == name:
            return ("update", "outdated", _upgrade(owner, want), name)
        return (
            "update",
            "outdated",
            f"now provided by {name} {want.version} (was {owner.name})",
            name,
        )
    if condition == "interrupted":
        return ("update", "interrupted", "finish an interrupted sync", name)
    if condition == "modified":
        if force:
            return ("update", "modified", "replace local changes (--force)", name)
        reason = "changed since falcopkg installed it; kept (--force replaces it)"
        return ("keep-modified", "modified", reason, name)
    if force:
        return ("update", "unowned", "replace a file falcopkg did not install (--force)", name)
    reason = "exists and was not installed by falcopkg; kept unless identical (--force replaces it)"
    return ("keep-unowned", "unowned", reason, name)


def _upgrade(installed: ArtifactRecord, want: DesiredFile) -> str:
    if installed.version != want.version:
        return f"{want.artifact} {installed.version} -> {want.version}"
    return f"{want.artifact} {want.version}: new content ({_short(installed.layer_digest)} -> {_short(want.layer_digest)})"


def _short(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}:{hex_digest[:12]}"


# --- the state after applying a plan ---------------------------------------------------


def journal(old: DirectoryState, about_to_write: Mapping[str, str]) -> DirectoryState:
    """The state to write before renaming ``about_to_write`` (path → sha256) into place.

    Earlier pending content is kept next to the new one, never replaced: until a final
    state records what is on disk, any of it may be there (see DirectoryState).
    """
    pending = {path: tuple(digests) for path, digests in old.pending.items()}
    for path, sha256 in about_to_write.items():
        known = pending.get(path, ())
        if sha256 not in known:
            pending[path] = (*known, sha256)
    return DirectoryState(old.artifacts, dict(sorted(pending.items())))


def next_state(
    directory: str,
    old: DirectoryState,
    wanted: Mapping[str, DesiredFile],
    plan: Plan,
    written: Mapping[str, FileRecord],
    *,
    prune: bool = True,
) -> DirectoryState:
    """The state of ``directory`` once ``plan`` was applied.

    ``written`` holds a record for every file the installer put in place or adopted (an
    unowned file identical to the locked one). Files kept with local changes keep their
    record while their layer is unchanged; when the layer changed they get a record no
    content matches, so they stay reported as modified until replaced or deleted.
    """
    actions = {a.path: a for a in plan.for_directory(directory)}
    refreshes = {r.path: r for r in plan.refreshes if r.directory == directory}
    owners = old.owners()
    files_by_artifact: dict[str, dict[str, FileRecord]] = {}
    versions: dict[str, DesiredFile] = {}
    for path, want in sorted(wanted.items()):
        versions.setdefault(want.artifact, want)
        files = files_by_artifact.setdefault(want.artifact, {})
        record = written.get(path)
        if record is None:
            action = actions.get(path)
            _, previous = owners.get(path, (None, None))
            if action is None and previous is not None:
                refresh = refreshes.get(path)
                record = (
                    FileRecord(previous.sha256, refresh.size, refresh.mtime_ns)
                    if refresh
                    else previous
                )
            elif action is not None and action.kind == "keep-modified":
                owner = owners.get(path, (None, None))[0]
                if owner is not None and previous is not None and _same_layer(owner, want):
                    record = previous
                else:
                    # Neither the old nor the new content: reported as modified until replaced.
                    record = FileRecord(UNKNOWN_SHA256, UNKNOWN_FACT, UNKNOWN_FACT)
        if record is not None:
            files[path] = record
    artifacts = {
        name: ArtifactRecord(name, want.version, want.layer_digest, files_by_artifact[name])
        for name, want in versions.items()
    }
    pending: dict[str, tuple[str, ...]] = {}
    if not prune:
        # Artifacts not being installed keep their records, minus files now provided by others.
        for name, kept in old.artifacts.items():
            if name not in artifacts:
                files = {p: r for p, r in kept.files.items() if p not in wanted}
                artifacts[name] = ArtifactRecord(name, kept.version, kept.layer_digest, files)
        # The plan skipped half-written files of other artifacts: they stay journaled, or
        # a later sync would take them for someone else's files.
        pending = {
            path: digests
            for path, digests in old.pending.items()
            if path not in wanted and path not in actions
        }
    return DirectoryState(artifacts=dict(sorted(artifacts.items())), pending=pending)


# --- from a lock to the desired files --------------------------------------------------


class LayerLike(Protocol):
    @property
    def digest(self) -> str: ...
    @property
    def files(self) -> tuple[str, ...]: ...


class LockedArtifactLike(Protocol):
    """What the planner needs of core.lockfile.LockedArtifact."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def version(self) -> str: ...
    def layer_for(self, platform: str) -> LayerLike | None: ...


@dataclass(frozen=True)
class Desired:
    """The desired files per directory, and the artifacts left out with the reason."""

    files: dict[str, dict[str, DesiredFile]]
    skipped: tuple[tuple[str, str], ...] = ()  # (artifact, why)


def desired_files(
    artifacts: Iterable[LockedArtifactLike],
    platform: str,
    directories: Mapping[str, str],
    allowed_types: Iterable[str] | None = None,
    *,
    lock_source: str = "falco.lock",
) -> Desired:
    """Which file each locked artifact should provide where, for ``platform``.

    ``directories`` maps the [install] keys (``rulesfiles_dir`` …) to absolute directories;
    every one of them appears in the result, so a directory whose last artifact was removed
    is still cleaned. Artifacts of a type outside ``allowed_types`` are skipped.
    """
    files: dict[str, dict[str, DesiredFile]] = {d: {} for d in directories.values()}
    providers: dict[tuple[str, str], str] = {}
    skipped: list[tuple[str, str]] = []
    allowed = None if allowed_types is None else set(allowed_types)
    for artifact in sorted(artifacts, key=lambda a: a.name):
        if allowed is not None and artifact.type not in allowed:
            skipped.append(
                (artifact.name, f"type {artifact.type} is not in [install].allowed_types")
            )
            continue
        key = install_dir_key(artifact.type)
        if key is None or key not in directories:
            raise InstallError(
                f"{lock_source}: artifact {artifact.name} has type {artifact.type!r}, which "
                "falcopkg does not know where to install",
                hint=f"known types: {', '.join(ARTIFACT_TYPES)}",
            )
        layer = artifact.layer_for(platform)
        if layer is None:
            raise InstallError(
                f"{lock_source}: {artifact.name} {artifact.version} is not locked for platform "
                f"{platform}",
                hint=(
                    "pass another `--platform`"
                    if lock_source == "artifact install"  # no falco.toml to edit
                    else f'add "{platform}" to `platforms` under [target] in falco.toml (add '
                    "the table if it has none) and run `falcopkg lock`, or pass another "
                    "`--platform`"
                ),
            )
        directory = directories[key]
        for path in layer.files:
            other = providers.get((directory, path))
            if other is not None:
                raise InstallError(
                    f"{lock_source}: {artifact.name} and {other} both install {path} into "
                    f"{directory}",
                    hint="remove one of them from falco.toml, or install them into different "
                    "directories, then run `falcopkg lock`",
                )
            providers[(directory, path)] = artifact.name
            files[directory][path] = DesiredFile(artifact.name, artifact.version, layer.digest)
    return Desired(files=files, skipped=tuple(skipped))
