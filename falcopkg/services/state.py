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

Beside a state that a complete sync stamped, :func:`save_state` writes its compact no-op
record ``.falcopkg/noop``, which is all a no-op sync reads (:func:`quick_noop_check`): text
fields separated by NUL bytes (paths may hold any other character; read it with
``tr '\\0' '\\n' <.falcopkg/noop``)::

    falcopkg-noop-1          format
    blake2b:…                the sync's stamp (workflows.noop.sync_fingerprint)
    INODE SIZE MTIME_NS      of state.json as written with this record
    3                        artifacts recorded
    2                        directories the sync covered, then each of them
    /etc/falco
    /usr/share/falco/plugins
    123  MTIME_NS  falco_rules.yaml      then size, mtime_ns and path of every file
    end

It is removed before state.json is replaced and written after it, atomically, so it never
describes another state than the one on disk: a state that another writer (an older
falcopkg, a person) replaced no longer has the recorded inode, size and mtime, and a
record cut short has no ``end``; either way the full sync decides.

Only ``os`` and ``stat`` at the top: a no-op sync imports this module, and reads records and
stats files, nothing more (json, pathlib, the planner's dataclasses and fsutil are imported
where used).
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy knows the name
if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path
    from typing import Any

    from falcopkg.core.plan import DirectoryState, DiskFact, FileRecord
    from falcopkg.errors import InstallError

STATE_DIR_NAME = ".falcopkg"
STATE_FILE_NAME = "state.json"
NOOP_FILE_NAME = "noop"
NOOP_FORMAT = "falcopkg-noop-1"
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
    import json

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
    """Write ``state`` atomically, with its no-op record when a complete sync stamped it."""
    import json

    from falcopkg.fsutil import atomic_write_bytes, atomic_write_text

    record = noop_record_path(directory)
    try:
        os.unlink(record)  # first: a record must never outlive the state it describes
    except FileNotFoundError:
        pass
    atomic_write_text(state_path(directory), json.dumps(_to_json(state), indent=1) + "\n")
    if not state.sync_stamp or state.pending:
        return
    try:
        data = _noop_record(directory, state)
        if data is not None:
            atomic_write_bytes(record, data)
    except OSError:
        pass  # only an optimisation: the next no-op sync takes the full path and writes it


def noop_record_path(directory: Path) -> Path:
    return state_dir(directory) / NOOP_FILE_NAME


def has_noop_record(directory: Path, stamp: str) -> bool:
    """Whether ``directory`` has the whole no-op record of its current state, stamped ``stamp``."""
    return _read_record(os.fspath(state_dir(directory)), stamp) is not None


def _read_record(folder: str, stamp: str) -> list[str] | None:
    """The fields of the no-op record in ``folder`` (a state directory) if it is whole, of
    ``stamp``, and written with the state.json there now; else None."""
    try:
        with open(os.path.join(folder, NOOP_FILE_NAME), "rb") as handle:
            data = handle.read()
        facts = os.lstat(os.path.join(folder, STATE_FILE_NAME))
    except OSError:
        return None
    fields = data.decode("utf-8", "surrogateescape").split("\0")
    if fields[:3] != [NOOP_FORMAT, stamp, _facts_field(facts)] or fields[-2:] != ["end", ""]:
        return None
    if len(fields) < 7 or not all(_is_count(field) for field in fields[3:5]):
        return None
    files = len(fields) - 7 - int(fields[4])  # fields of the file lines
    if files < 0 or files % 3:
        return None
    return fields


def _is_count(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _noop_record(directory: Path, state: DirectoryState) -> bytes | None:
    """The no-op record of ``state``, just written to ``directory`` (see the module doc);
    None if a path cannot be written in it (a NUL byte, a lone surrogate)."""
    fields = [
        NOOP_FORMAT,
        state.sync_stamp,
        _facts_field(os.lstat(state_path(directory))),
        str(len(state.artifacts)),
        str(len(state.sync_directories)),
        *state.sync_directories,
    ]
    for _, artifact in sorted(state.artifacts.items()):
        for path, record in sorted(artifact.files.items()):
            fields += (str(record.size), str(record.mtime_ns), path)
    fields.append("end")
    if any("\0" in field for field in fields):
        return None
    try:
        return ("\0".join(fields) + "\0").encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None


def _facts_field(facts: os.stat_result) -> str:
    return f"{facts.st_ino} {facts.st_size} {facts.st_mtime_ns}"


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
        name.startswith((f".{STATE_FILE_NAME}.", f".{NOOP_FILE_NAME}.")) and name.endswith(".tmp")
    )


def clean_leftovers(directory: Path) -> None:
    """Remove staging directories and temporary files an interrupted sync left behind.

    Only call with the directory's sync lock held: they may belong to a running sync.
    """
    import contextlib

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


def quick_noop_check(directories: Iterable[str], stamp: str) -> tuple[int, int] | None:
    """(files, artifacts) when the last complete sync had fingerprint ``stamp`` and every file
    it installed still has its recorded size and mtime; None when a full sync must decide.

    Reads only the no-op records (a state without one: None) and ``lstat``s: the fast path
    of a no-op sync. ``directories`` are strings, compared as ``os.path.normpath`` makes them.
    """
    records: dict[str, tuple[str, list[str]]] = {}
    for directory in directories:
        folder = os.path.join(directory, STATE_DIR_NAME)
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return None
        if NOOP_FILE_NAME not in names:
            if STATE_FILE_NAME in names:
                return None  # a state no complete sync stamped
            continue
        if any(_is_leftover(name) for name in names):
            return None  # an interrupted sync: the full path cleans up under the lock
        fields = _read_record(folder, stamp)
        if fields is None:
            return None
        records[os.path.normpath(directory)] = (directory, fields)
    if not records:
        return None
    covered = sorted(records)
    files = artifacts = 0
    for directory, fields in records.values():
        counted = _check_record(directory, fields, covered)
        if counted is None:
            return None
        files += counted
        artifacts += int(fields[3])
    return files, artifacts


def _check_record(directory: str, fields: list[str], covered: list[str]) -> int | None:
    """How many files a whole no-op record of ``directory`` lists, if it covered exactly the
    directories ``covered`` and each file is still a regular file of its size and mtime."""
    start = 5 + int(fields[4])
    if sorted(os.path.normpath(d) for d in fields[5:start]) != covered:
        return None
    files = fields[start:-2]
    prefix = os.path.join(directory, "")
    regular = stat.S_IFREG
    lstat = os.lstat
    for position in range(0, len(files), 3):
        try:
            info = lstat(prefix + files[position + 2])
        except OSError:
            return None
        if (
            str(info.st_size) != files[position]
            or str(info.st_mtime_ns) != files[position + 1]
            or stat.S_IFMT(info.st_mode) != regular
        ):
            return None
    return len(files) // 3


def _corrupt(path: Path, why: str) -> InstallError:
    from falcopkg.errors import InstallError

    return InstallError(
        f"cannot read the install state {path}: {why}",
        hint="delete that file; the next `falcopkg sync` treats the files there as not "
        "installed by falcopkg and adopts those identical to falco.lock (--force replaces "
        "the rest)",
    )
