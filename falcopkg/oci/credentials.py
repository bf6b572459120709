"""Registry and index credentials (SPEC §9): where they are found, in which order.

First match wins:

1. explicit credentials (command-line flags);
2. ``FALCOPKG_REGISTRY_<HOST>_USERNAME`` / ``FALCOPKG_REGISTRY_<HOST>_PASSWORD``, where
   ``<HOST>`` is the host upper-cased with every non-alphanumeric character replaced by
   ``_`` (``127.0.0.1:5000`` -> ``FALCOPKG_REGISTRY_127_0_0_1_5000_USERNAME``);
3. the falcopkg credentials file written by ``registry login`` (mode 0600);
4. the Docker config (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``):
   ``credHelpers[host]``, ``credsStore``, then ``auths[host]``.

Passwords never appear in reprs, messages or logs.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import stat
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falcopkg import fsutil, paths
from falcopkg.errors import ConfigError

_log = logging.getLogger("falcopkg.credentials")

Warn = Callable[[str], None]

ENV_PREFIX = "FALCOPKG_REGISTRY_"
# Docker Hub's credentials live under its legacy v1 index URL in Docker configs.
_DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credential:
    """A username and password (or token used as password). ``repr`` hides the password."""

    username: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.username}:***"


def env_var_names(host: str) -> tuple[str, str]:
    """The username and password variable names for ``host``."""
    key = re.sub(r"[^A-Za-z0-9]", "_", host).upper()
    return f"{ENV_PREFIX}{key}_USERNAME", f"{ENV_PREFIX}{key}_PASSWORD"


def credential_from_env(host: str, environ: Mapping[str, str] | None = None) -> Credential | None:
    user_var, password_var = env_var_names(host)
    return credential_from_env_pair(user_var, password_var, host, environ)


def credential_from_env_pair(
    user_var: str, password_var: str, subject: str, environ: Mapping[str, str] | None = None
) -> Credential | None:
    """The credential in the variables ``user_var``/``password_var`` (None when neither is
    set). Only one of them set is a ConfigError naming the missing one and ``subject``
    (what the credential is for: a registry host, ``index NAME``)."""
    env = os.environ if environ is None else environ
    username, password = env.get(user_var), env.get(password_var)
    if username is None and password is None:
        return None
    if not username or password is None:
        missing = user_var if not username else password_var
        raise ConfigError(
            f"credentials for {subject} from the environment are incomplete: {missing} is not set",
            hint=f"set both {user_var} and {password_var}, or neither",
        )
    return Credential(username, password)


# -- the falcopkg credentials file ----------------------------------------------------------


class CredentialStore:
    """The JSON credentials file: ``{"registries": {host: {...}}, "indexes": {key: {...}}}``.

    Written atomically with mode 0600. A file readable by group or others is still used, with
    a warning that says how to fix it.
    """

    def __init__(self, path: Path | None = None, *, warn: Warn | None = None) -> None:
        self.path = path if path is not None else paths.credentials_file()
        self._warn = warn or _log.warning
        self._data: dict[str, dict[str, dict[str, str]]] | None = None

    # -- registries
    def get_registry(self, host: str) -> Credential | None:
        return self._get("registries", host)

    def set_registry(self, host: str, credential: Credential) -> None:
        self._set("registries", host, credential)

    def remove_registry(self, host: str) -> bool:
        """Forget ``host``; False if nothing was stored for it."""
        return self._remove("registries", host)

    # -- indexes (HTTP basic auth of index URLs)
    def get_index(self, key: str) -> Credential | None:
        return self._get("indexes", key)

    def set_index(self, key: str, credential: Credential) -> None:
        self._set("indexes", key, credential)

    def remove_index(self, key: str) -> bool:
        return self._remove("indexes", key)

    def registry_hosts(self) -> list[str]:
        return sorted(self._load()["registries"])

    # -- implementation
    def _get(self, section: str, key: str) -> Credential | None:
        entry = self._load()[section].get(key)
        if entry is None:
            return None
        return Credential(entry["username"], entry["password"])

    def _set(self, section: str, key: str, credential: Credential) -> None:
        data = self._load(reload=True)
        data[section][key] = {"username": credential.username, "password": credential.password}
        self._save(data)

    def _remove(self, section: str, key: str) -> bool:
        data = self._load(reload=True)
        if key not in data[section]:
            return False
        del data[section][key]
        self._save(data)
        return True

    def _save(self, data: dict[str, dict[str, dict[str, str]]]) -> None:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        fsutil.atomic_write_text(self.path, text, mode=0o600)
        self._data = data

    def _load(self, *, reload: bool = False) -> dict[str, dict[str, dict[str, str]]]:
        if self._data is not None and not reload:
            return self._data
        empty: dict[str, dict[str, dict[str, str]]] = {"registries": {}, "indexes": {}}
        try:
            mode = self.path.stat().st_mode
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._data = empty
            return empty
        except OSError as exc:
            raise ConfigError(f"cannot read credentials file {self.path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            self._warn(
                f"credentials file {self.path} is readable by other users "
                f"(mode {stat.S_IMODE(mode):04o}); fix it with `chmod 600 {self.path}`"
            )
        self._data = _parse_store(raw, self.path)
        return self._data


def _parse_store(raw: str, path: Path) -> dict[str, dict[str, dict[str, str]]]:
    hint = f"fix or delete {path} and run `falcopkg registry login` again"
    try:
        document = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}: credentials file is not valid JSON: {exc.msg}", hint=hint
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: credentials file must hold a JSON object", hint=hint)
    result: dict[str, dict[str, dict[str, str]]] = {}
    for section in ("registries", "indexes"):
        entries = document.get(section, {})
        if not isinstance(entries, dict):
            raise ConfigError(f"{path}: `{section}` must be an object", hint=hint)
        parsed: dict[str, dict[str, str]] = {}
        for key, entry in entries.items():
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("username"), str)
                and isinstance(entry.get("password"), str)
            ):
                raise ConfigError(
                    f"{path}: entry {section}.{key} needs string `username` and `password`",
                    hint=hint,
                )
            parsed[key] = {"username": entry["username"], "password": entry["password"]}
        result[section] = parsed
    return result


# -- Docker config --------------------------------------------------------------------------


def docker_config_file() -> Path:
    directory = os.environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    return Path.home() / ".docker" / "config.json"


def _docker_keys(host: str) -> list[str]:
    """Keys a Docker config may use for ``host`` (Docker Hub has its own)."""
    if host in _DOCKER_HUB_HOSTS:
        return [_DOCKER_HUB_KEY, *sorted(_DOCKER_HUB_HOSTS)]
    return [host]


def _normalize_auths_key(key: str) -> str:
    """``https://host/v1/`` and ``host`` name the same registry in ``auths``."""
    if key == _DOCKER_HUB_KEY:
        return key
    stripped = re.sub(r"^[a-z]+://", "", key)
    return stripped.split("/", 1)[0]


