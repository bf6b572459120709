"""An OCI image layout directory as a content store (OCI image-layout spec).

A layout is ``oci-layout`` (``{"imageLayoutVersion": "1.0.0"}``), ``index.json`` (an image
index whose entries name their roots with ``org.opencontainers.image.ref.name``) and
``blobs/<alg>/<hex>``. One layout holds artifacts of many registries: a root is named
``HOST/REPOSITORY:TAG`` (``ghcr.io/falcosecurity/rules/falco-rules:4.1.0``), so that the same
directory serves as the ``oci-layout:`` mirror of every registry it was filled from, and
``skopeo``/``oras`` read it with ``oci:DIR:HOST/REPOSITORY:TAG``.

``OciLayout(path, host)`` is the view of one origin registry (``for_host`` gives another
view of the same directory). It implements ``falcopkg.oci.store.ContentStore``: reads are
verified exactly as the registry client verifies them (a damaged blob is an IntegrityError
naming the blob and the layout, and leaves no file behind), a missing tag, manifest or blob
is the client's NotFoundError.

Writes keep the layout valid at every moment: blobs are written to a temporary file beside
their final path and renamed into place once their digest is checked; a manifest is only
accepted when every blob and manifest it lists is present; ``index.json`` is rewritten
atomically, last, under a file lock (re-read under the lock, so concurrent writers do not
lose each other's refs). Blob writes need no lock: they are content-addressed, and two
writers of one blob rename identical bytes. ``with layout.transaction():`` batches ref
updates into one ``index.json`` write at the end (nothing is recorded if the block fails).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from falcopkg import fsutil
from falcopkg.core.reference import DIGEST_RE, TAG_RE, is_valid_host
from falcopkg.digests import CHUNK_SIZE, bytes_digest, check_digest, split_digest
from falcopkg.errors import ConfigError, FalcopkgError, IntegrityError, InvalidReferenceError
from falcopkg.oci import mediatypes
from falcopkg.oci.descriptor import Descriptor, FetchedManifest
from falcopkg.oci.errors import InvalidManifestError, NotFoundError
from falcopkg.oci.store import (
    DEFAULT_BLOB_BYTES_LIMIT,
    MAX_MANIFEST_SIZE,
    check_reference,
    check_repository,
)

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
BLOBS_DIR = "blobs"
# Hidden, so that tools listing the layout do not mistake it for content.
LOCK_FILE = ".falcopkg.lock"
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = "1.0.0"
# index.json comes from outside: bounded in bytes and entries (an entry is ~300 bytes).
MAX_INDEX_BYTES = 64 * 1024 * 1024
MAX_INDEX_ENTRIES = 100_000
MAX_LAYOUT_FILE_BYTES = 64 * 1024
# JSON integers longer than this are no size we could have written (and no int64).
_MAX_INT_DIGITS = 19
LOCK_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class LayoutProblem:
    """One blob of the layout that is missing or damaged, found under root ``ref``."""

    ref: str  # the root's ref name, or its digest when it has none
    digest: str
    message: str

    def __str__(self) -> str:
        return self.message  # names the blob, the root it was found under and the layout


@dataclass(frozen=True)
class _Index:
    """index.json as read: its other top-level fields, and the entries raw and parsed."""

    document: dict[str, Any]
    entries: tuple[dict[str, Any], ...]
    descriptors: tuple[Descriptor, ...]
    refs: dict[str, Descriptor]  # the first entry of each ref name


class _LayoutState:
    """What every view (``for_host``) of one layout directory shares."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()  # guards the fields below
        self.commit_mutex = threading.Lock()  # one index.json rewrite at a time in-process
        self.index_key: tuple[int, int, int, int] | None = None
        self.index: _Index | None = None
        self.pending: dict[str, Descriptor] = {}
        self.depth = 0


