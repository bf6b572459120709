"""The project session every workflow runs in.

A :class:`Project` reads falco.toml's and falco.lock's bytes once: the no-op check
fingerprints them, the full path parses them, and what a sync records describes exactly
them (never a file edited meanwhile). It writes the lock atomically and opens registry
access (:meth:`Project.registries`, a context manager). Standard library only at import:
the no-op sync builds one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from falcopkg import paths

if TYPE_CHECKING:
    from collections.abc import Mapping

    from falcopkg.core.lockfile import Lock
    from falcopkg.core.manifest import Manifest
    from falcopkg.oci.credentials import Credential
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.registries import RegistryAccess
    from falcopkg.workflows.reporter import Reporter


class Project:
    """falco.toml and falco.lock of one project, as one command sees them.

    A plain class with slots, not a dataclass: building one at import would cost the no-op
    sync half a millisecond.
    """

    __slots__ = (
        "_manifest",
        "cache_dir",
        "fresh_lock",
        "lock_bytes",
        "manifest_bytes",
        "manifest_path",
        "reporter",
    )

    def __init__(
        self,
        manifest_path: Path,
        manifest_bytes: bytes | None,  # None: unreadable (`manifest` then says why)
        lock_bytes: bytes | None,  # None: no falco.lock
        *,
        cache_dir: Path,
        reporter: Reporter,
        manifest: Manifest | None = None,
        fresh_lock: Lock | None = None,  # made from this very manifest: used unchecked
    ) -> None:
        self.manifest_path = manifest_path
        self.manifest_bytes = manifest_bytes
        self.lock_bytes = lock_bytes
        self.cache_dir = cache_dir
        self.reporter = reporter
        self._manifest = manifest
        self.fresh_lock = fresh_lock

    @classmethod
    def open(cls, manifest_path: Path, *, cache_dir: Path, reporter: Reporter) -> Project:
        """Read falco.toml and falco.lock (once) for a command."""
        try:
            manifest_bytes: bytes | None = manifest_path.read_bytes()
        except OSError:
            manifest_bytes = None
        try:
            lock_bytes: bytes | None = (manifest_path.parent / paths.LOCKFILE_NAME).read_bytes()
        except FileNotFoundError:
            lock_bytes = None
        return cls(
            manifest_path, manifest_bytes, lock_bytes, cache_dir=cache_dir, reporter=reporter
        )

    @classmethod
    def of_manifest(cls, manifest: Manifest, *, cache_dir: Path, reporter: Reporter) -> Project:
        """A session over a manifest that is not on disk (`artifact install`)."""
        return cls(
            manifest.path, None, None, cache_dir=cache_dir, reporter=reporter, manifest=manifest
        )

    def written(self, manifest: Manifest, manifest_text: str, lock: Lock) -> Project:
        """The session after `add`/`remove` wrote falco.toml and falco.lock: their new bytes,
        with the models they came from (nothing is read or checked again)."""
        from falcopkg.core.lockfile import render_lock

        return Project(
            self.manifest_path,
            manifest_text.encode("utf-8"),
            render_lock(lock).encode("utf-8"),
            cache_dir=self.cache_dir,
            reporter=self.reporter,
            manifest=manifest,
            fresh_lock=lock,
        )

    # -- the files -------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self.manifest_path.parent

    @property
    def lock_path(self) -> Path:
        return self.directory / paths.LOCKFILE_NAME

    def manifest_text(self) -> str | None:
        try:
            return None if self.manifest_bytes is None else self.manifest_bytes.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @property
    def manifest(self) -> Manifest:
        """falco.toml parsed (once); ConfigError naming the file and line if it is broken."""
        if self._manifest is None:
            from falcopkg.core.manifest import parse_manifest
            from falcopkg.services.project_files import load_manifest

            text = self.manifest_text()
            if text is None:
                self._manifest = load_manifest(self.manifest_path)  # raises, saying why
            else:
                self._manifest = parse_manifest(text, self.manifest_path)
        return self._manifest

    def existing_lock(self, *, damaged: Literal["error", "warn"] = "error") -> Lock | None:
        """falco.lock as read, or None. ``damaged="warn"`` (commands that write a new lock):
        a damaged lock is only a warning, since locking again is the repair; a lock of a
        newer format (LockError) stays an error (writing over it would downgrade it)."""
        if self.fresh_lock is not None:
            return self.fresh_lock
        if self.lock_bytes is None:
            return None
        from falcopkg.errors import ConfigError
        from falcopkg.services.project_files import parse_lock_bytes

        try:
            return parse_lock_bytes(self.lock_bytes, self.lock_path, cache_dir=self.cache_dir)
        except ConfigError as exc:
            if damaged == "error":
                raise
            self.reporter.warn(f"ignoring the damaged {self.lock_path.name}: {exc.message}")
            return None

    def write_lock(self, lock: Lock) -> bool:
        """Write falco.lock atomically if its bytes change; whether it was written."""
        from falcopkg.core.lockfile import lock_document, render_document
        from falcopkg.services.project_files import remember_written_lock, write_lock_if_changed

        document = lock_document(lock)
        text = render_document(document)  # rendered once: written, kept as this session's bytes
        written = write_lock_if_changed(self.lock_path, text)
        self.lock_bytes = text.encode("utf-8")
        if written:  # the next read of this lock skips the TOML parse
            remember_written_lock(self.lock_path, self.lock_bytes, document, self.cache_dir)
        return written

    # -- effects ---------------------------------------------------------------------------------

    @property
    def cache(self) -> BlobCache:
        from falcopkg.services.cache import BlobCache

        return BlobCache(self.cache_dir)

    def registries(
        self,
        *,
        offline: bool = False,
        plain_http: bool = False,
        credential_overrides: Mapping[str, Credential] | None = None,
    ) -> RegistryAccess:
        """Registry access with this project's and the user's ``[registries]`` (a context
        manager; nothing is connected before the first request)."""
        from falcopkg.services.registries import RegistryAccess

        return RegistryAccess.configured(
            self.manifest,
            plain_http=plain_http,
            credential_overrides=credential_overrides,
            warn=self.reporter.warn,
            offline=offline,
        )
