"""Resolution (SPEC §6): the newest versions that satisfy every constraint, or why none do.

Pure: every fact about artifacts comes from a :class:`MetadataProvider` (the registry in
production, a dict in tests).

Why our own backtracking instead of resolvelib: an alternatives group (``k8saudit`` or
``k8saudit-eks`` …) is satisfied by whichever member the manifest declares *or another
artifact brings in*, and only when none does is the first member added. Which member
satisfies a group therefore depends on the rest of the solution; resolvelib's requirements
each name one identifier fixed up front, so the group would need a virtual package kept in
step with its real members. The graphs are small (rulesfiles → plugins), so a depth-first
search over names in the order they become needed, newest candidate first, with forward
checks of each new constraint, is simple and fast, and lets conflicts be explained in
Falco terms ("falco-rules 4.1.0 requires container >=0.4.0, <1.0.0, but falco.toml
requires container = "0.3"").

Order of decisions: manifest dependencies first (in manifest order), then transitive ones
as they appear; alternatives groups nobody satisfied are settled last. A preferred version
(the current lock's pin) is tried first when it still satisfies everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Protocol

from falcopkg.artifact.config import Dependency
from falcopkg.core.lockfile import LockedPlatform, unmet_requirements
from falcopkg.core.manifest import DependencySpec, TargetSettings
from falcopkg.core.versions import (
    Constraint,
    Version,
    falco_requirement,
    parse_version,
    same_precedence,
)
from falcopkg.errors import FalcopkgError, ResolutionError, known

MANIFEST_ORIGIN = "falco.toml"
MAX_LINES = 12  # conflict lines shown in one error
LOOKAHEAD_LEVELS = 3  # rulesfile → plugin → …: levels of dependencies prefetched at once


@dataclass(frozen=True)
class Location:
    """Where an artifact lives: ``host/repo``, the index that named it, its index type."""

    source: str
    index: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class CandidateMetadata:
    """What one artifact version declares.

    ``platforms`` maps ``os/arch`` to the platform manifest and layer for multi-platform
    types (plugins); single-manifest types use the key ``""``. ``dependencies`` and
    ``requirements`` unite the config's and the rules YAML's (``merge_dependencies``);
    ``version`` is the config's version.
    """

    type: str
    digest: str
    version: str | None = None
    dependencies: tuple[Dependency, ...] = ()
    requirements: Mapping[str, str] = field(default_factory=dict)
    platforms: Mapping[str, LockedPlatform] = field(default_factory=dict)

    @property
    def is_multi_platform(self) -> bool:
        return "" not in self.platforms


class MetadataProvider(Protocol):
    def locate(self, name: str) -> Location:
        """Where ``name`` lives (manifest ``ref``/``index``, else the first index naming it)."""
        ...

    def versions(self, name: str) -> list[tuple[Version, str]]:
        """The semver tags of ``name``'s repository, newest first, with the tag of each."""
        ...

    def metadata(self, name: str, reference: str) -> CandidateMetadata:
        """The metadata of ``name`` at a tag or digest."""
        ...

    def prefetch(self, requests: Sequence[tuple[str, str | None]]) -> None:
        """Warm up ``(name, None)`` version lists and ``(name, tag)`` metadata, in parallel
        if the provider can; errors are left for the real call to raise."""
        ...


@dataclass(frozen=True)
class Edge:
    """``parent`` (None: falco.toml) needs ``child`` with ``constraint``."""

    parent: str | None
    child: str
    constraint: str


@dataclass(frozen=True)
class ResolvedArtifact:
    name: str
    version: Version | None
    reference: str  # the tag or digest the metadata was read from
    metadata: CandidateMetadata
    location: Location
    tag: str | None = None  # the pinned tag of a tag pin
    dependencies: tuple[str, ...] = ()  # chosen names this artifact needs
    dependency_constraints: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return _label(self.name, self.version, self.metadata.digest)


@dataclass(frozen=True)
class Resolution:
    artifacts: dict[str, ResolvedArtifact]
    edges: tuple[Edge, ...]


