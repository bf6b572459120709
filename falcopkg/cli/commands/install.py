"""`sync` and `verify` (alias `check`): make the install directories match falco.lock, and check.

A no-op sync must cost little more than starting Python, so this module imports only click
and the stdlib at the top. The fast path (:func:`_quick_noop`) fingerprints the bytes of
falco.toml and falco.lock plus the options, and compares it with the stamp the last
complete sync left in each directory's state, then ``lstat``s the installed files. Anything
else (first sync, changed inputs, a touched file) takes the full path, which parses the
same bytes (each file is read once), checks the lock's staleness, plans, fetches and applies.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click

from falcopkg import __version__, paths
from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.output import quantity
from falcopkg.cli.params import json_option
from falcopkg.defaults import INSTALL_DIR_DEFAULTS
from falcopkg.errors import InstallError, UsageError

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock
    from falcopkg.core.manifest import Manifest
    from falcopkg.core.plan import Action
    from falcopkg.oci.client import RegistryClient, RegistryPool
    from falcopkg.services.installer import BlobAccess, SyncReport

DIR_ENV = {key: "FALCOPKG_" + key.upper() for key in INSTALL_DIR_DEFAULTS}
KIND_SYMBOL = {"add": "+", "update": "~", "remove": "-", "keep-modified": "!", "keep-unowned": "!"}
DRIFT_KIND = {
    "not-installed": "not-installed",
    "missing": "missing",
    "outdated": "outdated",
    "interrupted": "outdated",
    "modified": "modified",
    "unowned": "unowned",
    "unlocked": "extra",
}


def install_dir_options(command: Any) -> Any:
    """--rulesfiles-dir/--plugins-dir/--assets-dir with their environment variables."""
    for key in reversed(INSTALL_DIR_DEFAULTS):
        flag = "--" + key.replace("_", "-")
        command = click.option(
            flag,
            key,
            type=click.Path(file_okay=False, path_type=Path),
            envvar=DIR_ENV[key],
            help=f"Install directory overriding [install] {key} [env: {DIR_ENV[key]}].",
        )(command)
    return command


def chosen_platform(platform: str | None) -> str:
    """The platform a command installs for: ``platform`` checked, else this machine's."""
    from falcopkg.artifact.platforms import host_platform, validate_platform

    return validate_platform(platform) if platform else host_platform()


