"""The OCI distribution client (SPEC §9): small, typed, and verifying what it fetches.

Names are imported lazily so that importing ``falcopkg.oci`` (e.g. for ``Credential``) does
not load ``requests`` until a client is actually built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falcopkg.oci.client import RegistryClient, RegistryOptions, RegistryPool
    from falcopkg.oci.credentials import Credential, CredentialStore, lookup_credential
    from falcopkg.oci.descriptor import Descriptor, FetchedManifest
    from falcopkg.oci.errors import (
        AuthenticationError,
        InvalidManifestError,
        NotFoundError,
        PermissionDeniedError,
        RegistryError,
        RegistryTLSError,
        RegistryUnreachableError,
    )
    from falcopkg.oci.layout import OciLayout
    from falcopkg.oci.store import ContentStore

_EXPORTS = {
    "RegistryClient": "client",
    "RegistryOptions": "client",
    "RegistryPool": "client",
    "Credential": "credentials",
    "CredentialStore": "credentials",
    "lookup_credential": "credentials",
    "Descriptor": "descriptor",
    "FetchedManifest": "descriptor",
    "OciLayout": "layout",
    "ContentStore": "store",
    "AuthenticationError": "errors",
    "InvalidManifestError": "errors",
    "NotFoundError": "errors",
    "PermissionDeniedError": "errors",
    "RegistryError": "errors",
    "RegistryTLSError": "errors",
    "RegistryUnreachableError": "errors",
}

__all__ = [
    "AuthenticationError",
    "ContentStore",
    "Credential",
    "CredentialStore",
    "Descriptor",
    "FetchedManifest",
    "InvalidManifestError",
    "NotFoundError",
    "OciLayout",
    "PermissionDeniedError",
    "RegistryClient",
    "RegistryError",
    "RegistryOptions",
    "RegistryPool",
    "RegistryTLSError",
    "RegistryUnreachableError",
    "lookup_credential",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
