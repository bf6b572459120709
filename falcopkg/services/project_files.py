"""The project's files: read falco.toml; read and write falco.lock, and insist on a lock
that exists and matches falco.toml. (core/ parses, this module does the file I/O.)

Light on purpose: `sync`, `verify`, `tree` and `lock --check` need these without the
resolver that falcopkg.services.resolution imports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from falcopkg.errors import ConfigError, LockError

if TYPE_CHECKING:
    from falcopkg.core.lockfile import Lock
    from falcopkg.core.manifest import Manifest

LOCK_HINT = "run `falcopkg lock`"


def load_manifest(path: Path) -> Manifest:
    """Read and validate ``path``; ConfigError names the file, line and key of any problem."""
    from falcopkg.core.manifest import manifest_from_data
    from falcopkg.tomlfile import read_toml_data

    data, text = read_toml_data(path, missing_hint="run `falcopkg init` to create a falco.toml")
    return manifest_from_data(data, text, path)


def read_lock(path: Path) -> Lock | None:
    """The lock at ``path``, or None when there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return parse_lock_bytes(data, path)


#: A falco.lock this large (about 40 artifacts) keeps its parsed TOML in the cache: tomllib
#: reads about 2 MB/s, so a 1000-artifact lock (420 KB) costs 0.2 s to parse, 5 ms to load.
PARSED_LOCK_MIN_BYTES = 16 * 1024
_PARSED_LOCK_KIND = "lock-toml 1"


def parse_lock_bytes(data: bytes, path: Path, *, cache_dir: Path | None = None) -> Lock:
    """The lock in ``data``, read from ``path`` (errors name it).

    With ``cache_dir``, a large lock's TOML data is kept in the cache, keyed by the lock's
    path and checked against the sha256 of its bytes: only the TOML parsing is skipped,
    the lock is validated as always.
    """
    from falcopkg.core.lockfile import REGENERATE_HINT, load_lock_toml, lock_from_data

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 ({exc.reason})", hint=REGENERATE_HINT) from None
    if cache_dir is None or len(data) < PARSED_LOCK_MIN_BYTES:
        return lock_from_data(load_lock_toml(text, str(path)), text, str(path))
    from falcopkg.digests import bytes_digest

    digest = bytes_digest(data)
    cached = _parsed_lock_path(path, cache_dir)
    toml_data = _load_parsed_lock(cached, digest)
    if toml_data is None:
        toml_data = load_lock_toml(text, str(path))
        _save_parsed_lock(cached, digest, toml_data)
    return lock_from_data(toml_data, text, str(path))


def remember_written_lock(
    path: Path, data: bytes, toml_data: dict[str, Any], cache_dir: Path
) -> None:
    """Keep the TOML data of a lock just written as ``data`` (``lockfile.lock_document``), so
    that the next command reading ``path`` skips the parse, as after a read."""
    if len(data) < PARSED_LOCK_MIN_BYTES:
        return
    from falcopkg.digests import bytes_digest

    _save_parsed_lock(_parsed_lock_path(path, cache_dir), bytes_digest(data), toml_data)


def _parsed_lock_path(path: Path, cache_dir: Path) -> Path:
    return lock_cache_path(path, cache_dir, ".bin")


def lock_cache_path(path: Path, cache_dir: Path, suffix: str) -> Path:
    """Where the cache keeps something about the falco.lock at ``path`` (one name per lock)."""
    from falcopkg.services.cache import source_key

    return cache_dir / "locks" / f"{source_key(str(path.absolute()))}{suffix}"


def _load_parsed_lock(cached: Path, digest: str) -> dict[str, Any] | None:
    from falcopkg import fastform

    try:
        payload = fastform.decode(_PARSED_LOCK_KIND, cached.read_bytes())
    except OSError:
        return None
    if not isinstance(payload, dict) or payload.get("sha256") != digest:
        return None
    data = payload.get("data")
    return data if isinstance(data, dict) else None


def _save_parsed_lock(cached: Path, digest: str, toml_data: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written only costs the next run the parse."""
    from falcopkg import fastform
    from falcopkg.fsutil import atomic_write_bytes

    try:
        encoded = fastform.encode(_PARSED_LOCK_KIND, {"sha256": digest, "data": toml_data})
        atomic_write_bytes(cached, encoded, durable=False)  # torn: fails its CRC, read as missing
    except (OSError, ValueError):
        pass


def write_lock_if_changed(path: Path, text: str) -> bool:
    """Write a rendered lock to ``path`` atomically unless the file already has these bytes."""
    from falcopkg.fsutil import atomic_write_text

    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


def require_fresh_lock(
    manifest: Manifest,
    existing: Lock | None,
    *,
    stale: Literal["error", "warn", "ignore"] = "error",
    flag: str | None = None,
    hint: str = LOCK_HINT,
    warn: Callable[[str], None] | None = None,
) -> Lock:
    """``existing`` (manifest's falco.lock, already read) when a command may use it as is.

    A missing lock is a LockError. A lock out of date with falco.toml is one too
    (``stale="error"``), a warning through ``warn`` (``"warn"``: read-only views such as
    `tree`), or not checked (``"ignore"``: `sync --frozen`, `verify`). ``flag`` names the
    option that forbids writing the lock (`sync --locked`), ``hint`` what to do instead.
    """
    path = manifest.lock_path
    if existing is None:
        forbidden = f", and {flag} forbids creating it" if flag else ""
        raise LockError(f"{path} does not exist{forbidden}", hint=hint)
    if stale == "ignore":
        return existing
    from falcopkg.core.lockfile import stale_reasons

    reasons = stale_reasons(manifest, existing)
    if not reasons:
        return existing
    if stale == "warn":
        if warn is not None:
            warn(f"{path.name} is out of date ({reasons[0]}); {hint}")
        return existing
    if flag:
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise LockError(
            f"{path} is out of date: {reasons[0]}{more}; {flag} forbids updating it",
            hint=f"{hint}, or sync without {flag}",
        )
    details = "\n  ".join(reasons)
    raise LockError(f"{path} is out of date:\n  {details}", hint=hint)
