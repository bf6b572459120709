"""Benchmarks of `falcopkg sync` (issue 5) with their baselines, measured in the same run.

    .venv/bin/python benchmarks/bench_sync.py [--runs 7] [--no-doc] [--only noop|bulk|cold|rss]

(``--only cold``: only the cold sync and its curl baseline, for quick iterations.)

1. No-op `falcopkg sync` with 100 locked artifacts installed vs ``python -c pass`` (≤ 3x).
2. Cold sync (empty cache, empty directories, falco.lock present) of 50 artifacts totalling
   200 MiB from a local registry vs fetching the same blobs with ``xargs -P 8 curl`` (≤ 1.3x)
   and ``skopeo copy`` of the artifacts one after another (faster).
3. Sync from a warm cache into empty directories vs ``tar -xzf`` of the same layers (≤ 1.5x).
4. Peak RSS of a cold sync of one 500 MiB plugin layer (≤ 100 MiB).

Medians of ``--runs`` runs; every command, ours and the baselines', is timed the same way
(benchmarks/_common.measure). falcopkg runs from cached bytecode, as an installed package
does (a private PYTHONPYCACHEPREFIX). Data is random (incompressible) bytes. Writes the
"sync (issue 5)" section of docs/benchmarks.md unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import (
    MIB,
    Measurement,
    bare_python,
    falcopkg_command,
    isolated_env,
    machine_info,
    measure,
    registry_manager,
    require_tools,
    tool_version,
    write_doc_section,
)

from falcopkg.artifact.platforms import host_platform
from falcopkg.artifact.push import push_artifact
from falcopkg.artifact.types import get_type
from falcopkg.oci.client import RegistryClient, RegistryOptions

TITLE = "sync (issue 5)"


@dataclass
class Row:
    name: str
    ours: float
    baseline_name: str
    baseline: float
    target: str
    unit: str = "s"

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline


def median_seconds(
    command: Callable[[], Measurement], runs: int, prepare: Callable[[], None] | None = None
) -> float:
    times = []
    for _ in range(runs):
        if prepare is not None:
            prepare()
        times.append(command().seconds)
    return statistics.median(times)


def wall_seconds(argv: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> Measurement:
    """Wall time of one run without the GNU time wrapper of ``measure``: its ~10 ms would
    flatter a ratio of two ~50 ms commands."""
    started = time.perf_counter()
    subprocess.run(
        argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return Measurement(time.perf_counter() - started, 0)


def shell(script: str) -> list[str]:
    return ["sh", "-c", script]


class Bench:
    def __init__(self, base: Path, registry_host: str, runs: int) -> None:
        self.base = base
        self.host = registry_host
        self.runs = runs
        self.env = isolated_env(base / "home")
        self.env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.cache = Path(self.env["FALCOPKG_CACHE_DIR"])
        self.client = RegistryClient(registry_host, RegistryOptions(plain_http=True))
        self.falcopkg = falcopkg_command()

    def run(self, root: Path, *args: str) -> Measurement:
        return measure([*self.falcopkg, *args], env=self.env, cwd=root)

    def project(self, name: str, deps: dict[str, str], allowed: str) -> Path:
        root = self.base / name
        root.mkdir(parents=True, exist_ok=True)
        lines = "\n".join(
            f'{n} = {{ ref = "{r}", version = "1" }}' for n, r in sorted(deps.items())
        )
        header = f"""\
            [target]
            platforms = ["{host_platform()}"]

            [install]
            rulesfiles_dir = "rules"
            plugins_dir = "plugins"
            assets_dir = "assets"
            allowed_types = [{allowed}]

            [registries."{self.host}"]
            plain_http = true

            [dependencies]
            """
        (root / "falco.toml").write_text(textwrap.dedent(header) + lines + "\n")
        return root

    def push(
        self, repo: str, type_name: str, files: Sequence[Path], platforms: Sequence[str] = ()
    ) -> str:
        result = push_artifact(
            self.client,
            repo,
            get_type(type_name),
            files,
            version="1.0.0",
            platforms=platforms,
            created=None,
        )
        return result.manifests[0].layer.digest

    # -- 1. no-op --------------------------------------------------------------------------

    def bench_noop(self) -> list[Row]:
        deps = {}
        for n in range(100):
            name = f"noop-rules-{n:03d}"
            path = self.base / "noop-src" / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"- list: {name.replace('-', '_')}\n  items: []\n")
            self.push(f"bench/{name}", "rulesfile", [path])
            deps[name] = f"{self.host}/bench/{name}"
        root = self.project("noop", deps, '"rulesfile"')
        self.run(root, "sync")  # locks and installs
        self.run(root, "sync")  # records the no-op stamp, warms the bytecode cache
        sync = [*self.falcopkg, "sync"]
        ours = median_seconds(lambda: wall_seconds(sync, self.env, root), self.runs)
        base = median_seconds(
            lambda: wall_seconds([bare_python(), "-c", "pass"], self.env), self.runs
        )
        return [
            Row(
                "no-op `falcopkg sync`, 100 artifacts installed",
                ours,
                "`python -c pass`",
                base,
                "≤ 3x",
            )
        ]

    # -- 2./3. cold and warm ----------------------------------------------------------------

    def bench_cold(self) -> list[Row]:
        return self.bench_bulk(cold_only=True)

    def bench_bulk(
        self, count: int = 50, size: int = 4 * MIB, cold_only: bool = False
    ) -> list[Row]:
        deps, digests = {}, {}
        for n in range(count):
            name = f"bulk-{n:02d}"
            archive = random_layer(
                self.base / "bulk-src" / f"{name}.tar.gz", f"{name}.bin", size, level=1
            )
            digests[name] = self.push(f"bench/{name}", "asset", [archive])
            deps[name] = f"{self.host}/bench/{name}"
        root = self.project("bulk", deps, '"asset"')
        self.run(root, "lock")
        assets = root / "assets"

        def cold() -> None:
            shutil.rmtree(self.cache, ignore_errors=True)
            shutil.rmtree(assets, ignore_errors=True)

        ours_cold = median_seconds(lambda: self.run(root, "sync"), self.runs, cold)

        out = self.base / "baseline-out"

        def fresh_out() -> None:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()

        urls = "\n".join(
            f"http://{self.host}/v2/bench/{name}/blobs/{digest} -o {out}/{name}"
            for name, digest in digests.items()
        )
        url_file = self.base / "urls.txt"
        url_file.write_text(urls + "\n")
        curl = shell(f"xargs -P 8 -L 1 curl -sSf < {shlex.quote(str(url_file))}")
        base_curl = median_seconds(lambda: measure(curl, env=self.env), self.runs, fresh_out)
        label = f"{count} artifacts, {count * size // MIB} MiB"
        cold_row = Row(
            f"cold sync, {label}", ours_cold, "`xargs -P 8 curl` of the blobs", base_curl, "≤ 1.3x"
        )
        if cold_only:
            return [cold_row]

        skopeo = shell(
            "; ".join(
                f"skopeo copy -q --src-tls-verify=false docker://{self.host}/bench/{name}:1.0.0 "
                f"dir:{out}/{name} || exit 1"
                for name in digests
            )
        )
        base_skopeo = median_seconds(
            lambda: measure(skopeo, env=self.env), max(3, self.runs // 2), fresh_out
        )

        # Warm: the cache holds every blob; the install directory is empty.
        self.run(root, "sync")
        ours_warm = median_seconds(
            lambda: self.run(root, "sync"),
            self.runs,
            lambda: shutil.rmtree(assets, ignore_errors=True),
        )
        blobs = [self.cache / "blobs" / "sha256" / d.partition(":")[2] for d in digests.values()]
        untar = shell("; ".join(f"tar -xzf {b} -C {out} || exit 1" for b in blobs))
        base_tar = median_seconds(lambda: measure(untar, env=self.env), self.runs, fresh_out)
        return [
            cold_row,
            Row(
                f"cold sync, {label}",
                ours_cold,
                "`skopeo copy`, one after another",
                base_skopeo,
                "< 1x",
            ),
            Row(
                f"warm-cache sync into empty dirs, {label}",
                ours_warm,
                "`tar -xzf` of the layers",
                base_tar,
                "≤ 1.5x",
            ),
        ]

    # -- 4. memory ---------------------------------------------------------------------------

    def bench_rss(self, size: int = 500 * MIB) -> list[Row]:
        archive = random_layer(self.base / "libbig.tar.gz", "libbig.so", size, level=0)
        self.push("bench/big", "plugin", [archive], platforms=[host_platform()])
        archive.unlink()
        root = self.project("big", {"big": f"{self.host}/bench/big"}, '"plugin"')
        self.run(root, "lock")
        shutil.rmtree(self.cache, ignore_errors=True)
        peak = self.run(root, "sync").peak_rss_mib
        return [
            Row(
                "peak RSS, cold sync of a 500 MiB plugin layer",
                peak,
                "target",
                100.0,
                "≤ 100 MiB",
                unit="MiB",
            )
        ]


def random_layer(path: Path, member: str, size: int, level: int) -> Path:
    """A tar.gz holding ``size`` random bytes, written in chunks (never all in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tar,
    ):
        info = tarfile.TarInfo(member)
        info.size = size
        info.mode = 0o644
        tar.addfile(info, _RandomReader(size))
    return path


