"""`falcopkg registry` (alias `repo`): push, pull, login, logout — falcoctl's commands.

Registry options come from flags (``--plain-http``) and, inside a project, from falco.toml's
``[registries."host"]`` (``ca_file``, ``insecure``, ``plain_http``). Credentials follow the
§9 chain (env ``FALCOPKG_REGISTRY_<HOST>_USERNAME/_PASSWORD``, the credentials file written
by `login`, the Docker config) and are looked up only when a registry asks for them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.params import json_option, plain_http_option, reference_argument
from falcopkg.errors import UsageError, known

if TYPE_CHECKING:
    from falcopkg.core.reference import Reference
    from falcopkg.oci.client import RegistryClient
    from falcopkg.oci.credentials import Credential

DEFAULT_TAG = "latest"  # falcoctl's default when a reference has neither tag nor digest


@click.group()
def registry() -> None:
    """Push, pull and log in to OCI registries (falcoctl's `registry` commands)."""


# --- shared plumbing ------------------------------------------------------------------------


def registry_client(
    app: AppContext,
    host: str,
    *,
    plain_http: bool = False,
    credential: Credential | None = None,
) -> RegistryClient:
    """A client for ``host`` with falco.toml's options; the credential is ``credential`` or
    looked up lazily in the §9 order."""
    overrides = {host: credential} if credential is not None else None
    access = app.registries(
        plain_http=plain_http, credential_overrides=overrides, broken_manifest="warn"
    )
    return access.origin(host)


def _registry_reference(text: str, command: str) -> Reference:

    reference = reference_argument(text)
    if reference.registry is None:
        raise UsageError(
            f"{command} needs a registry reference, not the name {text!r}",
            hint="write HOST/REPOSITORY[:TAG], e.g. `ghcr.io/acme/rules/acme-rules:1.0.0`",
        )
    return reference


def _check_host(text: str) -> tuple[str, bool]:
    """A registry host as users type it for login/logout, and whether it was written with
    ``http://`` (plain HTTP). ``https://``, ``http://`` and a path are tolerated."""
    from falcopkg.core.reference import is_valid_host

    host, plain_http = text.strip(), False
    scheme, sep, rest = host.partition("://")
    if sep:
        if scheme.lower() not in ("https", "http"):
            raise UsageError(
                f"invalid registry host {text!r}: registries speak https:// (or http://)",
                hint="write e.g. `ghcr.io` or `localhost:5000`",
            )
        host, plain_http = rest, scheme.lower() == "http"
    host = host.split("/", 1)[0]
    if not is_valid_host(host):
        raise UsageError(
            f"invalid registry host {text!r}", hint="write e.g. `ghcr.io` or `localhost:5000`"
        )
    return host, plain_http


# --- push -----------------------------------------------------------------------------------


@registry.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("ref")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--type", "type_name", required=True, help="rulesfile, plugin or asset.")
@click.option("--version", required=True, help="Semver version of the artifact (also a tag).")
@click.option("--name", help="Artifact name in the config [default: the repository's last part].")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="OS/ARCH",
    help="Platform of each FILE, in order (plugins; default: this host for one FILE).",
)
@click.option("-t", "--tag", "tags", multiple=True, help="Additional tag (repeatable).")
@click.option("--add-floating-tags", is_flag=True, help="Also move the X.Y, X and latest tags.")
@click.option(
    "-d",
    "--depends-on",
    "depends_on",
    multiple=True,
    metavar="NAME:VERSION[|ALT:VERSION…]",
    help="A dependency and its alternatives (repeatable).",
)
@click.option(
    "-r", "--requires", multiple=True, metavar="NAME:VERSION", help="A requirement (repeatable)."
)
@click.option("--annotation-source", metavar="URL", help="org.opencontainers.image.source.")
@click.option(
    "--compression-level",
    type=click.IntRange(0, 9),
    default=6,
    show_default=True,
    help="gzip level of packed layers (0 stores them uncompressed).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Threads compressing packed layers [default: the CPUs]; digests do not depend on it.",
)
@plain_http_option
@json_option
@pass_app
def push(
    app: AppContext,
    ref: str,
    files: tuple[Path, ...],
    type_name: str,
    version: str,
    name: str | None,
    platforms: tuple[str, ...],
    tags: tuple[str, ...],
    add_floating_tags: bool,
    depends_on: tuple[str, ...],
    requires: tuple[str, ...],
    annotation_source: str | None,
    compression_level: int,
    jobs: int | None,
    plain_http: bool,
    as_json: bool,
) -> None:
    """Push FILEs to REF (HOST/REPO[:TAG]) as a Falco artifact; prints the digest.

    A raw YAML rules file fills the config's dependencies and requirements from its
    required_engine_version / required_plugin_versions (explicit flags win). Plugins take
    one --platform per FILE, in order: an image index is pushed even for one platform.
    """
    from falcopkg.artifact.config import parse_depends_on, parse_requires
    from falcopkg.artifact.push import push_artifact
    from falcopkg.artifact.types import get_type

    artifact_type = get_type(type_name)
    reference = _registry_reference(ref, "registry push")
    if reference.digest:
        raise UsageError(
            f"cannot push to a digest ({ref})",
            hint="push to HOST/REPO or HOST/REPO:TAG; the digest is computed from the content",
        )
    registry = known(reference.registry, "the registry of the reference")
    dependencies = parse_depends_on(depends_on)
    requirements = parse_requires(requires)
    extra_tags = [reference.tag] if reference.tag else []
    console = app.console
    with registry_client(app, registry, plain_http=plain_http) as client:
        result = push_artifact(
            client,
            reference.repository,
            artifact_type,
            list(files),
            version=version,
            platforms=platforms,
            tags=[*extra_tags, *tags],
            add_floating_tags=add_floating_tags,
            name=name,
            dependencies=dependencies,
            requirements=requirements,
            annotation_source=annotation_source,
            compression_level=compression_level,
            threads=jobs,
            log=console.detail,
        )
    for warning in result.warnings:
        console.warn(warning)
    location = f"{reference.registry}/{reference.repository}"
    console.success(
        f"Pushed {artifact_type.name} {location} {version} (tags: {', '.join(result.tags)})"
    )
    if result.floating_moved:
        console.info(f"Moved {', '.join(result.floating_moved)} to {version}")
    for tag, newer in result.floating_kept:
        console.info(f"Left {tag} at {newer} (newer than {version})")
    if as_json:
        manifests = [
            {
                "digest": m.digest,
                "layer": {"digest": m.layer.digest, "size": m.layer.size},
                "files": list(m.layer.files),
            }
            for m in result.manifests
        ]
        payload = {
            "reference": location,
            "digest": result.digest,
            "media_type": result.media_type,
            "type": artifact_type.name,
            "tags": list(result.tags),
            "floating_tags": {
                "moved": list(result.floating_moved),
                "kept": dict(result.floating_kept),
            },
            "config": result.config.to_dict(),
        }
        if artifact_type.multi_platform:  # one manifest per platform, under an index
            payload["manifests"] = {
                m.platform: entry for m, entry in zip(result.manifests, manifests, strict=True)
            }
        else:
            payload["manifest"] = manifests[0]
        console.json(payload)
    else:
        console.data(result.digest)


