"""Registry metadata for the resolver (SPEC §6), cached by digest.

:class:`RegistryMetadataProvider` implements ``falcopkg.core.resolver.MetadataProvider`` on
top of the OCI client: candidates are a repository's semver tags, metadata is what
``inspect_artifact`` reads (root → platform manifests → config) plus, for types that read
rules YAML, the ``required_*`` entries of the YAML inside the layer, and the file list of
every layer the target platforms need (for the lock and the file-conflict check).

Everything behind a digest is immutable, so it is cached by digest under
``<cache>/metadata`` and never fetched twice::

    packs/roots/<alg>/<xx>.pack  what a root manifest says: type, config, platform
                              manifests, and what the layers read with it hold ("layers")
    packs/layers/<alg>/<xx>.pack  what a layer holds (its files, the rules YAML's
                              requirements) when it was read after its root record was written
    packs/tags/sha256/<xx>.pack  a repository's last tag list (for --offline) and the
                              digests its tags were last seen at, keyed by sha256(source)

Records are entries of append-only packs (``services.packs``: a file per 256th of the keys,
not one per record; any intact record of a root or layer will do, while a tag list is only
ever its newest record, missing when that one is damaged). The ``roots/``, ``layers/``
and ``tags/`` files of earlier versions are still read. A cold lock appends one root record
and one tag record per artifact (close() writes the tag records no new digest has written
yet).

Layers go through ``services.fetch.ensure_blobs`` into the shared blob cache, where `sync`
finds them again. Tag → digest comes from the current lock (``known_digests``), so a
re-lock with nothing changed asks each repository for its tags and nothing else; with
``offline`` nothing at all is fetched and anything missing is an OfflineError.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falcopkg.artifact.config import ArtifactConfig
from falcopkg.artifact.rules_yaml import (
    merge_dependencies,
    merge_requirements,
    read_rules_requirements,
)
from falcopkg.core.lockfile import LockedLayer, LockedPlatform
from falcopkg.core.reference import DIGEST_RE
from falcopkg.core.resolver import CandidateMetadata, Location
from falcopkg.core.versions import Version, parse_version, semver_tags
from falcopkg.digests import split_digest
from falcopkg.errors import FalcopkgError, OfflineError, known
from falcopkg.fsutil import read_file
from falcopkg.services.cache import BlobCache, source_key
from falcopkg.services.packs import MAX_RECORD_SIZE, PackKind, deferred_appends, packs_in

if TYPE_CHECKING:
    from falcopkg.artifact.remote import RemoteArtifact
    from falcopkg.oci.store import ContentStore
    from falcopkg.services.packs import PackStore
    from falcopkg.services.registries import RegistryAccess

RECORD_FORMAT = 1
DEFAULT_WORKERS = 8
RULES_SUFFIXES = (".yaml", ".yml")
OFFLINE_HINT = "run `falcopkg lock` once without --offline to fill the cache"


def tag_key(tag: str) -> str:
    """How a tag is keyed in ``known_digests``: its version if it is one (``v1.0.0`` → 1.0.0)."""
    version = parse_version(tag)
    return str(version) if version is not None else tag


class MetadataCache:
    """JSON records under ``<cache>/metadata``; a damaged record reads as missing."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "metadata"
        self._pack_stores: dict[str, PackStore] = {}
        self._legacy_kinds: dict[str, bool] = {}  # kind -> whether its pre-pack dir exists

    def _digest_path(self, kind: str, digest: str) -> Path:
        algorithm, hex_digest = split_digest(digest)
        return self.root / kind / algorithm / f"{hex_digest}.json"

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            return MetadataCache._decode(read_file(path))
        except OSError:
            return None

    @staticmethod
    def _decode(data: bytes) -> dict[str, Any] | None:
        try:
            record = json.loads(data)
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
            return None
        return record

    @staticmethod
    def _encode(data: dict[str, Any]) -> bytes:
        return json.dumps({"format": RECORD_FORMAT, **data}, sort_keys=True).encode("utf-8")

    def _packs(self, kind: str) -> PackStore:
        packs = self._pack_stores.get(kind)
        if packs is None:
            # Tag lists change: only the newest record of a repository is its tag list.
            pack_kind = PackKind.LATEST if kind == "tags" else PackKind.RECORDS
            packs = self._pack_stores[kind] = packs_in(self.root / "packs" / kind, pack_kind)
        return packs

    def _has_legacy(self, kind: str) -> bool:
        """Whether a falcopkg before packs left records of ``kind`` (looked at once: a cache
        without them, as every new one, costs no failing open per record)."""
        known = self._legacy_kinds.get(kind)
        if known is None:
            known = self._legacy_kinds[kind] = (self.root / kind).is_dir()
        return known

    def _record(self, kind: str, key: str, legacy: Callable[[], Path]) -> dict[str, Any] | None:
        """The packed record of ``key``, else (no record of it packed) the file ``legacy()``,
        where a falcopkg before packs kept it."""
        packed, data = self._packs(kind).lookup(key, MAX_RECORD_SIZE)
        if data is not None:
            return self._decode(data)
        # Only a key the packs do not know at all: a damaged newest tag list is missing,
        # not the older file current.
        return None if packed or not self._has_legacy(kind) else self._read(legacy())

    def _save_record(self, kind: str, key: str, record: dict[str, Any]) -> None:
        # Not fsynced: a record a power cut left torn fails its checksum and reads as
        # missing, so it is fetched again. A pack, not a file per record: see services.packs.
        self._packs(kind).append(key, self._encode(record))

    def root_record(self, digest: str) -> dict[str, Any] | None:
        return self._record("roots", digest, lambda: self._digest_path("roots", digest))

    def save_root_record(self, digest: str, record: dict[str, Any]) -> None:
        self._save_record("roots", digest, record)

    def layer_record(self, digest: str) -> dict[str, Any] | None:
        return self._record("layers", digest, lambda: self._digest_path("layers", digest))

    def save_layer_record(self, digest: str, record: dict[str, Any]) -> None:
        self._save_record("layers", digest, record)

    def tags(self, source: str) -> dict[str, Any] | None:
        hex_key = source_key(source)
        data = self._record(
            "tags", f"sha256:{hex_key}", lambda: self.root / "tags" / f"{hex_key}.json"
        )
        return data if data is not None and data.get("source") == source else None

    def save_tags(self, source: str, tags: list[str], digests: Mapping[str, str]) -> None:
        # A newer record of the same repository is appended; readers take the newest.
        record = {"source": source, "tags": tags, "digests": dict(digests)}
        self._save_record("tags", f"sha256:{source_key(source)}", record)


