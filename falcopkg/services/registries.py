"""One way to reach registries: :class:`RegistryAccess`.

Built once per command from the user config's ``[registries]``, falco.toml's (a project's
entry for a host replaces the user's) and the flags, it holds in one place what every command
that talks to a registry needs: TLS options and credentials per host (the OCI client pool),
and mirror routing. Reading goes through :meth:`RegistryAccess.endpoint`, which sends
``host/repository`` to its mirror (another registry under a prefix, or an OCI image layout
directory) so that a mirror applies to `lock`, `sync`, `artifact info|install`, `registry pull`,
`follow` alike; writing (`push`, `login`, a `mirror` destination) uses :meth:`origin`.

Digests are verified by the store that serves them, and every digest comes from the lock or
from the root manifest, so a mirror cannot change what is installed; the lock's ``source``
stays the origin. A mirror that lacks something is an error naming it, unless the host's
``fallback = true`` lets the origin answer instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from falcopkg.errors import OfflineError, known

if TYPE_CHECKING:
    from falcopkg.core.manifest import Manifest, RegistrySettings
    from falcopkg.deadline import CommandBudget
    from falcopkg.oci.client import RegistryClient, RegistryOptions, RegistryPool
    from falcopkg.oci.credentials import Credential
    from falcopkg.oci.descriptor import Descriptor, FetchedManifest
    from falcopkg.oci.store import ContentStore

T = TypeVar("T")

LAYOUT_PREFIX = "oci-layout:"
OFFLINE_HINT = (
    "run the command once without --offline to fill the cache, or point a "
    '[registries."HOST"] mirror = "oci-layout:DIR" at a directory written by `falcopkg vendor`'
)


@dataclass(frozen=True)
class Mirror:
    """Where one registry's content is read from instead."""

    host: str | None = None  # another registry …
    prefix: str = ""  # … with this repository prefix
    layout: Path | None = None  # or an OCI image layout directory
    fallback: bool = False  # ask the origin for what the mirror lacks

    @property
    def needs_network(self) -> bool:
        return self.layout is None

    def describe(self) -> str:
        if self.layout is not None:
            return f"{LAYOUT_PREFIX}{self.layout}"
        return f"{self.host}/{self.prefix}".rstrip("/")


def parse_mirror(text: str, *, fallback: bool = False) -> Mirror:
    """``"host[/prefix]"`` or ``"oci-layout:DIR"`` (the manifest reader made DIR absolute)."""
    if text.startswith(LAYOUT_PREFIX):
        return Mirror(layout=Path(text[len(LAYOUT_PREFIX) :]), fallback=fallback)
    host, _, prefix = text.strip("/").partition("/")
    return Mirror(host=host, prefix=prefix, fallback=fallback)


def registry_options(settings: RegistrySettings) -> RegistryOptions:
    from falcopkg.oci.client import RegistryOptions

    options = RegistryOptions(
        plain_http=settings.plain_http, insecure=settings.insecure, ca_file=settings.ca_file
    )
    if settings.timeout is not None:
        options = replace(options, request_timeout=settings.timeout)
    return options


def effective_registry_settings(manifest: Manifest | None) -> dict[str, RegistrySettings]:
    """The user config's ``[registries]`` overridden host by host by falco.toml's."""
    from falcopkg.services.userconfig import user_registry_settings

    settings = user_registry_settings()
    if manifest is not None:
        settings.update(manifest.registries)
    return settings