# --- pull -----------------------------------------------------------------------------------


@registry.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("ref")
@click.option("--platform", metavar="OS/ARCH", help="Platform to pull [default: this host].")
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to extract the files into.",
)
@plain_http_option
@json_option
@pass_app
def pull(
    app: AppContext,
    ref: str,
    platform: str | None,
    out_dir: Path,
    plain_http: bool,
    as_json: bool,
) -> None:
    """Pull REF (HOST/REPO[:TAG|@DIGEST]) and extract its files into -o DIR.

    Prints the paths of the files written.
    """
    from falcopkg.artifact.platforms import validate_platform
    from falcopkg.workflows.pull import registry_pull

    reference = _registry_reference(ref, "registry pull")
    chosen_platform = validate_platform(platform) if platform else None
    version_ref = reference.version_ref or DEFAULT_TAG
    console = app.console
    with app.registries(plain_http=plain_http, broken_manifest="warn") as registries:
        result = registry_pull(
            registries,
            f"{reference.registry}/{reference.repository}",
            version_ref,
            chosen_platform,
            out_dir,
            cache_dir=app.cache_dir,
            # Bytes moving on a terminal, as in `sync` (nothing on a pipe: one line follows).
            progress=console.download_progress() if console.is_tty else None,
        )
    artifact = result.artifact
    shown_platform = f" for {result.manifest.platform}" if result.manifest.platform else ""
    version = artifact.config.version or version_ref
    console.success(
        f"Pulled {artifact.type.name} {reference.registry}/{reference.repository} {version}"
        f"{shown_platform} ({artifact.root_digest}) into {out_dir}"
    )
    paths = [str(out_dir / name) for name in result.files]
    if as_json:
        payload: dict[str, Any] = {
            "reference": f"{reference.registry}/{reference.repository}",
            "digest": artifact.root_digest,
            "type": artifact.type.name,
            "platform": result.manifest.platform or None,
            "manifest": result.manifest.manifest_digest,
            "layer": {"digest": result.manifest.layer.digest, "size": result.manifest.layer.size},
            "config": artifact.config.to_dict(),
            "files": paths,
        }
        console.json(payload)
    else:
        for path in paths:
            console.data(path)


