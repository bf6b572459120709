"""`falcopkg follow`: options → the follow workflow, with its messages as log lines (text, or
one JSON object per line with --log-format json), on stderr like every message."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from falcopkg.cli.context import AppContext, pass_app
from falcopkg.cli.output import Console
from falcopkg.cli.params import install_dir_options, platform_option
from falcopkg.durations import parse_duration
from falcopkg.errors import FalcopkgError, UsageError
from falcopkg.workflows.follow import DEFAULT_EVERY, FollowOptions, RoundResult, StopSignal
from falcopkg.workflows.noop import DirectoryOverrides
from falcopkg.workflows.sync import SyncOptions

EVENT_LEVELS = {"error": "error", "held_back": "warning"}


@dataclass
class LogConsole(Console):
    """A Console whose every message is one log line: plain text, or a JSON object with
    ``time``, ``level``, ``event``, ``message`` and the event's fields. No progress bars."""

    log_format: str = "text"

    def event(self, kind: str, message: str, **fields: object) -> None:
        level = EVENT_LEVELS.get(kind, "info")
        if level != "info" or self.verbosity >= 0:  # -q keeps warnings and errors
            self._emit(level, kind, message, fields)

    def info(self, message: str) -> None:
        if self.verbosity >= 0:
            self._emit("info", "message", message)

    def detail(self, message: str) -> None:
        if self.verbosity >= 1:
            self._emit("debug", "message", message)

    def warn(self, message: str) -> None:
        self._emit("warning", "message", message)

    def error(self, message: str, hint: str | None = None) -> None:
        self._emit("error", "error", message, {"hint": hint})

    def success(self, message: str) -> None:
        self.info(message)

    def data(self, text: str) -> None:
        self.info(text)

    def json(self, payload: Any) -> None:
        self._emit("info", "data", "", {"data": payload})

    def download_progress(self) -> None:
        return None

    def _emit(
        self, level: str, kind: str, message: str, fields: dict[str, object] | None = None
    ) -> None:
        if self.log_format == "json":
            record: dict[str, object] = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "level": level,
                "event": kind,
                "message": message,
            }
            record.update({k: v for k, v in (fields or {}).items() if v is not None})
            click.echo(json.dumps(record, ensure_ascii=False), err=True)
            return
        prefix = {"warning": "warning: ", "error": "error: "}.get(level, "")
        click.echo(f"{prefix}{message}", err=True)
        hint = (fields or {}).get("hint")
        if level == "error" and hint:
            click.echo(f"hint: {hint}", err=True)


@click.command()
@click.option(
    "--every",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Time between rounds (30s, 5m, 1h, 1d).",
)
@click.option("--once", is_flag=True, help="Run one round and exit (1 if it failed).")
@click.option(
    "--jitter",
    metavar="DURATION",
    help="Wait a random time up to this before the first round "
    "(default: a tenth of --every, at most 5m; none with --once).",
)
@click.option(
    "--falco-versions",
    metavar="URL|FILE",
    envvar="FALCOPKG_FALCO_VERSIONS",
    help="A running Falco's /versions (e.g. http://localhost:8765/versions): "
    "upgrades it cannot load are held back [env: FALCOPKG_FALCO_VERSIONS].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One plain line, or one JSON object, per message (stderr).",
)
@platform_option
@install_dir_options
@pass_app
def follow(
    app: AppContext,
    every: str,
    once: bool,
    jitter: str | None,
    falco_versions: str | None,
    log_format: str,
    platform: str,
    rulesfiles_dir: Path | None,
    plugins_dir: Path | None,
    assets_dir: Path | None,
) -> None:
    """Keep the install directories on the newest versions falco.toml allows.

    Each round re-resolves falco.toml allowing upgrades (requirements checked against
    [target] and, with --falco-versions, the running Falco), writes falco.lock when
    something changed and applies it exactly as `sync` does. SIGTERM or SIGINT stops it
    between steps (exit 0).
    """
    from falcopkg.cli.commands.install import print_report, raise_if_incomplete
    from falcopkg.workflows.follow import follow as follow_workflow
    from falcopkg.workflows.noop import nothing_to_do
    from falcopkg.workflows.project import Project

    interval = parse_duration(every, option="--every") if every else DEFAULT_EVERY
    if interval <= 0:
        raise UsageError("--every must be longer than 0s", hint="e.g. --every 1h")
    options = FollowOptions(
        sync=SyncOptions(
            platform=platform,
            overrides=DirectoryOverrides.of(
                rulesfiles_dir=rulesfiles_dir, plugins_dir=plugins_dir, assets_dir=assets_dir
            ),
        ),
        every=interval,
        jitter=parse_duration(jitter, option="--jitter") if jitter is not None else None,
        once=once,
        falco_versions=falco_versions,
    )
    log = LogConsole(verbosity=app.console.verbosity, color=False, log_format=log_format)
    log_app = AppContext(app.project_option, app.cache_dir_option, console=log)
    manifest_path = app.require_manifest()

    def render(result: RoundResult) -> None:
        if result.sync.report is None:
            log.detail(nothing_to_do(*result.sync.up_to_date))
        else:
            print_report(log_app, result.sync.report, dry_run=False)
            if once:  # a loop warns and goes on; one round reports it like `sync`
                raise_if_incomplete(result.sync.report)

    stop = StopSignal()
    try:
        with stop.on_signals():
            outcome = follow_workflow(
                options,
                open_project=lambda: Project.open(
                    manifest_path, cache_dir=app.cache_dir, reporter=log
                ),
                log=log,
                render=render,
                stop=stop,
            )
    except FalcopkgError as exc:
        if log_format != "json":
            raise
        log.error(exc.message, exc.hint)  # as a JSON line, not main()'s plain text
        raise SystemExit(exc.exit_code) from None
    if outcome.stopped_by is not None:
        log.event("stopped", f"Stopped on {outcome.stopped_by}", signal=outcome.stopped_by)