def credential_from_docker_config(
    host: str, *, config_path: Path | None = None, warn: Warn | None = None
) -> Credential | None:
    warn = warn or _log.warning
    path = config_path or docker_config_file()
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warn(f"ignoring Docker config {path}: {exc}")
        return None
    if not isinstance(config, dict):
        warn(f"ignoring Docker config {path}: not a JSON object")
        return None
    keys = _docker_keys(host)

    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key in keys:
            helper = helpers.get(key)
            if isinstance(helper, str) and helper:
                found = _run_credential_helper(helper, key, warn)
                if found is not None:
                    return found

    store = config.get("credsStore")
    if isinstance(store, str) and store:
        for key in keys:
            found = _run_credential_helper(store, key, warn)
            if found is not None:
                return found

    auths = config.get("auths")
    if isinstance(auths, dict):
        by_host = {_normalize_auths_key(k): v for k, v in auths.items() if isinstance(k, str)}
        for key in keys:
            entry = by_host.get(key)
            if isinstance(entry, dict):
                found = _credential_from_auth_entry(entry, key, path, warn)
                if found is not None:
                    return found
    return None


def _credential_from_auth_entry(
    entry: dict[str, Any], key: str, path: Path, warn: Warn
) -> Credential | None:
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            warn(f"ignoring auths[{key!r}] in {path}: `auth` is not base64 of user:password")
            return None
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            warn(f"ignoring auths[{key!r}] in {path}: `auth` is not base64 of user:password")
            return None
        return Credential(username, password)
    plain_user, plain_password = entry.get("username"), entry.get("password")
    if isinstance(plain_user, str) and plain_user and isinstance(plain_password, str):
        return Credential(plain_user, plain_password)
    return None


def _run_credential_helper(name: str, server: str, warn: Warn) -> Credential | None:
    program = f"docker-credential-{name}"
    try:
        result = subprocess.run(
            [program, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        warn(f"Docker credential helper {program} is not installed; skipping it for {server}")
        return None
    except (OSError, subprocess.TimeoutExpired) as exc:
        warn(f"Docker credential helper {program} failed for {server}: {type(exc).__name__}")
        return None
    if result.returncode != 0:
        # "credentials not found in native keychain" is the normal "nothing stored" answer;
        # the helper's output is not echoed because it could contain secrets.
        return None
    try:
        payload = json.loads(result.stdout)
    except (UnicodeDecodeError, json.JSONDecodeError):
        warn(f"Docker credential helper {program} returned invalid JSON for {server}")
        return None
    if not isinstance(payload, dict):
        return None
    username, secret = payload.get("Username"), payload.get("Secret")
    if not isinstance(username, str) or not isinstance(secret, str) or not username:
        return None
    if username == "<token>":
        warn(
            f"Docker credential helper {program} holds an identity token for {server}; "
            "identity tokens are not supported, use `falcopkg registry login`"
        )
        return None
    return Credential(username, secret)


# -- the lookup chain -------------------------------------------------------------------------


def lookup_credential(
    host: str,
    explicit: Credential | None = None,
    *,
    store: CredentialStore | None = None,
    docker_config: Path | None = None,
    warn: Warn | None = None,
) -> Credential | None:
    """The credential for registry ``host`` per SPEC §9's order, or None (anonymous)."""
    if explicit is not None:
        return explicit
    found = credential_from_env(host)
    if found is not None:
        return found
    found = (store or CredentialStore(warn=warn)).get_registry(host)
    if found is not None:
        return found
    return credential_from_docker_config(host, config_path=docker_config, warn=warn)
