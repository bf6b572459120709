"""Artifact references (SPEC §4): one grammar, parsed and printed in one place.

A reference is either an index name (``name``, ``name:tag``, ``name@sha256:…``), looked up
in the configured indexes, or a registry reference (``host/repo[:tag|@digest]``) whose first
path component is a registry host: it contains ``.`` or ``:`` or is ``localhost``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from falcopkg.errors import InvalidReferenceError, UsageError

# OCI distribution grammar (distribution-spec "pulling manifests").
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
# Index entry names: what the official index uses (k8saudit-rules, falco-incubating-rules).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$")


def is_registry_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def is_valid_host(host: str) -> bool:
    """Whether ``host`` is a registry host name with an optional port (``ghcr.io``,
    ``localhost:5000``, ``[::1]:5000``), as references and ``[registries."host"]`` use them."""
    return bool(_HOST_RE.match(host))


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``registry`` is None for index names (then ``repository`` is the name)."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def is_index_name(self) -> bool:
        return self.registry is None

    @property
    def name(self) -> str:
        """The index name, or the last path component of the repository."""
        return self.repository.rsplit("/", 1)[-1]

    @property
    def locator(self) -> str:
        """``host/repo`` (or the bare name) without tag or digest."""
        return self.repository if self.registry is None else f"{self.registry}/{self.repository}"

    @property
    def version_ref(self) -> str | None:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag

    def with_location(self, registry: str, repository: str) -> Reference:
        """The same tag/digest at a registry location (an index lookup's result)."""
        return replace(self, registry=registry, repository=repository)

    def __str__(self) -> str:
        text = self.locator
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse ``text`` per §4, raising InvalidReferenceError with what is wrong and a hint."""
    raw = text.strip()
    if not raw:
        raise InvalidReferenceError("empty artifact reference")
    rest, digest = raw, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not DIGEST_RE.match(digest):
            raise InvalidReferenceError(
                f"invalid digest in reference {text!r}",
                hint="a digest looks like sha256: followed by 64 lowercase hex digits",
            )
    tag = None
    # A ':' after the last '/' separates the tag; one before it belongs to a host:port.
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not TAG_RE.match(tag):
            raise InvalidReferenceError(f"invalid tag {tag!r} in reference {text!r}")
    if "/" not in rest:
        if not NAME_RE.match(rest):
            raise InvalidReferenceError(
                f"invalid artifact name {rest!r} in reference {text!r}",
                hint="use an index name like `k8saudit-rules` or a full reference like "
                "`ghcr.io/falcosecurity/rules/falco-rules:4`",
            )
        return Reference(None, rest, tag, digest)
    host, _, repository = rest.partition("/")
    if not is_registry_host(host):
        raise InvalidReferenceError(
            f"reference {text!r} has no registry host",
            hint=f"write the registry first, e.g. `ghcr.io/{rest}`; a name without `/` is "
            "looked up in the indexes",
        )
    if not is_valid_host(host):
        raise InvalidReferenceError(f"invalid registry host {host!r} in reference {text!r}")
    if not REPOSITORY_RE.match(repository):
        raise InvalidReferenceError(
            f"invalid repository {repository!r} in reference {text!r}",
            hint="repository paths are lowercase letters, digits and separators . _ - /",
        )
    return Reference(host, repository, tag, digest)


def parse_argument(text: str) -> Reference:
    """A reference typed on the command line; a malformed one is a usage error (exit 2),
    unlike one read from falco.toml (a configuration error, exit 1)."""
    try:
        return parse_reference(text)
    except InvalidReferenceError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None


def registry_prefix(text: str) -> str | None:
    """``host[:port][/path]`` normalised (no trailing slash): where a mirror or an export's
    refs point. None when it is not one (a scheme, credentials, a tag or a bad path)."""
    value = text.strip().rstrip("/")
    host, _, path = value.partition("/")
    valid = (
        "://" not in value
        and "@" not in value
        and is_valid_host(host)
        and is_registry_host(host)
        and (not path or bool(REPOSITORY_RE.match(path)))
    )
    return value if valid else None
