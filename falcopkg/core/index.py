"""Index entries (SPEC §3): parse and validate an index's YAML, rank search results.

Pure: the text comes from services/indexes.py, which also caches the parsed form
(``entries_to_payload``/``entries_from_payload``) so that large cached indexes load without
YAML.

An index is a YAML list of mappings. ``name``, ``type``, ``registry`` and ``repository``
are mandatory; ``description``, ``home``, ``keywords``, ``license``, ``maintainers``,
``sources`` and ``signature`` are optional; unknown fields are ignored (falcoctl's
indexes carry more over time). Duplicate names in one index are an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from falcopkg.core.reference import NAME_RE, parse_reference
from falcopkg.errors import ConfigError, InvalidReferenceError

MANDATORY_FIELDS = ("name", "type", "registry", "repository")
INDEX_HINT = "every index entry needs `name`, `type`, `registry` and `repository`"

# Search ranks, best first (SPEC §3).
RANK_EXACT_NAME = 0
RANK_NAME_PREFIX = 1
RANK_KEYWORD = 2
RANK_SUBSTRING = 3
RANK_FUZZY = 4
FUZZY_CUTOFF = 0.75


class Maintainer(NamedTuple):
    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class IndexEntry:
    """One artifact of an index. ``reference`` is where it lives: ``registry/repository``."""

    name: str
    type: str
    registry: str
    repository: str
    description: str = ""
    home: str = ""
    keywords: tuple[str, ...] = ()
    license: str = ""
    maintainers: tuple[Maintainer, ...] = ()
    sources: tuple[str, ...] = ()
    # The cosign verification settings as written in the index (kept for exports).
    signature: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def reference(self) -> str:
        return f"{self.registry}/{self.repository}"

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data, in the index's own field names."""
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "registry": self.registry,
            "repository": self.repository,
            "description": self.description,
            "home": self.home,
            "keywords": list(self.keywords),
            "license": self.license,
            "maintainers": [{"name": m.name, "email": m.email} for m in self.maintainers],
            "sources": list(self.sources),
        }
        if self.signature is not None:
            data["signature"] = self.signature
        return data


# --- parsing -----------------------------------------------------------------------


def parse_index(text: str, source: str) -> list[IndexEntry]:
    """Parse and validate an index; every error names ``source`` and the entry at fault.

    ``source`` describes the index for messages, e.g. ``index falcosecurity (https://…)``.
    """
    from falcopkg.yamlfile import YamlProblem, load_yaml

    try:
        data = load_yaml(text)
    except YamlProblem as exc:
        where = f"line {exc.line}, column {exc.column}: " if exc.line else ""
        raise ConfigError(
            f"{source}: {where}invalid YAML: {exc}",
            hint="the index must be a YAML list of entries; check the file at that line",
        ) from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(
            f"{source}: expected a YAML list of entries, found {_kind(data)}",
            hint="an index is a list of entries, each starting with `- name: …`",
        )
    entries: list[IndexEntry] = []
    first_position: dict[str, int] = {}
    for position, item in enumerate(data):
        entry = _parse_entry(item, position, text, source)
        if entry.name in first_position:
            first = first_position[entry.name]
            raise ConfigError(
                f"{source}: {_where(text, position)}duplicate entry name {entry.name!r} "
                f"(first defined by entry #{first + 1}{_at_line(text, first)})",
                hint="names in one index must be unique; rename or remove one of them",
            )
        first_position[entry.name] = position
        entries.append(entry)
    return entries


