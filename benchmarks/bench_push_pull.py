"""Issue 2: push and pull of a 500 MB plugin layer — falcopkg beside `skopeo copy`.

    .venv/bin/python benchmarks/bench_push_pull.py [--size-mib 500] [--repeats 3] [--no-doc]

One run measures, against real local `docker-registry` instances, and repeats each step:

- falcopkg push: `falcopkg registry push HOST/bench/big libbig.so --type plugin --version 1.0.0
  --platform linux/amd64 --plain-http` into an empty registry (the tar.gz packing counts: it
  is what users run);
- falcopkg pull: `falcopkg registry pull HOST/bench/big:1.0.0 --platform linux/amd64 -o DIR
  --plain-http` with an empty FALCOPKG_CACHE_DIR;
- skopeo pull: `skopeo copy --all docker://HOST/bench/big:1.0.0 oci:LAYOUT:x`;
- skopeo push: `skopeo copy --all oci:LAYOUT:x docker://FRESH/bench/big2:1.0.0`.

Every push goes to a freshly started registry (no blob already present, nothing to mount) and
every command gets its own empty HOME (no falcopkg cache). skopeo runs as ``nobody`` when the
benchmark runs as root, so its blob-info cache is the fresh one under that HOME and not root's
shared /var/lib/containers/cache. falcopkg is a non-editable install (see _common.bench_venv).
Prints a markdown table of medians and, unless --no-doc, writes it into the
"push and pull (issue 2)" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

from _common import (
    MIB,
    Measurement,
    falcopkg_command,
    format_mib,
    format_seconds,
    give_to_unprivileged,
    isolated_env,
    machine_info,
    markdown_table,
    measure,
    median_of,
    registry_manager,
    remove_registry,
    require_tools,
    tool_version,
    unprivileged,
    write_doc_section,
    write_random_file,
)

SECTION = "push and pull (issue 2)"
RSS_LIMIT_MIB = 100  # the bound on falcopkg's peak RSS
PUSH_RATIO_TARGET = 1.5  # issue 13: falcopkg push within 1.5x of skopeo's
REPOSITORY = "bench/big"
SKOPEO_REPOSITORY = "bench/big2"
VERSION = "1.0.0"
PLATFORM = "linux/amd64"
COMMAND = ".venv/bin/python benchmarks/bench_push_pull.py"
PUSH, PULL = "push", "pull"
PUSH_PREPACKED = "push of a ready .tar.gz"  # falcopkg only: skopeo's push never packs
OPERATIONS = (PUSH, PULL, PUSH_PREPACKED)
SKOPEO_BASELINE = {PUSH: PUSH, PULL: PULL, PUSH_PREPACKED: PUSH}

Runs = dict[tuple[str, str], list[Measurement]]  # (operation, tool) -> one per repeat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=500, help="layer size (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--workdir", type=Path, help="where to put the temporary files")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.repeats < 1:
        parser.error("--size-mib and --repeats must be at least 1")
    require_tools("docker-registry", "skopeo")

    falcopkg_command()  # build the non-editable install before anything is timed
    with TemporaryDirectory(prefix="falcopkg-bench-push-pull-", dir=args.workdir) as tmp:
        runs = run_benchmark(Path(tmp), args.size_mib, args.repeats)

    report = render_report(runs, args.size_mib, args.repeats)
    print(report)
    if not args.no_doc:
        write_doc_section(SECTION, report)
        print(f"\nwrote the section {SECTION!r} of docs/benchmarks.md", file=sys.stderr)
    return 0 if within_rss_limit(runs) else 1


def run_benchmark(work: Path, size_mib: int, repeats: int) -> Runs:
    source = work / "src" / "libbig.so"
    say(f"writing {size_mib} MiB of random data to {source}")
    write_random_file(source, size_mib * MIB)
    falcopkg = falcopkg_command()
    runs: Runs = {}

    def timed(operation: str, tool: str, argv: list[str], env: dict[str, str]) -> None:
        result = measure(argv, env=env)
        runs.setdefault((operation, tool), []).append(result)
        say(
            f"  {tool} {operation}: {format_seconds(result.seconds)}, "
            f"peak RSS {format_mib(result.peak_rss_kib)}"
        )

    def falcopkg_push(host: str, file: Path) -> list[str]:
        return [
            *falcopkg,
            "registry",
            "push",
            f"{host}/{REPOSITORY}",
            str(file),
            "--type",
            "plugin",
            "--version",
            VERSION,
            "--platform",
            PLATFORM,
            "--plain-http",
        ]

    # The layer blob of the first pull, pushed as a ready-made tar.gz (falcopkg uses it as
    # is): the push without the packing, i.e. what skopeo does.
    prepacked = work / "prepacked" / "libbig.tar.gz"
    with registry_manager(work) as manager:
        # The first falcopkg push fills this (then empty) registry; every pull reads from it.
        origin = manager.create("plain")
        for number in range(repeats):
            say(f"run {number + 1}/{repeats}")
            homes = _Homes(work / f"homes-{number}")

            target = origin if number == 0 else manager.create("plain")
            timed(PUSH, "falcopkg", falcopkg_push(target.host, source), homes.env("fp-push"))
            if target is not origin:
                remove_registry(target)

            out_dir, cache_dir = work / "pulled", work / "pull-cache"
            timed(
                PULL,
                "falcopkg",
                [
                    *falcopkg,
                    "registry",
                    "pull",
                    f"{origin.host}/{REPOSITORY}:{VERSION}",
                    "--platform",
                    PLATFORM,
                    "-o",
                    str(out_dir),
                    "--plain-http",
                ],
                homes.env("fp-pull", cache_dir=cache_dir),
            )
            if number == 0:
                check_same_file(out_dir / source.name, source)
            shutil.rmtree(out_dir)
            shutil.rmtree(cache_dir, ignore_errors=True)

            # skopeo writes its layout and cache as the unprivileged user.
            skopeo_dir = work / "skopeo"
            skopeo_dir.mkdir()
            layout = skopeo_dir / "layout"
            timed(
                PULL,
                "skopeo",
                unprivileged(
                    [
                        "skopeo",
                        "copy",
                        "--all",
                        "--src-tls-verify=false",
                        f"docker://{origin.host}/{REPOSITORY}:{VERSION}",
                        f"oci:{layout}:x",
                    ]
                ),
                homes.unprivileged_env("skopeo-pull", skopeo_dir),
            )
            fresh = manager.create("plain")
            timed(
                PUSH,
                "skopeo",
                unprivileged(
                    [
                        "skopeo",
                        "copy",
                        "--all",
                        "--dest-tls-verify=false",
                        f"oci:{layout}:x",
                        f"docker://{fresh.host}/{SKOPEO_REPOSITORY}:{VERSION}",
                    ]
                ),
                homes.unprivileged_env("skopeo-push"),
            )
            remove_registry(fresh)
            if number == 0:
                largest_blob = max(layout.glob("blobs/*/*"), key=lambda p: p.stat().st_size)
                prepacked.parent.mkdir()
                largest_blob.rename(prepacked)
            shutil.rmtree(skopeo_dir)

            fresh = manager.create("plain")
            timed(PUSH_PREPACKED, "falcopkg", falcopkg_push(fresh.host, prepacked), homes.env("fp"))
            remove_registry(fresh)
            homes.remove()
    return runs


class _Homes:
    """A fresh, empty HOME per measured command, so no run profits from an earlier one."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def env(self, name: str, *, cache_dir: Path | None = None) -> dict[str, str]:
        return isolated_env(self.base / name, cache_dir=cache_dir)

    def unprivileged_env(self, name: str, *writable: Path) -> dict[str, str]:
        """An env whose HOME (and ``writable``) the unprivileged user owns."""
        env = self.env(name)
        give_to_unprivileged(self.base / name, *writable)
        return env

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def check_same_file(pulled: Path, source: Path) -> None:
    """The benchmark is only worth its numbers if the pull gave back the pushed bytes."""
    from falcopkg.digests import file_digest

    if not pulled.is_file() or file_digest(pulled) != file_digest(source):
        raise SystemExit(f"error: {pulled} is missing or differs from {source}")


