"""`mirror` and `vendor`: options → one workflow call → render (SPEC §11).

Messages go to stderr; the data — the ``[registries]`` stanza after `mirror`, the ref names
after `vendor` — to stdout, so ``falcopkg mirror … >> falco.toml`` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.output import quantity

if TYPE_CHECKING:
    from falcopkg.services.copy import CopyReport, Kind

_jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1, max=64),
    default=8,
    show_default=True,
    help="Blobs copied at once.",
)


@click.command()
@click.argument("dest_prefix", metavar="DEST_PREFIX")
@click.option(
    "--plain-http", is_flag=True, help="Talk to the destination registry over plain HTTP."
)
@_jobs_option
@click.option("--dry-run", is_flag=True, help="Print what would be copied; copy nothing.")
@pass_app
def mirror(app: AppContext, dest_prefix: str, plain_http: bool, jobs: int, dry_run: bool) -> None:
    """Copy every locked artifact to DEST_PREFIX/<repository>, digests unchanged.

    DEST_PREFIX is host[:port][/path]. Tags naming the locked digests and their signatures
    (cosign tags, OCI referrers) come along. Prints the [registries] stanza to paste.
    """
    from falcopkg.cli.progress import format_size
    from falcopkg.workflows.mirror import MirrorOptions
    from falcopkg.workflows.mirror import mirror as mirror_workflow

    options = MirrorOptions(dest_prefix, plain_http=plain_http, jobs=jobs, dry_run=dry_run)
    result = mirror_workflow(app.project(), options)
    report = result.report
    console = app.console
    if dry_run:
        _print_plan(app, report)
    else:
        for item in report.written:
            console.detail(f"{_VERB[item.action]} {item.kind} {item.destination}")
    referrers = f" with {quantity(result.referrers, 'referrer')}" if result.referrers else ""
    size = f" ({format_size(report.bytes_copied)})" if report.bytes_copied else ""
    verb = "Would mirror" if dry_run else "Mirrored"
    console.success(
        f"{verb} {quantity(result.artifacts, 'artifact')}{referrers} to {result.prefix}: "
        f"{_summary(report, dry_run=dry_run)}{size}"
    )
    if not dry_run:
        console.info(f"Paste into falco.toml (or {_user_config()}) to read through the mirror:")
        console.data(result.stanza().rstrip("\n"))


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@_jobs_option
@pass_app
def vendor(app: AppContext, directory: Path, jobs: int) -> None:
    """Write every locked artifact (all platforms) into the OCI image layout DIRECTORY.

    Point a registry at it with `mirror = "oci-layout:DIR"` under [registries."HOST"];
    skopeo and oras read it as oci:DIR:HOST/REPOSITORY:VERSION.
    """
    from falcopkg.cli.progress import format_size
    from falcopkg.workflows.vendor import vendor as vendor_workflow

    result = vendor_workflow(app.project(), directory, jobs=jobs)
    report = result.report
    for item in report.written:
        app.console.detail(f"{_VERB[item.action]} {item.kind} {item.destination}")
    size = f" ({format_size(report.bytes_copied)})" if report.bytes_copied else ""
    app.console.success(
        f"Vendored {quantity(len(result.refs), 'root')} into {result.directory}: "
        f"{_summary(report, dry_run=False)}{size}"
    )
    for ref in result.refs:
        app.console.data(ref)


_VERB = {"copy": "copied", "mount": "mounted", "replace": "replaced", "present": "kept"}


def _summary(report: CopyReport, *, dry_run: bool) -> str:
    blobs: tuple[Kind, ...] = ("config", "layer")
    written = report.count("copy", blobs) + report.count("replace", blobs)
    parts = [("would copy " if dry_run else "copied ") + quantity(written, "blob")]
    mounted = report.count("mount", blobs)
    if mounted:
        parts.append(f"{mounted} mounted")
    parts.append(quantity(len([i for i in report.written if i.kind == "manifest"]), "manifest"))
    parts.append(quantity(len([i for i in report.written if i.kind == "tag"]), "tag"))
    present = report.count("present")
    replaced = report.count("replace")
    text = ", ".join(parts)
    if replaced:
        text += f" ({replaced} damaged copies replaced)"
    if present:
        text += f"; {present} already there"
    return text


def _print_plan(app: AppContext, report: CopyReport) -> None:
    for item in report.written:
        app.console.data(f"{item.kind:8} {item.destination} ({item.size} bytes)")


def _user_config() -> str:
    from falcopkg import paths

    return str(paths.user_config_file())