# --- search state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Need:
    """One constraint on a name and who set it, for checks and for messages."""

    name: str
    constraint: Constraint | None  # None: a manifest pin, which takes what the pin names
    origin: str  # "falco.toml" or "falco-rules 4.1.0"
    statement: str  # how the origin says it: 'container = "0.3"' / "container >=0.4.0, <1.0.0"
    parent: str | None = None
    from_group: bool = False  # settled from an alternatives group (depends on other choices)

    def describe(self) -> str:
        return f"{self.origin} requires {self.statement}"


@dataclass(frozen=True)
class _Candidate:
    name: str
    version: Version | None
    reference: str
    metadata: CandidateMetadata

    @property
    def label(self) -> str:
        return _label(self.name, self.version, self.metadata.digest)


@dataclass(frozen=True)
class _Group:
    """A dependency with alternatives, waiting for one of its members."""

    dependency: Dependency
    parent: str  # the name of the artifact that declared it


@dataclass(frozen=True)
class _State:
    chosen: dict[str, _Candidate] = field(default_factory=dict)
    needs: dict[str, tuple[_Need, ...]] = field(default_factory=dict)
    order: tuple[str, ...] = ()
    groups: tuple[_Group, ...] = ()

    # Names before this position in ``order`` are all chosen: next_name starts here, so
    # deciding n names costs O(n) scans in all, not O(n²).
    decided: int = 0

    def with_need(self, need: _Need) -> _State:
        needs = dict(self.needs)
        known = need.name in needs  # a name is in ``order`` once it has a need
        needs[need.name] = (*needs.get(need.name, ()), need)
        order = self.order if known else (*self.order, need.name)
        return replace(self, needs=needs, order=order)

    def next_name(self) -> str | None:
        position = self.decided
        while position < len(self.order) and self.order[position] in self.chosen:
            position += 1
        if position > self.decided:
            object.__setattr__(self, "decided", position)  # a cache: the state stays the same
        return self.order[position] if position < len(self.order) else None


@dataclass
class _Failure:
    """Why a branch failed, and which decisions (names) could change that.

    ``culprits`` drives backjumping: a failure that no choice of name N took part in is
    returned past N at once instead of retrying N's other versions (which would fail the
    same way, exponentially often). None means "unknown: retry everything".
    """

    lines: list[str]
    # key -> hint text: one hint per key, so that one constraint is advised once however
    # many versions of its neighbour ran into it.
    hints: dict[str, str] = field(default_factory=dict)
    culprits: frozenset[str] | None = frozenset()

    @classmethod
    def merge(cls, failures: Sequence[_Failure], culprits: frozenset[str] | None) -> _Failure:
        lines = list(dict.fromkeys(line for f in failures for line in f.lines))
        hints: dict[str, str] = {}
        for failure in failures:
            for key, hint in failure.hints.items():
                hints.setdefault(key, hint)
        return cls(lines, hints, culprits)


@dataclass
class _Frame:
    """One name being decided: the candidates left and why the tried ones failed."""

    name: str
    state: _State
    candidates: Iterator[tuple[Version | None, str]]
    own: frozenset[str] | None  # who constrains ``name`` (None: unknown)
    failures: list[_Failure] = field(default_factory=list)
    culprits: set[str] | None = field(default_factory=set)

    def failed(self, failure: _Failure) -> None:
        self.failures.append(failure)
        if self.culprits is not None:
            self.culprits = None if failure.culprits is None else self.culprits | failure.culprits

    def exhausted(self) -> _Failure:
        if self.culprits is None or self.own is None:
            return _Failure.merge(self.failures, None)
        return _Failure.merge(self.failures, frozenset((self.culprits - {self.name}) | self.own))


def _hints(*texts: str) -> dict[str, str]:
    """Hints keyed by their own text (for those not tied to one constraint)."""
    return {text: text for text in texts}


def _culprits(needs: Sequence[_Need], *extra: str | None) -> frozenset[str] | None:
    """The decisions behind ``needs`` (the artifacts that set them) plus ``extra`` names."""
    if any(need.from_group for need in needs):
        return None
    names = {need.parent for need in needs} | set(extra)
    return frozenset(name for name in names if name is not None)


