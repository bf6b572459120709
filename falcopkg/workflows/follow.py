"""`follow` (SPEC §11): keep the install directories on the newest versions falco.toml allows.

Each round (:func:`run_round`) re-resolves falco.toml allowing upgrades, with requirements
checked against [target] and, when given, a running Falco's ``/versions`` (both must hold);
writes falco.lock if it changed and applies it with the `sync` workflow itself, so state,
`verify`, `export` and `tree` stay true. :func:`follow` runs rounds: a jittered start, the
interval, capped exponential backoff on errors (a registry's ``Retry-After`` honoured), a
stop between steps on SIGTERM/SIGINT, and a file lock so two followers never overlap on one
project. Time is a :class:`Clock`, so tests do not sleep.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from falcopkg.durations import format_duration
from falcopkg.errors import FalcopkgError
from falcopkg.workflows.sync import SyncOptions, SyncResult, sync

if TYPE_CHECKING:
    from falcopkg.core.falco_versions import FalcoVersions
    from falcopkg.core.lockfile import Lock, LockedArtifact
    from falcopkg.services.resolution import HeldBack
    from falcopkg.workflows.project import Project

FOLLOW_LOCK_NAME = ".falcopkg-follow.lock"
DEFAULT_EVERY = 3600.0
JITTER_FRACTION = 0.1  # default --jitter: this share of --every ...
MAX_DEFAULT_JITTER = 300.0  # ... at most this
FIRST_BACKOFF = 10.0
MAX_BACKOFF = 900.0
MAX_RETRY_AFTER = 6 * 3600.0  # a longer Retry-After is taken as this


class FollowLog(Protocol):
    """Where `follow` says what it does: the Reporter (sync's messages) plus events, one
    line each (the CLI renders them as text or JSON)."""

    def event(self, kind: str, message: str, **fields: object) -> None: ...


class Clock(Protocol):
    def sleep(self, seconds: float, stop: StopSignal) -> None:
        """Wait ``seconds``, returning early once ``stop`` is requested."""
        ...


class SystemClock:
    def sleep(self, seconds: float, stop: StopSignal) -> None:
        stop.wait(seconds)


class StopSignal:
    """A stop request (from SIGTERM/SIGINT, or a test), looked at between steps only."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._event.set()

    def wait(self, seconds: float) -> None:
        self._event.wait(max(0.0, seconds))

    @contextmanager
    def on_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT request a stop (a second one acts as usual: stops now)."""
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may handle signals (tests run rounds elsewhere)
            return
        signals = (signal.SIGTERM, signal.SIGINT)

        def handler(number: int, _frame: FrameType | None) -> None:
            for each in signals:
                signal.signal(each, previous[each])
            self.request(signal.Signals(number).name)

        previous = {each: signal.signal(each, handler) for each in signals}
        try:
            yield
        finally:
            for each in signals:
                signal.signal(each, previous[each])


@dataclass(frozen=True)
class FollowOptions:
    sync: SyncOptions
    every: float = DEFAULT_EVERY
    jitter: float | None = None  # None: JITTER_FRACTION of ``every`` (capped)
    once: bool = False
    falco_versions: str | None = None  # URL or file of a running Falco's /versions

    @property
    def start_jitter(self) -> float:
        if self.jitter is not None:
            return self.jitter
        return 0.0 if self.once else min(self.every * JITTER_FRACTION, MAX_DEFAULT_JITTER)


@dataclass(frozen=True)
class LockChange:
    name: str
    before: str | None  # None: added
    after: str | None  # None: removed

    @property
    def message(self) -> str:
        if self.before is None:
            return f"{self.name} {self.after} added"
        if self.after is None:
            return f"{self.name} {self.before} removed"
        return f"{self.name} {self.before} → {self.after}" + (
            " (downgrade)" if self.is_downgrade else ""
        )

    @property
    def is_downgrade(self) -> bool:
        """A lower version: what the running Falco can load when it cannot load the lock's."""
        from falcopkg.core.versions import parse_version

        before = parse_version(self.before or "")
        after = parse_version(self.after or "")
        return before is not None and after is not None and after < before


@dataclass(frozen=True)
class RoundResult:
    changes: tuple[LockChange, ...]
    held_back: tuple[HeldBack, ...]
    sync: SyncResult
    falco: FalcoVersions | None = None


@dataclass
class FollowOutcome:
    rounds: int = 0
    failures: int = 0
    stopped_by: str | None = None
    delays: list[float] = field(default_factory=list)  # every wait, for tests and logs


def lock_changes(before: Lock | None, after: Lock) -> tuple[LockChange, ...]:
    """Per artifact added, removed or moved (a new digest of the same version counts)."""
    old = before.by_name if before is not None else {}
    new = after.by_name
    changes = []
    for name in sorted(set(old) | set(new)):
        previous, current = old.get(name), new.get(name)
        if (
            previous is not None
            and current is not None
            and (previous.digest, previous.source) == (current.digest, current.source)
        ):
            continue
        changes.append(LockChange(name, _shown(previous), _shown(current)))
    return tuple(changes)


def _shown(artifact: LockedArtifact | None) -> str | None:
    if artifact is None:
        return None
    return artifact.version or f"@{artifact.digest[:19]}"


def run_round(
    project: Project,
    options: FollowOptions,
    log: FollowLog,
    *,
    known_digests: Mapping[tuple[str, str], str] | None = None,
) -> RoundResult:
    """One round: resolve with upgrades, log, write falco.lock, apply like `sync`.
    ``known_digests``: the held-back candidates of the last round (no manifest request)."""
    from falcopkg.services.resolution import resolve_upgrades

    falco = None
    if options.falco_versions is not None:
        from falcopkg.services.falco_versions import read_falco_versions

        falco = read_falco_versions(options.falco_versions)
        plugins = ", ".join(f"{n} {v}" for n, v in falco.plugin_versions.items()) or "none"
        project.reporter.detail(
            f"Falco {falco.falco_version or '(version not reported)'} at {falco.source}: engine "
            f"{falco.engine_version or '?'}, plugin API {falco.plugin_api_version or '?'}, "
            f"plugins loaded: {plugins}"
        )
    manifest = project.manifest
    existing = project.existing_lock(damaged="warn")
    with project.registries(offline=False) as registries:
        upgrades = resolve_upgrades(
            manifest,
            existing,
            running=falco.as_target() if falco is not None else None,
            stores=registries,
            cache=project.cache,
            console=project.reporter,
            also_known=known_digests,
        )
    changes = lock_changes(existing, upgrades.lock)
    for held in upgrades.held_back:
        log.event(
            "held_back",
            f"{held.name} {held.version} held back: {'; '.join(held.reasons)}",
            name=held.name,
            version=held.version,
            locked=held.chosen,
            reasons=list(held.reasons),
        )
    for change in changes:
        log.event(
            "change",
            change.message,
            name=change.name,
            before=change.before,
            after=change.after,
            downgrade=change.is_downgrade or None,
        )
    # The session over the lock just resolved: sync applies it as it is (no second
    # staleness check), through the no-op fast path when nothing changed on disk.
    project.write_lock(upgrades.lock)
    session = project.written(manifest, project.manifest_text() or "", upgrades.lock)
    result = sync(session, options.sync)
    return RoundResult(changes, upgrades.held_back, result, falco)


def follow(
    options: FollowOptions,
    *,
    open_project: Callable[[], Project],
    log: FollowLog,
    render: Callable[[RoundResult], None] = lambda _result: None,
    clock: Clock | None = None,
    stop: StopSignal | None = None,
    rand: Callable[[], float] = random.random,
) -> FollowOutcome:
    """Run rounds until ``stop`` (or one, with ``options.once``) under the follow lock.

    ``open_project`` gives a fresh session each round (falco.toml may be edited meanwhile);
    ``render`` shows a round's sync result. With ``once`` a failing round raises; otherwise it
    is logged and retried after a backoff.
    """
    clock = clock if clock is not None else SystemClock()
    stop = stop if stop is not None else StopSignal()
    outcome = FollowOutcome()
    first = open_project()
    with follow_lock(first.directory):
        delay = options.start_jitter * rand()
        project: Project | None = first
        held_digests: dict[tuple[str, str], str] = {}
        while True:
            if delay > 0:
                outcome.delays.append(delay)
                clock.sleep(delay, stop)
            if stop.requested:
                break
            try:
                result = run_round(
                    project or open_project(), options, log, known_digests=held_digests
                )
                held_digests = dict(held.known_digest for held in result.held_back)
                render(result)
            except FalcopkgError as exc:
                if options.once:
                    raise
                outcome.failures += 1
                delay = error_delay(outcome.failures, exc)
                log.event(
                    "error",
                    f"{exc.message}; next round in {format_duration(delay)}",
                    error=exc.message,
                    hint=exc.hint,
                    retry_in=delay,
                )
            else:
                outcome.failures = 0
                delay = options.every
                later = "" if options.once else f"; next round in {format_duration(delay)}"
                log.event(
                    "round",
                    _summary(result) + later,
                    changes=len(result.changes),
                    held_back=len(result.held_back),
                    next_in=None if options.once else delay,
                )
            finally:
                outcome.rounds += 1
                project = None
            if options.once or stop.requested:
                break
    outcome.stopped_by = stop.reason
    return outcome


def _summary(result: RoundResult) -> str:
    from falcopkg.text import quantity

    if not result.changes:
        return "Nothing new"
    return f"Applied {quantity(len(result.changes), 'change')}"


def error_delay(failures: int, exc: FalcopkgError) -> float:
    """Wait after the ``failures``-th error in a row: doubling from FIRST_BACKOFF up to
    MAX_BACKOFF, and at least what a registry's ``Retry-After`` asked for."""
    delay = min(FIRST_BACKOFF * 2.0 ** (failures - 1), MAX_BACKOFF)
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, (int, float)):
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
    return delay


@contextmanager
def follow_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory``/.falcopkg-follow.lock, or fail at once if another follower does."""
    import filelock

    path = directory / FOLLOW_LOCK_NAME
    lock = filelock.FileLock(str(path), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise FalcopkgError(
            f"another `falcopkg follow` is already running for {directory} (it holds {path})",
            hint="stop the other follower first; two must never apply the same project",
        ) from None
    try:
        yield
    finally:
        lock.release()
