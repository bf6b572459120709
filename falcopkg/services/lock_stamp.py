"""A re-lock with nothing changed, answered by the tag lists alone.

Resolution is a function of falco.toml, falco.lock, the indexes and what registries say.
Behind a digest nothing changes; what can change is a repository's tag list and the
digest a tag names. A `lock` prefers what falco.lock pins and takes a kept version's digest
from it, so once falco.lock holds the resolved result the tag lists are all a re-lock
depends on beyond its files. That is recorded here, as a stamp::

    <cache>/locks/<key of falco.lock's path>.stamp (beside its parsed TOML, project_files)
        key:     sha256 of falcopkg's version, falco.toml's and falco.lock's bytes and the
                 content digest of every index falco.toml names
        sources: {host/repository: sha256 of its tag list}

A plain `lock` records one for the falco.lock it leaves, up to date or just written (the
first lock of a project too), when every tag it looked up anew names the digest that
falco.lock records and it warned of nothing: a resolution that read a tag it did not keep
(a candidate it turned down) or warned depended on more, and is not stamped.

The next `lock` with the same key asks for the same tag lists (requests it would make
anyway, all at once); when every one is as stamped, the result is the lock it already has,
and the resolver does not run. Anything else (a tag list that changed or failed, another
key) is the usual resolution. A damaged stamp reads as missing, like every cache entry.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from falcopkg import __version__, fastform
from falcopkg.digests import bytes_digest

if TYPE_CHECKING:
    from falcopkg.core.manifest import Manifest

_STAMP_KIND = "lock-stamp 1"


def tags_digest(tags: Sequence[str]) -> str:
    """The digest of a tag list's tags (their order means nothing to resolution)."""
    return bytes_digest(json.dumps(sorted(set(tags))).encode("utf-8"))


class LockStamp:
    """One project's stamp: what the falco.lock its last plain `lock` left depends on.

    ``inputs()`` is what a key is made of besides falco.lock's bytes, as it is now (None:
    not keyable, an index not cached or a local index changed since it was read). ``key``,
    that of the falco.lock read (``lock_bytes``, None: there is none), is what a recorded
    stamp must match for the resolver to be skipped.
    """

    def __init__(
        self, path: Path, inputs: Callable[[], bytes | None], lock_bytes: bytes | None = None
    ) -> None:
        self.path = path
        self.inputs = inputs
        self._inputs_read = inputs()  # at the start: None for an index not read yet
        self.key = None if lock_bytes is None else _key(self._inputs_read, lock_bytes)
        self.matched = False  # this run's tag lists were as stamped: the resolver did not run
        self._observed: dict[str, str] | None = None

    @classmethod
    def of_project(
        cls,
        manifest: Manifest,
        manifest_bytes: bytes,
        lock_path: Path,
        lock_bytes: bytes | None,
        cache_dir: Path,
    ) -> LockStamp:
        """``lock_bytes``: the falco.lock read, None when there is none (a first lock)."""
        from falcopkg.services.project_files import lock_cache_path

        path = lock_cache_path(lock_path, cache_dir, ".stamp")
        return cls(
            path, functools.partial(_inputs, manifest, manifest_bytes, cache_dir), lock_bytes
        )

    def stamped_sources(self) -> list[str] | None:
        """The sources whose tag lists decide whether falco.lock is up to date, or None
        when no stamp of these inputs is recorded."""
        stamped = self._stamped
        return None if stamped is None else sorted(stamped)

    def unchanged(self, tag_lists: Mapping[str, Sequence[str]]) -> bool:
        """Whether ``tag_lists`` (source → tags, as fetched now) are those stamped."""
        stamped = self._stamped
        self.matched = stamped is not None and all(
            source in tag_lists and tags_digest(tag_lists[source]) == digest
            for source, digest in stamped.items()
        )
        return self.matched

    def observe(self, tag_lists: Mapping[str, Sequence[str]], *, depends_on_more: bool) -> None:
        """What a full resolution read; ``depends_on_more``: it also used what the tag lists
        and the lock it resolved do not show (a tag it did not keep, a warning), so it is
        not stamped."""
        self._observed = (
            None
            if depends_on_more
            else {source: tags_digest(tags) for source, tags in tag_lists.items()}
        )

    def save(self, lock_bytes: bytes) -> None:
        """Record the observed tag lists for the falco.lock of ``lock_bytes``: the lock just
        resolved, as rendered (the file as read when it was up to date, else as written).
        Another command that rewrote falco.lock meanwhile left other bytes, which this
        stamp's key does not match. Best effort, like every cache write."""
        if self._observed is None or self.matched:
            return
        inputs = self.inputs()  # with the indexes as this lock left them (a first lock reads
        # them while it resolves); an index that changed since the start may have changed
        # under the resolver (another process's `index update`): nothing is recorded then.
        if self._inputs_read is not None and inputs != self._inputs_read:
            return
        key = _key(inputs, lock_bytes)
        if key is None:
            return
        from falcopkg.fsutil import atomic_write_bytes

        payload = {"key": key, "sources": self._observed}
        try:
            encoded = fastform.encode(_STAMP_KIND, payload)
            atomic_write_bytes(self.path, encoded, durable=False)  # torn: fails its check
        except (OSError, ValueError):
            pass

    @functools.cached_property
    def _stamped(self) -> dict[str, str] | None:
        """The stamp recorded for this key (read once), or None."""
        if self.key is None:
            return None
        try:
            payload = fastform.decode(_STAMP_KIND, self.path.read_bytes())
        except OSError:
            return None
        if not isinstance(payload, dict) or payload.get("key") != self.key:
            return None
        sources = payload.get("sources")
        if not isinstance(sources, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in sources.items()
        ):
            return None
        return sources


def _inputs(manifest: Manifest, manifest_bytes: bytes, cache_dir: Path) -> bytes | None:
    """falcopkg's version, falco.toml's path and bytes, and the indexes' content digests."""
    from falcopkg.services.indexes import IndexStore

    store = IndexStore(cache_dir)
    parts: list[str] = [__version__, str(manifest.path.absolute())]
    for index in manifest.indexes:
        digest = store.current_digest(index)
        if digest is None:
            return None
        parts += [index.name, index.url, digest]
    return b"\0".join((json.dumps(parts).encode("utf-8"), manifest_bytes))


def _key(inputs: bytes | None, lock_bytes: bytes) -> str | None:
    return None if inputs is None else bytes_digest(b"\0".join((inputs, lock_bytes)))