# --- login / logout -------------------------------------------------------------------------


@registry.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("host")
@click.option("-u", "--username", help="User name [prompted when missing on a terminal].")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@plain_http_option
@pass_app
def login(
    app: AppContext, host: str, username: str | None, password_stdin: bool, plain_http: bool
) -> None:
    """Check credentials against HOST and save them (mode 0600) for later commands."""
    from falcopkg.oci.credentials import Credential, CredentialStore
    from falcopkg.oci.errors import AuthenticationError

    host, scheme_is_http = _check_host(host)
    plain_http = plain_http or scheme_is_http  # `login http://HOST` means plain HTTP
    interactive = sys.stdin.isatty()
    if not username:
        if password_stdin or not interactive:
            raise UsageError(
                "no user name given",
                hint=f"pass it with `-u USER`: falcopkg registry login {host} -u USER",
            )
        username = click.prompt("Username", err=True).strip()
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    elif interactive:
        password = click.prompt("Password", hide_input=True, err=True)
    else:
        raise UsageError(
            "no password given and standard input is not a terminal",
            hint=f"pipe it in: `… | falcopkg registry login {host} -u {username} --password-stdin`",
        )
    if not username or not password:
        raise UsageError("user name and password must not be empty")
    credential = Credential(username, password)
    with registry_client(app, host, plain_http=plain_http, credential=credential) as client:
        try:
            client.ping()
        except AuthenticationError:
            raise AuthenticationError(
                f"login to {host} failed: the registry refused the credentials of {username!r}",
                hint="check the user name and password; nothing was saved",
                host=host,
                status=401,
            ) from None
        # The ping was answered without a challenge: nothing checked the credentials.
        unchecked = client.auth.scheme is None
    store = CredentialStore(warn=app.console.warn)
    store.set_registry(host, credential)
    if unchecked:
        app.console.warn(
            f"registry {host} did not ask for credentials, so they could not be checked; "
            f"saved them in {store.path}"
        )
    else:
        app.console.success(f"Login succeeded: credentials for {host} saved in {store.path}")


@registry.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("host")
@pass_app
def logout(app: AppContext, host: str) -> None:
    """Remove the saved credentials of HOST."""
    from falcopkg.oci.credentials import CredentialStore

    host, _ = _check_host(host)
    store = CredentialStore(warn=app.console.warn)
    if store.remove_registry(host):
        app.console.success(f"Removed the credentials for {host} from {store.path}")
    else:
        app.console.warn(f"not logged in to {host}")
