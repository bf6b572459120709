"""Errors of the OCI client: what the registry answered, in words a user can act on.

Every message names the registry host and, where known, the repository and reference. None
carries credentials or tokens: messages are built from hosts, repositories and the
registry's own error codes only.
"""

from __future__ import annotations

from falcopkg.errors import NetworkError


class RegistryError(NetworkError):
    """A registry answered with an error status.

    ``status`` is the HTTP status (None when no response was received), ``code`` and
    ``registry_message`` come from the first entry of the JSON ``errors`` body, if any.
    ``retry_after`` is the seconds a 429/503 ``Retry-After`` asked for (`follow` waits them).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        host: str | None = None,
        status: int | None = None,
        code: str | None = None,
        registry_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.host = host
        self.status = status
        self.code = code
        self.registry_message = registry_message
        self.retry_after = retry_after


class NotFoundError(RegistryError):
    """The repository, manifest, tag or blob does not exist (404, *_UNKNOWN)."""


class AuthenticationError(RegistryError):
    """The registry (or its token service) refused us: no or wrong credentials."""


class PermissionDeniedError(RegistryError):
    """Authenticated, but not allowed to do this (403, DENIED, insufficient scope)."""


class InvalidManifestError(RegistryError):
    """A manifest or descriptor is not what the OCI image spec says it must be."""


class RegistryUnreachableError(NetworkError):
    """No HTTP answer: connection refused or reset, name not resolved, timed out."""

    def __init__(self, message: str, *, hint: str | None = None, host: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.host = host


class RegistryTLSError(NetworkError):
    """The TLS handshake failed (untrusted certificate, wrong host name, not TLS at all)."""

    def __init__(self, message: str, *, hint: str | None = None, host: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.host = host
