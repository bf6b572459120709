"""falco.toml defaults (SPEC §5), stdlib-free so the no-op sync can read them cheaply.

One home for them: falcopkg.core.manifest builds its model from these, and the `sync` fast
path (falcopkg.cli.commands.install) reads [install] without loading the manifest module.
"""

from __future__ import annotations

import os

DEFAULT_PLATFORMS: tuple[str, ...] = ("linux/amd64", "linux/arm64")
# falcoctl's defaults (and the falco chart's allowedTypes).
DEFAULT_RULESFILES_DIR = "/etc/falco"
DEFAULT_PLUGINS_DIR = "/usr/share/falco/plugins"
DEFAULT_ASSETS_DIR = "/etc/falco/assets"
# The [install] directory keys and their defaults: the one list of them (the manifest model,
# the planner's type → key table and sync's flags and fast path are built from it).
INSTALL_DIR_DEFAULTS: dict[str, str] = {
    "rulesfiles_dir": DEFAULT_RULESFILES_DIR,
    "plugins_dir": DEFAULT_PLUGINS_DIR,
    "assets_dir": DEFAULT_ASSETS_DIR,
}
# The environment variable overriding each (like the --rulesfiles-dir … flags).
INSTALL_DIR_ENV: dict[str, str] = {key: "FALCOPKG_" + key.upper() for key in INSTALL_DIR_DEFAULTS}
DEFAULT_ALLOWED_TYPES: tuple[str, ...] = ("rulesfile", "plugin")

# uname machine names → OCI (Go) architecture names.
_MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv8l": "arm64",
    "s390x": "s390x",
    "ppc64le": "ppc64le",
    "riscv64": "riscv64",
}


def host_platform() -> str:
    """This machine as an OCI platform (``linux/amd64``, ``linux/arm64`` …); os.uname, not
    the platform module, which the no-op sync cannot afford to import."""
    uname = os.uname()
    system = uname.sysname.lower() or "linux"
    machine = uname.machine.lower()
    return f"{system}/{_MACHINE_TO_ARCH.get(machine, machine)}"