def _parse_entry(item: Any, position: int, text: str, source: str) -> IndexEntry:
    if not isinstance(item, dict):
        raise ConfigError(
            f"{source}: {_where(text, position)}entry #{position + 1} is {_kind(item)}, "
            "expected a mapping",
            hint=INDEX_HINT,
        )
    label = _label(item, position)
    values: dict[str, str] = {}
    for key in MANDATORY_FIELDS:
        value = item.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ConfigError(
                f"{source}: {_where(text, position)}{label} is missing the mandatory field `{key}`",
                hint=INDEX_HINT,
            )
        if not isinstance(value, str):
            raise ConfigError(
                f"{source}: {_where(text, position)}{label}: `{key}` must be a string, "
                f"found {_kind(value)}",
                hint=INDEX_HINT,
            )
        values[key] = value.strip()
    if not NAME_RE.match(values["name"]):
        raise ConfigError(
            f"{source}: {_where(text, position)}{label}: invalid name {values['name']!r}",
            hint="names start with a letter or digit and use letters, digits, `.`, `_`, `-`",
        )
    try:
        parsed = parse_reference(f"{values['registry']}/{values['repository']}")
    except InvalidReferenceError as exc:
        raise ConfigError(
            f"{source}: {_where(text, position)}{label}: invalid registry/repository: "
            f"{exc.message}",
            hint="`registry` is a host like ghcr.io and `repository` a path like "
            "falcosecurity/rules/falco-rules, without tag or digest",
        ) from None
    if parsed.tag or parsed.digest:
        raise ConfigError(
            f"{source}: {_where(text, position)}{label}: `repository` must not carry a "
            "tag or digest",
            hint="write the repository path only, e.g. falcosecurity/rules/falco-rules",
        )

    def optional(key: str) -> Any:
        return item.get(key)

    try:
        return IndexEntry(
            name=values["name"],
            type=values["type"],
            registry=values["registry"],
            repository=values["repository"],
            description=_text(optional("description"), "description"),
            home=_text(optional("home"), "home"),
            keywords=_strings(optional("keywords"), "keywords"),
            license=_text(optional("license"), "license"),
            maintainers=_maintainers(optional("maintainers")),
            sources=_strings(optional("sources"), "sources"),
            signature=_signature(optional("signature")),
        )
    except _FieldError as exc:
        raise ConfigError(
            f"{source}: {_where(text, position)}{label}: {exc}", hint=INDEX_HINT
        ) from None


class _FieldError(ValueError):
    pass


def _text(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value).strip()
    raise _FieldError(f"`{key}` must be a string, found {_kind(value)}")


def _strings(value: Any, key: str) -> tuple[str, ...]:
    # A single string is tolerated where a list is expected (hand-written indexes do it).
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if not isinstance(value, list):
        raise _FieldError(f"`{key}` must be a list of strings, found {_kind(value)}")
    return tuple(_text(item, key) for item in value if item is not None)


