"""`falcopkg cache dir|clean|prune`: where the blob cache is, and keeping it small."""

from __future__ import annotations

import click

from falcopkg.cli.context import AppContext, pass_app
from falcopkg.durations import parse_duration


@click.group()
def cache() -> None:
    """Inspect and clean the blob cache."""


@cache.command("dir")
@pass_app
def dir_(app: AppContext) -> None:
    """Print the cache directory."""
    app.console.data(str(app.cache_dir))


@cache.command()
@pass_app
def clean(app: AppContext) -> None:
    """Remove everything from the cache (blobs, metadata, indexes)."""
    from falcopkg.cli.progress import format_size
    from falcopkg.services.cache import clean_cache

    removed = clean_cache(app.cache_dir)
    app.console.info(
        f"Removed {removed.files} files ({format_size(removed.bytes)}) from {app.cache_dir}"
    )


@cache.command()
@click.option(
    "--max-age",
    default="30d",
    show_default=True,
    help="Remove what was not used for this long (30d, 12h, 90m …).",
)
@pass_app
def prune(app: AppContext, max_age: str) -> None:
    """Remove blobs and metadata not used for a while, and leftovers of interrupted runs."""
    from falcopkg.cli.progress import format_size
    from falcopkg.services.cache import cache_usage, prune_cache

    removed = prune_cache(
        app.cache_dir, max_age_seconds=parse_duration(max_age, option="--max-age", bare_unit="d")
    )
    left = cache_usage(app.cache_dir)
    app.console.info(
        f"Pruned {removed.files} files ({format_size(removed.bytes)}); "
        f"{left.files} files ({format_size(left.bytes)}) remain in {app.cache_dir}"
    )
