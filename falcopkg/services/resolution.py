"""Lock a project (SPEC §6, §7): falco.toml → resolver → falco.lock.

``resolve_lock`` is what `lock`, `add`, `remove` and `sync` (when the lock is stale) call.
It keeps the current lock's versions while they satisfy falco.toml (``upgrade`` or
``upgrade_packages`` lift that), reuses the lock's digests so that an unchanged project
costs one tags request per artifact, and with ``offline`` uses only cached metadata.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from falcopkg.core.lockfile import Lock, LockedArtifact, LockedLayer, LockInputs
from falcopkg.core.resolver import (
    CandidateMetadata,
    Location,
    MetadataProvider,
    Resolution,
    ResolvedArtifact,
    resolve,
)
from falcopkg.core.versions import Constraint, Version
from falcopkg.errors import FalcopkgError, UsageError

# Re-exported: they lived here before services.project_files, which sync uses without the resolver.

if TYPE_CHECKING:
    from falcopkg.core.index_config import IndexConfig
    from falcopkg.core.manifest import DependencySpec, Manifest, TargetSettings
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.indexes import IndexStore, LoadedIndex
    from falcopkg.services.lock_stamp import LockStamp
    from falcopkg.services.metadata import RegistryMetadataProvider
    from falcopkg.services.registries import RegistryAccess


class Messages(Protocol):
    """The part of the reporter that resolution uses."""

    def detail(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...


class Locator:
    """Where each artifact lives: its falco.toml ``ref``, else the indexes (first wins, or
    only the ``index`` it names). Indexes are loaded once, on the first name that needs
    them; thread-safe for the metadata provider's parallel prefetch."""

    def __init__(
        self,
        manifest: Manifest,
        cache_dir: Path,
        *,
        offline: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.manifest = manifest
        self.cache_dir = cache_dir
        self.offline = offline
        self.warn = warn
        self._indexes: list[LoadedIndex] | None = None
        # Indexes that could not be read: left out while another index can answer.
        self.unavailable: list[tuple[IndexConfig, FalcopkgError]] = []
        self._store: IndexStore | None = None
        self._lock = threading.Lock()

    def loaded_indexes(self) -> list[LoadedIndex]:
        with self._lock:
            if self._indexes is None:
                from falcopkg.services.indexes import IndexStore, unavailable_warning

                # One store for every name: an index host that failed once fails the next
                # name at once (its transport remembers it) instead of being waited for again.
                if self._store is None:
                    self._store = IndexStore(self.cache_dir)
                store = self._store
                self._indexes = store.load_all(
                    list(self.manifest.indexes), offline=self.offline, unavailable=self.unavailable
                )
                for config, error in self.unavailable:
                    if self.warn is not None:
                        self.warn(unavailable_warning(config, error))
            return self._indexes

    def __call__(self, name: str) -> Location:
        from falcopkg.services.indexes import resolve_reference

        spec = self.manifest.dependencies.get(name)
        if spec is not None and spec.ref is not None:
            return Location(spec.ref)
        indexes = self.loaded_indexes()
        unavailable = self.unavailable
        if spec is not None and spec.index is not None:
            for config, error in unavailable:
                if config.name == spec.index:
                    raise error  # the one index this dependency may come from
            indexes = [index for index in indexes if index.name == spec.index]
            unavailable = []
        located, entry, index_name = resolve_reference(name, indexes, unavailable)
        return Location(located.locator, index_name, entry.type if entry else None)


def resolve_lock(
    manifest: Manifest,
    *,
    existing_lock: Lock | None,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    offline: bool = False,
    stores: RegistryAccess | None,
    cache: BlobCache,
    console: Messages | None = None,
    follow_dependencies: bool = True,
    requested_by: str | None = None,
    stamp: LockStamp | None = None,
) -> Lock:
    """Resolve ``manifest`` and return the new lock (nothing is written).

    ``existing_lock`` pins are preferred unless ``upgrade`` (all) or named in
    ``upgrade_packages``; ResolutionError explains a conflict, OfflineError names what
    ``offline`` lacks. ``stores`` may be None with ``offline``. ``follow_dependencies=False``
    locks only the manifest's own artifacts (`artifact install --no-resolve-deps`).
    ``requested_by`` names where the dependencies come from when that is not falco.toml
    (`artifact install`: "the command line"), for conflict messages.

    ``stamp`` (a plain `lock`): when its tag lists are as stamped, ``existing_lock`` is the
    answer and the resolver does not run; otherwise it learns what this resolution read.
    """
    unknown = [
        name
        for name in upgrade_packages
        if name not in manifest.dependencies
        and (existing_lock is None or existing_lock.artifact(name) is None)
    ]
    if unknown:
        raise UsageError(
            f"--upgrade-package {unknown[0]}: no artifact of that name in falco.toml or falco.lock",
            hint="name an artifact that `falcopkg tree` shows",
        )
    kept = [] if existing_lock is None or upgrade else list(existing_lock.artifacts)
    kept = [artifact for artifact in kept if artifact.name not in upgrade_packages]
    plain = not (upgrade or upgrade_packages or offline) and follow_dependencies
    if not plain or requested_by is not None:
        stamp = None
    messages = _CountingMessages(console) if console is not None else None
    with _provider(
        manifest,
        kept,
        offline=offline,
        stores=stores,
        cache=cache,
        console=messages,
        likely=existing_lock,
    ) as registry_provider:
        if stamp is not None and existing_lock is not None:
            sources = stamp.stamped_sources()
            lists = None if sources is None else registry_provider.fetched_tag_lists(sources)
            if lists is not None and stamp.unchanged(lists):
                if console is not None:
                    console.detail(
                        f"falco.toml, falco.lock, the indexes and {len(lists)} tag lists are "
                        "as when falco.lock was last resolved: nothing to resolve"
                    )
                return existing_lock
        provider: MetadataProvider = registry_provider
        if not follow_dependencies:
            provider = _WithoutDependencies(provider)
        if console is not None:
            console.detail(
                f"resolving {len(manifest.dependencies)} dependencies of {manifest.path}"
            )
        preferences = {a.name: v for a in kept if (v := a.parsed_version) is not None}
        resolution = _resolve(manifest, provider, preferences, requested_by=requested_by)
        artifacts = tuple(
            _locked(resolved, manifest.target.platforms)
            for resolved in resolution.artifacts.values()
        )
        if stamp is not None:
            # What the lock pins, a re-lock takes from it; any other tag read (a candidate
            # turned down, a lookup that failed) it would read again.
            pinned = _tag_digests(artifacts)
            stamp.observe(
                registry_provider.tag_lists(),
                depends_on_more=any(
                    digest is None or pinned.get(tag) != digest
                    for tag, digest in registry_provider.tags_looked_up.items()
                )
                or (messages is not None and messages.warnings > 0),
            )
    return Lock(LockInputs.from_manifest(manifest), artifacts)


class _CountingMessages:
    """``inner``, counting the warnings: a resolution that warned is not stamped."""

    def __init__(self, inner: Messages) -> None:
        self.inner = inner
        self.warnings = 0

    def detail(self, message: str) -> None:
        self.inner.detail(message)

    def warn(self, message: str) -> None:
        self.warnings += 1
        self.inner.warn(message)


class _WithoutDependencies:
    """A metadata provider that hides every dependency (added for `artifact install`)."""

    def __init__(self, inner: MetadataProvider) -> None:
        self.inner = inner

    def locate(self, name: str) -> Location:
        return self.inner.locate(name)

    def versions(self, name: str) -> list[tuple[Version, str]]:
        return self.inner.versions(name)

    def metadata(self, name: str, reference: str) -> CandidateMetadata:
        return replace(self.inner.metadata(name, reference), dependencies=())

    def prefetch(self, requests: Sequence[tuple[str, str | None]]) -> None:
        self.inner.prefetch(requests)


def _tag_digests(artifacts: Iterable[LockedArtifact]) -> dict[tuple[str, str], str]:
    """The root digest that each locked artifact's version and tag name, keyed as the
    metadata provider's ``known_digests`` are: (source, tag_key(tag))."""
    from falcopkg.services.metadata import tag_key

    digests: dict[tuple[str, str], str] = {}
    for artifact in artifacts:
        if artifact.version is not None:
            digests[(artifact.source, tag_key(artifact.version))] = artifact.digest
        if artifact.tag is not None:
            digests[(artifact.source, tag_key(artifact.tag))] = artifact.digest
    return digests


def _provider(
    manifest: Manifest,
    locked: Sequence[LockedArtifact],
    *,
    offline: bool,
    stores: RegistryAccess | None,
    cache: BlobCache,
    console: Messages | None = None,
    also_known: Mapping[tuple[str, str], str] | None = None,
    likely: Lock | None = None,
) -> RegistryMetadataProvider:
    """A metadata provider that knows the digests ``locked`` pins (the lock is the cache of
    tag → digest, so kept versions need no manifest request), and ``also_known`` ones.
    ``likely``: a lock of this project, whose tag lists the resolution will most likely
    ask for; they are asked for at once, in the background."""
    from falcopkg.services.metadata import RegistryMetadataProvider

    known_digests = {**(also_known or {}), **_tag_digests(locked)}
    provider = RegistryMetadataProvider(
        stores=stores,
        cache=cache,
        locate=Locator(
            manifest, cache.root, offline=offline, warn=console.warn if console else None
        ),
        platforms=manifest.target.platforms,
        known_digests=known_digests,
        offline=offline,
    )
    if likely is not None and not offline:
        pinned = {name for name, spec in manifest.dependencies.items() if spec.is_pinned}
        provider.list_tags_ahead(
            [
                artifact.source
                for artifact in likely.reachable_from(manifest.dependencies)
                if artifact.name not in pinned  # a pin needs no tag list
            ]
        )
    return provider


def _resolve(
    manifest: Manifest,
    provider: MetadataProvider,
    preferences: dict[str, Version],
    *,
    requested_by: str | None = None,
    target: TargetSettings | None = None,
    roots: Sequence[DependencySpec] | None = None,
) -> Resolution:
    """``target`` replaces [target] for requirement checks; ``roots`` the dependencies."""
    return resolve(
        list(manifest.dependencies.values()) if roots is None else list(roots),
        provider,
        target if target is not None else manifest.target,
        manifest.target.platforms,
        preferences,
        allowed_types=manifest.install.allowed_types,
        directory_for=manifest.install.directory_for,
        requested_by=requested_by,
    )


@dataclass(frozen=True)
class OutdatedArtifact:
    """Locked vs the newest version falco.toml allows vs the newest release there is."""

    name: str
    type: str
    locked: str | None
    allowed: str | None  # None: no resolution (a conflict) or a pin
    latest: str | None  # None: no release tag (pins, pre-releases only)

    @property
    def is_outdated(self) -> bool:
        return self.locked != self.allowed or (
            self.latest is not None and self.locked != self.latest
        )


def find_outdated(
    manifest: Manifest,
    lock: Lock,
    *,
    offline: bool = False,
    stores: RegistryAccess | None,
    cache: BlobCache,
    console: Messages | None = None,
) -> list[OutdatedArtifact]:
    """For every locked artifact: its version, what `lock --upgrade` would pick, the newest."""
    from falcopkg.errors import ResolutionError

    with _provider(
        manifest,
        lock.artifacts,
        offline=offline,
        stores=stores,
        cache=cache,
        console=console,
        likely=lock,
    ) as provider:
        try:
            upgraded: Resolution | None = _resolve(manifest, provider, {})
        except ResolutionError as exc:
            if console is not None:
                console.detail(f"no upgrade resolves: {exc.message}")
            upgraded = None
        rows = []
        for artifact in lock.artifacts:
            spec = manifest.dependencies.get(artifact.name)
            pinned = spec is not None and spec.is_pinned
            latest = None
            if not pinned:
                releases = [v for v, _ in provider.versions(artifact.name) if not v.prerelease]
                latest = str(releases[0]) if releases else None
            allowed = None
            if upgraded is not None and artifact.name in upgraded.artifacts:
                version = upgraded.artifacts[artifact.name].version
                allowed = str(version) if version is not None else None
            rows.append(
                OutdatedArtifact(artifact.name, artifact.type, artifact.version, allowed, latest)
            )
    return rows


@dataclass(frozen=True)
class HeldBack:
    """A newer version falco.toml's constraints allow that the lock did not take, and why."""

    name: str
    version: str  # the newest version the constraints allow
    chosen: str | None  # what resolved instead
    reasons: tuple[str, ...]
    source: str = ""  # where it lives, and its root digest: known_digests for the next round
    digest: str = ""

    @property
    def known_digest(self) -> tuple[tuple[str, str], str]:
        """``((source, tag_key), digest)``: `follow` passes it back as ``also_known``."""
        from falcopkg.services.metadata import tag_key

        return (self.source, tag_key(self.version)), self.digest


@dataclass(frozen=True)
class Upgrades:
    lock: Lock
    held_back: tuple[HeldBack, ...] = ()


RUNNING_FALCO = "the running Falco's"


def resolve_upgrades(
    manifest: Manifest,
    current: Lock | None,
    *,
    running: TargetSettings | None = None,
    stores: RegistryAccess | None,
    cache: BlobCache,
    console: Messages | None = None,
    also_known: Mapping[tuple[str, str], str] | None = None,
) -> Upgrades:
    """`lock --upgrade` for `follow` (SPEC §11): the newest versions falco.toml allows whose
    requirements both [target] and ``running`` (a running Falco's versions) meet, and each
    newer version held back with its reasons.

    The current lock's digests are known (``known_digests``), so with nothing new each
    repository costs one tags request. The lock records falco.toml's own target, so it stays
    fresh for `sync`. ``also_known`` adds tag digests seen before (`follow` passes the
    held-back ones of its last round, so they cost no manifest request either).
    """
    from falcopkg.core.falco_versions import stricter_target
    from falcopkg.errors import ResolutionError

    locked = current.artifacts if current is not None else ()
    target = manifest.target if running is None else stricter_target(manifest.target, running)
    if console is not None:
        console.detail(f"resolving {len(manifest.dependencies)} dependencies allowing upgrades")
    with _provider(
        manifest,
        locked,
        offline=False,
        stores=stores,
        cache=cache,
        also_known=also_known,
        console=console,
        likely=current,
    ) as provider:
        try:
            resolution = _resolve(manifest, provider, {}, target=target)
        except ResolutionError as exc:
            if target != manifest.target:
                # The messages say "[target]"; here that is the older of it and the running
                # Falco.
                exc.message += (
                    "\n  (requirements were checked against the older of [target] and the "
                    f"running Falco: engine_version {target.engine_version or 'unset'}, "
                    f"plugin_api_version {target.plugin_api_version or 'unset'})"
                )
                exc.args = (exc.message,)
            raise
        artifacts = tuple(
            _locked(resolved, manifest.target.platforms)
            for resolved in resolution.artifacts.values()
        )
        lock = Lock(LockInputs.from_manifest(manifest), artifacts)
        checks = [(manifest.target, "[target]")]
        if running is not None:
            checks.append((running, RUNNING_FALCO))
        held = [
            found
            for name in sorted(resolution.artifacts)
            if (found := _held_back(manifest, resolution, name, provider, target, checks))
            is not None
        ]
        return Upgrades(lock, tuple(held))


def _held_back(
    manifest: Manifest,
    resolution: Resolution,
    name: str,
    provider: RegistryMetadataProvider,
    target: TargetSettings,
    checks: Sequence[tuple[TargetSettings, str]],
) -> HeldBack | None:
    """``name``'s newest version that the constraints on it allow (ignoring requirements),
    when that is newer than what resolved; None otherwise."""
    from falcopkg.core.lockfile import unmet_requirements
    from falcopkg.errors import ResolutionError

    resolved = resolution.artifacts[name]
    spec = manifest.dependencies.get(name)
    if resolved.version is None or (spec is not None and spec.is_pinned):
        return None
    newest = _newest_allowed(provider.versions(name), _constraints_on(resolution, name, spec))
    if newest is None or newest[0] <= resolved.version:
        return None
    version, tag = newest
    label = f"{name} {version}"
    metadata = provider.metadata(name, tag)
    reasons = [
        problem.removeprefix(f"{label} ")
        for settings, against in checks
        for problem in unmet_requirements(label, metadata.requirements, settings, against=against)
    ]
    if not reasons and spec is not None:
        # Requirements pass: something else rules it out; resolving with it says what.
        exact = replace(spec, version=Constraint.parse(f"={version}"))
        roots: list[DependencySpec] = [
            exact if other.name == name else other for other in manifest.dependencies.values()
        ]
        try:
            _resolve(manifest, provider, {}, target=target, roots=roots)
            reasons.append("another artifact decided first rules it out")
        except ResolutionError as exc:
            lines = [line.strip() for line in exc.message.splitlines()]
            reasons.append("; ".join(lines[1:] or lines))
    if not reasons:
        reasons.append("the artifacts that depend on it rule it out")
    return HeldBack(
        name,
        str(version),
        str(resolved.version),
        tuple(reasons),
        source=resolved.location.source,
        digest=metadata.digest,
    )


def _constraints_on(
    resolution: Resolution, name: str, spec: DependencySpec | None
) -> list[Constraint]:
    """What falco.toml and the artifacts that resolved say about ``name``'s version."""
    found = [spec.constraint] if spec is not None else []
    for edge in resolution.edges:
        if edge.child == name and edge.parent is not None:
            found.append(replace(Constraint.parse(edge.constraint), falco_rule=True))
    return found


def _newest_allowed(
    versions: Sequence[tuple[Version, str]], constraints: Sequence[Constraint]
) -> tuple[Version, str] | None:
    """The newest version every constraint allows; a pre-release only when a falco.toml
    constraint asks for one (the resolver's rule)."""
    for version, tag in versions:
        if not all(c.allows(version) for c in constraints):
            continue
        if version.prerelease and not any(not c.falco_rule for c in constraints):
            continue
        return version, tag
    return None


def _locked(resolved: ResolvedArtifact, platforms: Sequence[str]) -> LockedArtifact:
    metadata = resolved.metadata
    single = metadata.platforms.get("")
    return LockedArtifact(
        name=resolved.name,
        type=metadata.type,
        version=str(resolved.version) if resolved.version is not None else None,
        source=resolved.location.source,
        digest=metadata.digest,
        index=resolved.location.index,
        tag=resolved.tag,
        layer=LockedLayer(single.layer.digest, single.layer.size, single.layer.files)
        if single is not None
        else None,
        platforms={}
        if single is not None
        else {p: metadata.platforms[p] for p in sorted(platforms) if p in metadata.platforms},
        dependencies=resolved.dependencies,
        dependency_constraints=dict(resolved.dependency_constraints),
        requirements=dict(sorted(metadata.requirements.items())),
    )


_VERBS = {
    False: {"add": "Added", "update": "Updated", "remove": "Removed"},
    True: {"add": "Would add", "update": "Would update", "remove": "Would remove"},
}


def describe_changes(old: Lock | None, new: Lock, *, dry_run: bool = False) -> list[str]:
    """One line per artifact added, updated or removed: ``Updated k8saudit 0.18.0 -> 0.19.2``
    (``Would update …`` for a dry run; ``… (from HOST/REPO)`` when the source changed)."""
    verbs = _VERBS[dry_run]
    before = old.by_name if old is not None else {}
    after = new.by_name
    lines = []
    for name in sorted(set(before) | set(after)):
        previous, current = before.get(name), after.get(name)
        if previous is None and current is not None:
            lines.append(f"{verbs['add']} {_shown(current)}")
        elif current is None and previous is not None:
            lines.append(f"{verbs['remove']} {_shown(previous)}")
        elif previous is not None and current is not None and _moved(previous, current):
            change = f"{_version(previous)} -> {_version(current)}"
            if previous.version == current.version:
                change = _version(current)
                if previous.source == current.source:
                    change += f" (new digest {current.digest[:19]})"
            if previous.source != current.source:
                # Another repository (e.g. an index added ahead now names it): say so.
                change += f" (from {current.source})"
            lines.append(f"{verbs['update']} {name} {change}")
    return lines


def _moved(previous: LockedArtifact, current: LockedArtifact) -> bool:
    return previous.digest != current.digest or previous.source != current.source


def _version(artifact: LockedArtifact) -> str:
    return artifact.version or f"@{artifact.digest[:19]}"


def _shown(artifact: LockedArtifact) -> str:
    return f"{artifact.name} {_version(artifact)}"
