"""Registry clients configured from falco.toml and the user config: the one place that turns
``[registries."host"]`` settings into OCI client options.

The user config's entries apply to every project (like ~/.cargo/config.toml); a project's
entry for the same host replaces it."""

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
    """A RegistryPool with the per-registry options of the user config and the manifest (if
    any) and the flags."""
    from falcopkg.oci.client import RegistryPool
    from falcopkg.services.userconfig import user_registry_settings

    settings = user_registry_settings()
    if manifest is not None:
        settings.update(manifest.registries)
    options = {host: registry_options(entry) for host, entry in settings.items()}
    return RegistryPool(
        options, plain_http=plain_http, credential_overrides=credential_overrides, warn=warn
    )