def within_rss_limit(runs: Runs) -> bool:
    return all(
        max(m.peak_rss_kib for m in measured) < RSS_LIMIT_MIB * 1024
        for (_, tool), measured in runs.items()
        if tool == "falcopkg"
    )


def render_report(runs: Runs, size_mib: int, repeats: int) -> str:
    def cell(operation: str, tool: str, show: Callable[[Measurement], str]) -> str:
        measured = runs.get((operation, tool))
        return show(median_of(measured)) if measured else "n/a"

    def time_cell(m: Measurement) -> str:
        return format_seconds(m.seconds)

    def rss_cell(m: Measurement) -> str:
        return format_mib(m.peak_rss_kib)

    def ratio(operation: str) -> float | None:
        ours, theirs = (
            runs.get((operation, "falcopkg")),
            runs.get((SKOPEO_BASELINE[operation], "skopeo")),
        )
        if not ours or not theirs:
            return None
        # Paired: each run's falcopkg time over the skopeo time of the same run (the load of
        # a shared machine drifts between runs more than within one).
        return statistics.median(a.seconds / b.seconds for a, b in zip(ours, theirs, strict=True))

    rows = [
        [
            f"{operation} ({size_mib} MiB plugin)",
            cell(operation, "falcopkg", time_cell),
            cell(SKOPEO_BASELINE[operation], "skopeo", time_cell),
            f"{r:.2f}x" if (r := ratio(operation)) is not None else "n/a",
            cell(operation, "falcopkg", rss_cell),
            cell(SKOPEO_BASELINE[operation], "skopeo", rss_cell),
        ]
        for operation in OPERATIONS
    ]
    table = markdown_table(
        [
            "operation",
            "falcopkg time",
            "skopeo time",
            "ratio (paired)",
            "falcopkg peak RSS",
            "skopeo peak RSS",
        ],
        rows,
    )
    push_ratio = ratio(PUSH)
    push_verdict = (
        f"Target (issue 13): push within {PUSH_RATIO_TARGET}x of skopeo — "
        + (
            "n/a"
            if push_ratio is None
            else f"{push_ratio:.2f}x, "
            + ("**met**" if push_ratio <= PUSH_RATIO_TARGET else "**not met**")
        )
        + "."
    )
    raw = [
        f"- {tool} {operation}: "
        + ", ".join(f"{format_seconds(m.seconds)} / {format_mib(m.peak_rss_kib)}" for m in ms)
        for operation in OPERATIONS
        for tool in ("falcopkg", "skopeo")
        if (ms := runs.get((operation, tool)))
    ]
    worst = {
        operation: max(m.peak_rss_kib for m in measured)
        for operation in OPERATIONS
        if (measured := runs.get((operation, "falcopkg")))
    }
    verdict = ", ".join(
        f"{op} max {format_mib(kib)} ({'ok' if kib < RSS_LIMIT_MIB * 1024 else 'OVER'})"
        for op, kib in worst.items()
    )
    machine = ", ".join(f"{k} {v}" for k, v in machine_info().items())
    versions = ", ".join(
        v
        for v in (
            tool_version([*falcopkg_command(), "--version"]),
            tool_version(["skopeo", "--version"]),
            tool_version(["docker-registry", "--version"]),
        )
        if v
    )
    return "\n".join(
        [
            f"Push and pull of a {size_mib} MiB incompressible plugin (`libbig.so`, packed by "
            "falcopkg into a tar.gz layer) through a local `docker-registry` over plain HTTP, "
            f"beside `skopeo copy --all` of the same artifact, in the same run. Medians of "
            f"{repeats} runs; peak RSS is the process's max resident set size (GNU time `%M`).",
            "",
            table,
            "",
            push_verdict,
            "",
            f"Target: falcopkg peak RSS under {RSS_LIMIT_MIB} MiB — {verdict}.",
            "",
            "Each run (wall time / peak RSS):",
            "",
            *raw,
            "",
            "How it is measured: every push goes to a freshly started registry (no blob to skip "
            "or mount) and every command runs with its own empty HOME and cache. falcopkg is "
            "installed non-editable into its own venv (benchmarks/results/venv, as users get it); "
            "skopeo runs as `nobody` (via setpriv) when the benchmark runs as root, so its "
            "blob-info cache is a fresh one under that HOME, not root's shared "
            "/var/lib/containers/cache. `push` is what "
            "users run: `falcopkg registry push HOST/bench/big libbig.so --type plugin --version "
            "1.0.0 --platform linux/amd64 --plain-http`, which packs the file into a tar.gz "
            "first (gzip level 6 in 512 KiB blocks on every core, blocks that do not compress "
            "stored; part of the timing). skopeo push copies an already-built OCI "
            "layout (`oci:DIR:x` → `docker://HOST/bench/big2:1.0.0`), so the last row pushes "
            "the same layer as a ready-made .tar.gz (falcopkg uploads it as it is) beside the "
            "same skopeo push numbers: transfer against transfer. falcopkg pull "
            "(`registry pull HOST/bench/big:1.0.0 --platform linux/amd64 -o DIR --plain-http`) "
            "downloads into an empty cache, verifies, and extracts `libbig.so`; skopeo pull "
            "(`copy --all docker://… oci:DIR:x`) writes the blobs only.",
            "",
            f"Reproduce: `{COMMAND}` (options: `--size-mib`, `--repeats`, `--no-doc`).",
            "",
            f"Measured {dt.date.today().isoformat()} on: {machine}. Tools: {versions}.",
        ]
    )


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
