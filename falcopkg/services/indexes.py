"""Fetch, cache and revalidate indexes; look names up across them (SPEC §3, §4).

Cache layout, one directory per index source (``sha256`` of its URL, or of the absolute
path of a local index)::

    <cache>/indexes/<hex>/meta.json            url, ETag, Last-Modified, digest, count, time
    <cache>/indexes/<hex>/index.yaml           the raw bytes last downloaded (remote only)
    <cache>/indexes/<hex>/parsed-<digest>.bin  the validated entries as rows (fast form)

Like falcoctl, commands use a cached index as it is and only ``index update`` revalidates it
(with ``If-None-Match``/``If-Modified-Since``; a 304 writes nothing). A missing cache is
filled on first use. The fast form is keyed by the content digest, so it can never
describe other bytes than ``meta.json`` names; loading it needs neither YAML nor the HTTP stack.
It is the payload in :mod:`falcopkg.fastform` (marshal behind a checked header): anything
written by another format or Python, or damaged, reads as missing, and the fast form is rebuilt from the index.

Credentials for HTTP basic auth come from ``FALCOPKG_INDEX_<NAME>_USERNAME``/``_PASSWORD``
or the credentials file (``index add --username U --password-stdin``), keyed by index name.
They are sent only to the index's own host, over https unless http was explicitly allowed,
and never appear in URLs, messages or files other than the credentials file.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from falcopkg import fastform
from falcopkg.core.index import (
    PAYLOAD_FORMAT,
    IndexEntry,
    IndexPayload,
    SearchCandidate,
    entries_to_payload,
    search_text,
)
from falcopkg.core.index_config import IndexConfig
from falcopkg.core.reference import Reference, parse_reference
from falcopkg.errors import (
    ConfigError,
    FalcopkgError,
    InvalidReferenceError,
    NetworkError,
    OfflineError,
    known,
)

if TYPE_CHECKING:
    from falcopkg.deadline import CommandBudget
    from falcopkg.http import Response, Transport
    from falcopkg.oci.credentials import Credential

INDEX_ENV_PREFIX = "FALCOPKG_INDEX_"
MAX_INDEX_BYTES = 64 * 1024 * 1024
#: Total seconds for one index download (connect, reads, retries, waits).
DEFAULT_TIMEOUT = 30.0
# Like the OCI client's: a host that does not answer fails fast enough for a retry to fit
# in falcopkg.retry.CONNECT_RETRY_BUDGET.
CONNECT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
MAX_RETRY_AFTER = 30.0
META_FILE = "meta.json"
RAW_FILE = "index.yaml"
# The fast form's kind (falcopkg.fastform): a new payload format reads as missing.
_PARSED_KIND = f"index {PAYLOAD_FORMAT}"


class UnknownArtifactError(InvalidReferenceError):
    """A name that no configured index defines."""


# NamedTuples and plain classes here, not dataclasses: creating a dataclass costs about a
# millisecond at import, and `artifact search` imports this module on every run.


class CacheInfo(NamedTuple):
    """What ``meta.json`` records about the cached copy of an index."""

    url: str
    digest: str
    entries: int
    fetched_at: str  # ISO 8601, UTC
    etag: str | None = None
    last_modified: str | None = None
    # Size and mtime (ns) of a local index file when it was read: unchanged, no re-hashing.
    source_stat: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "digest": self.digest,
            "entries": self.entries,
            "fetched_at": self.fetched_at,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "source_stat": list(self.source_stat) if self.source_stat else None,
        }


class IndexUpdate(NamedTuple):
    """The result of revalidating an index: its entries and whether anything changed.

    ``not_modified`` is True when the server answered 304; ``changed`` when new content was
    stored (False too for a 200 with identical bytes, or an unchanged local file).
    """

    entries: list[IndexEntry]
    changed: bool
    not_modified: bool = False


class LoadedIndex:
    """An index for lookups and search.

    Loaded from the cache it wraps the cached payload: search reads names, types and search
    texts from its rows and builds only the entries it returns; ``entries`` builds them all.
    """

    def __init__(
        self,
        config: IndexConfig,
        entries: list[IndexEntry] | None = None,
        *,
        payload: IndexPayload | None = None,
    ) -> None:
        self.config = config
        self._entries = entries if entries is not None or payload is not None else []
        self._payload = payload
        self._positions: dict[str, int] | None = None

    def __repr__(self) -> str:
        return f"LoadedIndex({self.config.name!r}, {len(self)} entries)"

    def __len__(self) -> int:
        return len(self._entries) if self._entries is not None else len(self._payload or ())

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def entries(self) -> list[IndexEntry]:
        if self._entries is None:
            self._entries = known(self._payload, "the index payload").entries()
        return self._entries

    def candidates(self) -> list[SearchCandidate]:
        """(name, type, search text) of every entry, in index order, for core.index.rank."""
        if self._entries is None and self._payload is not None:
            return self._payload.candidates()
        return [(entry.name, entry.type, search_text(entry)) for entry in self.entries]

    def entry_at(self, position: int) -> IndexEntry:
        if self._entries is None and self._payload is not None:
            return self._payload.entry(position)
        return self.entries[position]

    def get(self, name: str) -> IndexEntry | None:
        """The entry called ``name``, or None."""
        if self._positions is None:
            if self._entries is None and self._payload is not None:
                names = self._payload.names()
            else:
                names = [entry.name for entry in self.entries]
            self._positions = {entry_name: i for i, entry_name in enumerate(names)}
        position = self._positions.get(name)
        return None if position is None else self.entry_at(position)


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages."""
    if "@" not in url:
        return url  # nothing to hide (and no urllib import on the search path)
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    # The password may itself hold '@': the host is what follows the last one.
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def describe(config: IndexConfig) -> str:
    """How messages name an index: ``index NAME (URL)``."""
    return f"index {config.name} ({redact_url(config.url)})"