def _label(name: str, version: Version | None, digest: str) -> str:
    return f"{name} {version}" if version is not None else f"{name}@{digest[:19]}"


# --- the resolver ---------------------------------------------------------------------------


def resolve(
    roots: Sequence[DependencySpec],
    provider: MetadataProvider,
    target: TargetSettings,
    platforms: Sequence[str] | None = None,
    preferences: Mapping[str, Version] | None = None,
    *,
    allowed_types: Sequence[str] | None = None,
    directory_for: Callable[[str], str | None] | None = None,
    max_attempts: int = 20_000,
    requested_by: str | None = None,
) -> Resolution:
    """Choose one candidate per needed artifact; ResolutionError explains a conflict.

    ``preferences`` are the versions currently locked: tried first while they satisfy.
    ``allowed_types`` refuses other artifact types; ``directory_for`` (type → install
    directory) enables the check that no two artifacts install the same path.
    ``requested_by`` names where ``roots`` come from when that is not falco.toml (e.g.
    "the command line"), for the messages.
    """
    resolver = _Resolver(
        roots,
        provider,
        target,
        tuple(platforms if platforms is not None else target.platforms),
        dict(preferences or {}),
        tuple(allowed_types) if allowed_types is not None else None,
        max_attempts,
        requested_by,
    )
    resolution = resolver.run()
    if directory_for is not None:
        check_file_conflicts(resolution, resolver.platforms, directory_for)
    return resolution


