"""`sync` and `verify` (alias `check`): make the install directories match falco.lock, and check.

A no-op sync must cost little more than starting Python, so this module imports only click
and the stdlib at the top. The fast path (:func:`_quick_noop`) fingerprints the bytes of
falco.toml and falco.lock plus the options, and compares it with the stamp the last
complete sync left in each directory's state, then ``lstat``s the installed files. Anything
else (first sync, changed inputs, a touched file) takes the full path, which loads the
manifest, checks the lock's staleness, plans, fetches and applies.
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
from falcopkg.defaults import DEFAULT_ASSETS_DIR, DEFAULT_PLUGINS_DIR, DEFAULT_RULESFILES_DIR
from falcopkg.errors import InstallError, LockError, UsageError

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock
    from falcopkg.core.manifest import Manifest
    from falcopkg.core.plan import Action
    from falcopkg.oci.client import RegistryClient, RegistryPool
    from falcopkg.services.installer import BlobAccess, SyncReport

DIR_KEYS = ("rulesfiles_dir", "plugins_dir", "assets_dir")
DIR_ENV = {
    "rulesfiles_dir": "FALCOPKG_RULESFILES_DIR",
    "plugins_dir": "FALCOPKG_PLUGINS_DIR",
    "assets_dir": "FALCOPKG_ASSETS_DIR",
}
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
    for key in reversed(DIR_KEYS):
        flag = "--" + key.replace("_", "-")
        command = click.option(
            flag,
            key,
            type=click.Path(file_okay=False, path_type=Path),
            envvar=DIR_ENV[key],
            help=f"Install directory overriding [install] {key} [env: {DIR_ENV[key]}].",
        )(command)
    return command


def platform_option(command: Any) -> Any:
    return click.option(
        "--platform",
        metavar="OS/ARCH",
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
    platform: str | None,
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
) -> SyncReport | None:
    """The whole `sync`: fast no-op check, lock handling (§8), plan, fetch, apply, report.

    Also used by `falcopkg add`. Returns the report (None when the fast path found nothing to
    do); raises FalcopkgError on failure, including locked files that were kept (exit 1).
    """
    if locked and frozen:
        raise UsageError("--locked and --frozen cannot be used together", hint="pick one")
    from falcopkg.artifact.platforms import host_platform, validate_platform

    chosen_platform = validate_platform(platform) if platform else host_platform()
    overrides = DirectoryOverrides.of(
        rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
    )
    manifest_path = app.require_manifest()
    quick = _quick_noop(manifest_path, chosen_platform, overrides, frozen=frozen)
    if quick is not None:
        app.console.info(nothing_to_do(*quick))
        return None

    from falcopkg.core.lockfile import render_lock
    from falcopkg.core.manifest import load_manifest
    from falcopkg.services.installer import install_artifacts

    manifest = load_manifest(manifest_path)
    registries = RegistryAccess(app, manifest)
    try:
        lock, lock_changed = _current_lock(
            app,
            manifest,
            registries,
            locked=locked,
            frozen=frozen,
            offline=offline,
            dry_run=dry_run,
        )
        if lock_changed and not dry_run:
            # Only here: the resolver behind it costs a cold sync ~10 ms to import.
            from falcopkg.services.locking import write_lock_if_changed

            write_lock_if_changed(manifest.lock_path, lock)
        directories = install_directories(manifest, overrides)
        stamp = sync_fingerprint(
            manifest_path.read_bytes(),
            render_lock(lock).encode("utf-8") if dry_run else manifest.lock_path.read_bytes(),
            chosen_platform,
            directories,
            overrides,
            frozen=frozen,
        )
        report = install_artifacts(
            lock.artifacts,
            platform=chosen_platform,
            directories=directories,
            allowed_types=manifest.install.allowed_types,
            blobs=registries.blob_access(app, offline=offline),
            force=force,
            dry_run=dry_run,
            prune=True,
            console=app.console,
            lock_source=str(manifest.lock_path),
            stamp=None if dry_run else stamp,
        )
    finally:
        registries.close()
    print_report(app, report, dry_run=dry_run)
    return report


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _current_lock(
    app: AppContext,
    manifest: Manifest,
    registries: RegistryAccess,
    *,
    locked: bool,
    frozen: bool,
    offline: bool,
    dry_run: bool,
) -> tuple[Lock, bool]:
    """The lock to install (§8): as is (--frozen), checked (--locked), or relocked if stale."""
    from falcopkg.core.lockfile import parse_lock, stale_reasons

    lock_path = manifest.lock_path
    existing = None
    try:
        existing = parse_lock(lock_path.read_text(encoding="utf-8"), str(lock_path))
    except FileNotFoundError:
        if locked or frozen:
            flag = "--locked" if locked else "--frozen"
            raise LockError(
                f"{lock_path} does not exist, and {flag} forbids creating it",
                hint="run `falcopkg lock` and commit falco.lock",
            ) from None
    if existing is not None and frozen:
        return existing, False
    reasons = (
        ["falco.lock does not exist"] if existing is None else stale_reasons(manifest, existing)
    )
    if not reasons:
        assert existing is not None
        return existing, False
    if locked:
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise LockError(
            f"{lock_path} is out of date: {reasons[0]}{more}; --locked forbids updating it",
            hint="run `falcopkg lock` and commit falco.lock, or sync without --locked",
        )
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.locking import describe_changes, lock_project

    action = "Would update" if dry_run else "Updating"
    app.console.info(f"{action} {lock_path.name}: {reasons[0]}")
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
    return {
        key: overrides.dirs.get(key)
        or (manifest.directory / os.path.expanduser(getattr(manifest.install, key)))
        for key in DIR_KEYS
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
            for k in DIR_KEYS
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


# falco.toml [install] defaults (falcopkg.defaults: core.manifest costs more to import than
# the no-op budget allows).
DEFAULT_DIRS = {
    "rulesfiles_dir": DEFAULT_RULESFILES_DIR,
    "plugins_dir": DEFAULT_PLUGINS_DIR,
    "assets_dir": DEFAULT_ASSETS_DIR,
}
_INSTALL_HEADER_RE = re.compile(r"^\s*\[\s*install\s*\]\s*(?:#.*)?$")
_TABLE_HEADER_RE = re.compile(r"^\s*\[")
_SIMPLE_DIR_RE = re.compile(
    r'^\s*(rulesfiles_dir|plugins_dir|assets_dir)\s*=\s*"([^"\\]*)"\s*(?:#.*)?$'
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
        if not any(key in line for key in DEFAULT_DIRS):
            continue
        match = _SIMPLE_DIR_RE.match(line)
        if not in_install or match is None or match.group(1) in found:
            if line.lstrip().startswith("#"):
                continue
            return None
        found[match.group(1)] = match.group(2)
    return {key: found.get(key, default) for key, default in DEFAULT_DIRS.items()}


def _quick_noop(
    manifest_path: Path, platform: str, overrides: DirectoryOverrides, *, frozen: bool
) -> tuple[int, int] | None:
    """(files, artifacts) if a complete sync with these exact inputs is still intact on disk.

    Stdlib only, no TOML parser: the [install] lines, json and lstat. Any doubt → None.
    """
    from falcopkg.services.state import quick_noop_check

    try:
        manifest_bytes = manifest_path.read_bytes()
        lock_bytes = (manifest_path.parent / paths.LOCKFILE_NAME).read_bytes()
        install = scan_install_dirs(manifest_bytes.decode("utf-8"))
    except (OSError, ValueError):
        return None
    if install is None:
        return None
    directories = {
        key: overrides.dirs.get(key) or manifest_path.parent / os.path.expanduser(install[key])
        for key in DIR_KEYS
    }
    stamp = sync_fingerprint(
        manifest_bytes, lock_bytes, platform, directories, overrides, frozen=frozen
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
                f"Would change {_count(len(plan.changes), 'file')} (dry run: nothing was changed)"
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
            f"{len(report.removed)} removed ({_count(plan.up_to_date_files, 'file')} already up to date)"
        )
    elif not report.kept:
        console.info(_nothing_to_do(report))
    incomplete = report.incomplete
    if incomplete:
        raise InstallError(
            f"{_count(len(incomplete), 'locked file')} could not be installed because other "
            f"content is in the way (see the warnings above)",
            hint="run `falcopkg sync --force` to replace them, or move them away",
        )


def nothing_to_do(files: int, artifacts: int) -> str:
    verb = "is" if files == 1 else "are"
    return f"Nothing to do: {_count(files, 'file')} of {_count(artifacts, 'artifact')} {verb} up to date"


def _nothing_to_do(report: SyncReport) -> str:
    return nothing_to_do(report.plan.up_to_date_files, report.plan.up_to_date_artifacts)


def _target(action: Action) -> str:
    return os.path.join(action.directory, action.path)


def _action_line(action: Action) -> str:
    return f" {KIND_SYMBOL[action.kind]} {_target(action)} ({action.reason})"


# --- verify -----------------------------------------------------------------------------


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@platform_option
@install_dir_options
@pass_app
def verify(
    app: AppContext,
    as_json: bool,
    platform: str | None,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Compare the installed files with falco.lock; list any drift (exit 1)."""
    from falcopkg.artifact.platforms import host_platform, validate_platform
    from falcopkg.core.lockfile import parse_lock
    from falcopkg.core.manifest import load_manifest
    from falcopkg.services.cache import BlobCache
    from falcopkg.services.installer import BlobAccess, blob_fetcher, desired_for, make_plan

    chosen_platform = validate_platform(platform) if platform else host_platform()
    manifest = load_manifest(app.require_manifest())
    lock_path = manifest.lock_path
    try:
        lock = parse_lock(lock_path.read_text(encoding="utf-8"), str(lock_path))
    except FileNotFoundError:
        raise LockError(
            f"{lock_path} does not exist", hint="run `falcopkg lock`, then `falcopkg sync`"
        ) from None
    overrides = DirectoryOverrides.of(
        rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
    )
    directories = install_directories(manifest, overrides)
    # Layers are read only for a lock that does not list their files, and only from the cache.
    cache_only = BlobAccess(BlobCache(app.cache_dir), None, offline=True)
    desired = desired_for(
        lock.artifacts,
        chosen_platform,
        directories,
        manifest.install.allowed_types,
        blob_fetcher(lock.artifacts, chosen_platform, cache_only),
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
                "platform": chosen_platform,
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
            f"{_count(len(drift), 'difference')} between the install directories and {lock_path.name}",
            hint="run `falcopkg sync` to install the locked files (`--force` replaces changed ones)",
        )
    if not as_json:
        app.console.info(
            f"Verified {_count(checked, 'file')} of {_count(plan.up_to_date_artifacts, 'artifact')} against {lock_path.name}"
        )
