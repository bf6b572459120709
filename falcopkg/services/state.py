"""The install state (SPEC §8): what falcopkg installed in each install directory.

Every install directory that falcopkg wrote to holds ``.falcopkg/state.json`` (JSON, written
atomically with fsutil) recording, per artifact, the version, the layer digest and each file
it installed with its sha256, size and mtime_ns::

    {"version": 1,
     "artifacts": {"falco-rules": {"version": "4.0.0", "layer": "sha256:…",
                                   "files": {"falco_rules.yaml": {"sha256": "sha256:…",
                                                                  "size": 123, "mtime_ns": …}}}},
     "pending": {"falco_rules.yaml": ["sha256:…"]}}

One state per directory (not per project) because the directory is what is shared: two
projects or an `artifact install` writing into /etc/falco see each other's files. ``pending``
is the journal of an apply in progress (see falcopkg.core.plan.DirectoryState); states
written before it could hold several digests per path have one string there. The same
``.falcopkg`` directory holds the sync lock (``lock``) and staging directories.

Only stdlib here: a no-op sync reads states and stats files, nothing more.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falcopkg.errors import InstallError

if TYPE_CHECKING:
    from falcopkg.core.plan import DirectoryState, DiskFact, FileRecord

# The planner's model (core.plan) and fsutil are imported where used: the no-op fast path
# (quick_noop_check) must not pay for building their dataclasses and tempfile.

STATE_DIR_NAME = ".falcopkg"
STATE_FILE_NAME = "state.json"
LOCK_FILE_NAME = "lock"
STATE_VERSION = 1
STAGING_PREFIX = "staging-"


def state_dir(directory: Path) -> Path:
    return directory / STATE_DIR_NAME


def state_path(directory: Path) -> Path:
    return state_dir(directory) / STATE_FILE_NAME


def has_state(directory: Path) -> bool:
    return state_path(directory).is_file()


def load_state(directory: Path) -> DirectoryState:
    """The recorded state of ``directory`` (empty when falcopkg never installed there)."""
    from falcopkg.core.plan import DirectoryState

    path = state_path(directory)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return DirectoryState()
    except (OSError, UnicodeDecodeError) as exc:
        raise _corrupt(path, str(exc)) from None
    try:
        return _from_json(json.loads(text))
    except _UnsafePath as exc:
        raise _corrupt(path, str(exc)) from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise _corrupt(path, f"unexpected content ({exc})") from None


def save_state(directory: Path, state: DirectoryState) -> None:
    from falcopkg.fsutil import atomic_write_text

    atomic_write_text(state_path(directory), json.dumps(_to_json(state), indent=1) + "\n")


def observe(
    directory: Path,
    paths: Iterable[str],
    state: DirectoryState,
    *,
    hash_all: bool = False,
) -> dict[str, DiskFact]:
    """Stat each path under ``directory``; hash only where the planner needs it.

    ``hash_all`` (verify) hashes every existing owned file, so a change that kept size and
    mtime is found too.
    """
    from falcopkg.core.plan import ABSENT, DiskFact, needs_hash
    from falcopkg.digests import file_digest

    owners = state.owners()
    facts: dict[str, DiskFact] = {}
    for path in paths:
        target = directory.joinpath(*path.split("/"))
        try:
            info = target.lstat()
        except (FileNotFoundError, NotADirectoryError):
            facts[path] = ABSENT
            continue
        record = owners[path][1] if path in owners else None
        pending = state.pending.get(path, ())
        fact = DiskFact(True, info.st_size, info.st_mtime_ns)
        if not stat.S_ISREG(info.st_mode):
            fact = DiskFact(True, info.st_size, info.st_mtime_ns, "")  # never our content
        elif needs_hash(fact, record, pending) or (hash_all and (record or pending)):
            fact = DiskFact(True, info.st_size, info.st_mtime_ns, file_digest(target))
        facts[path] = fact
    return facts


def has_leftovers(directory: Path) -> bool:
    """Whether an interrupted sync left staging directories or temporary files behind."""
    try:
        return any(_is_leftover(entry.name) for entry in os.scandir(state_dir(directory)))
    except OSError:
        return False


def _is_leftover(name: str) -> bool:
    return name.startswith(STAGING_PREFIX) or (
        name.startswith(f".{STATE_FILE_NAME}.") and name.endswith(".tmp")
    )


def clean_leftovers(directory: Path) -> None:
    """Remove staging directories and temporary files an interrupted sync left behind.

    Only call with the directory's sync lock held: they may belong to a running sync.
    """
    from falcopkg.archive import remove_tree

    folder = state_dir(directory)
    with contextlib.suppress(FileNotFoundError):
        for entry in folder.iterdir():
            if not _is_leftover(entry.name):
                continue
            if entry.is_dir():
                remove_tree(entry)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


def file_record(path: Path, sha256: str) -> FileRecord:
    from falcopkg.core.plan import FileRecord

    info = os.stat(path)
    return FileRecord(sha256, info.st_size, info.st_mtime_ns)


# --- JSON -------------------------------------------------------------------------------


def _to_json(state: DirectoryState) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "artifacts": {
            name: {
                "version": artifact.version,
                "layer": artifact.layer_digest,
                "files": {
                    path: {"sha256": r.sha256, "size": r.size, "mtime_ns": r.mtime_ns}
                    for path, r in sorted(artifact.files.items())
                },
            }
            for name, artifact in sorted(state.artifacts.items())
        },
        "pending": {path: list(digests) for path, digests in sorted(state.pending.items())},
        "sync": {"stamp": state.sync_stamp, "directories": list(state.sync_directories)},
    }


def _from_json(data: Any) -> DirectoryState:
    from falcopkg.core.plan import ArtifactRecord, DirectoryState, FileRecord

    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ValueError(f"state version {data.get('version') if isinstance(data, dict) else '?'}")
    artifacts = {}
    for name, raw in data.get("artifacts", {}).items():
        files = {
            _owned_path(path, f"artifact {name!r} owns"): FileRecord(
                str(f["sha256"]), _integer(f["size"]), _integer(f["mtime_ns"])
            )
            for path, f in raw.get("files", {}).items()
        }
        artifacts[str(name)] = ArtifactRecord(
            str(name), str(raw["version"]), str(raw["layer"]), files
        )
    pending = {
        _owned_path(p, "the journal of an interrupted sync names"): _digests(s)
        for p, s in data.get("pending", {}).items()
    }
    sync = data.get("sync") or {}
    return DirectoryState(
        artifacts,
        pending,
        str(sync.get("stamp", "")),
        tuple(str(d) for d in sync.get("directories", ())),
    )


class _UnsafePath(ValueError):
    """A path in the state that is not inside the directory (``../victim.txt``)."""


def _owned_path(path: Any, what: str) -> str:
    """A path of the state, held to the lock's rule: removals and replacements join it to
    the install directory, so ``../x`` or ``/etc/x`` would reach outside."""
    from falcopkg.paths import is_install_path

    if not isinstance(path, str) or not is_install_path(path):
        raise _UnsafePath(
            f"{what} {path!r}, which is not a relative path inside the install directory; "
            "nothing was changed"
        )
    return path


def _integer(raw: Any) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise TypeError(f"{raw!r} is not an integer")
    return raw


def _digests(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)  # a state written by an earlier falcopkg
    if not isinstance(raw, list):
        raise TypeError(f"pending digests {raw!r}")
    return tuple(str(digest) for digest in raw)


def quick_noop_check(directories: Iterable[Path], stamp: str) -> tuple[int, int] | None:
    """(files, artifacts) when the last complete sync had fingerprint ``stamp`` and every file
    it installed still has its recorded size and mtime; None when a full sync must decide.

    Reads only the state files and ``lstat``s: the fast path of a no-op sync.
    """
    from falcopkg.paths import is_install_path

    with_state: dict[str, Any] = {}
    for directory in directories:
        try:
            text = state_path(directory).read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError:
            return None
        try:
            with_state[str(directory)] = json.loads(text)
        except (ValueError, RecursionError):
            return None
    if not with_state:
        return None
    if any(has_leftovers(Path(folder)) for folder in with_state):
        return None  # the full path cleans them up under the lock
    files = artifacts = 0
    for folder, data in with_state.items():
        if (
            not isinstance(data, dict)
            or data.get("version") != STATE_VERSION
            or data.get("pending")
        ):
            return None
        sync = data.get("sync") or {}
        if sync.get("stamp") != stamp or sorted(sync.get("directories", ())) != sorted(with_state):
            return None
        for artifact in data.get("artifacts", {}).values():
            artifacts += 1
            for path, record in artifact.get("files", {}).items():
                if not is_install_path(path):
                    return None  # the full path refuses this state with its error
                try:
                    info = os.lstat(os.path.join(folder, path))
                except OSError:
                    return None
                if info.st_size != record.get("size") or info.st_mtime_ns != record.get("mtime_ns"):
                    return None
                files += 1
    return files, artifacts


def _corrupt(path: Path, why: str) -> InstallError:
    return InstallError(
        f"cannot read the install state {path}: {why}",
        hint="delete that file; the next `falcopkg sync` treats the files there as not "
        "installed by falcopkg and adopts those identical to falco.lock (--force replaces "
        "the rest)",
    )
