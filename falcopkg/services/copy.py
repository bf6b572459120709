"""Copying artifacts between content stores with their digests unchanged (`mirror`, `vendor`).

A :class:`CopyJob` names one root (an image manifest or image index) in a source store and
where it goes: the whole graph under it is copied — every platform manifest (all of them,
not only the target platforms), configs and layers — and the job's tags are pointed at it.
The destination is asked first, node by node, so a second run writes nothing; a graph is
written children first (blobs, then platform manifests, then the root, then its tags), so
the destination never holds a manifest whose content is missing.

Manifests are copied as their exact bytes. Blobs are streamed through the blob cache
(never held in memory): one already cached is uploaded from there, otherwise it is
downloaded into the cache first, so a warm cache copies without the network and the next
copy of the same blob is free. Manifests and configs are read through
:class:`~falcopkg.services.cached_store.CachedStore` for the same reason. When source and
destination are the same registry a blob is mounted across repositories instead.

``verify_existing`` (an OCI layout): what the destination holds is read back and checked
before it is trusted; a damaged copy is replaced (and reported), not kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

from falcopkg.errors import IntegrityError
from falcopkg.oci import mediatypes
from falcopkg.oci.descriptor import Descriptor, FetchedManifest
from falcopkg.oci.errors import InvalidManifestError, NotFoundError
from falcopkg.services.cached_store import CachedStore
from falcopkg.services.fetch import BlobRequest
from falcopkg.services.packs import PACKED_BLOB_LIMIT

if TYPE_CHECKING:
    from pathlib import Path

    from falcopkg.oci.store import ContentStore
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.fetch import DownloadProgress

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_JOBS = 8
# An index of indexes of … : artifacts nest one level; anything deeper is refused.
MAX_DEPTH = 4

Kind = Literal["manifest", "config", "layer", "tag"]
Action = Literal["copy", "mount", "present", "replace"]


@dataclass(frozen=True)
class CopyJob:
    """Copy root ``digest`` from ``source_repository`` of ``source`` to
    ``destination_repository`` of ``destination`` and name it there by ``tags``."""

    label: str  # for messages: "falco-rules 1.0.0"
    source: ContentStore
    source_repository: str
    destination: ContentStore
    destination_repository: str
    digest: str
    tags: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.destination.host}/{self.destination_repository}"


@dataclass(frozen=True)
class CopyItem:
    """One node of a copy and what happened to it (or would, in a dry run)."""

    label: str
    kind: Kind
    destination: str  # host/repository@digest, or host/repository:tag for a tag
    size: int
    action: Action

    @property
    def writes(self) -> bool:
        return self.action != "present"


@dataclass
class CopyReport:
    items: list[CopyItem] = field(default_factory=list)

    def count(self, action: Action, kinds: Iterable[Kind] | None = None) -> int:
        wanted = set(kinds) if kinds is not None else None
        return sum(
            1
            for item in self.items
            if item.action == action and (wanted is None or item.kind in wanted)
        )

    @property
    def written(self) -> list[CopyItem]:
        return [item for item in self.items if item.writes]

    @property
    def bytes_copied(self) -> int:
        return sum(
            item.size
            for item in self.items
            if item.action in ("copy", "replace") and item.kind in ("config", "layer")
        )


@dataclass
class _Node:
    job: CopyJob
    kind: Kind
    descriptor: Descriptor
    action: Action = "copy"
    manifest: FetchedManifest | None = None  # manifests: the exact bytes to write

    def item(self) -> CopyItem:
        return CopyItem(
            self.job.label,
            self.kind,
            f"{self.job.where}@{self.descriptor.digest}",
            self.descriptor.size,
            self.action,
        )


def copy_artifacts(
    jobs: Sequence[CopyJob],
    cache: BlobCache,
    *,
    workers: int = DEFAULT_JOBS,
    dry_run: bool = False,
    verify_existing: bool = False,
    progress: DownloadProgress | None = None,
    warn: Callable[[str], None] | None = None,
) -> CopyReport:
    """Copy every job's graph and tags (see the module docstring); what was done, in order.

    Raises the first failure (a FalcopkgError naming the artifact and digest); whatever was
    copied before it stays, valid, and is not copied again by the next run.
    """
    copier = _Copier(cache, verify_existing=verify_existing, warn=warn)
    workers = max(1, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="falcopkg-copy") as pool:
        graphs = _all(pool, [(copier.plan, job) for job in jobs])
        report = CopyReport()
        blobs: dict[tuple[int, str, str], _Node] = {}
        for nodes in graphs:
            for node in nodes:
                if node.kind == "manifest" or node.action == "present":
                    continue
                key = (
                    id(node.job.destination),
                    node.job.destination_repository,
                    node.descriptor.digest,
                )
                blobs.setdefault(key, node)
        if not dry_run:
            if progress is not None:
                progress.begin(len(blobs), sum(n.descriptor.size for n in blobs.values()))
            try:
                _all(
                    pool,
                    [(lambda n: copier.copy_blob(n, progress), node) for node in blobs.values()],
                )
            finally:
                if progress is not None:
                    progress.end()
        # A blob two manifests share (a config of several platforms) is one item.
        unique: dict[tuple[str, str], CopyItem] = {}
        for nodes in graphs:
            for node in nodes:
                unique.setdefault((node.kind, node.item().destination), node.item())
        report.items += unique.values()
        if not dry_run:
            for nodes in graphs:
                for node in nodes:
                    if node.kind == "manifest" and node.action != "present":
                        copier.put_manifest(node)
        tag_items = _all(pool, [(lambda j: copier.tags(j, dry_run=dry_run), job) for job in jobs])
    for items in tag_items:
        report.items += items
    return report


def _all(pool: ThreadPoolExecutor, calls: Sequence[tuple[Callable[[T], R], T]]) -> list[R]:
    """Run ``calls`` in the pool; their results in order, or the first failure raised (the
    calls not started yet are cancelled; running ones finish before the pool closes)."""
    futures: list[Future[R]] = [pool.submit(call, argument) for call, argument in calls]
    _, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for future in pending:
        future.cancel()
    return [future.result() for future in futures if not future.cancelled()]


class _Copier:
    def __init__(
        self,
        cache: BlobCache,
        *,
        verify_existing: bool,
        warn: Callable[[str], None] | None,
    ) -> None:
        self.cache = cache
        self.verify_existing = verify_existing
        self.warn = warn
        self._sources: dict[int, CachedStore] = {}

    def _source(self, job: CopyJob) -> ContentStore:
        # One cached view per source store (CachedStore holds no state but the cache).
        store = self._sources.get(id(job.source))
        if store is None:
            store = self._sources[id(job.source)] = CachedStore(job.source, self.cache)
        return store

    # -- planning: what the destination lacks ------------------------------------------------------

    def plan(self, job: CopyJob) -> list[_Node]:
        """The job's graph, children before parents, each node marked present or not."""
        nodes: list[_Node] = []
        self._walk(job, job.digest, nodes, depth=0)
        return nodes

    def _walk(self, job: CopyJob, digest: str, nodes: list[_Node], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise InvalidManifestError(
                f"{job.label}: manifest {digest} is nested more than {MAX_DEPTH} levels deep"
            )
        manifest, action = self._manifest(job, digest)
        node = _Node(job, "manifest", manifest.descriptor, action, manifest)
        # A registry accepts a manifest only once everything it lists is there: a root it
        # already has is complete. A layout's copies are checked one by one instead.
        if action == "present" and not self.verify_existing:
            nodes.append(node)
            return
        what = f"{job.label} (manifest {digest})"
        body = manifest.json()
        if mediatypes.is_index(manifest.media_type):
            entries = body.get("manifests")
            if not isinstance(entries, list):
                raise InvalidManifestError(f"image index of {what} has no `manifests` list")
            for number, entry in enumerate(entries):
                child = Descriptor.from_dict(entry, context=f"{what} manifests[{number}]")
                self._walk(job, child.digest, nodes, depth + 1)
        elif mediatypes.is_image_manifest(manifest.media_type):
            config = Descriptor.from_dict(body.get("config"), context=f"{what} config")
            layers = body.get("layers")
            if not isinstance(layers, list):
                raise InvalidManifestError(f"{what} has no `layers` list")
            blobs = [("config", config)] + [
                ("layer", Descriptor.from_dict(layer, context=f"{what} layers[{number}]"))
                for number, layer in enumerate(layers)
            ]
            for kind, descriptor in blobs:
                nodes.append(
                    _Node(
                        job,
                        "config" if kind == "config" else "layer",
                        descriptor,
                        self._blob_state(job, descriptor),
                    )
                )
        else:
            raise InvalidManifestError(
                f"{what} has media type {manifest.media_type!r}, no manifest"
            )
        nodes.append(node)

    def _manifest(self, job: CopyJob, digest: str) -> tuple[FetchedManifest, Action]:
        """The manifest's bytes (from the destination when it holds an intact copy, so an
        up-to-date destination costs the source nothing) and what to do with it."""
        destination, repository = job.destination, job.destination_repository
        try:
            return destination.get_manifest(repository, digest), "present"
        except NotFoundError:
            action: Action = "copy"
        except (IntegrityError, InvalidManifestError) as exc:
            self._damaged(exc)
            action = "replace"
        fetched = self._source(job).get_manifest(job.source_repository, digest)
        return fetched, action

    def _blob_state(self, job: CopyJob, descriptor: Descriptor) -> Action:
        destination, repository = job.destination, job.destination_repository
        if not self.verify_existing:
            size = destination.head_blob(repository, descriptor.digest)
            return "present" if size is not None else "copy"
        try:
            with destination.open_blob(repository, descriptor.digest, descriptor.size) as chunks:
                for _ in chunks:
                    pass
        except NotFoundError:
            return "copy"
        except IntegrityError as exc:
            self._damaged(exc)
            return "replace"
        return "present"

    def _damaged(self, exc: IntegrityError | InvalidManifestError) -> None:
        if self.warn is not None:
            self.warn(f"{exc.message}; replacing it")

    # -- writing --------------------------------------------------------------------------------

    def copy_blob(self, node: _Node, progress: DownloadProgress | None) -> None:
        job, descriptor = node.job, node.descriptor
        if self._mount(job, descriptor.digest):
            node.action = "mount"
        else:
            path, downloaded = self._cached_blob(job, descriptor, progress)
            job.destination.upload_blob(
                job.destination_repository, path, descriptor.digest, descriptor.size
            )
            if progress is not None and not downloaded:
                progress.advance(descriptor.size)
        if progress is not None:
            progress.finished(BlobRequest(job.label, job.where, descriptor.digest, descriptor.size))

    def _mount(self, job: CopyJob, digest: str) -> bool:
        """Link the blob from the source repository when both are the same registry."""
        from falcopkg.oci.client import RegistryClient

        source, destination = job.source, job.destination
        if not (
            isinstance(source, RegistryClient)
            and isinstance(destination, RegistryClient)
            and source is destination
            and job.source_repository != job.destination_repository
        ):
            return False
        return destination.mount_blob(job.destination_repository, digest, job.source_repository)

    def _cached_blob(
        self, job: CopyJob, descriptor: Descriptor, progress: DownloadProgress | None
    ) -> tuple[Path | bytes, bool]:
        """A verified local copy of the blob (a file, or the bytes of a small one the cache
        packs), from the cache or downloaded into it; whether it was downloaded now."""
        if descriptor.size <= PACKED_BLOB_LIMIT:  # in a pack, or a file of its own
            small = self.cache.read_bytes(descriptor.digest, descriptor.size)
            if small is not None:
                return small, False
        else:
            cached = self.cache.lookup(descriptor.digest)
            if cached is not None:
                return cached, False
        tmp = self.cache.temp_path()
        try:
            job.source.download_blob(
                job.source_repository,
                descriptor.digest,
                tmp,
                expected_size=descriptor.size,
                progress=progress.advance if progress is not None else None,
            )
            return self.cache.adopt(tmp, descriptor.digest, verified=True), True
        finally:
            tmp.unlink(missing_ok=True)

    def put_manifest(self, node: _Node) -> None:
        manifest = node.manifest
        if manifest is None:  # pragma: no cover - every manifest node carries its bytes
            raise InvalidManifestError(
                f"{node.job.label}: manifest {node.descriptor.digest} unread"
            )
        node.job.destination.put_manifest(
            node.job.destination_repository, manifest.digest, manifest.data, manifest.media_type
        )

    def tags(self, job: CopyJob, *, dry_run: bool) -> list[CopyItem]:
        """Point each of the job's tags at its root unless it does already."""
        items: list[CopyItem] = []
        root: FetchedManifest | None = None
        destination, repository = job.destination, job.destination_repository
        for tag in job.tags:
            current = destination.head_manifest(repository, tag)
            if current is not None and current.digest == job.digest:
                items.append(CopyItem(job.label, "tag", f"{job.where}:{tag}", 0, "present"))
                continue
            if root is None:
                root = (
                    self._manifest(job, job.digest)[0]
                    if dry_run
                    else destination.get_manifest(repository, job.digest)
                )
            if not dry_run:
                destination.put_manifest(repository, tag, root.data, root.media_type)
            items.append(CopyItem(job.label, "tag", f"{job.where}:{tag}", root.size, "copy"))
        return items
