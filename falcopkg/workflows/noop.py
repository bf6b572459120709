"""The no-op check of `sync`: standard library only, so it costs little more than starting
Python. It fingerprints the bytes of falco.toml and falco.lock plus the options, compares that
with the stamp the last complete sync left in each directory's state, then ``lstat``s the
installed files. Any doubt means "not a no-op" and the full sync decides.

One source of truth: the full sync writes :func:`sync_fingerprint` of the very bytes it
parsed; this module computes the same function for the fast path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from falcopkg import __version__
from falcopkg.defaults import INSTALL_DIR_DEFAULTS, INSTALL_DIR_ENV

if TYPE_CHECKING:
    from falcopkg.core.manifest import Manifest
    from falcopkg.workflows.project import Project


class DirectoryOverrides:
    """Install directories from flags/env, absolute (relative to the current directory)."""

    __slots__ = ("dirs",)

    def __init__(self, dirs: Mapping[str, Path] | None = None) -> None:
        self.dirs = dict(dirs or {})

    @classmethod
    def of(cls, **given: Path | str | None) -> DirectoryOverrides:
        return cls({k: Path(os.path.abspath(os.path.expanduser(v))) for k, v in given.items() if v})

    @classmethod
    def from_environment(cls) -> DirectoryOverrides:
        return cls.of(**{key: os.environ.get(env) for key, env in INSTALL_DIR_ENV.items()})


FALCO_CONFIG_KEY = "falco_config_dir"


def falco_config_dir(manifest: Manifest, overrides: DirectoryOverrides) -> Path | None:
    """Where sync keeps the Falco config snippet: the flag/env, else [install], else None."""
    override = overrides.dirs.get(FALCO_CONFIG_KEY)
    if override is not None:
        return override
    configured = manifest.install.falco_config_dir
    if configured is None:
        return None
    return manifest.directory / os.path.expanduser(configured)


def install_directories(manifest: Manifest, overrides: DirectoryOverrides) -> dict[str, Path]:
    """[install] directories (relative to falco.toml's directory), overridden by flags/env."""
    configured = {key: getattr(manifest.install, key) for key in INSTALL_DIR_DEFAULTS}
    return directories_of(manifest.directory, configured, overrides)


def directories_of(
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
        b"falcopkg-sync-3",
        __version__.encode(),
        manifest_bytes,
        lock_bytes,
        platform.encode(),
        *(
            f"{k}{'!' if k in overrides.dirs else '='}{os.path.normpath(directories[k])}".encode()
            for k in INSTALL_DIR_DEFAULTS
        ),
        f"{FALCO_CONFIG_KEY}!{overrides.dirs.get(FALCO_CONFIG_KEY, '')}".encode(),
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


def quick_noop(
    project: Project, platform: str, overrides: DirectoryOverrides, *, frozen: bool
) -> tuple[int, int] | None:
    """(files, artifacts) if a complete sync with these exact inputs is still intact on disk.

    Stdlib only, no TOML parser: the [install] lines, json and lstat. Any doubt → None.
    """
    from falcopkg.services.state import quick_noop_check

    text = project.manifest_text()
    if text is None or project.manifest_bytes is None or project.lock_bytes is None:
        return None
    install = scan_install_dirs(text)
    if install is None:
        return None
    directories = directories_of(project.directory, install, overrides)
    stamp = sync_fingerprint(
        project.manifest_bytes, project.lock_bytes, platform, directories, overrides, frozen=frozen
    )
    counts = quick_noop_check(directories.values(), stamp)
    if counts is None:
        return None
    rules_dir = directories["rulesfiles_dir"]
    wants_snippet = FALCO_CONFIG_KEY in overrides.dirs or _sets_key(text, FALCO_CONFIG_KEY)
    record = snippet_record_path(rules_dir)
    if (wants_snippet and not record.exists()) or not _snippet_intact(rules_dir):
        return None
    return counts


def _sets_key(text: str, key: str) -> bool:
    """Whether a line of falco.toml (not a comment) mentions ``key``: any doubt is a yes."""
    return any(key in line and not line.lstrip().startswith("#") for line in text.splitlines())


def nothing_to_do(files: int, artifacts: int) -> str:
    """The one line a no-op sync prints."""
    from falcopkg.text import quantity

    verb = "is" if files == 1 else "are"
    return f"Nothing to do: {quantity(files, 'file')} of {quantity(artifacts, 'artifact')} {verb} up to date"


# --- the Falco config snippet's record (workflows.falco_config writes it) -----------------

SNIPPET_RECORD = "falco-config.json"


def snippet_record_path(rulesfiles_dir: Path) -> Path:
    """Where falcopkg records the snippet it keeps in falco_config_dir: the rules directory's
    state directory (never beside the snippet: Falco loads every file there)."""
    return rulesfiles_dir / ".falcopkg" / SNIPPET_RECORD


def read_snippet_record(rulesfiles_dir: Path) -> dict[str, object] | None:
    """The record, or None (missing or damaged: the snippet is then not ours)."""
    import json

    try:
        data = json.loads(snippet_record_path(rulesfiles_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        return None
    if not all(type(data.get(k)) is int for k in ("size", "mtime_ns")):
        return None
    return data


def _snippet_intact(rulesfiles_dir: Path) -> bool:
    """Whether the recorded snippet (if any) still has its size and mtime."""
    if not snippet_record_path(rulesfiles_dir).exists():
        return True
    record = read_snippet_record(rulesfiles_dir)
    if record is None:
        return False
    try:
        facts = os.lstat(str(record["path"]))
    except OSError:
        return False
    return facts.st_size == record["size"] and facts.st_mtime_ns == record["mtime_ns"]