class RegistryAccess:
    """Registry clients (built on first use, so a sync from the cache never loads requests)
    and mirror routing. A context manager: ``close`` ends every connection."""

    def __init__(
        self,
        settings: Mapping[str, RegistrySettings],
        *,
        plain_http: bool = False,
        credential_overrides: Mapping[str, Credential] | None = None,
        warn: Callable[[str], None] | None = None,
        offline: bool = False,
        budget: CommandBudget | None = None,
    ) -> None:
        self.settings = dict(settings)
        # The command's overall deadline and memory of failed hosts (default: a fresh one).
        self.budget = budget
        self.mirrors = {
            host: parse_mirror(entry.mirror, fallback=entry.fallback)
            for host, entry in self.settings.items()
            if entry.mirror
        }
        self.offline = offline
        self._plain_http = plain_http
        self._credential_overrides = dict(credential_overrides or {})
        self._warn = warn
        self._pool: RegistryPool | None = None
        self._layouts: dict[tuple[Path, str], ContentStore] = {}
        self._lock = threading.Lock()

    @classmethod
    def configured(
        cls,
        manifest: Manifest | None,
        *,
        plain_http: bool = False,
        credential_overrides: Mapping[str, Credential] | None = None,
        warn: Callable[[str], None] | None = None,
        offline: bool = False,
    ) -> RegistryAccess:
        """From the user config, ``manifest``'s ``[registries]`` (if any) and the flags."""
        return cls(
            effective_registry_settings(manifest),
            plain_http=plain_http,
            credential_overrides=credential_overrides,
            warn=warn,
            offline=offline,
        )

    # -- the registries themselves ---------------------------------------------------------------

    def pool(self) -> RegistryPool:
        with self._lock:
            if self._pool is None:
                from falcopkg.oci.client import RegistryPool

                options = {host: registry_options(entry) for host, entry in self.settings.items()}
                self._pool = RegistryPool(
                    options,
                    plain_http=self._plain_http,
                    credential_overrides=self._credential_overrides,
                    warn=self._warn,
                    budget=self.budget,
                )
            return self._pool

    def origin(self, host: str) -> RegistryClient:
        """The registry ``host`` itself, never a mirror (push, login, mirror destinations)."""
        if self.offline:
            raise OfflineError(f"cannot reach {host}: --offline forbids it", hint=OFFLINE_HINT)
        return self.pool().client(host)

    # -- reading, through mirrors ------------------------------------------------------------------

    def mirror_for(self, source: str) -> Mirror | None:
        return self.mirrors.get(source.partition("/")[0])

    def is_local(self, source: str) -> bool:
        """Whether ``source`` (``host/repository``) is served without the network."""
        mirror = self.mirror_for(source)
        return mirror is not None and not mirror.needs_network and not mirror.fallback

    def endpoint(self, source: str) -> tuple[ContentStore, str]:
        """The store to read ``source`` from and the repository name in that store."""
        host, _, repository = source.partition("/")
        mirror = self.mirrors.get(host)
        if mirror is None:
            return self.origin(host), repository
        if mirror.layout is not None:
            store = self._layout(mirror.layout, host)
            mirrored_repository = repository
        else:
            store = self.origin(known(mirror.host, f"the mirror host of {host}"))
            mirrored_repository = f"{mirror.prefix}/{repository}" if mirror.prefix else repository
        if mirror.fallback and not self.offline:
            origin = self.pool().client(host)
            return _FallbackStore(store, mirrored_repository, origin), repository
        return store, mirrored_repository

    def _layout(self, path: Path, host: str) -> ContentStore:
        with self._lock:
            store = self._layouts.get((path, host))
            if store is None:
                from falcopkg.oci.layout import OciLayout

                store = self._layouts[(path, host)] = OciLayout(path, host=host)
            return store

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> RegistryAccess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _FallbackStore:
    """A mirror (``fallback = true``) that asks the origin for whatever it does not have.

    Reads only; the caller uses the origin's repository name, mapped to the mirror's here.
    """

    def __init__(self, mirror: ContentStore, mirror_repository: str, origin: ContentStore):
        self.mirror, self.mirror_repository, self.origin = mirror, mirror_repository, origin
        self.host = mirror.host

    def _either(self, repository: str, call: Callable[[ContentStore, str], T]) -> T:
        from falcopkg.oci.errors import NotFoundError

        try:
            return call(self.mirror, self.mirror_repository)
        except NotFoundError:
            return call(self.origin, repository)

    def list_tags(self, repository: str) -> list[str]:
        return self._either(repository, lambda store, repo: store.list_tags(repo))

    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str] = (),
        expected_digest: str | None = None,
    ) -> FetchedManifest:
        from falcopkg.oci import mediatypes

        wanted = accept or mediatypes.MANIFEST_MEDIA_TYPES
        return self._either(
            repository,
            lambda store, repo: store.get_manifest(repo, reference, wanted, expected_digest),
        )

    def head_manifest(
        self, repository: str, reference: str, accept: Sequence[str] = ()
    ) -> Descriptor | None:
        from falcopkg.oci import mediatypes

        wanted = accept or mediatypes.MANIFEST_MEDIA_TYPES
        found = self.mirror.head_manifest(self.mirror_repository, reference, wanted)
        return (
            found if found is not None else self.origin.head_manifest(repository, reference, wanted)
        )

    def head_blob(self, repository: str, digest: str) -> int | None:
        size = self.mirror.head_blob(self.mirror_repository, digest)
        return size if size is not None else self.origin.head_blob(repository, digest)

    def _blob_store(self, repository: str, digest: str) -> tuple[ContentStore, str]:
        if self.mirror.head_blob(self.mirror_repository, digest) is not None:
            return self.mirror, self.mirror_repository
        return self.origin, repository

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
        store, repo = self._blob_store(repository, digest)
        store.download_blob(repo, digest, dest, expected_size, progress, max_size=max_size)

    def get_blob_bytes(
        self, repository: str, digest: str, max_size: int = 4 * 1024 * 1024
    ) -> bytes:
        store, repo = self._blob_store(repository, digest)
        return store.get_blob_bytes(repo, digest, max_size=max_size)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        return self.mirror.put_manifest(self.mirror_repository, reference, data, media_type)

    def upload_blob(
        self,
        repository: str,
        source: Path | bytes,
        digest: str,
        size: int,
        chunk_size: int | None = None,
    ) -> bool:
        return self.mirror.upload_blob(self.mirror_repository, source, digest, size, chunk_size)

    def close(self) -> None:
        """The stores belong to the RegistryAccess that made this one."""

    @contextlib.contextmanager
    def open_blob(
        self, repository: str, digest: str, expected_size: int | None = None
    ) -> Iterator[Iterator[bytes]]:
        store, repo = self._blob_store(repository, digest)
        with store.open_blob(repo, digest, expected_size) as chunks:
            yield chunks