def index_env_var_names(name: str) -> tuple[str, str]:
    key = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    return f"{INDEX_ENV_PREFIX}{key}_USERNAME", f"{INDEX_ENV_PREFIX}{key}_PASSWORD"


def index_credential(name: str) -> Credential | None:
    """Basic-auth credentials of index ``name``: environment first, then the credentials file."""
    from falcopkg.oci.credentials import CredentialStore, credential_from_env_pair

    found = credential_from_env_pair(*index_env_var_names(name), f"index {name}")
    return found if found is not None else CredentialStore().get_index(name)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class IndexStore:
    """The index cache under ``<cache_dir>/indexes`` and the fetching that fills it."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        timeout: float | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.5,
        budget: CommandBudget | None = None,
    ) -> None:
        self.root = cache_dir / "indexes"
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.connect_timeout = min(CONNECT_TIMEOUT, self.timeout)
        self.retries = retries
        self.backoff = backoff
        self._budget = budget
        self._transports: dict[tuple[str, str, bool | str], Transport] = {}

    # -- cache --------------------------------------------------------------------------

    def cache_key(self, config: IndexConfig) -> str:
        from falcopkg.services.cache import source_key

        return source_key(config.url if config.is_remote else str(config.local_path().resolve()))

    def directory(self, config: IndexConfig) -> Path:
        return self.root / self.cache_key(config)

    def cache_info(self, config: IndexConfig) -> CacheInfo | None:
        try:
            data = json.loads((self.directory(config) / META_FILE).read_text(encoding="utf-8"))
            source_stat = data.get("source_stat")
            return CacheInfo(
                url=data["url"],
                digest=data["digest"],
                entries=int(data["entries"]),
                fetched_at=data["fetched_at"],
                etag=data.get("etag"),
                last_modified=data.get("last_modified"),
                source_stat=(int(source_stat[0]), int(source_stat[1])) if source_stat else None,
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError, RecursionError):
            return None  # absent or damaged: treated as not cached

    def current_digest(self, config: IndexConfig) -> str | None:
        """The digest of the entries :meth:`open` would load now, without loading them; None
        when it might read or fetch first (not cached, its parsed form gone, e.g. pruned
        while meta.json stayed, or a local file changed since it was read)."""
        info = self.cache_info(config)
        if info is None or not self._parsed_path(config, info.digest).is_file():
            return None
        if config.is_remote:  # a cached remote index is used as it is
            return info.digest
        try:
            unchanged = info.source_stat == _source_stat(config.local_path())
        except OSError:
            return None
        return info.digest if unchanged else None

    def load_cached(self, config: IndexConfig) -> list[IndexEntry] | None:
        """The cached entries, or None when the index was never fetched (or the cache broke)."""
        loaded = self._load_cached(config)
        return loaded.entries if loaded is not None else None

    def _load_cached(self, config: IndexConfig) -> LoadedIndex | None:
        info = self.cache_info(config)
        if info is None:
            return None
        payload = self._load_parsed(config, info.digest)
        if payload is not None:
            return LoadedIndex(config, payload=payload)
        # The fast form is missing or damaged: rebuild it from the raw copy.
        raw_path = self.directory(config) / RAW_FILE
        try:
            data = raw_path.read_bytes()
        except OSError:
            return None
        from falcopkg.digests import bytes_digest

        if bytes_digest(data) != info.digest:
            return None
        entries = self._parse(config, data)
        self._save_parsed(config, info.digest, entries)
        return LoadedIndex(config, entries)

    def remove(self, config: IndexConfig) -> bool:
        """Forget the cached copy of ``config``; False if there was none."""
        import shutil

        directory = self.directory(config)
        if not directory.exists():
            return False
        shutil.rmtree(directory, ignore_errors=True)
        return True

    def _parsed_path(self, config: IndexConfig, digest: str) -> Path:
        return self.directory(config) / f"parsed-{digest.partition(':')[2]}.bin"

    def _load_parsed(self, config: IndexConfig, digest: str) -> IndexPayload | None:
        # Loading creates several objects per entry, none in a cycle: garbage collections
        # triggered meanwhile would only cost time (a third of it on 10,000 entries).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            payload = fastform.decode(_PARSED_KIND, self._parsed_path(config, digest).read_bytes())
            if not isinstance(payload, dict):
                return None
            if payload.get("format") != PAYLOAD_FORMAT or payload.get("digest") != digest:
                return None
            return IndexPayload(payload)
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            AttributeError,
            RecursionError,
            EOFError,
        ):
            return None
        finally:
            if gc_was_enabled:
                gc.enable()

    def _save_parsed(self, config: IndexConfig, digest: str, entries: list[IndexEntry]) -> None:
        from falcopkg.fsutil import atomic_write_bytes

        payload = {"format": PAYLOAD_FORMAT, "digest": digest, **entries_to_payload(entries)}
        target = self._parsed_path(config, digest)
        atomic_write_bytes(target, fastform.encode(_PARSED_KIND, payload))
        for old in target.parent.glob("parsed-*"):  # older digests and older formats (.json)
            if old != target:
                old.unlink(missing_ok=True)

    def _store(
        self,
        config: IndexConfig,
        data: bytes,
        digest: str,
        entries: list[IndexEntry],
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        source_stat: tuple[int, int] | None = None,
    ) -> None:
        from falcopkg.fsutil import atomic_write_bytes, atomic_write_text

        directory = self.directory(config)
        if config.is_remote:
            atomic_write_bytes(directory / RAW_FILE, data)
        self._save_parsed(config, digest, entries)
        # meta.json last: until it names the new digest, readers keep using the old copy.
        info = CacheInfo(
            url=redact_url(config.url),
            digest=digest,
            entries=len(entries),
            fetched_at=_now(),
            etag=etag,
            last_modified=last_modified,
            source_stat=source_stat,
        )
        atomic_write_text(directory / META_FILE, json.dumps(info.to_json(), indent=2) + "\n")

    @staticmethod
    def _parse(config: IndexConfig, data: bytes) -> list[IndexEntry]:
        from falcopkg.core.index import parse_index

        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{describe(config)}: not valid UTF-8 ({exc.reason})") from None
        return parse_index(text, describe(config))

    # -- fetching -----------------------------------------------------------------------

    def fetch(
        self,
        config: IndexConfig,
        *,
        offline: bool = False,
        allow_http: bool = False,
        credential: Credential | None = None,
    ) -> list[IndexEntry]:
        """The entries of ``config``: the cached copy if there is one, else fetched now.

        Local indexes are checked every time (size and mtime; the parsed form is reused).
        """
        return self.open(
            config, offline=offline, allow_http=allow_http, credential=credential
        ).entries

    def open(
        self,
        config: IndexConfig,
        *,
        offline: bool = False,
        allow_http: bool = False,
        credential: Credential | None = None,
    ) -> LoadedIndex:
        """Like :meth:`fetch`, as a LoadedIndex that builds entries only when asked."""
        if not config.is_remote:
            return self._read_local(config, trust_stat=True)[0]
        cached = self._load_cached(config)
        if cached is not None:
            return cached
        entries = self.update(
            config, offline=offline, allow_http=allow_http, credential=credential
        ).entries
        return LoadedIndex(config, entries)

    def update(
        self,
        config: IndexConfig,
        *,
        offline: bool = False,
        allow_http: bool = False,
        credential: Credential | None = None,
    ) -> IndexUpdate:
        """Revalidate ``config`` with the server (conditional GET) and store what changed.

        ``credential`` overrides the stored one (``index add`` checks new credentials
        before saving them).
        """
        from falcopkg.digests import bytes_digest

        if not config.is_remote:
            loaded, changed = self._read_local(config)
            return IndexUpdate(loaded.entries, changed)
        self._check_scheme(config, allow_http)
        info = self.cache_info(config)
        cached = self.load_cached(config) if info is not None else None
        if offline:
            if cached is not None:
                return IndexUpdate(cached, changed=False)
            raise OfflineError(
                f"{describe(config)} is not cached and --offline forbids fetching it",
                hint=f"run `falcopkg index update {config.name}` while online",
            )
        headers = {"Accept": "application/yaml, text/yaml;q=0.9, */*;q=0.8"}
        if info is not None and cached is not None:
            if info.etag:
                headers["If-None-Match"] = info.etag
            if info.last_modified:
                headers["If-Modified-Since"] = info.last_modified
        if credential is None:
            credential = index_credential(config.name)
        response = self._get(config, headers, credential, allow_http)
        try:
            if response.status_code == 304 and cached is not None:
                return IndexUpdate(cached, changed=False, not_modified=True)
            self._raise_for_status(config, response, credential)
            data = self._read_body(config, response)
            etag = response.headers.get("ETag")
            last_modified = response.headers.get("Last-Modified")
        finally:
            response.close()
        digest = bytes_digest(data)
        if cached is not None and info is not None and info.digest == digest:
            # Same bytes (a server without conditional requests): keep every file as it is.
            if (etag, last_modified) != (info.etag, info.last_modified):
                self._write_meta(config, info, etag, last_modified)
            return IndexUpdate(cached, changed=False)
        entries = self._parse(config, data)
        self._store(config, data, digest, entries, etag=etag, last_modified=last_modified)
        return IndexUpdate(entries, changed=True)

    def _write_meta(
        self,
        config: IndexConfig,
        info: CacheInfo,
        etag: str | None,
        last_modified: str | None,
        source_stat: tuple[int, int] | None = None,
    ) -> None:
        from falcopkg.fsutil import atomic_write_text

        updated = CacheInfo(
            info.url, info.digest, info.entries, _now(), etag, last_modified, source_stat
        )
        atomic_write_text(
            self.directory(config) / META_FILE, json.dumps(updated.to_json(), indent=2) + "\n"
        )

    def _read_local(
        self, config: IndexConfig, *, trust_stat: bool = False
    ) -> tuple[LoadedIndex, bool]:
        """A local index and whether it changed since it was cached; with ``trust_stat``,
        an unchanged size and mtime skip reading and hashing the file."""
        path = config.local_path()
        try:
            source_stat = _source_stat(path)
            info = self.cache_info(config)
            if trust_stat and info is not None and info.source_stat == source_stat:
                payload = self._load_parsed(config, info.digest)
                if payload is not None:
                    return LoadedIndex(config, payload=payload), False
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"{describe(config)}: file {path} not found",
                hint=f"fix the path, or run `falcopkg index remove {config.name}`",
            ) from None
        except OSError as exc:
            raise ConfigError(f"{describe(config)}: cannot read {path}: {exc.strerror}") from None
        from falcopkg.digests import bytes_digest

        digest = bytes_digest(data)
        if info is not None and info.digest == digest:
            payload = self._load_parsed(config, digest)
            if payload is not None:
                if info.source_stat != source_stat:  # touched, same bytes
                    self._write_meta(config, info, None, None, source_stat)
                return LoadedIndex(config, payload=payload), False
        entries = self._parse(config, data)
        self._store(config, data, digest, entries, source_stat=source_stat)
        return LoadedIndex(config, entries), True

    @staticmethod
    def _check_scheme(config: IndexConfig, allow_http: bool) -> None:
        if config.url.startswith("http://") and not (allow_http or config.allow_http):
            raise ConfigError(
                f"{describe(config)}: plain http:// is not allowed for indexes",
                hint="use an https:// URL, or set `allow_http = true` in its [[index]] table "
                "(`falcopkg index add NAME URL --allow-http`)",
            )

    def _verify(self, config: IndexConfig) -> str | bool:
        from falcopkg.http import environment_ca_bundle

        ca_path = config.ca_path()
        if ca_path is not None:
            if not ca_path.is_file():
                raise ConfigError(
                    f"{describe(config)}: ca_file {ca_path} not found",
                    hint="fix `ca_file` in its [[index]] table",
                )
            return str(ca_path)
        return environment_ca_bundle() or True

    def _transport(self, config: IndexConfig) -> Transport:
        """The transport to ``config``'s host (its ca_file applies to that host only)."""
        from urllib.parse import urlsplit

        from falcopkg.deadline import CommandBudget
        from falcopkg.http import Transport

        parts = urlsplit(config.url)
        verify = self._verify(config)
        key = (parts.scheme, parts.netloc.lower(), verify)
        transport = self._transports.get(key)
        if transport is None:
            if self._budget is None:
                self._budget = CommandBudget()
            transport = self._transports[key] = Transport(
                parts.netloc,
                describe=lambda exc, url, attempts: _failure(config, exc, attempts),
                verify=verify,
                connect_timeout=self.connect_timeout,
                read_timeout=self.timeout,
                request_timeout=self.timeout,
                retries=self.retries,
                backoff=self.backoff,
                max_retry_after=MAX_RETRY_AFTER,
                budget=self._budget,
                slow_hint=f"check that {parts.netloc} is up and the URL is right "
                "(`falcopkg index list`)",
            )
        return transport

    def close(self) -> None:
        """End the connections (the store can still be used: they reopen)."""
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()

    def _get(
        self,
        config: IndexConfig,
        headers: dict[str, str],
        credential: Credential | None,
        allow_http: bool,
    ) -> Response:
        """GET with bounded retries on connection errors, 429 and 5xx (never on 4xx),
        following redirects: no hop may be plain http unless http is allowed, and the
        credential goes to the index's own origin only."""
        from urllib.parse import urlsplit

        from falcopkg.http import basic_authorization

        def check_redirect(url: str) -> None:
            scheme = urlsplit(url).scheme
            if scheme == "http" and not (allow_http or config.allow_http):
                raise NetworkError(
                    f"{describe(config)}: redirected to a plain http:// URL ({redact_url(url)})",
                    hint="ask the index owner for an https URL, or allow http explicitly",
                )
            if scheme not in ("http", "https"):
                raise NetworkError(f"{describe(config)}: redirected to {redact_url(url)}")

        origin = urlsplit(config.url)
        return self._transport(config).send(
            "GET",
            config.url,
            headers=headers,
            authorization=(
                basic_authorization(credential.username, credential.password)
                if credential is not None
                else None
            ),
            auth_origin=(origin.scheme, origin.netloc.lower()),
            stream=True,
            check_redirect=check_redirect,
        )

    @staticmethod
    def _raise_for_status(
        config: IndexConfig, response: Response, credential: Credential | None
    ) -> None:
        status = response.status_code
        if status == 200:
            return
        add_hint = (
            f"run `falcopkg index add {config.name} {redact_url(config.url)} --username U "
            "--password-stdin` (or set " + " and ".join(index_env_var_names(config.name)) + ")"
        )
        if status == 401:
            what = "authentication failed" if credential is not None else "authentication required"
            raise NetworkError(f"{describe(config)}: {what} (HTTP 401)", hint=add_hint)
        if status == 403:
            raise NetworkError(
                f"{describe(config)}: access denied (HTTP 403)",
                hint="check that your account may read this index",
            )
        if status == 404:
            raise NetworkError(
                f"{describe(config)}: not found (HTTP 404)",
                hint="check the URL with `falcopkg index list`",
            )
        raise NetworkError(f"{describe(config)}: the server answered HTTP {status}")

    def _read_body(self, config: IndexConfig, response: Response) -> bytes:
        from falcopkg.http import TransportError

        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=256 * 1024):
                size += len(chunk)
                if size > MAX_INDEX_BYTES:
                    raise NetworkError(
                        f"{describe(config)}: larger than {MAX_INDEX_BYTES // (1024 * 1024)} MiB",
                        hint="is this URL really an index?",
                    )
                chunks.append(chunk)
        except TransportError as exc:
            from falcopkg.http import timeout_error

            if timeout_error(exc) is not None:
                raise self._transport(config).read_error(exc, response.url) from None
            raise NetworkError(
                f"{describe(config)}: the download was interrupted", hint="retry"
            ) from None
        return b"".join(chunks)

    # -- several indexes ----------------------------------------------------------------

    def load_all(
        self,
        configs: Sequence[IndexConfig],
        *,
        offline: bool = False,
        unavailable: list[tuple[IndexConfig, FalcopkgError]] | None = None,
    ) -> list[LoadedIndex]:
        """Every index in order, from the cache or fetched when missing.

        With ``unavailable`` (a list to fill), an index that cannot be fetched or read is
        left out and recorded there, so the others still answer; only when every index is
        unavailable is the first error raised.
        """
        if unavailable is None:
            return [self.open(config, offline=offline) for config in configs]
        loaded = []
        for config in configs:
            try:
                loaded.append(self.open(config, offline=offline))
            except (NetworkError, OfflineError, ConfigError) as exc:
                unavailable.append((config, exc))
        if configs and not loaded:
            raise unavailable[0][1]
        return loaded