class _Resolver:
    def __init__(
        self,
        roots: Sequence[DependencySpec],
        provider: MetadataProvider,
        target: TargetSettings,
        platforms: tuple[str, ...],
        preferences: dict[str, Version],
        allowed_types: tuple[str, ...] | None,
        max_attempts: int,
        requested_by: str | None = None,
    ) -> None:
        self.roots = {spec.name: spec for spec in roots}
        # How messages name the roots' origin: falco.toml, or e.g. the command line.
        self.origin = requested_by or MANIFEST_ORIGIN
        self.subject = MANIFEST_ORIGIN if requested_by is None else "the requested artifacts"
        self.where = "in falco.toml" if requested_by is None else f"on {requested_by}"
        self.provider = provider
        self.target = target
        self.platforms = platforms
        self.preferences = preferences
        self.allowed_types = allowed_types
        self.max_attempts = max_attempts
        self.attempts = 0
        self._versions: dict[str, list[tuple[Version | None, str]]] = {}
        self._metadata: dict[tuple[str, str], CandidateMetadata] = {}
        self._required_by: dict[str, str] = {}  # first artifact that asked for a name

    # -- provider access (memoized; provider errors name who asked) --------------------------

    def candidate_refs(self, name: str) -> list[tuple[Version | None, str]]:
        """(version, tag or digest), newest first; a pinned root has exactly one."""
        if name not in self._versions:
            spec = self.roots.get(name)
            if spec is not None and spec.is_pinned:
                reference = self._pin(name)
                metadata = self.metadata(name, reference)
                version = parse_version(metadata.version or "") or (
                    parse_version(spec.tag) if spec.tag else None
                )
                self._versions[name] = [(version, reference)]
            else:
                try:
                    found = self.provider.versions(name)
                except FalcopkgError as exc:
                    raise self._with_origin(name, exc) from None
                self._versions[name] = list(found)
        return self._versions[name]

    def metadata(self, name: str, reference: str) -> CandidateMetadata:
        key = (name, reference)
        if key not in self._metadata:
            try:
                self._metadata[key] = self.provider.metadata(name, reference)
            except FalcopkgError as exc:
                raise self._with_origin(name, exc) from None
        return self._metadata[key]

    def _with_origin(self, name: str, exc: FalcopkgError) -> FalcopkgError:
        """``exc`` naming the artifact that needed ``name`` (errors keep their class)."""
        parent = self._required_by.get(name)
        spec = self.roots.get(name)
        if parent is not None:
            exc.message = f"{exc.message} (required by {parent})"
        elif spec is not None and spec.where is not None:
            exc.message = f"{exc.message} (for {spec.describe()}, {spec.where})"
        exc.args = (exc.message,)
        return exc

    def prefetch(self, state: _State, names: Sequence[str]) -> None:
        """Fetch, in parallel batches, the tag lists and the best candidate's metadata of
        ``names``, then of what those candidates depend on (a few levels): the search then
        finds everything it is likely to need already fetched."""
        wanted = {name: state.needs.get(name, ()) for name in names}
        for _ in range(LOOKAHEAD_LEVELS):
            if not wanted:
                return
            best = self._prefetch_level(wanted)
            following: dict[str, tuple[_Need, ...]] = {}
            for name, reference in best:
                try:
                    metadata = self.metadata(name, reference)
                except FalcopkgError:
                    continue
                for dependency in metadata.dependencies:
                    if dependency.name in state.needs or dependency.name in wanted:
                        continue
                    try:
                        constraint = falco_requirement(dependency.version)
                    except ValueError:
                        continue
                    need = _Need(dependency.name, constraint, name, "", parent=name)
                    following[dependency.name] = (need,)
            wanted = {n: needs for n, needs in following.items() if n not in self._versions}

    def _prefetch_level(self, wanted: Mapping[str, Sequence[_Need]]) -> list[tuple[str, str]]:
        unpinned = [name for name in wanted if not self._is_pinned(name)]
        missing = [name for name in unpinned if name not in self._versions]
        if missing:
            self.provider.prefetch([(name, None) for name in missing])
        best: list[tuple[str, str]] = [
            (name, self._pin(name)) for name in wanted if self._is_pinned(name)
        ]
        for name in unpinned:
            try:
                best += [
                    (name, reference) for _, reference in self.ordered_refs(name, wanted[name])[:1]
                ]
            except FalcopkgError:
                continue  # raised again, with context, when the name is decided
        todo: list[tuple[str, str | None]] = [item for item in best if item not in self._metadata]
        if todo:
            self.provider.prefetch(todo)
        return best

    def _is_pinned(self, name: str) -> bool:
        spec = self.roots.get(name)
        return spec is not None and spec.is_pinned

    def _pin(self, name: str) -> str:
        spec = self.roots[name]
        return known(spec.digest or spec.tag, f"the pin of {name}")

    # -- the search ----------------------------------------------------------------------------

    def run(self) -> Resolution:
        state = _State()
        for spec in self.roots.values():
            constraint = None if spec.is_pinned else spec.constraint
            state = state.with_need(_Need(spec.name, constraint, self.origin, spec.describe()))
        self.prefetch(state, list(self.roots))
        result = self.solve(state)
        if isinstance(result, _Failure):
            lines = result.lines[:MAX_LINES]
            more = len(result.lines) - len(lines)
            text = "\n  ".join(lines) + (f"\n  … and {more} more" if more else "")
            raise ResolutionError(
                f"no set of versions satisfies {self.subject}:\n  {text}",
                hint="; ".join(list(result.hints.values())[:2]) or None,
            )
        return self.assemble(result)

    def solve(self, root: _State) -> _State | _Failure:
        """Depth-first search with backjumping, one frame per decided name.

        Iterative (an explicit stack, not recursion), so a project of many thousands of
        artifacts needs no change to the interpreter's recursion limit.
        """
        frames: list[_Frame] = []
        outcome = self._open(root, frames)
        while True:
            if outcome is not None:
                if not isinstance(outcome, _Failure) or not frames:
                    return outcome  # a solution ends the whole search; so does the root's failure
                frame = frames[-1]
                if outcome.culprits is not None and frame.name not in outcome.culprits:
                    frames.pop()  # backjump: no version of this name can fix that
                    continue
                frame.failed(outcome)
            frame = frames[-1]
            outcome = None
            for version, reference in frame.candidates:
                self.attempts += 1
                if self.attempts > self.max_attempts:
                    raise ResolutionError(
                        f"gave up after trying {self.max_attempts} candidates",
                        hint=f"narrow the version constraints {self.where}",
                    )
                metadata = self.metadata(frame.name, reference)
                chosen = self.choose(
                    _Candidate(frame.name, version, reference, metadata), frame.state
                )
                if isinstance(chosen, _Failure):
                    frame.failed(chosen)
                    continue
                outcome = self._open(chosen, frames)
                break
            else:
                frames.pop()
                outcome = frame.exhausted()

    def _open(self, state: _State, frames: list[_Frame]) -> _State | _Failure | None:
        """Start deciding the next name of ``state`` (push its frame: None), or the outcome
        when nothing is left to decide or the next name has no candidate."""
        while True:
            name = state.next_name()
            if name is not None:
                break
            expanded = self.settle_groups(state)
            if expanded is None or isinstance(expanded, _Failure):
                return state if expanded is None else expanded
            state = expanded
        needs = state.needs.get(name, ())
        candidates = self.ordered_refs(name, needs)
        if not candidates:
            return self.no_candidate(name, state)
        frames.append(_Frame(name, state, iter(candidates), _culprits(needs)))
        return None

    def ordered_refs(self, name: str, needs: Sequence[_Need]) -> list[tuple[Version | None, str]]:
        """Candidates every need allows, newest first, the preferred one first."""
        allowed = [(v, r) for v, r in self.candidate_refs(name) if self.allows(needs, v)]
        preferred = self.preferences.get(name)
        if preferred is not None:
            # Stable: keeps newest-first behind the preferred version.
            allowed.sort(
                key=lambda item: item[0] is None or not same_precedence(item[0], preferred)
            )
        return allowed

    @staticmethod
    def allows(needs: Sequence[_Need], version: Version | None) -> bool:
        if version is None:
            # A pin without a version satisfies only the manifest line that pinned it.
            return all(need.constraint is None for need in needs)
        if not all(need.constraint is None or need.constraint.allows(version) for need in needs):
            return False
        if version.prerelease:
            # Falco-rule needs judge a pre-release by its numbers; only a manifest line (a
            # constraint naming one, or a pin) can ask for a pre-release at all.
            return any(need.constraint is None or not need.constraint.falco_rule for need in needs)
        return True

    def no_candidate(self, name: str, state: _State) -> _Failure:
        """Why no version of ``name`` satisfies its needs, naming each side."""
        needs = state.needs.get(name, ())
        refs = self.candidate_refs(name)
        manifest_needs = [n for n in needs if n.parent is None]
        artifact_needs = [n for n in needs if n.parent is not None]
        stated = " and ".join
        if (
            manifest_needs
            and artifact_needs
            and any(self.allows(artifact_needs, v) for v, _ in refs)
        ):
            line = (
                f"{stated(n.describe() for n in artifact_needs)}, but "
                f"{stated(n.describe() for n in manifest_needs)}"
            )
            statement = manifest_needs[0].statement
            hints = {
                statement: f"relax `{statement}` {self.where} to allow what "
                f"{artifact_needs[0].parent} needs"
            }
        elif len(artifact_needs) > 1 and all(
            any(self.allows([n], v) for v, _ in refs) for n in artifact_needs
        ):
            line = f"{artifact_needs[0].describe()}, but {stated(n.describe() for n in artifact_needs[1:])}"
            hints = _hints(
                f"choose versions of {artifact_needs[0].parent} and {artifact_needs[1].parent} "
                f"that agree on {name} (constrain one {self.where})"
            )
        else:
            shown = ", ".join(str(v) for v, _ in refs[:6] if v is not None) or "none"
            shown += ", …" if len(refs) > 6 else ""
            line = (
                f"{stated(n.describe() for n in needs)}, but no version of {name} matches "
                f"(available: {shown})"
            )
            hints = _hints(f"relax the constraint on {name}, or publish a matching version")
        return _Failure([line], hints, _culprits(needs))

    def choose(self, candidate: _Candidate, state: _State) -> _State | _Failure:
        """``state`` with ``candidate`` chosen and its dependencies needed, or why not."""
        problems = self.own_problems(candidate)
        if problems:
            return problems
        chosen = dict(state.chosen)
        chosen[candidate.name] = candidate
        state = replace(state, chosen=chosen)
        new_names: list[str] = []
        for dependency in candidate.metadata.dependencies:
            member, version_text = self.member_for(dependency, state)
            if member is None:
                state = replace(
                    state,
                    groups=(*state.groups, _Group(dependency, candidate.name)),
                )
                continue
            need = self.need_from(
                candidate, member, version_text, from_group=bool(dependency.alternatives)
            )
            if isinstance(need, _Failure):
                return need
            checked = self.add_need(state, need)
            if isinstance(checked, _Failure):
                return checked
            if member not in state.order:
                new_names.append(member)
            state = checked
        if new_names:
            self.prefetch(state, new_names)
        return state

    def own_problems(self, candidate: _Candidate) -> _Failure | None:
        metadata = candidate.metadata
        if self.allowed_types is not None and metadata.type not in self.allowed_types:
            return _Failure(
                [f"{candidate.label} is a {metadata.type}, which [install] allowed_types excludes"],
                _hints(f'add "{metadata.type}" to [install] allowed_types in falco.toml'),
                frozenset({candidate.name}),
            )
        unmet = unmet_requirements(candidate.label, metadata.requirements, self.target)
        if unmet:
            return _Failure(
                unmet,
                _hints(
                    "set [target] to the Falco you run (engine_version is Falco's engine "
                    "version, printed by `falco --version` as `Engine:`, not the Falco "
                    "release), or constrain the artifact to an older version"
                ),
                frozenset({candidate.name}),
            )
        if metadata.is_multi_platform:
            missing = [p for p in self.platforms if p not in metadata.platforms]
            if missing:
                has = ", ".join(sorted(metadata.platforms)) or "none"
                return _Failure(
                    [f"{candidate.label} has no {', '.join(missing)} build (it has {has})"],
                    _hints(
                        "remove the platform from [target] platforms, or use a version built for it"
                        if self.origin == MANIFEST_ORIGIN
                        else f"choose a platform {candidate.name} is built for"
                    ),
                    frozenset({candidate.name}),
                )
        return None

    def member_for(self, dependency: Dependency, state: _State) -> tuple[str | None, str]:
        """The member of ``dependency`` to require, and its version text; None: undecided.

        A plain dependency is its name. In an alternatives group, a member already chosen
        or needed by someone else satisfies it (the first such, in the group's order).
        """
        if not dependency.alternatives:
            return dependency.name, dependency.version
        versions = {dependency.name: dependency.version}
        versions.update({alt.name: alt.version for alt in dependency.alternatives})
        for name in dependency.names:
            if name in state.chosen:
                return name, versions[name]
        for name in dependency.names:
            if name in state.needs:
                return name, versions[name]
        return None, ""

    def need_from(
        self, candidate: _Candidate, member: str, version_text: str, *, from_group: bool = False
    ) -> _Need | _Failure:
        try:
            constraint = falco_requirement(version_text)
        except ValueError:
            return _Failure(
                [f"{candidate.label} requires {member} {version_text!r}, which is not a version"],
                _hints(f"ask the publisher of {candidate.name} to fix its dependencies"),
                frozenset({candidate.name}),
            )
        self._required_by.setdefault(member, candidate.label)
        return _Need(
            member,
            constraint,
            candidate.label,
            f"{member} {constraint}",
            parent=candidate.name,
            from_group=from_group,
        )

    def add_need(self, state: _State, need: _Need) -> _State | _Failure:
        """``state`` with ``need`` added, checked against the chosen or available versions."""
        chosen = state.chosen.get(need.name)
        if chosen is not None:
            # Checked with the needs already there: a pre-release the manifest asked for
            # stays allowed when an artifact's Falco rule is added.
            if self.allows([*state.needs.get(need.name, ()), need], chosen.version):
                return state.with_need(need)
            others = [n for n in state.needs.get(need.name, ()) if n.origin != need.origin]
            why = " and ".join(n.describe() for n in others) or "it was chosen first"
            return _Failure(
                [f"{need.describe()}, but {chosen.label} is chosen ({why})"],
                _hints(
                    f"relax the constraint on {need.name} {self.where}, or constrain {need.parent}"
                ),
                _culprits([need, *others], need.name),
            )
        state = state.with_need(need)
        if not self.ordered_refs(need.name, state.needs[need.name]):
            return self.no_candidate(need.name, state)
        return state

    def settle_groups(self, state: _State) -> _State | _Failure | None:
        """Apply alternatives groups once everything else is chosen; None: nothing left."""
        changed = False
        for group in state.groups:
            member, version_text = self.member_for(group.dependency, state)
            if member is None:
                member, version_text = group.dependency.name, group.dependency.version
            parent = state.chosen[group.parent]
            need = self.need_from(parent, member, version_text, from_group=True)
            if isinstance(need, _Failure):
                return need
            if any(n.origin == need.origin for n in state.needs.get(member, ())):
                continue
            checked = self.add_need(state, need)
            if isinstance(checked, _Failure):
                checked.culprits = None
                return checked
            state, changed = checked, True
        if not changed:
            return None
        return replace(state, groups=())

    # -- the result ----------------------------------------------------------------------------

    def assemble(self, state: _State) -> Resolution:
        edges: list[Edge] = []
        artifacts: dict[str, ResolvedArtifact] = {}
        children: dict[str, dict[str, str]] = {}  # parent -> child -> constraint, one pass
        for needs in state.needs.values():
            for need in needs:
                if need.parent is not None:
                    children.setdefault(need.parent, {})[need.name] = str(need.constraint)
        for name in state.order:
            candidate = state.chosen[name]
            needs_of_children = children.get(name, {})
            spec = self.roots.get(name)
            for need in state.needs[name]:
                constraint = (
                    _root_constraint(spec) if spec and need.parent is None else str(need.constraint)
                )
                edges.append(Edge(need.parent, name, constraint))
            try:
                location = self.provider.locate(name)
            except FalcopkgError as exc:
                raise self._with_origin(name, exc) from None
            artifacts[name] = ResolvedArtifact(
                name=name,
                version=candidate.version,
                reference=candidate.reference,
                metadata=candidate.metadata,
                location=location,
                tag=spec.tag if spec is not None else None,
                dependencies=tuple(sorted(needs_of_children)),
                dependency_constraints=dict(sorted(needs_of_children.items())),
            )
        return Resolution(artifacts, tuple(edges))