class _RandomReader(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        import os

        n = min(len(buffer), self.left, MIB)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| measurement | falcopkg | baseline | baseline | ratio | target |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        if r.unit == "MiB":
            lines.append(
                f"| {r.name} | {r.ours:.0f} MiB | {r.baseline_name} | {r.baseline:.0f} MiB | {r.ratio:.2f} | {r.target} |"
            )
        else:
            lines.append(
                f"| {r.name} | {r.ours * 1000:.0f} ms | {r.baseline_name} | {r.baseline * 1000:.0f} ms "
                f"| {r.ratio:.2f}x | {r.target} |"
            )
    return "\n".join(lines)


NOTES = """\
How it is measured: each falcopkg run is a fresh `falcopkg` process (the console script,
from cached bytecode like an installed package) with its own HOME and cache; the no-op
runs `falcopkg sync` in the project directory and is timed directly (the others through
GNU time, for peak RSS). "Cold" empties the blob cache and the
install directory before each run (falco.lock exists, so nothing is resolved); "warm"
empties only the install directory. Baselines are timed the same way: 50 `curl` downloads
of the layer blobs through `xargs -P 8`, 50 `skopeo copy docker://… dir:…` one after
another, 50 `tar -xzf` of the cached layers. Layers are 4 MiB of random bytes (gzip level
1); the 500 MiB plugin layer is stored (gzip level 0).

What a sync does beyond the baselines: it verifies every blob's sha256, writes it to the
cache, decompresses and checks every archive entry, hashes every file for the install
state, fsyncs each file and renames it into place. Each download is read once: a worker
thread tees the chunks into the cache file and the extractor (no re-read of the blob), so
hashing, inflating and writing of several layers run on both cores.

Cold sync vs parallel curl misses the 1.3x target on this 2-core machine, and cannot reach
it without dropping required work. The baseline already keeps both cores busy: curl uses
0.58 s of CPU (0.18 user, 0.40 sys, 50 process starts) and the registry 0.30 s, 0.88 s of
CPU in 0.44 s. A cold sync uses about 0.98 s of CPU (0.60 user, 0.38 sys) plus the
registry's 0.32 s: 1.3 s, so even perfectly spread over two cores it needs 0.65 s (1.5x).
Its CPU: sha256 of the blobs and of the files (2 x 200 MiB at about 1.6 GB/s, 0.25 s),
inflating (0.08 s), receiving 200 MiB and writing 400 MiB (blobs plus files, most of the
sys time), and about 0.2 s on one core before the first byte arrives (interpreter and
imports 45 ms, manifest, lock, state and plan 55 ms, importing requests and building the
registry client 58 ms), when the second core has nothing to do. The fsync of each file
costs about 40 ms and is kept: a power cut must not leave an empty rules file behind a
completed rename. The first version (download, then read the blob back to extract it,
fsync of every blob) took 887 ms (2.0x); it is still 3x faster than skopeo, which does
not extract anything.
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--no-doc", action="store_true", help="print only; do not update docs/benchmarks.md"
    )
    parser.add_argument("--only", choices=["noop", "bulk", "cold", "rss"], action="append")
    args = parser.parse_args()
    require_tools("docker-registry", "skopeo", "curl", "tar")
    only = set(args.only or ["noop", "bulk", "rss"])
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="falcopkg-bench-sync-") as tmp,
        registry_manager(Path(tmp)) as manager,
    ):
        registry = manager.create("plain")
        bench = Bench(Path(tmp), registry.host, args.runs)
        try:
            for name, step in (
                ("noop", bench.bench_noop),
                ("bulk", bench.bench_bulk),
                ("cold", bench.bench_cold),
                ("rss", bench.bench_rss),
            ):
                if name in only:
                    rows += step()
                    print(table(rows), file=sys.stderr, flush=True)
        finally:
            bench.client.close()
    text = table(rows)
    print(text)
    if not args.no_doc and only == {"noop", "bulk", "rss"}:
        machine = ", ".join(f"{k} {v}" for k, v in machine_info().items())
        versions = (tool_version(["curl", "--version"]), tool_version(["skopeo", "--version"]))
        tools = ", ".join(" ".join(v.split()[:3]) for v in versions if v)
        body = (
            f"Reproduce: `.venv/bin/python benchmarks/bench_sync.py` (`--runs`, `--only`, `--no-doc`). "
            f"Medians of {args.runs} runs, baselines measured in the same run.\n\n{text}\n\n{NOTES}\n"
            f"Machine: {machine}. Tools: {tools}.\n"
        )
        write_doc_section(TITLE, body)


if __name__ == "__main__":
    main()
