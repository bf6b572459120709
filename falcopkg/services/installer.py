"""Applying an install plan (SPEC §8): exact, atomic, serialized, repairable.

``install_artifacts`` is the one path every install takes (`sync`, `artifact install`):
locked artifacts → desired files → plan → fetch → apply. ``synchronize`` does the part after
the desired files are known.

How a sync stays safe:

1. Plan without any lock from the state files and ``lstat`` (hashing only owned files whose
   size or mtime changed). A no-op stops here: no lock file, no network, no hashing.
2. Otherwise take a file lock on every install directory involved (``<dir>/.falcopkg/lock``,
   sorted order, so two syncs run one after the other), then plan again: the other sync may
   have done the work already.
3. Fetch the layers and extract each into a staging directory inside ``<dir>/.falcopkg``
   (same filesystem). A download is read once: teed into the blob cache and the extractor
   in the same thread, verified when its last byte arrives; a cached layer is verified
   again while it is extracted. Any unsafe entry or digest mismatch stops here: staging
   directories are scratch space, removed, and nothing was written into ``<dir>``.
4. Write the state with a ``pending`` journal of the content about to be renamed in (every
   digest earlier interrupted syncs journaled stays there too: core.plan.journal), then
   rename each new file into place (sorted order), fsync the directory, delete removed files,
   and write the final state. A sync killed anywhere leaves every file old or new; the next
   one recognizes its own half-done work through the journal and finishes it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import wait
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from falcopkg.core.plan import (
    Action,
    Desired,
    DesiredFile,
    DirectoryState,
    DiskFact,
    FileRecord,
    LayerLike,
    Plan,
    desired_files,
    journal,
    next_state,
    plan_sync,
)
from falcopkg.errors import InstallError
from falcopkg.services import state as state_files

if TYPE_CHECKING:
    from falcopkg.archive import ByteReader, ExtractedFile
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.fetch import DownloadProgress, StoreRouter

LOCK_WAIT_SECONDS = 600.0


class Messages(Protocol):
    """The part of falcopkg.cli.output.Console the installer talks to."""

    def info(self, message: str) -> None: ...
    def detail(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...


class _Silent:
    def info(self, message: str) -> None:
        pass

    def detail(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class LayerRef:
    """A layer the installer needs: which artifact it belongs to and its digest."""

    artifact: str
    digest: str


# Called as each layer blob is ready: (digest, verified cache path, downloaded just now).
LayerReady = Callable[[str, Path, bool], None]
# Called while a layer downloads, with its bytes as they arrive (falcopkg.services.fetch
# OnStream): read to the end; the last read raises if the digest does not match.
LayerStream = Callable[[str, "ByteReader"], None]


class FetchLayers(Protocol):
    """Makes layers available (the blob cache): digest → verified blob file.

    A fetcher may ignore ``on_stream``; on_ready still comes for every digest.
    """

    def __call__(
        self,
        refs: Sequence[LayerRef],
        on_ready: LayerReady | None = None,
        on_stream: LayerStream | None = None,
    ) -> Mapping[str, Path]: ...


# Layers are extracted in parallel with the downloads and with each other: zlib, sha256
# and file writes release the GIL.
EXTRACT_WORKERS = min(4, (os.cpu_count() or 1) + 1)


@dataclass
class SyncReport:
    plan: Plan
    applied: bool = False
    added: list[Action] = field(default_factory=list)
    updated: list[Action] = field(default_factory=list)
    removed: list[Action] = field(default_factory=list)
    adopted: list[Action] = field(default_factory=list)  # identical unowned files taken over
    kept: list[Action] = field(default_factory=list)  # local changes and unowned files kept
    skipped: tuple[tuple[str, str], ...] = ()  # (artifact, why) not installed at all

    @property
    def incomplete(self) -> list[Action]:
        """Locked files that are not installed as locked (kept local changes or others' files)."""
        return [a for a in self.kept if a.cause != "unlocked"]

    @property
    def changed_files(self) -> int:
        return len(self.added) + len(self.updated) + len(self.removed)


# --- the whole path: locked artifacts to installed files --------------------------------


class InstallableArtifact(Protocol):
    """What the installer needs of falcopkg.core.lockfile.LockedArtifact."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def version(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    def layer_for(self, platform: str) -> SizedLayer | None: ...


class SizedLayer(LayerLike, Protocol):
    @property
    def size(self) -> int: ...


@dataclass(frozen=True)
class BlobAccess:
    """How to get blobs: the cache, then the stores (registries, mirrors), offline mode."""

    cache: BlobCache
    stores: StoreRouter | None
    offline: bool = False
    progress: DownloadProgress | None = None


def install_artifacts(
    artifacts: Sequence[InstallableArtifact],
    *,
    platform: str,
    directories: Mapping[str, Path],
    allowed_types: Sequence[str] | None,
    blobs: BlobAccess,
    force: bool = False,
    dry_run: bool = False,
    prune: bool = True,
    console: Messages | None = None,
    lock_source: str = "falco.lock",
    stamp: str | None = None,
) -> SyncReport:
    """Install ``artifacts`` for ``platform`` into ``directories`` (keys as in [install]).

    ``prune`` (sync) removes files of artifacts that are no longer given; without it
    (`artifact install`) other installed artifacts are left alone.
    """
    fetch = blob_fetcher(artifacts, platform, blobs)
    desired = desired_for(
        artifacts, platform, directories, allowed_types, fetch, lock_source=lock_source
    )
    return synchronize(
        desired,
        fetch_layers=fetch,
        force=force,
        dry_run=dry_run,
        prune=prune,
        console=console,
        stamp=stamp,
    )


def blob_fetcher(
    artifacts: Sequence[InstallableArtifact], platform: str, blobs: BlobAccess
) -> FetchLayers:
    """A FetchLayers for these artifacts' layers: cache first, then registries or mirrors."""
    from falcopkg.services.fetch import BlobRequest, ensure_blobs

    by_name = {a.name: a for a in artifacts}

    def fetch(
        refs: Sequence[LayerRef],
        on_ready: LayerReady | None = None,
        on_stream: LayerStream | None = None,
    ) -> Mapping[str, Path]:
        requests = []
        for ref in refs:
            artifact = by_name[ref.artifact]
            layer = artifact.layer_for(platform)
            size = layer.size if layer is not None and layer.digest == ref.digest else None
            requests.append(BlobRequest(_label(artifact), artifact.source, ref.digest, size))
        return ensure_blobs(
            requests,
            blobs.cache,
            blobs.stores,
            offline=blobs.offline,
            progress=blobs.progress,
            on_ready=on_ready,
            on_stream=on_stream,
        )

    return fetch


def desired_for(
    artifacts: Sequence[InstallableArtifact],
    platform: str,
    directories: Mapping[str, Path],
    allowed_types: Sequence[str] | None,
    fetch: FetchLayers,
    *,
    lock_source: str = "falco.lock",
) -> Desired:
    """The desired files of locked artifacts (layers without a file list are listed)."""
    return desired_files(
        [_with_files(a, platform, fetch) for a in artifacts],
        platform,
        {key: str(path) for key, path in directories.items()},
        allowed_types,
        lock_source=lock_source,
    )


def _label(artifact: InstallableArtifact) -> str:
    return f"{artifact.name} {artifact.version}" if artifact.version else artifact.name


@dataclass(frozen=True)
class _ListedLayer:
    digest: str
    size: int
    files: tuple[str, ...]


@dataclass(frozen=True)
class _ListedArtifact:
    name: str
    type: str
    version: str
    layer: _ListedLayer | None

    def layer_for(self, platform: str) -> _ListedLayer | None:
        return self.layer


def _with_files(
    artifact: InstallableArtifact, platform: str, fetch: FetchLayers
) -> _ListedArtifact:
    """The artifact with the files of its layer: from the lock, or (older locks that do not
    list them) from the layer itself."""
    layer = artifact.layer_for(platform)
    listed = None
    if layer is not None:
        files = tuple(layer.files)
        if not files:
            from falcopkg.archive import list_layer

            blob = fetch([LayerRef(artifact.name, layer.digest)])[layer.digest]
            files = tuple(list_layer(blob, artifact.name))
        listed = _ListedLayer(layer.digest, layer.size, files)
    return _ListedArtifact(artifact.name, artifact.type, artifact.version or "", listed)


# --- plan and apply ---------------------------------------------------------------------


def read_states(directories: Sequence[str]) -> dict[str, DirectoryState]:
    return {d: state_files.load_state(Path(d)) for d in directories}


DesiredFiles = Mapping[str, Mapping[str, DesiredFile]]


def observe_all(
    desired: DesiredFiles,
    states: Mapping[str, DirectoryState],
    *,
    hash_all: bool = False,
) -> dict[str, dict[str, DiskFact]]:
    """Disk facts for every path the planner looks at (desired, owned, pending)."""
    facts: dict[str, dict[str, DiskFact]] = {}
    for directory in sorted(set(desired) | set(states)):
        state = states.get(directory, DirectoryState())
        paths = set(desired.get(directory, {})) | set(state.owners()) | set(state.pending)
        facts[directory] = state_files.observe(
            Path(directory), sorted(paths), state, hash_all=hash_all
        )
    return facts


def make_plan(
    desired: DesiredFiles,
    *,
    force: bool,
    prune: bool,
    hash_all: bool = False,
) -> tuple[Plan, dict[str, DirectoryState]]:
    """Read the states, look at the disk, plan. Used by sync (twice) and verify."""
    states = read_states(sorted(desired))
    disk = observe_all(desired, states, hash_all=hash_all)
    plan = plan_sync(desired, states, disk, force=force, prune=prune)
    return plan, states


def synchronize(
    desired: Desired,
    *,
    fetch_layers: FetchLayers,
    force: bool = False,
    dry_run: bool = False,
    prune: bool = True,
    console: Messages | None = None,
    stamp: str | None = None,
) -> SyncReport:
    """Make the directories of ``desired`` hold exactly its files (see the module docstring).

    ``stamp`` (sync) is a fingerprint of the inputs that produced ``desired``; once the
    directories match exactly it is recorded in their states for the next no-op check.
    """
    say = console or _Silent()
    files = desired.files
    plan, states = make_plan(files, force=force, prune=prune)
    involved = [d for d in sorted(files) if files[d] or state_files.has_state(Path(d))]
    nothing_installed = not involved
    if stamp is not None and nothing_installed:
        # An empty project: no state would carry the stamp and every sync would take the
        # full path. Record it in the directories that exist and are writable (none are
        # created for a project that installs nothing).
        involved = [d for d in sorted(files) if os.access(d, os.W_OK | os.X_OK)]
    leftovers = any(state_files.has_leftovers(Path(d)) for d in involved)
    if dry_run or (plan.is_noop and not leftovers and (stamp is None or _stamped(states, stamp))):
        return SyncReport(plan, skipped=desired.skipped)
    with install_lock([Path(d) for d in involved], say):
        plan, states = make_plan(files, force=force, prune=prune)
        if plan.is_noop:
            for directory in involved:
                state_files.clean_leftovers(Path(directory))
            report = SyncReport(plan)
        else:
            report = _apply(plan, files, states, fetch_layers, prune=prune)
        if stamp is not None and not report.kept:
            _write_stamp(involved, stamp, create=nothing_installed)
    report.skipped = desired.skipped
    return report


def _stamped(states: Mapping[str, DirectoryState], stamp: str) -> bool:
    """Whether every directory with a state already carries ``stamp`` for this very set,
    with the no-op record the fast path reads."""
    with_state = sorted(d for d in states if state_files.has_state(Path(d)))
    return bool(with_state) and all(
        states[d].sync_stamp == stamp
        and sorted(states[d].sync_directories) == with_state
        and state_files.has_noop_record(Path(d), stamp)
        for d in with_state
    )


def _write_stamp(directories: Sequence[str], stamp: str, *, create: bool = False) -> None:
    """Record ``stamp`` in every directory that has a state, or with ``create`` in all of
    ``directories`` (call with the locks held)."""
    with_state = [d for d in directories if create or state_files.has_state(Path(d))]
    for directory in with_state:
        current = state_files.load_state(Path(directory))
        stamped = replace(current, sync_stamp=stamp, sync_directories=tuple(with_state))
        # Saved again without a change too when its no-op record is missing (a state from an
        # older falcopkg, a record that could not be written).
        if stamped != current or not state_files.has_noop_record(Path(directory), stamp):
            try:
                state_files.save_state(Path(directory), stamped)
            except OSError as exc:
                raise _write_error(Path(directory), exc) from None


@contextlib.contextmanager
def install_lock(directories: Sequence[Path], console: Messages | None = None) -> Iterator[None]:
    """Hold ``<dir>/.falcopkg/lock`` for every directory (sorted, so no two syncs deadlock)."""
    import filelock

    say = console or _Silent()
    held: list[filelock.BaseFileLock] = []
    created: list[Path] = []  # directories this sync made, outermost first
    try:
        for directory in sorted(set(directories)):
            folder = state_files.state_dir(directory)
            created += _missing_ancestors(folder)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _write_error(directory, exc) from None
            lock = filelock.FileLock(str(folder / state_files.LOCK_FILE_NAME))
            try:
                lock.acquire(timeout=0.2)
            except filelock.Timeout:
                say.info(f"Waiting for another falcopkg to finish with {directory} ...")
                try:
                    lock.acquire(timeout=LOCK_WAIT_SECONDS)
                except filelock.Timeout:
                    raise InstallError(
                        f"{directory} stayed locked by another falcopkg for "
                        f"{LOCK_WAIT_SECONDS:.0f}s",
                        hint="another falcopkg is still working there (the lock is released "
                        "when that process ends); wait for it or stop it",
                    ) from None
            held.append(lock)
        yield
    except BaseException:
        _release(held)
        _remove_if_empty(created)  # a failed first sync leaves no empty install directories
        raise
    else:
        _release(held)


def _release(held: Sequence[Any]) -> None:
    for acquired in reversed(held):
        acquired.release()


def _missing_ancestors(path: Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, outermost first."""
    missing: list[Path] = []
    while not path.exists() and path.parent != path:
        missing.append(path)
        path = path.parent
    return missing[::-1]


def _remove_if_empty(created: Sequence[Path]) -> None:
    """Remove what :func:`install_lock` created, innermost first, where nothing but its lock
    file is left (rmdir refuses a directory that holds anything else)."""
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            if directory.name == state_files.STATE_DIR_NAME and [
                entry.name for entry in directory.iterdir()
            ] == [state_files.LOCK_FILE_NAME]:
                (directory / state_files.LOCK_FILE_NAME).unlink()
            directory.rmdir()


def _apply(
    plan: Plan,
    desired: DesiredFiles,
    states: Mapping[str, DirectoryState],
    fetch_layers: FetchLayers,
    *,
    prune: bool,
) -> SyncReport:
    from falcopkg.archive import (
        check_target,
        fsync_directory,
        place_file,
        remove_tree,
    )
    from falcopkg.digests import file_digest

    report = SyncReport(plan, applied=True)
    touched = sorted({a.directory for a in plan.actions} | {r.directory for r in plan.refreshes})
    for directory in touched:
        state_files.clean_leftovers(Path(directory))

    # 1. Layers: fetch (verified) and extract into staging as each one is ready.
    needed = sorted(plan.layers_needed())
    layer_digest = {
        (directory, artifact): _layer_of(desired[directory], artifact)
        for directory, artifact in needed
    }
    staged: dict[tuple[str, str], ExtractedFile] = {}
    staging_dirs: list[Path] = []
    written: dict[str, dict[str, FileRecord]] = {d: {} for d in touched}
    try:
        for directory, _artifact, extracted in _extract_layers(
            needed, layer_digest, desired, fetch_layers, staging_dirs
        ):
            for item in extracted:
                staged[(directory, item.path)] = item

        # 2. Decide the files in the way: identical ones are adopted, others kept.
        writes: list[tuple[Action, ExtractedFile, Path]] = []
        for action in plan.actions:
            target = Path(action.directory).joinpath(*PurePosixPath(action.path).parts)
            if action.writes:
                item = staged[(action.directory, action.path)]
                check_target(Path(action.directory), target, action.artifact, action.path)
                writes.append((action, item, target))
            elif action.kind == "keep-unowned":
                item = staged[(action.directory, action.path)]
                if (
                    target.is_file()
                    and not target.is_symlink()
                    and file_digest(target) == item.sha256
                ):
                    written[action.directory][action.path] = state_files.file_record(
                        target, item.sha256
                    )
                    report.adopted.append(action)
                else:
                    report.kept.append(action)
            elif action.kind == "keep-modified":
                report.kept.append(action)

        # 3. Journal: what is about to be renamed in is ours, whatever happens next.
        for directory in sorted({a.directory for a, _, _ in writes}):
            about_to_write = {
                a.path: item.sha256 for a, item, _ in writes if a.directory == directory
            }
            try:
                state_files.save_state(Path(directory), journal(states[directory], about_to_write))
            except OSError as exc:
                raise _write_error(Path(directory), exc) from None

        # 4. Rename into place, then delete what is no longer locked.
        for action, item, target in writes:
            try:
                place_file(item.staged, target, Path(action.directory))
            except OSError as exc:
                raise _write_error(Path(action.directory), exc) from None
            written[action.directory][action.path] = state_files.file_record(target, item.sha256)
            (report.added if action.kind == "add" else report.updated).append(action)
        for directory in sorted({a.directory for a, _, _ in writes}):
            fsync_directory(Path(directory))
        for action in plan.actions:
            if action.kind == "remove":
                _remove(Path(action.directory), action.path)
                report.removed.append(action)

        # 5. The final state.
        for directory in touched:
            old = states[directory]
            new = next_state(
                directory,
                old,
                desired.get(directory, {}),
                plan,
                written[directory],
                prune=prune,
            )
            if new != old:
                try:
                    state_files.save_state(Path(directory), new)
                except OSError as exc:
                    raise _write_error(Path(directory), exc) from None
    finally:
        for folder in staging_dirs:
            remove_tree(folder)
    return report


def _extract_layers(
    needed: Sequence[tuple[str, str]],
    layer_digest: Mapping[tuple[str, str], str],
    desired: DesiredFiles,
    fetch_layers: FetchLayers,
    staging_dirs: list[Path],
) -> list[tuple[str, str, list[ExtractedFile]]]:
    """Fetch the needed layers and extract each into a staging directory of its install
    directory. A layer being downloaded is extracted from the download stream itself, in
    the download's thread (read once, no re-read from the cache); cached layers, and other
    users of a streamed one, from the cache file as soon as it is ready. ``staging_dirs``
    collects the directories made (the caller removes them). The first error wins, after
    every started extraction has stopped.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    from falcopkg.archive import extract_layer, extract_stream

    if not needed:
        return []
    users: dict[str, list[tuple[str, str]]] = {}
    for key in needed:
        users.setdefault(layer_digest[key], []).append(key)
    lock = threading.Lock()
    futures: list[Future[tuple[str, str, list[ExtractedFile]]]] = []
    streamed: dict[tuple[str, str], list[ExtractedFile]] = {}

    def staging_for(directory: str) -> Path:
        from falcopkg.archive import new_staging_dir

        try:
            folder = new_staging_dir(state_files.state_dir(Path(directory)))
        except OSError as exc:
            raise _write_error(Path(directory), exc) from None
        with lock:
            staging_dirs.append(folder)
        return folder

    def extract(
        directory: str, artifact: str, blob: Path, verified: bool
    ) -> tuple[str, str, list[ExtractedFile]]:
        digest = layer_digest[(directory, artifact)]
        # A blob downloaded just now was verified on the way in; a cached one again here.
        extracted = extract_layer(
            blob,
            artifact,
            staging_for(directory),
            expected_digest=None if verified else digest,
        )
        _check_layer_files(directory, artifact, extracted, desired[directory])
        return directory, artifact, extracted

    def extract_download(digest: str, raw: ByteReader) -> None:
        directory, artifact = users[digest][0]
        # Verified by the download itself: its last read raises on a mismatch.
        extracted = extract_stream(raw, artifact, staging_for(directory))
        _check_layer_files(directory, artifact, extracted, desired[directory])
        with lock:
            streamed[(directory, artifact)] = extracted

    with ThreadPoolExecutor(max_workers=EXTRACT_WORKERS) as pool:

        def ready(digest: str, blob: Path, downloaded: bool) -> None:
            with lock:
                for directory, artifact in users.get(digest, ()):
                    if (directory, artifact) not in streamed:
                        futures.append(pool.submit(extract, directory, artifact, blob, downloaded))

        refs = sorted({LayerRef(a, layer_digest[(d, a)]) for d, a in needed}, key=_ref_key)
        try:
            fetch_layers(refs, ready, extract_download)
        finally:
            with lock:
                started = list(futures)
            wait(started)
    for future in started:
        error = future.exception()
        if error is not None:
            raise error
    results = [f.result() for f in started]
    results += [(d, a, extracted) for (d, a), extracted in streamed.items()]
    return sorted(results, key=lambda r: (r[0], r[1]))


def _ref_key(ref: LayerRef) -> tuple[str, str]:
    return (ref.artifact, ref.digest)


def _layer_of(files: Mapping[str, DesiredFile], artifact: str) -> str:
    return next(want.layer_digest for want in files.values() if want.artifact == artifact)


def _check_layer_files(
    directory: str,
    artifact: str,
    extracted: Sequence[ExtractedFile],
    desired: Mapping[str, DesiredFile],
) -> None:
    """The layer must hold exactly the files the lock lists for it."""
    listed = {p for p, want in desired.items() if want.artifact == artifact}
    actual = {item.path for item in extracted}
    if listed != actual:
        extra = ", ".join(sorted(actual - listed)) or "nothing else"
        missing = ", ".join(sorted(listed - actual)) or "nothing"
        raise InstallError(
            f"the layer of {artifact} does not hold the files falco.lock lists for it "
            f"(lacks {missing}; has {extra}); nothing was written to {directory}",
            hint="run `falcopkg lock` to record the layer's files again",
        )


def _remove(directory: Path, path: str) -> None:
    target = directory.joinpath(*PurePosixPath(path).parts)
    try:
        target.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _write_error(directory, exc) from None
    # Directories the archive brought along go when they are empty; the install dir stays.
    parent = target.parent
    while parent != directory and directory in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def _write_error(directory: Path, exc: OSError) -> InstallError:
    return InstallError(
        f"cannot write into {directory}: {exc.strerror or exc}",
        hint="run as a user that may write there, or choose another directory with "
        "--rulesfiles-dir/--plugins-dir/--assets-dir or [install] in falco.toml",
    )
