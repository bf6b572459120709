"""`falcopkg artifact search|list|info` (SPEC §3, §4, §10); `install` comes from its own module.

search and list work on cached indexes only (fetched once when missing) and must start
fast: nothing here imports requests, YAML or tomlkit at module level, and the cached path
never imports them at all. `info` asks the registry for tags, floating tags, platforms,
dependencies and requirements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from falcopkg.artifact.types import ARTIFACT_TYPES
from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.group import lazy_group
from falcopkg.cli.output import render_table
from falcopkg.cli.params import json_option, plain_http_option, reference_argument
from falcopkg.core.index import IndexEntry
from falcopkg.errors import FalcopkgError
from falcopkg.services.indexes import IndexStore, LoadedIndex

if TYPE_CHECKING:
    from falcopkg.core.index_config import IndexConfig
    from falcopkg.workflows.artifact_info import ArtifactInfo

DESCRIPTION_WIDTH = 60


@lazy_group(
    # `install` lives in its own module so that `artifact search` does not pay for the
    # installer's imports.
    {
        "install": (
            "falcopkg.cli.commands.artifact_install:install",
            "Resolve and install artifacts by reference.",
        )
    }
)
def artifact() -> None:
    """Search, inspect and install artifacts."""


# -- shared: which indexes --------------------------------------------------------------------


def load_indexes(
    app: AppContext,
    only: Sequence[str] = (),
    unavailable: list[tuple[IndexConfig, FalcopkgError]] | None = None,
) -> list[LoadedIndex]:
    """The indexes read-only commands use (project, else user config, else the official one).

    Cached copies are used as they are; missing ones are fetched now. One that cannot be
    read is left out with a warning (and recorded in ``unavailable``) while others answer.
    """
    from falcopkg.services.userconfig import DEFAULT_INDEX_HINT, effective_indexes

    effective = effective_indexes(app.find_manifest())
    configs = effective.configs
    if effective.is_default:
        app.console.info(f"note: {DEFAULT_INDEX_HINT}")
        app.console.info("hint: add your own with `falcopkg index add NAME URL`")
    if only:
        by_name = {config.name: config for config in configs}
        unknown = [name for name in only if name not in by_name]
        if unknown:
            where = effective.source or "the default configuration"
            raise FalcopkgError(
                f"no index named {', '.join(repr(n) for n in unknown)} in {where}",
                hint="run `falcopkg index list` to see the configured indexes",
            )
        configs = [by_name[name] for name in dict.fromkeys(only)]
    from falcopkg.services.indexes import unavailable_warning

    missing = unavailable if unavailable is not None else []
    loaded = IndexStore(app.cache_dir).load_all(configs, unavailable=missing)
    for config, error in missing:
        app.console.warn(unavailable_warning(config, error))
    return loaded


def _ranked(
    indexes: Sequence[LoadedIndex], keywords: Sequence[str], type_: str | None
) -> list[tuple[IndexEntry, str]]:
    """Matching entries of every index, best first, with the name of their index.

    Ranking reads the cached rows; only the entries it returns are built.
    """
    from bisect import bisect_right

    from falcopkg.core.index import SearchCandidate, rank

    candidates: list[SearchCandidate] = []
    starts: list[int] = []
    for index in indexes:
        starts.append(len(candidates))
        candidates.extend(index.candidates())
    results = []
    for position in rank(candidates, keywords, type_):
        number = bisect_right(starts, position) - 1
        index = indexes[number]
        results.append((index.entry_at(position - starts[number]), index.name))
    return results


def _print_entries(
    app: AppContext, results: Sequence[tuple[IndexEntry, str]], as_json: bool
) -> None:
    if as_json:
        app.console.json([_entry_json(entry, index_name) for entry, index_name in results])
        return
    if not results:
        return
    rows = [
        (entry.name, entry.type, index_name, entry.reference, _shorten(entry.description))
        for entry, index_name in results
    ]
    app.console.data(render_table(("NAME", "TYPE", "INDEX", "REFERENCE", "DESCRIPTION"), rows))


def _entry_json(entry: IndexEntry, index_name: str) -> dict[str, Any]:
    """The entry as the index wrote it, plus where it came from and its reference."""
    return {"index": index_name, "reference": entry.reference, **entry.to_dict()}


def _shorten(text: str, width: int = DESCRIPTION_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# -- search / list ----------------------------------------------------------------------------


@artifact.command()
@click.argument("keywords", nargs=-1, required=True)
@click.option(
    "--type",
    "type_",
    type=click.Choice(sorted(ARTIFACT_TYPES)),
    help="Only artifacts of this type.",
)
@click.option("--index", "index_names", multiple=True, metavar="NAME", help="Only this index.")
@json_option
@pass_app
def search(
    app: AppContext,
    keywords: tuple[str, ...],
    type_: str | None,
    index_names: tuple[str, ...],
    as_json: bool,
) -> None:
    """Find artifacts by name, keyword or description (best matches first)."""
    results = _ranked(load_indexes(app, index_names), keywords, type_)
    _print_entries(app, results, as_json)
    if not results:
        app.console.info(f"no artifact matches {' '.join(keywords)}")


@artifact.command("list")
@click.option(
    "--type",
    "type_",
    type=click.Choice(sorted(ARTIFACT_TYPES)),
    help="Only artifacts of this type.",
)
@click.option("--index", "index_names", multiple=True, metavar="NAME", help="Only this index.")
@json_option
@pass_app
def list_(app: AppContext, type_: str | None, index_names: tuple[str, ...], as_json: bool) -> None:
    """List every artifact of the indexes."""
    results = _ranked(load_indexes(app, index_names), (), type_)  # no keywords: index order
    _print_entries(app, results, as_json)
    if not results:
        app.console.info("no artifacts")


# -- info ---------------------------------------------------------------------------------------


@artifact.command()
@click.argument("ref")
@json_option
@plain_http_option
@pass_app
def info(app: AppContext, ref: str, as_json: bool, plain_http: bool) -> None:
    """Show an artifact: index metadata, versions, floating tags, platforms, dependencies.

    REF is an index name or a registry reference, with an optional :tag or @digest
    (default: the newest version).
    """
    from falcopkg.services.indexes import resolve_reference
    from falcopkg.workflows.artifact_info import artifact_info

    reference = reference_argument(ref)
    unavailable: list[tuple[IndexConfig, FalcopkgError]] = []
    indexes = load_indexes(app, unavailable=unavailable) if reference.is_index_name else []
    located, entry, index_name = resolve_reference(reference, indexes, unavailable)
    with app.registries(plain_http=plain_http) as registries:
        result = artifact_info(located, entry, index_name, registries, app.cache_dir)
    if as_json:
        app.console.json(_info_json(result))
    else:
        app.console.data(_info_text(result))


def _info_json(result: ArtifactInfo) -> dict[str, Any]:
    remote = result.remote
    entry = result.entry
    data: dict[str, Any] = {
        "name": entry.name if entry else result.reference.rsplit("/", 1)[-1],
        "reference": result.reference,
        "index": result.index_name,
        "type": remote.type.name,
        # What the index says (null for a registry reference).
        "index_entry": entry.to_dict() if entry else None,
        "versions": result.versions,
        "floating_tags": result.floating,
        "selected": {
            "tag": result.selected_tag,
            "version": remote.config.version or None,
            "digest": remote.root_digest,
            "media_type": remote.root_media_type,
            "platforms": {
                name: {
                    "manifest": manifest.manifest_digest,
                    "config": manifest.config_digest,
                    "layer": {"digest": manifest.layer.digest, "size": manifest.layer.size},
                }
                for name, manifest in sorted(remote.platforms.items())
                if name
            },
            "dependencies": [dep.to_dict() for dep in result.dependencies],
            "requirements": [
                {"name": name, "version": version}
                for name, version in sorted(result.requirements.items())
            ],
        },
    }
    return data


def _info_text(result: ArtifactInfo) -> str:
    remote = result.remote
    entry = result.entry
    name = entry.name if entry else result.reference.rsplit("/", 1)[-1]
    rows: list[tuple[str, str]] = [("reference", result.reference)]
    if result.index_name:
        rows.append(("index", result.index_name))
    if entry is not None:
        rows += [
            (label, value)
            for label, value in (
                ("description", " ".join(entry.description.split())),
                ("home", entry.home),
                ("keywords", ", ".join(entry.keywords)),
                ("license", entry.license),
                ("sources", ", ".join(entry.sources)),
            )
            if value
        ]
    rows.append(("versions", ", ".join(result.versions) or "(none)"))
    if result.floating:
        rows.append(
            (
                "floating tags",
                ", ".join(
                    f"{alias} -> {target or '?'}" for alias, target in result.floating.items()
                ),
            )
        )
    shown = result.selected_tag or remote.root_digest
    version = remote.config.version
    if result.selected_tag and version and version != result.selected_tag:
        shown = f"{version} (tag {result.selected_tag}, {remote.root_digest})"  # NAME:3
    elif result.selected_tag:
        shown = f"{shown} ({remote.root_digest})"
    rows.append(("selected", shown))
    platforms = remote.platform_names
    rows.append(("platforms", ", ".join(platforms) if platforms else "any (single manifest)"))
    rows.append(
        (
            "dependencies",
            ", ".join(_dependency_text(d) for d in result.dependencies) or "none",
        )
    )
    rows.append(
        (
            "requirements",
            ", ".join(f"{name} {version}" for name, version in sorted(result.requirements.items()))
            or "none",
        )
    )
    width = max(len(label) for label, _ in rows) + 1
    header = f"{name} ({remote.type.name})"
    return "\n".join(
        [header, *(f"  {(label + ':').ljust(width)} {value}" for label, value in rows)]
    )


def _dependency_text(dependency: Any) -> str:
    text = f"{dependency.name} {dependency.version}"
    if dependency.alternatives:
        text += " (or " + ", ".join(f"{a.name} {a.version}" for a in dependency.alternatives) + ")"
    return text