def _maintainers(value: Any) -> tuple[Maintainer, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _FieldError(f"`maintainers` must be a list, found {_kind(value)}")
    result = []
    for item in value:
        if isinstance(item, str):
            result.append(Maintainer(name=item))
        elif isinstance(item, dict):
            result.append(
                Maintainer(
                    name=_text(item.get("name"), "maintainers.name"),
                    email=_text(item.get("email"), "maintainers.email"),
                )
            )
        else:
            raise _FieldError(f"`maintainers` entries must be mappings, found {_kind(item)}")
    return tuple(result)


def _signature(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _FieldError(f"`signature` must be a mapping, found {_kind(value)}")
    return value


def _label(item: dict[str, Any], position: int) -> str:
    name = item.get("name")
    if isinstance(name, str) and name.strip():
        return f"entry #{position + 1} ({name.strip()!r})"
    return f"entry #{position + 1}"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _entry_line(text: str, position: int) -> int | None:
    """1-based line where entry ``position`` starts; computed only when reporting an error."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError:
        return None
    if isinstance(node, yaml.SequenceNode) and position < len(node.value):
        return int(node.value[position].start_mark.line) + 1
    return None


def _where(text: str, position: int) -> str:
    line = _entry_line(text, position)
    return f"line {line}: " if line is not None else ""


def _at_line(text: str, position: int) -> str:
    line = _entry_line(text, position)
    return f" at line {line}" if line is not None else ""


# --- the cached fast form ----------------------------------------------------------

# The parsed form services/indexes.py caches, as JSON. Loading it is most of the time of a
# search over a big cached index, so it is shaped to decode fast: values many entries share
# (type, registry, license, maintainers, signature settings) are stored once in tables and
# referenced by number, string lists are joined into one string, and each entry's search
# text is precomputed. Bump PAYLOAD_FORMAT on any change.
PAYLOAD_FORMAT = 4
_ROW_LENGTH = 12
_LIST_SEPARATOR = "\x1f"  # ASCII unit separator; lists holding it (or "") stay lists
_TABLES = ("types", "registries", "licenses", "maintainers", "signatures")


def entries_to_payload(entries: Sequence[IndexEntry]) -> dict[str, Any]:
    """``entries`` as plain data for the cache (read back with :class:`IndexPayload`)."""
    import json

    tables: dict[str, dict[Any, int]] = {name: {} for name in _TABLES}
    values: dict[str, list[Any]] = {name: [] for name in _TABLES}

    def ref(table: str, value: Any, key: Any = None) -> int:
        known = tables[table]
        key = value if key is None else key
        if key not in known:
            known[key] = len(values[table])
            values[table].append(value)
        return known[key]

    rows = []
    for entry in entries:
        signature_ref = -1
        if entry.signature is not None:
            key = json.dumps(entry.signature, sort_keys=True, default=str)
            signature_ref = ref("signatures", entry.signature, key)
        rows.append(
            [
                entry.name,
                ref("types", entry.type),
                ref("registries", entry.registry),
                entry.repository,
                entry.description,
                entry.home,
                _join(entry.keywords),
                ref("licenses", entry.license),
                ref("maintainers", [list(m) for m in entry.maintainers], entry.maintainers),
                _join(entry.sources),
                signature_ref,
                search_text(entry),
            ]
        )
    return {**values, "rows": rows}


def _join(items: tuple[str, ...]) -> str | list[str]:
    if any(not item or _LIST_SEPARATOR in item for item in items):
        return list(items)
    return _LIST_SEPARATOR.join(items)


def _split(value: str | list[str]) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(value)
    return tuple(value.split(_LIST_SEPARATOR)) if value else ()


class IndexPayload:
    """A cached payload: search candidates straight from its rows, entries built on demand.

    Searching a 10,000-entry index needs every row's name, type and search text but only
    the matching entries, so those are the only ones built. The constructor checks the
    shape (KeyError/TypeError/ValueError on a damaged payload). Shared values are shared
    between entries: treat ``signature`` dicts as read-only.
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        self.rows: list[list[Any]] = payload["rows"]
        self._types: list[str] = payload["types"]
        self._registries: list[str] = payload["registries"]
        self._licenses: list[str] = payload["licenses"]
        self._maintainers = [
            tuple(Maintainer(name, email) for name, email in group)
            for group in payload["maintainers"]
        ]
        self._signatures: list[dict[str, Any] | None] = [*payload["signatures"], None]
        counts = (len(self._types), len(self._registries), len(self._licenses))
        maintainer_count, signature_count = len(self._maintainers), len(self._signatures) - 1
        for row in self.rows:
            if (
                len(row) != _ROW_LENGTH
                or not -1 < row[1] < counts[0]
                or not -1 < row[2] < counts[1]
                or not -1 < row[7] < counts[2]
                or not -1 < row[8] < maintainer_count
                or not -2 < row[10] < signature_count
            ):
                raise ValueError("damaged index payload row")

    def __len__(self) -> int:
        return len(self.rows)

    def names(self) -> list[str]:
        return [row[0] for row in self.rows]

    def candidates(self) -> list[SearchCandidate]:
        types = self._types
        return [(row[0], types[row[1]], row[11]) for row in self.rows]

    def entry(self, position: int) -> IndexEntry:
        (name, type_ref, registry_ref, repository, description, home, keywords, license_ref,
         maintainer_ref, sources, signature_ref, _) = self.rows[position]  # fmt: skip
        # Bypasses the generated __init__, which sets each field of a frozen dataclass through
        # object.__setattr__ (3x slower on 10,000 entries); the values were validated by
        # parse_index before they were cached.
        entry: IndexEntry = object.__new__(IndexEntry)
        object.__setattr__(
            entry,
            "__dict__",
            {
                "name": name,
                "type": self._types[type_ref],
                "registry": self._registries[registry_ref],
                "repository": repository,
                "description": description,
                "home": home,
                "keywords": _split(keywords),
                "license": self._licenses[license_ref],
                "maintainers": self._maintainers[maintainer_ref],
                "sources": _split(sources),
                "signature": self._signatures[signature_ref],
            },
        )
        return entry

    def entries(self) -> list[IndexEntry]:
        return [self.entry(position) for position in range(len(self.rows))]


def entries_from_payload(payload: dict[str, Any]) -> list[IndexEntry]:
    """Every entry of a payload written by :func:`entries_to_payload`."""
    return IndexPayload(payload).entries()


# --- search --------------------------------------------------------------------------

# What ranking looks at: (name, type, search text). See search_text().
SearchCandidate = tuple[str, str, str]


def search_text(entry: IndexEntry) -> str:
    """The lowercase text search matches: the name, then each keyword on its own line, then
    the description on one line. No line holds a newline, so ``"\\n" + term + "\\n"`` finds
    exactly a keyword."""
    keywords = "".join(" ".join(keyword.split()) + "\n" for keyword in entry.keywords)
    description = " ".join(entry.description.split())
    return f"{entry.name}\n{keywords}\t{description}".lower()


def search(
    entries: Sequence[IndexEntry],
    keywords: Iterable[str],
    type: str | None = None,  # the index field name, shadowing is harmless here
) -> list[IndexEntry]:
    """Entries matching any of ``keywords``, best first (see :func:`rank`)."""
    candidates = [(entry.name, entry.type, search_text(entry)) for entry in entries]
    return [entries[position] for position in rank(candidates, keywords, type)]


def rank(
    candidates: Sequence[SearchCandidate],
    keywords: Iterable[str],
    type: str | None = None,  # the index field name, shadowing is harmless here
) -> list[int]:
    """Positions of the candidates matching any of ``keywords``, best first.

    Rank per keyword: exact name > name prefix > exact keyword > substring of the name,
    a keyword or the description > fuzzy name (typos; only for a keyword that matched
    nothing otherwise, so exact searches are not padded with look-alikes). A candidate
    takes its best rank over the keywords; among equals, one matching more keywords comes
    first, then the order of ``candidates`` (index order, then entry order), then the name:
    the output is the same on every run. ``type`` keeps only candidates of that type.
    No keywords: every candidate of the type, in order.
    """
    terms = list(dict.fromkeys(" ".join(k.split()).lower() for k in keywords if k.strip()))
    if not terms:
        return [i for i, c in enumerate(candidates) if type is None or c[1] == type]

    # (rank, -matched terms, -similarity, position, name) -> stable and total.
    scored: list[tuple[int, int, float, int, str]] = []
    unmatched: list[tuple[int, str, str]] = []  # (position, name, lowercase name)
    found: set[str] = set()
    for position, (name, entry_type, text) in enumerate(candidates):
        if type is not None and entry_type != type:
            continue
        best = RANK_FUZZY
        matched = 0
        for term in terms:
            if term not in text:  # most candidates match no term: one `in` tells
                continue
            if text.startswith(term):  # the text starts with the name and a newline
                rank_ = RANK_EXACT_NAME if len(term) == len(name) else RANK_NAME_PREFIX
            elif f"\n{term}\n" in text:
                rank_ = RANK_KEYWORD
            else:
                rank_ = RANK_SUBSTRING
            matched += 1
            best = min(best, rank_)
            found.add(term)
        if matched:
            scored.append((best, -matched, 0.0, position, name))
        else:
            unmatched.append((position, name, text[: len(name)]))

    # Fuzzy matching is the fallback for terms nothing else matched (a typo, most likely).
    scored.extend(_fuzzy([t for t in terms if t not in found], unmatched))
    scored.sort()
    return [item[3] for item in scored]


def _fuzzy(
    terms: list[str], unmatched: list[tuple[int, str, str]]
) -> list[tuple[int, int, float, int, str]]:
    """Names that look like a term with a typo (difflib's ratio, cheap bounds first)."""
    terms = [term for term in terms if len(term) >= 3]  # shorter: no meaningful similarity
    if not terms:
        return []
    import difflib

    results = []
    matchers = []
    for term in terms:
        matcher = difflib.SequenceMatcher(autojunk=False)
        matcher.set_seq2(term)
        matchers.append((matcher, len(term)))
    for position, name, lower_name in unmatched:
        best = 0.0
        matched = 0
        for matcher, term_length in matchers:
            # Upper bound of the ratio from the lengths alone (difflib's real_quick_ratio).
            total = len(lower_name) + term_length
            if 2.0 * min(len(lower_name), term_length) / total < FUZZY_CUTOFF:
                continue
            matcher.set_seq1(lower_name)
            if matcher.quick_ratio() < FUZZY_CUTOFF:
                continue
            ratio = matcher.ratio()
            if ratio >= FUZZY_CUTOFF:
                matched += 1
                best = max(best, ratio)
        if matched:
            results.append((RANK_FUZZY, -matched, -round(best, 6), position, name))
    return results
