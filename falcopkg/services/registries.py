"""Registry clients configured from falco.toml: the one place that turns
``[registries."host"]`` settings into OCI client options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from falcopkg.core.manifest import Manifest, RegistrySettings
    from falcopkg.oci.client import RegistryOptions, RegistryPool
    from falcopkg.oci.credentials import Credential


def registry_options(settings: RegistrySettings) -> RegistryOptions:
    from falcopkg.oci.client import RegistryOptions

    return RegistryOptions(
        plain_http=settings.plain_http, insecure=settings.insecure, ca_file=settings.ca_file
    )


def registry_pool(
    manifest: Manifest | None,
    *,
    plain_http: bool = False,
    credential_overrides: Mapping[str, Credential] | None = None,
    warn: Callable[[str], None] | None = None,
) -> RegistryPool:
    """A RegistryPool with the per-registry options of the manifest (if any) and the flags."""
    from falcopkg.oci.client import RegistryPool

    options = {
        host: registry_options(settings)
        for host, settings in (manifest.registries.items() if manifest is not None else ())
    }
    return RegistryPool(
        options, plain_http=plain_http, credential_overrides=credential_overrides, warn=warn
    )