class OciLayout:
    """The artifacts of registry ``host`` in the OCI image layout at ``path``.

    ``create=True`` makes an empty layout when ``path`` does not hold one (refusing a
    directory with other files in it); otherwise ``path`` must already be a layout. Thread-safe.
    """

    def __init__(self, path: Path, host: str, *, create: bool = False) -> None:
        if not is_valid_host(host):
            raise InvalidReferenceError(
                f"invalid registry host {host!r}",
                hint="give a host name with an optional port, like `ghcr.io` or `localhost:5000`",
            )
        self.path = Path(path)
        self.host = host
        self._state = _LayoutState()
        if create:
            self._create()
        else:
            _check_layout_dir(self.path)

    def for_host(self, host: str) -> OciLayout:
        """The same directory (and transaction) seen as the store of registry ``host``."""
        if not is_valid_host(host):
            raise InvalidReferenceError(f"invalid registry host {host!r}")
        view = copy.copy(self)
        view.host = host
        return view

    def close(self) -> None:
        """Nothing to release (files are opened per call); here for the protocol."""

    def __enter__(self) -> OciLayout:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OciLayout({str(self.path)!r}, host={self.host!r})"

    # -- refs ------------------------------------------------------------------------------------

    def ref_name(self, repository: str, tag: str) -> str:
        """``HOST/REPOSITORY:TAG``: how a root of this host is named in index.json."""
        return f"{self.host}/{repository}:{tag}"

    def refs(self) -> dict[str, Descriptor]:
        """Every ref name in the layout (of every host) → its root's descriptor, in index
        order; inside a transaction including the refs not yet written."""
        refs = dict(self._index().refs)
        with self._state.mutex:
            refs.update(self._state.pending)
        return refs

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Batch ref updates: ``put_manifest`` by tag inside the block (from any thread, on any
        ``for_host`` view of this layout) writes index.json once, when the last open block
        ends. If that block ends with an exception no ref is recorded (blobs already written
        stay: they are valid content and make the next attempt cheaper)."""
        state = self._state
        with state.mutex:
            state.depth += 1
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            with state.mutex:
                state.depth -= 1
                pending = state.pending if state.depth == 0 else {}
                if state.depth == 0:
                    state.pending = {}
            if succeeded and pending:
                self._commit(pending)

    # -- ContentStore: tags and manifests ---------------------------------------------------------

    def list_tags(self, repository: str) -> list[str]:
        """The tags of ``HOST/REPOSITORY:TAG`` ref names, in index order."""
        check_repository(repository)
        prefix = self.ref_name(repository, "")
        refs = self.refs()
        tags = [
            name[len(prefix) :]
            for name in refs
            if name.startswith(prefix) and TAG_RE.match(name[len(prefix) :])
        ]
        if not tags:
            bare = sorted(name for name in refs if "/" not in name)
            hint = self._missing_hint
            if bare:
                # e.g. `skopeo copy … oci:DIR:1.0.0`: which repository is that?
                hint = (
                    f"the layout names roots without their repository ({', '.join(bare[:3])}); "
                    f"falcopkg looks for `{prefix}TAG`: copy them again with "
                    f"`skopeo copy --all docker://{prefix}TAG oci:{self.path}:{prefix}TAG`"
                )
            raise NotFoundError(
                f"{self.host}/{repository} has no tags in the OCI layout {self.path}",
                hint=hint,
                host=self.host,
                code="NAME_UNKNOWN",
            )
        return tags

    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = mediatypes.MANIFEST_MEDIA_TYPES,
        expected_digest: str | None = None,
    ) -> FetchedManifest:
        """The manifest's exact bytes, verified against its digest. ``accept`` is unused: a
        layout keeps one form of each manifest (its media type comes from index.json, else
        from the manifest's own ``mediaType``)."""
        check_repository(repository)
        check_reference(reference)
        what = self._describe(repository, reference)
        if DIGEST_RE.match(reference):
            digest, listed_type, size = reference, None, None
        else:
            entry = self._ref(repository, reference)
            digest, listed_type, size = entry.digest, entry.media_type, entry.size
        if expected_digest is not None:
            check_digest(
                digest, expected_digest, what, hint="the tag in the layout names another manifest"
            )
        data = self._read_blob(
            digest,
            expected_size=size,
            limit=MAX_MANIFEST_SIZE,
            what=f"manifest {digest} of {what}",
            missing=lambda: self._not_found(
                "manifest", digest, self._name(repository, reference), "MANIFEST_UNKNOWN"
            ),
        )
        body = _manifest_json(data, what)
        declared = body.get("mediaType")
        if listed_type and isinstance(declared, str) and declared and declared != listed_type:
            raise InvalidManifestError(
                f"{what}: index.json lists it as {listed_type!r} but it declares {declared!r}",
                hint=self._damaged_hint,
            )
        media_type = listed_type or mediatypes.media_type_of_manifest(body)
        if not media_type:
            raise InvalidManifestError(f"{what} has no media type and is no manifest")
        return FetchedManifest(media_type, digest, data)

    def head_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = mediatypes.MANIFEST_MEDIA_TYPES,
    ) -> Descriptor | None:
        """The descriptor a tag or digest resolves to, or None. By tag it is index.json's
        entry (its blob must be there); by digest the blob is read for its media type."""
        check_repository(repository)
        check_reference(reference)
        if DIGEST_RE.match(reference):
            if self.head_blob(repository, reference) is None:
                return None
            return self.get_manifest(repository, reference).descriptor
        entry = self.refs().get(self.ref_name(repository, reference))
        if entry is None:
            return None
        stored = self.head_blob(repository, entry.digest)
        if stored is None:
            raise self._not_found(
                "manifest", entry.digest, self._name(repository, reference), "MANIFEST_UNKNOWN"
            )
        if stored != entry.size:
            raise IntegrityError(
                f"manifest {entry.digest} of {self._describe(repository, reference)} has "
                f"{stored} bytes, expected {entry.size}",
                hint=self._damaged_hint,
            )
        return Descriptor(entry.media_type, entry.digest, entry.size)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """Store ``data`` as a manifest blob and, for a tag, name it ``HOST/REPOSITORY:TAG`` in
        index.json (now, or at the end of the transaction). Like a registry, refuses a
        manifest whose blobs or platform manifests are not in the layout yet."""
        check_repository(repository)
        check_reference(reference)
        what = self._describe(repository, reference)
        if len(data) > MAX_MANIFEST_SIZE:
            raise _too_large(what, MAX_MANIFEST_SIZE)
        by_digest = bool(DIGEST_RE.match(reference))
        algorithm = split_digest(reference)[0] if by_digest else "sha256"
        digest = bytes_digest(data, algorithm)
        if by_digest:
            check_digest(digest, reference, what)
        body = _manifest_json(data, what)
        declared = body.get("mediaType")
        if isinstance(declared, str) and declared and declared != media_type:
            raise InvalidManifestError(
                f"{what} declares media type {declared!r} but is stored as {media_type!r}"
            )
        for kind, child in _children(body, media_type, what):
            if self.head_blob(repository, child.digest) != child.size:
                raise InvalidManifestError(
                    f"{what} lists {kind} {child.digest} ({child.size} bytes), which is not in "
                    f"the OCI layout {self.path}",
                    hint="write the blobs and platform manifests before the manifest listing them",
                )
        self.upload_blob(repository, data, digest, len(data))
        if not by_digest:
            name = self.ref_name(repository, reference)
            artifact_type = body.get("artifactType")
            entry = Descriptor(
                media_type,
                digest,
                len(data),
                annotations={REF_NAME: name},
                artifact_type=artifact_type if isinstance(artifact_type, str) else None,
            )
            with self._state.mutex:
                deferred = self._state.depth > 0
                if deferred:
                    self._state.pending[name] = entry
            if not deferred:
                self._commit({name: entry})
        return digest

    # -- ContentStore: blobs ----------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """``blobs/<alg>/<hex>`` of ``digest`` (validated: no other path can come out)."""
        algorithm, hex_digest = split_digest(digest)
        if not DIGEST_RE.match(digest):
            raise IntegrityError(f"invalid digest {digest!r}")
        return self.path / BLOBS_DIR / algorithm / hex_digest

    def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size if the layout has it (not read: see ``verify``), else None."""
        check_repository(repository)
        try:
            info = self.blob_path(digest).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def download_blob(
        self,
        repository: str,
        digest: str,
        dest: Path,
        expected_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        max_size: int | None = None,
    ) -> None:
        """Copy a blob to ``dest`` (via a temporary file beside it), verified; on a mismatch
        no file is left and IntegrityError names the blob and the layout."""
        check_repository(repository)
        with (
            self._open_blob(repository, digest, expected_size, max_size) as chunks,
            _writing(dest),
            fsutil.atomic_writer(dest) as sink,
        ):
            for chunk in chunks:
                sink.write(chunk)
                if progress is not None:
                    progress(len(chunk))

    def get_blob_bytes(
        self, repository: str, digest: str, max_size: int = DEFAULT_BLOB_BYTES_LIMIT
    ) -> bytes:
        """A small blob (a config) in memory, verified; refuses more than ``max_size`` bytes."""
        check_repository(repository)
        with self._open_blob(repository, digest, None, max_size) as chunks:
            return b"".join(chunks)

    @contextlib.contextmanager
    def open_blob(
        self, repository: str, digest: str, expected_size: int | None = None
    ) -> Iterator[Iterator[bytes]]:
        """``with layout.open_blob(repo, digest) as chunks: …``; the iterator raises
        IntegrityError after the last chunk when size or digest do not match."""
        check_repository(repository)
        with self._open_blob(repository, digest, expected_size, None) as chunks:
            yield chunks

    def upload_blob(
        self,
        repository: str,
        source: Path | bytes,
        digest: str,
        size: int,
        chunk_size: int | None = None,
    ) -> bool:
        """Write a blob unless the layout has an intact copy; True if it was written. A
        damaged copy is replaced. ``chunk_size`` is unused (there is no protocol to chunk)."""
        check_repository(repository)
        target = self.blob_path(digest)
        what = f"blob {digest} for the OCI layout {self.path}"
        if isinstance(source, bytes):
            actual = len(source)
        else:
            try:
                actual = source.stat().st_size
            except OSError as exc:
                raise FalcopkgError(f"cannot read {source}: {exc.strerror}") from None
        if actual != size:
            raise IntegrityError(f"cannot write {what}: the source has {actual} bytes, not {size}")
        if self._blob_is_intact(digest, size):
            return False
        algorithm, _ = split_digest(digest)
        hasher = hashlib.new(algorithm)
        written = 0
        with _writing(target), fsutil.atomic_writer(target) as sink:
            for chunk in _source_chunks(source):
                written += len(chunk)
                hasher.update(chunk)
                sink.write(chunk)
            if written != size:
                raise IntegrityError(f"the source of {what} changed while it was copied")
            check_digest(
                f"{algorithm}:{hasher.hexdigest()}",
                digest,
                f"the source of {what}",
                hint="nothing was written",
            )
        return True

    # -- verification ---------------------------------------------------------------------------

    def verify(self, roots: Iterable[Descriptor] | None = None) -> list[LayoutProblem]:
        """Read every blob reachable from ``roots`` (default: every index.json entry): each
        manifest, platform manifest, config and layer must be there with its size and digest.
        Returns the problems found (each blob reported once), empty when all is well."""
        if roots is None:
            index = self._index()
            with self._state.mutex:
                pending = list(self._state.pending.values())
            roots = [*index.descriptors, *pending]
        checked: set[str] = set()
        problems: list[LayoutProblem] = []
        for root in roots:
            label = (root.annotations or {}).get(REF_NAME) or root.digest
            stack = [root]
            while stack:
                descriptor = stack.pop()
                if descriptor.digest in checked:
                    continue
                checked.add(descriptor.digest)
                try:
                    stack.extend(reversed(self._verify_one(descriptor, label)))
                except (NotFoundError, IntegrityError, InvalidManifestError) as exc:
                    problems.append(LayoutProblem(label, descriptor.digest, exc.message))
        return problems

    def _verify_one(self, descriptor: Descriptor, label: str) -> list[Descriptor]:
        """Check one blob fully; a manifest's children are returned for checking next."""
        what = f"blob {descriptor.digest} (of {label}) in the OCI layout {self.path}"
        is_manifest = mediatypes.is_index(descriptor.media_type) or mediatypes.is_image_manifest(
            descriptor.media_type
        )
        data = bytearray()
        with self._open_verified(
            descriptor.digest,
            expected_size=descriptor.size,
            limit=MAX_MANIFEST_SIZE if is_manifest else None,
            what=what,
            missing=lambda: self._not_found("blob", descriptor.digest, label, "BLOB_UNKNOWN"),
        ) as chunks:
            for chunk in chunks:
                if is_manifest:
                    data += chunk
        if not is_manifest:
            return []
        body = _manifest_json(bytes(data), what)
        return [child for _, child in _children(body, descriptor.media_type, what)]

    # -- internals ------------------------------------------------------------------------------

    @property
    def _missing_hint(self) -> str:
        return f"the layout does not hold it; run `falcopkg vendor {self.path}` again to add it"

    @property
    def _damaged_hint(self) -> str:
        return (
            f"the layout's copy is damaged; run `falcopkg vendor {self.path}` again to replace it"
        )

    def _name(self, repository: str, reference: str) -> str:
        separator = "@" if DIGEST_RE.match(reference) else ":"
        return f"{self.host}/{repository}{separator}{reference}"

    def _describe(self, repository: str, reference: str) -> str:
        return f"{self._name(repository, reference)} in the OCI layout {self.path}"

    def _not_found(self, kind: str, digest: str, of: str, code: str) -> NotFoundError:
        return NotFoundError(
            f"{kind} {digest} of {of} is not in the OCI layout {self.path}",
            hint=self._missing_hint,
            host=self.host,
            code=code,
        )

    def _ref(self, repository: str, tag: str) -> Descriptor:
        entry = self.refs().get(self.ref_name(repository, tag))
        if entry is None:
            raise NotFoundError(
                f"{self._describe(repository, tag)}: no such tag (no index.json entry named "
                f"{self.ref_name(repository, tag)})",
                hint=self._missing_hint,
                host=self.host,
                code="MANIFEST_UNKNOWN",
            )
        return entry

    @contextlib.contextmanager
    def _open_blob(
        self, repository: str, digest: str, expected_size: int | None, max_size: int | None
    ) -> Iterator[Iterator[bytes]]:
        where = f"{self.host}/{repository}"
        with self._open_verified(
            digest,
            expected_size=expected_size,
            limit=expected_size if expected_size is not None else max_size,
            what=f"blob {digest} of {where} in the OCI layout {self.path}",
            missing=lambda: self._not_found("blob", digest, where, "BLOB_UNKNOWN"),
        ) as chunks:
            yield chunks

    @contextlib.contextmanager
    def _open_verified(
        self,
        digest: str,
        *,
        expected_size: int | None,
        limit: int | None,
        what: str,
        missing: Callable[[], NotFoundError],
    ) -> Iterator[Iterator[bytes]]:
        """The blob's chunks; size is checked before reading, digest after the last chunk."""
        path = self.blob_path(digest)
        algorithm, _ = split_digest(digest)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise missing() from None
        except OSError as exc:
            raise FalcopkgError(f"cannot read {what}: {exc.strerror}") from None
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if expected_size is not None and size != expected_size:
                raise IntegrityError(
                    f"{what} has {size} bytes, expected {expected_size}", hint=self._damaged_hint
                )
            if limit is not None and size > limit:
                raise _too_large(what, limit)
            yield self._verified_chunks(handle, algorithm, digest, expected_size, limit, what)

    def _verified_chunks(
        self,
        handle: IO[bytes],
        algorithm: str,
        digest: str,
        expected_size: int | None,
        limit: int | None,
        what: str,
    ) -> Iterator[bytes]:
        hasher = hashlib.new(algorithm)
        received = 0
        while chunk := handle.read(CHUNK_SIZE):
            received += len(chunk)
            if limit is not None and received > limit:
                raise _too_large(what, limit)  # the file grew while it was read
            hasher.update(chunk)
            yield chunk
        if expected_size is not None and received != expected_size:
            raise IntegrityError(
                f"{what} has {received} bytes, expected {expected_size}", hint=self._damaged_hint
            )
        check_digest(f"{algorithm}:{hasher.hexdigest()}", digest, what, hint=self._damaged_hint)

    def _read_blob(
        self,
        digest: str,
        *,
        expected_size: int | None,
        limit: int,
        what: str,
        missing: Callable[[], NotFoundError],
    ) -> bytes:
        with self._open_verified(
            digest, expected_size=expected_size, limit=limit, what=what, missing=missing
        ) as chunks:
            return b"".join(chunks)

    def _blob_is_intact(self, digest: str, size: int) -> bool:
        try:
            with self._open_verified(
                digest,
                expected_size=size,
                limit=size,
                what=f"blob {digest}",
                missing=lambda: NotFoundError(f"blob {digest}"),
            ) as chunks:
                for _ in chunks:
                    pass
        except (NotFoundError, IntegrityError):
            return False
        return True

    def _index(self) -> _Index:
        """index.json, parsed once per version of the file (keyed on inode, size, times), so
        that a change by another process or tool (skopeo) is seen at the next call."""
        path = self.path / INDEX_FILE
        try:
            info = path.stat()
        except FileNotFoundError:
            raise ConfigError(
                f"{path} is missing: {self.path} is not a complete OCI image layout",
                hint=_LAYOUT_HINT,
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        key = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        state = self._state
        with state.mutex:
            if state.index is not None and state.index_key == key:
                return state.index
        index = _parse_index(path)
        with state.mutex:
            state.index_key, state.index = key, index
        return index

    def _commit(self, refs: Mapping[str, Descriptor]) -> None:
        """Record ``refs`` in index.json: re-read under the lock, merge, replace atomically.
        A ref name already there is replaced in place (a tag moves); others are appended."""
        path = self.path / INDEX_FILE
        with self._state.commit_mutex, self._file_lock():
            current = _parse_index(path)
            entries: list[dict[str, Any]] = []
            placed: set[str] = set()
            for raw, descriptor in zip(current.entries, current.descriptors, strict=True):
                name = (descriptor.annotations or {}).get(REF_NAME)
                if name is not None and name in refs:
                    if name not in placed:
                        entries.append(refs[name].to_dict())
                        placed.add(name)
                    continue  # later duplicates of a replaced name would contradict it
                entries.append(raw)
            entries += [d.to_dict() for name, d in refs.items() if name not in placed]
            if len(entries) > MAX_INDEX_ENTRIES:
                raise ConfigError(
                    f"{path} would list {len(entries)} manifests, more than the "
                    f"{MAX_INDEX_ENTRIES} falcopkg reads back",
                    hint="split the artifacts over several layouts",
                )
            with _writing(path):
                fsutil.atomic_write_bytes(path, _render_index(current.document, entries))
            with self._state.mutex:
                self._state.index, self._state.index_key = None, None

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        import filelock

        # Not thread-local: threads of this process are serialised by commit_mutex.
        lock = filelock.FileLock(str(self.path / LOCK_FILE), thread_local=False)
        try:
            lock.acquire(timeout=LOCK_WAIT_SECONDS)
        except filelock.Timeout:
            raise FalcopkgError(
                f"the OCI layout {self.path} stayed locked by another falcopkg for "
                f"{LOCK_WAIT_SECONDS:.0f}s",
                hint="another falcopkg is writing there (the lock is released when that "
                "process ends); wait for it or stop it",
            ) from None
        except OSError as exc:
            raise FalcopkgError(
                f"cannot lock the OCI layout {self.path}: {exc.strerror}",
                hint="check that the directory exists and is writable",
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _create(self) -> None:
        """Make ``path`` an empty layout unless it is one: blobs/, index.json, then
        oci-layout last (its presence says the layout is complete)."""
        with _writing(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
        if (self.path / LAYOUT_FILE).exists():
            _check_layout_dir(self.path)
            return
        with self._state.commit_mutex, self._file_lock():
            if (self.path / LAYOUT_FILE).exists():
                _check_layout_dir(self.path)
                return
            others = sorted(
                p.name for p in self.path.iterdir() if not _left_by_an_interrupted_create(p)
            )
            if others:
                raise ConfigError(
                    f"{self.path} is not an OCI image layout (no `{LAYOUT_FILE}` file) and is "
                    f"not empty (it holds {', '.join(others[:3])}"
                    f"{', …' if len(others) > 3 else ''})",
                    hint="give a new or empty directory for the layout",
                )
            with _writing(self.path):
                for leftover in self.path.glob(".*.tmp"):
                    leftover.unlink()
                (self.path / BLOBS_DIR).mkdir(exist_ok=True)
                fsutil.atomic_write_bytes(self.path / INDEX_FILE, _render_index({}, []))
                fsutil.atomic_write_bytes(
                    self.path / LAYOUT_FILE,
                    json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode(),
                )


def _left_by_an_interrupted_create(path: Path) -> bool:
    """What a `_create` killed before writing `oci-layout` leaves (it writes no blob before
    that): the lock, an empty blobs/, the empty index.json and atomic writers' temporaries.
    Such a directory is still new: creating the layout again overwrites all of it."""
    name = path.name
    if name == LOCK_FILE:
        return True
    if name == INDEX_FILE:
        return path.is_file() and path.read_bytes() == _render_index({}, [])
    if name == BLOBS_DIR:
        return path.is_dir() and not any(path.iterdir())
    return name.endswith(".tmp") and name.startswith((f".{INDEX_FILE}.", f".{LAYOUT_FILE}."))


_LAYOUT_HINT = (
    "an OCI image layout holds `oci-layout`, `index.json` and `blobs/`; write one with "
    "`falcopkg vendor DIR` or `skopeo copy --all docker://… oci:DIR:REF`"
)


# -- reading and writing layout files -----------------------------------------------------------


def _check_layout_dir(path: Path) -> None:
    """ConfigError unless ``path`` is a directory with a supported ``oci-layout`` file."""
    if not path.is_dir():
        state = "is not a directory" if path.exists() else "does not exist"
        raise ConfigError(f"the OCI layout {path} {state}", hint=_LAYOUT_HINT)
    marker = path / LAYOUT_FILE
    if not marker.is_file():
        raise ConfigError(
            f"{path} is not an OCI image layout: it has no `{LAYOUT_FILE}` file",
            hint=_LAYOUT_HINT,
        )
    document = _strict_json(_read_bounded(marker, MAX_LAYOUT_FILE_BYTES), marker)
    version = document.get("imageLayoutVersion")
    if not isinstance(version, str):
        raise ConfigError(f"{marker}: `imageLayoutVersion` is missing or not a string")
    if version.split(".")[0] != LAYOUT_VERSION.split(".")[0]:
        raise ConfigError(
            f"{marker}: image layout version {version!r} is not supported "
            f"(falcopkg reads version {LAYOUT_VERSION})"
        )


def _parse_index(path: Path) -> _Index:
    document = _strict_json(_read_bounded(path, MAX_INDEX_BYTES), path)
    schema_version = document.get("schemaVersion")
    if type(schema_version) is not int or schema_version != 2:
        raise ConfigError(f"{path}: schemaVersion must be 2, not {schema_version!r}")
    media_type = document.get("mediaType", mediatypes.OCI_INDEX)
    if media_type != mediatypes.OCI_INDEX:
        raise ConfigError(f"{path}: mediaType must be {mediatypes.OCI_INDEX!r}, not {media_type!r}")
    entries = document.get("manifests")
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: `manifests` must be a list", hint=_LAYOUT_HINT)
    if len(entries) > MAX_INDEX_ENTRIES:
        raise ConfigError(
            f"{path} lists {len(entries)} manifests, more than the {MAX_INDEX_ENTRIES} "
            "falcopkg reads"
        )
    descriptors: list[Descriptor] = []
    refs: dict[str, Descriptor] = {}
    for number, entry in enumerate(entries):
        try:
            descriptor = Descriptor.from_dict(entry, context=f"{path} manifests[{number}]")
        except InvalidManifestError as exc:
            raise ConfigError(exc.message, hint="the OCI layout is damaged") from None
        descriptors.append(descriptor)
        name = (descriptor.annotations or {}).get(REF_NAME)
        if name is not None:
            refs.setdefault(name, descriptor)
    rest = {key: value for key, value in document.items() if key != "manifests"}
    return _Index(rest, tuple(entries), tuple(descriptors), refs)


def _render_index(document: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> bytes:
    """index.json bytes: schemaVersion, mediaType, manifests, then any other fields kept."""
    rendered: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_INDEX,
        "manifests": list(entries),
    }
    for key, value in document.items():
        rendered.setdefault(key, value)
    return json.dumps(rendered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _read_bounded(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing", hint=_LAYOUT_HINT) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise ConfigError(f"{path} is larger than the allowed {limit} bytes; refusing it")
    return data


def _strict_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"integer {text[:24]}… is too large")
    return int(text)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _strict_json(data: bytes, path: Path) -> dict[str, Any]:
    """A JSON object, with no NaN/Infinity and no integer beyond int64's digits."""
    try:
        value = json.loads(
            data.decode("utf-8"), parse_int=_strict_int, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}", hint=_LAYOUT_HINT) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path} is not a JSON object", hint=_LAYOUT_HINT)
    return value


def _manifest_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        raise InvalidManifestError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidManifestError(f"{what} is not a JSON object")
    return value


def _children(body: Mapping[str, Any], media_type: str, what: str) -> list[tuple[str, Descriptor]]:
    """What a manifest lists: an index its manifests, an image manifest its config and layers."""
    if mediatypes.is_index(media_type):
        entries = body.get("manifests")
        if not isinstance(entries, list):
            raise InvalidManifestError(f"image index {what} has no `manifests` list")
        return [
            ("manifest", Descriptor.from_dict(entry, context=f"{what} manifests[{number}]"))
            for number, entry in enumerate(entries)
        ]
    if mediatypes.is_image_manifest(media_type):
        layers = body.get("layers")
        if not isinstance(layers, list):
            raise InvalidManifestError(f"{what} has no `layers` list")
        config = Descriptor.from_dict(body.get("config"), context=f"{what} config")
        return [("config", config)] + [
            ("layer", Descriptor.from_dict(layer, context=f"{what} layers[{number}]"))
            for number, layer in enumerate(layers)
        ]
    return []


def _source_chunks(source: Path | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    with source.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def _too_large(what: str, limit: int) -> IntegrityError:
    return IntegrityError(f"{what} is larger than the allowed {limit} bytes; refusing it")


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An OSError (no space, permissions) as a FalcopkgError naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise FalcopkgError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check free space and permissions of the OCI layout directory",
        ) from None