class RegistryMetadataProvider:
    """The resolver's view of registries. Thread-safe, so ``prefetch`` can run in parallel.

    ``locate(name)`` says where an artifact lives (manifest ``ref``, else the indexes).
    ``known_digests`` maps ``(source, tag_key(tag))`` to root digests already locked.

    Thread safety: every read and write of the memo dicts holds ``_lock``; fetches run
    outside it so that they overlap. Two threads missing the same key at once may both
    fetch it (``prefetch`` does not ask twice, so this is rare); the first result stored is
    the one every caller gets, so all callers agree.
    """

    def __init__(
        self,
        *,
        stores: RegistryAccess | None,
        cache: BlobCache,
        locate: Callable[[str], Location],
        platforms: Sequence[str],
        known_digests: Mapping[tuple[str, str], str] | None = None,
        offline: bool = False,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self.stores = stores
        self.cache = cache
        self.records = MetadataCache(cache.root)
        self._locate = locate
        self.platforms = tuple(platforms)
        self.known_digests = dict(known_digests or {})
        self.offline = offline
        self.workers = workers
        self._lock = threading.Lock()
        self._locations: dict[str, Location] = {}
        self._tags: dict[str, list[str]] = {}
        self._seen_digests: dict[str, dict[str, str]] = {}  # source -> tag -> digest
        self._metadata: dict[tuple[str, str], CandidateMetadata] = {}
        # Tag caches are written outside _lock: sources whose record changed, and
        # one lock per source so that its writes land in order.
        self._tags_dirty: set[str] = set()
        self._tag_write_locks: dict[str, threading.Lock] = {}
        # Tag lists asked for ahead of the resolver (list_tags_ahead), by source.
        self._ahead: ThreadPoolExecutor | None = None
        self._tags_ahead: dict[str, Future[list[str] | None]] = {}
        #: Tags whose digest did not come from ``known_digests`` (asked of a registry, or
        #: seen in an earlier tag record), keyed like it, with the digest they named (None:
        #: the lookup failed): a resolution that used one its lock does not pin depends on
        #: more than the tag lists (services.lock_stamp).
        self.tags_looked_up: dict[tuple[str, str], str | None] = {}

    # -- the MetadataProvider protocol ---------------------------------------------------------

    def locate(self, name: str) -> Location:
        with self._lock:
            location = self._locations.get(name)
        if location is None:
            found = self._locate(name)  # the Locator is thread-safe itself
            with self._lock:
                location = self._locations.setdefault(name, found)
        return location

    def versions(self, name: str) -> list[tuple[Version, str]]:
        return semver_tags(self._tag_list(self.locate(name).source))

    def metadata(
        self, name: str, reference: str, *, cached_only: bool = False
    ) -> CandidateMetadata:
        """``cached_only``: _NotCached instead of any request (or tag-list read)."""
        source = self.locate(name).source
        key = (source, reference)
        with self._lock:
            cached = self._metadata.get(key)
        if cached is None:
            fetched = self._fetch_metadata(name, source, reference, cached_only=cached_only)
            with self._lock:
                cached = self._metadata.setdefault(key, fetched)
        return cached

    def prefetch(self, requests: Sequence[tuple[str, str | None]]) -> None:
        """Run ``versions``/``metadata`` for ``requests`` in parallel; errors wait for the
        resolver's own call, which raises them with context."""
        todo = [(name, ref) for name, ref in requests if not self._is_known(name, ref)]
        # Metadata the cache holds whole is read here: a thread pool only adds GIL hand-offs
        # to work that waits for nothing (a re-lock reads all of its metadata this way).
        todo = [(name, ref) for name, ref in todo if ref is None or not self._from_cache(name, ref)]
        # A tag list asked for ahead needs no thread of its own: it is already coming.
        todo = [(name, ref) for name, ref in todo if ref is not None or not self._asked_ahead(name)]
        if len(todo) < 2:
            return

        def run(name: str, reference: str | None) -> None:
            try:
                if reference is None:
                    self.versions(name)
                else:
                    self.metadata(name, reference)
            except FalcopkgError:
                pass

        # What the batch caches is written when it ends, a pack's records in one write.
        with (
            deferred_appends(),
            ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as executor,
        ):
            for future in [executor.submit(run, name, ref) for name, ref in todo]:
                future.result()

    def _from_cache(self, name: str, reference: str) -> bool:
        """Whether ``metadata(name, reference)`` is now memoized from the cache alone."""
        try:
            self.metadata(name, reference, cached_only=True)
        except _NotCached:
            return False
        except FalcopkgError:
            return False  # raised again, with context, by the resolver's own call
        return True

    def list_tags_ahead(self, sources: Sequence[str]) -> None:
        """Start fetching the tag lists of ``sources`` in the background and return at once.

        For a re-lock: the current lock names the repositories the resolver will most
        likely ask, so their requests flow together while the indexes load and cached
        metadata is read, instead of in one batch per dependency level. Only the request
        runs ahead: the tag record is read when the resolver takes the list, and a failure
        is forgotten here (the resolver's own request raises it with context).
        """
        todo = [source for source in dict.fromkeys(sources) if self._can_fetch(source)]
        with self._lock:
            todo = [s for s in todo if s not in self._tags and s not in self._tags_ahead]
            if not todo:
                return
            if self._ahead is None:
                self._ahead = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="falcopkg-tags"
                )
            for source in todo:
                self._tags_ahead[source] = self._ahead.submit(self._list_ahead, source)

    def fetched_tag_lists(self, sources: Sequence[str]) -> dict[str, list[str]] | None:
        """The tag lists of ``sources`` as registries give them now, all asked for at once
        (the resolver gets the same lists, no second request); None if any cannot be had."""
        self.list_tags_ahead(sources)
        lists = {}
        for source in sources:
            with self._lock:
                tags = self._tags.get(source)
                ahead = self._tags_ahead.get(source)
            if tags is None and ahead is not None:
                tags = ahead.result()
            if tags is None:
                return None
            lists[source] = tags
        return lists

    def tag_lists(self) -> dict[str, list[str]]:
        """Every tag list the resolver took from this provider, by source."""
        with self._lock:
            return dict(self._tags)

    def _asked_ahead(self, name: str) -> bool:
        if not self._tags_ahead:  # a cold lock: nothing asked ahead, no name to locate here
            return False
        try:
            source = self.locate(name).source
        except FalcopkgError:
            return False  # raised again, with context, by the resolver's own call
        with self._lock:
            return source in self._tags_ahead

    def _list_ahead(self, source: str) -> list[str] | None:
        try:
            client, repository = self._endpoint(source)
            return client.list_tags(repository)
        except FalcopkgError:
            # The resolver's own request raises it again, as a new error it can add its
            # context to (the same object raised twice would get that context twice). A
            # timeout is not waited for twice: the command's budget fails its host at once.
            return None

    def _is_known(self, name: str, reference: str | None) -> bool:
        with self._lock:
            location = self._locations.get(name)
            if location is None:
                return False
            if reference is None:
                return location.source in self._tags
            return (location.source, reference) in self._metadata

    # -- tags ----------------------------------------------------------------------------------

    def _tag_list(self, source: str) -> list[str]:
        with self._lock:
            tags = self._tags.get(source)
            ahead = self._tags_ahead.get(source)
        if tags is not None:
            return tags
        # Asked ahead: its answer; if that failed, a request of our own raises the error.
        fetched = ahead.result() if ahead is not None else None
        cached = self.records.tags(source)
        fetch = self._can_fetch(source)
        if not fetch:
            if cached is None:
                raise OfflineError(
                    f"no cached tag list for {source}, and --offline forbids fetching it",
                    hint=OFFLINE_HINT,
                )
            tags = list(cached.get("tags", []))
        elif fetched is not None:
            tags = fetched
        else:
            client, repository = self._endpoint(source)
            tags = client.list_tags(repository)
        with self._lock:
            tags = self._tags.setdefault(source, tags)  # another thread's, if it was first
            seen = self._seen_digests.setdefault(source, {})
            if cached is not None:
                for tag, digest in dict(cached.get("digests", {})).items():
                    seen.setdefault(tag, digest)
            # A re-lock usually finds the record as it was: nothing to write. A changed one is
            # written with the first digest learned for it (_remember_tag), else on close():
            # a cold lock writes each tag record once, not once for the tags and again.
            changed = cached is None or (cached.get("tags"), cached.get("digests")) != (tags, seen)
            if fetch and changed:
                self._tags_dirty.add(source)
        return tags

    def _digest_for_tag(self, source: str, tag: str) -> str | None:
        known = self.known_digests.get((source, tag_key(tag)))
        if known is not None or self._can_fetch(source):
            return known
        # Offline without a lock entry: the digest the tag had when we last looked.
        self._tag_list(source)
        return self._seen_digest(source, tag)

    def _seen_digest(self, source: str, tag: str) -> str | None:
        with self._lock:
            return self._seen_digests.get(source, {}).get(tag)

    def _remember_tag(self, source: str, tag: str, digest: str) -> None:
        with self._lock:
            seen = self._seen_digests.setdefault(source, {})
            if seen.get(tag) == digest:
                return
            seen[tag] = digest
            if source not in self._tags:
                return
            self._tags_dirty.add(source)
        self._save_tags(source)

    def close(self) -> None:
        """Stop asking ahead, then write the tag records still pending (changed, with no
        new digest since)."""
        if self._ahead is not None:
            # Requests not started are dropped; those under way end within their deadline.
            self._ahead.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            pending = sorted(self._tags_dirty)
        for source in pending:
            self._save_tags(source)

    def __enter__(self) -> RegistryMetadataProvider:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _save_tags(self, source: str) -> None:
        """Write ``source``'s tag record as it is now, unless a write since did already."""
        with self._lock:
            write_lock = self._tag_write_locks.setdefault(source, threading.Lock())
        with write_lock:
            with self._lock:
                if source not in self._tags_dirty:
                    return
                self._tags_dirty.discard(source)
                tags = list(self._tags[source])
                seen = dict(self._seen_digests.get(source, {}))
            self.records.save_tags(source, tags, seen)

    # -- metadata ------------------------------------------------------------------------------

    def _fetch_metadata(
        self, name: str, source: str, reference: str, *, cached_only: bool = False
    ) -> CandidateMetadata:
        is_digest = bool(DIGEST_RE.match(reference))
        anew: tuple[str, str] | None = None  # this tag, when its digest is looked up
        if is_digest:
            digest: str | None = reference
        elif cached_only:
            digest = self.known_digests.get((source, tag_key(reference)))
        else:
            anew = (source, tag_key(reference))
            if anew in self.known_digests:
                anew = None
            else:
                with self._lock:
                    self.tags_looked_up.setdefault(anew, None)
            digest = self._digest_for_tag(source, reference)
        record = self.records.root_record(digest) if digest else None
        if record is None and cached_only:
            raise _NotCached
        fetch = self._can_fetch(source)
        if record is None and not is_digest and fetch:
            digest, record = self._cached_by_head(source, reference)
        if record is None:
            if not fetch:
                what = f"{source}@{digest}" if digest else f"{source}:{reference}"
                raise OfflineError(
                    f"the metadata of {what} is not cached, and --offline forbids fetching it",
                    hint=OFFLINE_HINT,
                )
            from falcopkg.artifact.remote import inspect_artifact

            client, repository = self._endpoint(source)
            remote = inspect_artifact(client, repository, digest or reference)
            digest = remote.root_digest
            # The new record keeps what its layers hold too (filled in by _candidate): one
            # file per artifact instead of one more per layer.
            record = {**_root_record(remote), "layers": {}}
            candidate = self._candidate(name, source, digest, record, fresh=True)
            self.records.save_root_record(digest, record)
        else:
            digest = known(digest, f"the digest of {source}:{reference}")
            candidate = self._candidate(name, source, digest, record, cached_only=cached_only)
        if not is_digest:
            self._remember_tag(source, reference, digest)
            if anew is not None:
                with self._lock:
                    self.tags_looked_up[anew] = digest
        return candidate

    def _cached_by_head(self, source: str, tag: str) -> tuple[str | None, dict[str, Any] | None]:
        """For a tag seen before (another project, a deleted lock): one HEAD says whether it
        still names the digest whose record is cached. (None, None) when it cannot help."""
        self._tag_list(source)
        seen = self._seen_digest(source, tag)
        if seen is None or self.records.root_record(seen) is None:
            return None, None
        client, repository = self._endpoint(source)
        head = client.head_manifest(repository, tag)
        if head is None:
            return None, None
        return head.digest, self.records.root_record(head.digest)

    def _candidate(
        self,
        name: str,
        source: str,
        digest: str,
        record: dict[str, Any],
        *,
        cached_only: bool = False,
        fresh: bool = False,
    ) -> CandidateMetadata:
        """``fresh``: ``record`` is about to be written, with what its layers hold."""
        from falcopkg.artifact.types import ARTIFACT_TYPES

        artifact_type = ARTIFACT_TYPES.get(record["type"])
        reads_rules = artifact_type is not None and artifact_type.reads_rules_yaml
        config = ArtifactConfig.from_dict(record["config"], source=f"cached config of {source}")
        label = f"{name} {config.version}".strip()
        raw_platforms: dict[str, dict[str, Any]] = record["platforms"]
        wanted = [p for p in raw_platforms if p == "" or p in self.platforms]
        dependencies = list(config.dependencies)
        requirements = list(config.requirements)
        platforms: dict[str, LockedPlatform] = {}
        for platform in wanted:
            entry = raw_platforms[platform]
            layer_digest, layer_size = entry["layer"]["digest"], int(entry["layer"]["size"])
            files, layer_config = self._layer_contents(
                label,
                source,
                layer_digest,
                layer_size,
                reads_rules,
                record.get("layers"),
                fresh_root=fresh,
                cached_only=cached_only,
            )
            dependencies += layer_config.dependencies
            requirements += layer_config.requirements
            platforms[platform] = LockedPlatform(
                entry["manifest"], LockedLayer(layer_digest, layer_size, files)
            )
        # Platforms we do not install still count: the resolver checks every target has one.
        for platform in raw_platforms:
            if platform not in platforms:
                entry = raw_platforms[platform]
                layer = LockedLayer(entry["layer"]["digest"], int(entry["layer"]["size"]))
                platforms[platform] = LockedPlatform(entry["manifest"], layer)
        return CandidateMetadata(
            type=record["type"],
            digest=digest,
            version=config.version or None,
            dependencies=tuple(merge_dependencies(dependencies)),
            requirements={r.name: r.version for r in merge_requirements(requirements)},
            platforms=platforms,
        )

    def _layer_contents(
        self,
        label: str,
        source: str,
        digest: str,
        size: int,
        reads_rules: bool,
        in_root: dict[str, Any] | None,
        *,
        fresh_root: bool = False,
        cached_only: bool = False,
    ) -> tuple[tuple[str, ...], ArtifactConfig]:
        """The files of a layer and, for rules, what its YAML requires (cached by digest):
        from ``in_root`` (the root record's "layers"), else the layer's own record. What is
        read goes into ``in_root`` when the root record is not written yet (``fresh_root``),
        else (a root record made for other platforms) into a layer record of its own."""
        embedded = in_root.get(digest) if isinstance(in_root, dict) else None
        record = embedded if isinstance(embedded, dict) else self.records.layer_record(digest)
        if record is None and cached_only:
            raise _NotCached
        if record is None:
            files, config = self._read_layer(label, source, digest, size, reads_rules)
            record = {"files": list(files), "config": config.to_dict()}
            if fresh_root and in_root is not None:
                in_root[digest] = record
            else:
                self.records.save_layer_record(digest, record)
        config = ArtifactConfig.from_dict(record["config"], source=f"cached layer of {label}")
        return tuple(record["files"]), config

    def _read_layer(
        self, label: str, source: str, digest: str, size: int, reads_rules: bool
    ) -> tuple[list[str], ArtifactConfig]:
        """Scan the layer in memory, as it downloads into the blob cache (or from there):
        no staging directory, no extracted file, no fsync (the cached blob is verified
        again whenever it is used)."""
        from falcopkg.archive import ByteReader, scan_layer
        from falcopkg.services.fetch import BlobRequest, ensure_blobs

        keep = RULES_SUFFIXES if reads_rules else ()
        scanned: list[list[tuple[str, bytes | None]]] = []

        def scan(_digest: str, reader: ByteReader) -> None:
            scanned.append(scan_layer(reader, label, keep=keep))

        request = BlobRequest(label, source, digest, size)
        archive = ensure_blobs(
            [request], self.cache, self.stores, offline=self.offline, on_stream=scan
        )[digest]
        if not scanned:  # it was cached, or the stream broke and it was downloaded again
            with archive.open("rb") as handle:
                scanned.append(scan_layer(handle, label, keep=keep))
        dependencies, requirements = [], []
        for path, data in scanned[-1]:
            if data is not None:
                text = data.decode("utf-8", errors="replace")
                deps, reqs = read_rules_requirements(text, f"{label}: {path}")
                dependencies += deps
                requirements += reqs
        config = ArtifactConfig(
            dependencies=tuple(merge_dependencies(dependencies)),
            requirements=tuple(merge_requirements(requirements)),
        )
        return [path for path, _ in scanned[-1]], config

    # -- registries ----------------------------------------------------------------------------

    def _can_fetch(self, source: str) -> bool:
        """Whether ``source`` may be asked: online, or served by a local (layout) mirror."""
        return self.stores is not None and (not self.offline or self.stores.is_local(source))

    def _endpoint(self, source: str) -> tuple[ContentStore, str]:
        """The store and repository to ask for ``source`` (its mirror, if it has one)."""
        if self.stores is None:
            raise OfflineError(f"cannot reach {source}: no registry access", hint=OFFLINE_HINT)
        from falcopkg.services.cached_store import CachedStore

        store, repository = self.stores.endpoint(source)
        return CachedStore(store, self.cache), repository


class _NotCached(Exception):
    """What a ``cached_only`` metadata read raises when it would need the network."""


def declared_metadata(
    stores: RegistryAccess, cache: BlobCache, source: str, remote: RemoteArtifact
) -> CandidateMetadata:
    """What ``remote`` declares as `lock` reads it (SPEC §2): its config's dependencies and
    requirements united with the ``required_*`` entries of the rules YAML in its layer."""
    with RegistryMetadataProvider(
        stores=stores,
        cache=cache,
        locate=lambda _name: Location(source),
        platforms=remote.platform_names or ("",),
    ) as provider:
        return provider.metadata(remote.config.name or source, remote.root_digest)


def _root_record(remote: RemoteArtifact) -> dict[str, Any]:
    return {
        "type": remote.type.name,
        "config": remote.config.to_dict(),
        "platforms": {
            platform: {
                "manifest": manifest.manifest_digest,
                "layer": {"digest": manifest.layer.digest, "size": manifest.layer.size},
            }
            for platform, manifest in remote.platforms.items()
        },
    }