def platform_option(command: Any) -> Any:
    """--platform; the command receives the chosen platform (never None)."""
    return click.option(
        "--platform",
        metavar="OS/ARCH",
        callback=lambda _context, _param, value: chosen_platform(value),
        help="Platform whose plugin builds to install (default: this machine).",
    )(command)


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option("--offline", is_flag=True, help="Use only the blob cache; no network.")
@click.option("--locked", is_flag=True, help="Fail if falco.lock is missing or out of date.")
@click.option("--frozen", is_flag=True, help="Use falco.lock as it is, without checking it.")
@click.option(
    "--force", is_flag=True, help="Replace files that were changed or not installed by falcopkg."
)
@platform_option
@install_dir_options
@pass_app
def sync(
    app: AppContext,
    dry_run: bool,
    offline: bool,
    locked: bool,
    frozen: bool,
    force: bool,
    platform: str,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Make the install directories hold exactly the files locked in falco.lock."""
    run_sync(
        app,
        dry_run=dry_run,
        offline=offline,
        locked=locked,
        frozen=frozen,
        force=force,
        platform=platform,
        rulesfiles_dir=rulesfiles_dir,
        plugins_dir=plugins_dir,
        assets_dir=assets_dir,
    )


@dataclass(frozen=True)
class DirectoryOverrides:
    """Install directories from flags/env, absolute (relative to the current directory)."""

    dirs: dict[str, Path]

    @classmethod
    def of(cls, **given: Path | None) -> DirectoryOverrides:
        return cls({k: Path(os.path.abspath(os.path.expanduser(v))) for k, v in given.items() if v})


class SyncInputs:
    """falco.toml's and falco.lock's bytes, read once per sync: the fast path fingerprints
    them, the full path parses them, and the stamp it records describes exactly them (never
    a file edited meanwhile).

    `add` and `remove` pass what they just wrote (:meth:`written`), parsed already. A plain
    class, not a dataclass: building one at import costs the no-op sync half a millisecond.
    """

    __slots__ = ("fresh_lock", "lock_bytes", "manifest_bytes", "manifest_path", "parsed_manifest")

    def __init__(
        self,
        manifest_path: Path,
        manifest_bytes: bytes | None,  # None: unreadable (load_manifest then says why)
        lock_bytes: bytes | None,  # None: no falco.lock
        *,
        parsed_manifest: Manifest | None = None,
        fresh_lock: Lock | None = None,  # made from this very manifest: used unchecked
    ) -> None:
        self.manifest_path = manifest_path
        self.manifest_bytes = manifest_bytes
        self.lock_bytes = lock_bytes
        self.parsed_manifest = parsed_manifest
        self.fresh_lock = fresh_lock

    @classmethod
    def read(cls, manifest_path: Path) -> SyncInputs:
        try:
            manifest_bytes: bytes | None = manifest_path.read_bytes()
        except OSError:
            manifest_bytes = None
        try:
            lock_bytes: bytes | None = (manifest_path.parent / paths.LOCKFILE_NAME).read_bytes()
        except FileNotFoundError:
            lock_bytes = None
        return cls(manifest_path, manifest_bytes, lock_bytes)

    @classmethod
    def written(cls, manifest: Manifest, manifest_text: str, lock: Lock) -> SyncInputs:
        """falco.toml and falco.lock as just written, with the models they came from."""
        from falcopkg.core.lockfile import render_lock

        return cls(
            manifest.path,
            manifest_text.encode("utf-8"),
            render_lock(lock).encode("utf-8"),
            parsed_manifest=manifest,
            fresh_lock=lock,
        )

    def manifest_text(self) -> str | None:
        try:
            return None if self.manifest_bytes is None else self.manifest_bytes.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def manifest(self) -> Manifest:
        from falcopkg.core.manifest import load_manifest, parse_manifest

        if self.parsed_manifest is not None:
            return self.parsed_manifest
        text = self.manifest_text()
        if text is None:
            return load_manifest(self.manifest_path)  # raises, saying what is wrong
        return parse_manifest(text, self.manifest_path)

    def existing_lock(self, manifest: Manifest) -> Lock | None:
        from falcopkg.services.lockio import parse_lock_bytes

        if self.lock_bytes is None:
            return None
        return parse_lock_bytes(self.lock_bytes, manifest.lock_path)


def run_sync(
    app: AppContext,
    *,
    dry_run: bool = False,
    offline: bool = False,
    locked: bool = False,
    frozen: bool = False,
    force: bool = False,
    platform: str | None = None,
    rulesfiles_dir: Path | None = None,
    plugins_dir: Path | None = None,
    assets_dir: Path | None = None,
    inputs: SyncInputs | None = None,
) -> SyncReport | None:
    """The whole `sync`: fast no-op check, lock handling (§8), plan, fetch, apply, report.

    Also used by `falcopkg add`/`remove` with the ``inputs`` they wrote (else falco.toml and
    falco.lock are read here). Returns the report (None when the fast path found nothing to
    do); raises FalcopkgError on failure, including locked files that were kept (exit 1).
    """
    if locked and frozen:
        raise UsageError("--locked and --frozen cannot be used together", hint="pick one")
    platform = chosen_platform(platform)
    overrides = DirectoryOverrides.of(
        rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
    )
    if inputs is None:
        inputs = SyncInputs.read(app.require_manifest())
    quick = _quick_noop(inputs, platform, overrides, frozen=frozen)
    if quick is not None:
        app.console.info(nothing_to_do(*quick))
        return None

    from falcopkg.core.lockfile import render_lock
    from falcopkg.services.installer import install_artifacts

    manifest = inputs.manifest()
    registries = RegistryAccess(app, manifest)
    try:
        if inputs.fresh_lock is not None:
            lock, lock_changed = inputs.fresh_lock, False
        else:
            lock, lock_changed = _current_lock(
                app,
                manifest,
                inputs.existing_lock(manifest),
                registries,
                locked=locked,
                frozen=frozen,
                offline=offline,
                dry_run=dry_run,
            )
        lock_bytes = inputs.lock_bytes
        if lock_changed:
            lock_bytes = render_lock(lock).encode("utf-8")
            if not dry_run:
                # lockio, not locking: the resolver costs a cold sync ~10 ms to import.
                from falcopkg.services.lockio import write_lock_if_changed

                write_lock_if_changed(manifest.lock_path, lock)
        directories = install_directories(manifest, overrides)
        stamp = None
        if not dry_run and inputs.manifest_bytes is not None and lock_bytes is not None:
            stamp = sync_fingerprint(
                inputs.manifest_bytes,
                lock_bytes,
                platform,
                directories,
                overrides,
                frozen=frozen,
            )
        report = install_artifacts(
            lock.artifacts,
            platform=platform,
            directories=directories,
            allowed_types=manifest.install.allowed_types,
            blobs=registries.blob_access(app, offline=offline),
            force=force,
            dry_run=dry_run,
            prune=True,
            console=app.console,
            lock_source=str(manifest.lock_path),
            stamp=stamp,
        )
    finally:
        registries.close()
    print_report(app, report, dry_run=dry_run)
    return report


def _current_lock(
    app: AppContext,
    manifest: Manifest,
    existing: Lock | None,
    registries: RegistryAccess,
    *,
    locked: bool,
    frozen: bool,
    offline: bool,
    dry_run: bool,
) -> tuple[Lock, bool]:
    """The lock to install (§8): as is (--frozen), checked (--locked), or relocked if stale."""
    from falcopkg.core.lockfile import stale_reasons
    from falcopkg.services.lockio import require_fresh_lock

    if locked or frozen:
        checked = require_fresh_lock(
            manifest,
            existing,
            stale="ignore" if frozen else "error",
            flag="--frozen" if frozen else "--locked",
            hint="run `falcopkg lock` and commit falco.lock",
        )
        return checked, False
    reasons = (
        ["falco.lock does not exist"] if existing is None else stale_reasons(manifest, existing)
    )
    if existing is not None and not reasons:
        return existing, False
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.locking import describe_changes, lock_project

    action = "Would update" if dry_run else "Updating"
    app.console.info(f"{action} {manifest.lock_path.name}: {reasons[0]}")
    lock = lock_project(
        manifest,
        existing_lock=existing,
        offline=offline,
        pool=None if offline else registries.pool(),
        cache=BlobCache(app.cache_dir),
        console=app.console,
    )
    for line in describe_changes(existing, lock, dry_run=dry_run):
        app.console.info(f"  {line}")
    return lock, True


def install_directories(manifest: Manifest, overrides: DirectoryOverrides) -> dict[str, Path]:
    """[install] directories (relative to falco.toml's directory), overridden by flags/env."""
    configured = {key: getattr(manifest.install, key) for key in INSTALL_DIR_DEFAULTS}
    return _directories(manifest.directory, configured, overrides)


def _directories(
    project_dir: Path, configured: Mapping[str, str], overrides: DirectoryOverrides
) -> dict[str, Path]:
    """Each install directory: its override, else its [install] value under ``project_dir``
    (the one rule, shared by the full path and the fast path)."""
    return {
        key: overrides.dirs.get(key) or project_dir / os.path.expanduser(configured[key])
        for key in INSTALL_DIR_DEFAULTS
    }


def sync_fingerprint(
    manifest_bytes: bytes,
    lock_bytes: bytes,
    platform: str,
    directories: Mapping[str, Path],
    overrides: DirectoryOverrides,
    *,
    frozen: bool,
) -> str:
    """What a sync's result depends on: inputs' bytes, platform, directories, mode, version.

    Directories given by flags/env are marked as such, so a directory read from falco.toml
    never matches a stamp made with the same directory as an override. A frozen sync gets
    another fingerprint: it did not check the lock against falco.toml.
    """
    hasher = _sha256()
    for part in (
        b"falcopkg-sync-2",
        __version__.encode(),
        manifest_bytes,
        lock_bytes,
        platform.encode(),
        *(
            f"{k}{'!' if k in overrides.dirs else '='}{os.path.normpath(directories[k])}".encode()
            for k in INSTALL_DIR_DEFAULTS
        ),
        b"frozen" if frozen else b"checked",
    ):
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return "sha256:" + hasher.hexdigest()


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _sha256() -> _Hasher:
    """A sha256 hasher without hashlib's OpenSSL import (3 ms of a 25 ms budget) when the
    interpreter has its builtin module (``_sha2`` from 3.12, ``_sha256`` before)."""
    for module in ("_sha2", "_sha256"):
        try:
            hasher: _Hasher = __import__(module).sha256()
            return hasher
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256()


_INSTALL_HEADER_RE = re.compile(r"^\s*\[\s*install\s*\]\s*(?:#.*)?$")
_TABLE_HEADER_RE = re.compile(r"^\s*\[")
_SIMPLE_DIR_RE = re.compile(
    rf'^\s*({"|".join(INSTALL_DIR_DEFAULTS)})\s*=\s*"([^"\\]*)"\s*(?:#.*)?$'
)


def scan_install_dirs(text: str) -> dict[str, str] | None:
    """The [install] directories of falco.toml's text, for the fast path only.

    Deliberately narrow: only ``key = "plain string"`` lines inside ``[install]``; any other
    spelling of these keys (dotted keys, inline tables, escapes, literal strings) gives
    None and the full path, with the real TOML parser, decides. A wrong answer cannot make
    a false no-op either: the directories are part of the fingerprint.
    """
    found: dict[str, str] = {}
    in_install = False
    for line in text.splitlines():
        if _TABLE_HEADER_RE.match(line):
            in_install = bool(_INSTALL_HEADER_RE.match(line))
            continue
        if not any(key in line for key in INSTALL_DIR_DEFAULTS):
            continue
        match = _SIMPLE_DIR_RE.match(line)
        if not in_install or match is None or match.group(1) in found:
            if line.lstrip().startswith("#"):
                continue
            return None
        found[match.group(1)] = match.group(2)
    return {key: found.get(key, default) for key, default in INSTALL_DIR_DEFAULTS.items()}


def _quick_noop(
    inputs: SyncInputs, platform: str, overrides: DirectoryOverrides, *, frozen: bool
) -> tuple[int, int] | None:
    """(files, artifacts) if a complete sync with these exact inputs is still intact on disk.

    Stdlib only, no TOML parser: the [install] lines, json and lstat. Any doubt → None.
    """
    from falcopkg.services.state import quick_noop_check

    text = inputs.manifest_text()
    if text is None or inputs.lock_bytes is None:
        return None
    assert inputs.manifest_bytes is not None
    install = scan_install_dirs(text)
    if install is None:
        return None
    directories = _directories(inputs.manifest_path.parent, install, overrides)
    stamp = sync_fingerprint(
        inputs.manifest_bytes, inputs.lock_bytes, platform, directories, overrides, frozen=frozen
    )
    return quick_noop_check(directories.values(), stamp)


# --- registries -------------------------------------------------------------------------


class RegistryAccess:
    """Registry clients built on first use, so a sync from the cache never loads requests."""

    def __init__(
        self, app: AppContext, manifest: Manifest | None, *, plain_http: bool = False
    ) -> None:
        self._manifest = manifest
        self._plain_http = plain_http
        self._warn = app.console.warn
        self._pool: RegistryPool | None = None
        self._lock = threading.Lock()

    def pool(self) -> RegistryPool:
        with self._lock:
            if self._pool is None:
                from falcopkg.services.registries import registry_pool

                self._pool = registry_pool(
                    self._manifest, plain_http=self._plain_http, warn=self._warn
                )
            return self._pool

    def client(self, host: str) -> RegistryClient:
        return self.pool().client(host)

    def blob_access(self, app: AppContext, *, offline: bool) -> BlobAccess:
        from falcopkg.services.cache import BlobCache
        from falcopkg.services.fetch import Progress, parse_mirror
        from falcopkg.services.installer import BlobAccess

        mirrors = {}
        if self._manifest is not None:
            mirrors = {
                host: parse_mirror(settings.mirror, self._manifest.directory)
                for host, settings in self._manifest.registries.items()
                if settings.mirror
            }
        return BlobAccess(
            cache=BlobCache(app.cache_dir),
            client_for=self.client,
            mirrors=mirrors,
            offline=offline,
            progress=Progress.for_console(app.console.verbosity, app.console.is_tty),
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


# --- output -----------------------------------------------------------------------------


def print_report(app: AppContext, report: SyncReport, *, dry_run: bool) -> None:
    """Per-file lines, warnings for kept files, one summary; InstallError if incomplete."""
    console = app.console
    plan = report.plan
    for artifact, why in report.skipped:
        console.detail(f"Skipped {artifact}: {why}")
    if dry_run:
        for action in plan.actions:
            console.data(_action_line(action))
        if not plan.actions:
            console.info(_nothing_to_do(report))
        else:
            console.info(
                f"Would change {quantity(len(plan.changes), 'file')} (dry run: nothing was changed)"
            )
        return
    if not plan.actions:
        console.info(_nothing_to_do(report))
        return
    for action in report.added + report.updated + report.removed:
        console.info(_action_line(action))
    for action in report.adopted:
        console.detail(f"  {_target(action)} already held the locked content; now managed")
    for action in report.kept:
        console.warn(f"kept {_target(action)} ({action.artifact}): {action.reason}")
    if report.changed_files:
        console.success(
            f"Synced: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.removed)} removed ({quantity(plan.up_to_date_files, 'file')} already up to date)"
        )
    elif not report.kept:
        console.info(_nothing_to_do(report))
    incomplete = report.incomplete
    if incomplete:
        raise InstallError(
            f"{quantity(len(incomplete), 'locked file')} could not be installed because other "
            f"content is in the way (see the warnings above)",
            hint="run `falcopkg sync --force` to replace them, or move them away",
        )


def nothing_to_do(files: int, artifacts: int) -> str:
    verb = "is" if files == 1 else "are"
    return f"Nothing to do: {quantity(files, 'file')} of {quantity(artifacts, 'artifact')} {verb} up to date"


def _nothing_to_do(report: SyncReport) -> str:
    return nothing_to_do(report.plan.up_to_date_files, report.plan.up_to_date_artifacts)


def _target(action: Action) -> str:
    return os.path.join(action.directory, action.path)


def _action_line(action: Action) -> str:
    return f" {KIND_SYMBOL[action.kind]} {_target(action)} ({action.reason})"


# --- verify -----------------------------------------------------------------------------


@click.command()
@json_option
@platform_option
@install_dir_options
@pass_app
def verify(
    app: AppContext,
    as_json: bool,
    platform: str,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Compare the installed files with falco.lock; list any drift (exit 1)."""
    from falcopkg.core.manifest import load_manifest
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.installer import BlobAccess, blob_fetcher, desired_for, make_plan
    from falcopkg.services.lockio import read_lock, require_fresh_lock

    manifest = load_manifest(app.require_manifest())
    lock_path = manifest.lock_path
    lock = require_fresh_lock(
        manifest,
        read_lock(lock_path),
        stale="ignore",  # verify compares the disk with the lock as it is
        hint="run `falcopkg lock`, then `falcopkg sync`",
    )
    overrides = DirectoryOverrides.of(
        rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
    )
    directories = install_directories(manifest, overrides)
    # Layers are read only for a lock that does not list their files, and only from the cache.
    cache_only = BlobAccess(BlobCache(app.cache_dir), None, offline=True)
    desired = desired_for(
        lock.artifacts,
        platform,
        directories,
        manifest.install.allowed_types,
        blob_fetcher(lock.artifacts, platform, cache_only),
        lock_source=str(lock_path),
    )
    plan, _ = make_plan(desired.files, force=False, prune=True, hash_all=True)
    drift = [
        {
            "kind": DRIFT_KIND[action.cause],
            "path": _target(action),
            "artifact": action.artifact,
            "detail": action.reason,
        }
        for action in plan.actions
    ]
    checked = sum(len(files) for files in desired.files.values())
    if as_json:
        app.console.json(
            {
                "ok": not drift,
                "lockfile": str(lock_path),
                "platform": platform,
                "files": checked,
                "drift": drift,
            }
        )
    else:
        for item in drift:
            app.console.data(
                f"{item['kind']:<14} {item['path']} ({item['artifact']}: {item['detail']})"
            )
    if drift:
        raise InstallError(
            f"{quantity(len(drift), 'difference')} between the install directories and {lock_path.name}",
            hint="run `falcopkg sync` to install the locked files (`--force` replaces changed ones)",
        )
    if not as_json:
        app.console.info(
            f"Verified {quantity(checked, 'file')} of {quantity(plan.up_to_date_artifacts, 'artifact')} against {lock_path.name}"
        )