def _root_constraint(spec: DependencySpec) -> str:
    if spec.digest:
        return f"digest {spec.digest}"
    if spec.tag:
        return f"tag {spec.tag}"
    return str(spec.constraint)


def check_file_conflicts(
    resolution: Resolution, platforms: Sequence[str], directory_for: Callable[[str], str | None]
) -> None:
    """ResolutionError when two artifacts would install the same path into one directory."""
    owners: dict[tuple[str, str, str], str] = {}
    for name in sorted(resolution.artifacts):
        artifact = resolution.artifacts[name]
        directory = directory_for(artifact.metadata.type)
        if directory is None:
            continue  # a type that is not installed cannot conflict
        for platform in platforms:
            locked = artifact.metadata.platforms.get(platform) or artifact.metadata.platforms.get(
                ""
            )
            if locked is None:
                continue
            for path in locked.layer.files:
                # "./a.yaml" and "a.yaml" are one file (a prefix, not characters, is dropped).
                key = (directory, PurePosixPath(path).as_posix(), platform)
                other = owners.setdefault(key, name)
                if other != name:
                    first = resolution.artifacts[other]
                    raise ResolutionError(
                        f"{first.label} and {artifact.label} both install {directory.rstrip('/')}/{key[1]}",
                        hint=f"keep only one of {other} and {name} in falco.toml, or install "
                        "their types into different directories ([install])",
                    )