def _source_stat(path: Path) -> tuple[int, int]:
    """What says a local index file may have changed: its size and mtime (ns)."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _failure(config: IndexConfig, exc: BaseException, attempts: int) -> NetworkError:
    """The error for an index host that could not be reached (or not over TLS)."""
    from falcopkg.http import ProxyError, Timeout, TLSError, timeout_error

    timed_out = timeout_error(exc)
    if timed_out is not None:
        return NetworkError(f"{describe(config)}: {timed_out.message}", hint=timed_out.hint)
    if isinstance(exc, TLSError):
        return NetworkError(
            f"{describe(config)}: TLS verification failed",
            hint="set `ca_file` in its [[index]] table or REQUESTS_CA_BUNDLE to the "
            "CA that signed the server's certificate",
        )
    if isinstance(exc, ProxyError):
        return NetworkError(
            f"{describe(config)}: {exc}", hint="check the proxy variables (https_proxy, no_proxy)"
        )
    failure = "timed out" if isinstance(exc, Timeout) else "could not connect"
    return NetworkError(
        f"{describe(config)}: {failure} after {attempts} attempts",
        hint="check the URL and your network (proxy variables are honoured), then retry",
    )


# -- lookup ---------------------------------------------------------------------------------


def find_in_indexes(name: str, indexes: Sequence[LoadedIndex]) -> tuple[IndexEntry, str] | None:
    """The entry named ``name`` in the first index (in configuration order) that has it."""
    for index in indexes:
        entry = index.get(name)
        if entry is not None:
            return entry, index.name
    return None


def unavailable_warning(config: IndexConfig, error: FalcopkgError) -> str:
    """What to say when one index is left out and the others answer."""
    return (
        f"index {config.name!r} is unavailable, using the others: {error.message} "
        f"(`falcopkg index remove {config.name}` drops it)"
    )


def resolve_reference(
    ref: Reference | str,
    indexes: Sequence[LoadedIndex],
    unavailable: Sequence[tuple[IndexConfig, FalcopkgError]] = (),
) -> tuple[Reference, IndexEntry | None, str | None]:
    """A reference at its registry location, with the index entry and index it came from.

    Registry references are returned as they are (no entry, no index). Names are looked up
    in ``indexes`` in order (first wins); an unknown name is an UnknownArtifactError with
    close matches as a hint.
    """
    reference = parse_reference(ref) if isinstance(ref, str) else ref
    if not reference.is_index_name:
        return reference, None, None
    found = find_in_indexes(reference.name, indexes)
    if found is not None:
        entry, index_name = found
        return reference.with_location(entry.registry, entry.repository), entry, index_name
    if unavailable:
        names = ", ".join(repr(config.name) for config, _ in unavailable)
        config, error = unavailable[0]
        raise UnknownArtifactError(
            f"{_unknown_message(reference.name, indexes)}, and index {names} could not be "
            f"read ({error.message}): it may be there",
            hint=f"retry when {config.name!r} answers, name the index that has it "
            f'(`{reference.name} = {{ version = "…", index = "NAME" }}` or `--index NAME`), '
            f"or `falcopkg index remove {config.name}`",
        )
    raise UnknownArtifactError(
        _unknown_message(reference.name, indexes), hint=_unknown_hint(reference.name, indexes)
    )


def _unknown_message(name: str, indexes: Sequence[LoadedIndex]) -> str:
    if not indexes:
        return f"artifact {name!r} cannot be looked up: no index is configured"
    names = ", ".join(index.name for index in indexes)
    plural = "index" if len(indexes) == 1 else "indexes"
    return f"artifact {name!r} not found in {plural} {names}"


def _unknown_hint(name: str, indexes: Sequence[LoadedIndex]) -> str:
    import difflib

    if not indexes:
        return "run `falcopkg index add NAME URL`, or use a full reference like ghcr.io/org/repo"
    all_names = sorted({name for index in indexes for name, _, _ in index.candidates()})
    close = difflib.get_close_matches(name, all_names, n=3, cutoff=0.7)
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    return (
        f"run `falcopkg artifact search {name}`, `falcopkg index update` to refresh the "
        "indexes, or use a full reference like ghcr.io/org/repo"
    )
