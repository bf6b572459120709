"""Benchmark a cold `falcopkg sync` (issue 13) beside curl, in the same run, paired.

Pushes COUNT assets of SIZE MiB (a tar.gz of random bytes, gzip level 1) to a local
docker-registry, locks them, then repeats, alternating:

1. `falcopkg sync` with an empty blob cache and an empty install directory;
2. `xargs -P 8 curl` of the same layer blobs (download only);
3. for each blob, one after another: `curl` it, `openssl dgst -sha256` it, `tar -xzf` it
   (what a script doing the same work as sync would run).

Usage::

    .venv/bin/python benchmarks/bench_sync_cold.py [--count 50] [--size-mib 4] [--repeats 7]
        [--no-doc]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shlex
import shutil
import statistics
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path

from _common import (
    MIB,
    falcopkg_command,
    isolated_env,
    machine_info,
    markdown_table,
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

TITLE = "cold sync (issue 13)"


class _RandomReader(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left, MIB)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n


def random_layer(path: Path, member: str, size: int) -> Path:
    """A tar.gz (level 1) of ``size`` random bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tar,
    ):
        info = tarfile.TarInfo(member)
        info.size = size
        info.mode = 0o644
        tar.addfile(info, _RandomReader(size))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--size-mib", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-doc", action="store_true")
    options = parser.parse_args()
    require_tools("curl", "openssl", "tar", "docker-registry")
    count, size = options.count, options.size_mib * MIB

    with (
        tempfile.TemporaryDirectory(prefix="bench-sync-cold-") as temp,
        registry_manager(Path(temp)) as manager,
    ):
        base = Path(temp)
        registry = manager.create("plain")
        host = registry.host
        env = isolated_env(base / "home")
        cache = Path(env["FALCOPKG_CACHE_DIR"])
        digests: dict[str, str] = {}
        with RegistryClient(host, RegistryOptions(plain_http=True)) as client:
            for n in range(count):
                name = f"bulk-{n:02d}"
                archive = random_layer(base / "src" / f"{name}.tar.gz", f"{name}.bin", size)
                pushed = push_artifact(
                    client,
                    f"bench/{name}",
                    get_type("asset"),
                    [archive],
                    version="1.0.0",
                    created=None,
                )
                digests[name] = pushed.manifests[0].layer.digest
        root = base / "project"
        root.mkdir()
        deps = "\n".join(
            f'{name} = {{ ref = "{host}/bench/{name}", version = "1" }}' for name in digests
        )
        header = f"""\
            [target]
            platforms = ["{host_platform()}"]

            [install]
            assets_dir = "assets"
            allowed_types = ["asset"]

            [registries."{host}"]
            plain_http = true

            [dependencies]
            """
        (root / "falco.toml").write_text(textwrap.dedent(header) + deps + "\n")
        sync = [*falcopkg_command(), "-C", str(root), "sync"]
        measure([*falcopkg_command(), "-C", str(root), "lock"], env=env)

        out = base / "out"
        urls = base / "urls.txt"
        urls.write_text(
            "".join(
                f"http://{host}/v2/bench/{name}/blobs/{digest} -o {out}/{name}.tar.gz\n"
                for name, digest in digests.items()
            )
        )
        curl = ["sh", "-c", f"xargs -P 8 -L 1 curl -sSf --noproxy '*' < {shlex.quote(str(urls))}"]
        steps = []
        for name, digest in digests.items():
            blob = shlex.quote(f"{out}/{name}.tar.gz")
            steps.append(
                f"curl -sSf --noproxy '*' -o {blob} http://{host}/v2/bench/{name}/blobs/{digest}"
                f" && openssl dgst -sha256 {blob} >/dev/null && tar -xzf {blob} -C {out}"
                " || exit 1"
            )
        script = ["sh", "-c", "\n".join(steps)]

        def fresh_out() -> None:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()

        times: dict[str, list[float]] = {"sync": [], "curl": [], "script": []}
        for run in range(options.repeats):
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(root / "assets", ignore_errors=True)
            times["sync"].append(measure(sync, env=env).seconds)
            fresh_out()
            times["curl"].append(measure(curl, env=env).seconds)
            fresh_out()
            times["script"].append(measure(script, env=env).seconds)
            print(
                f"run {run + 1}: sync {times['sync'][-1]:.2f} s, curl {times['curl'][-1]:.2f} s, "
                f"curl+openssl+tar {times['script'][-1]:.2f} s",
                file=sys.stderr,
            )

    label = f"cold sync, {count} x {options.size_mib} MiB"
    ours = statistics.median(times["sync"])
    rows = []
    for key, baseline, target in (
        ("curl", "`xargs -P 8 curl` of the blobs", "≤ 1.5x"),
        (
            "script",
            "`curl` + `openssl dgst -sha256` + `tar -xzf`, one blob after another",
            "≤ 0.6x",
        ),
    ):
        ratio = statistics.median(a / b for a, b in zip(times["sync"], times[key], strict=True))
        rows.append(
            [
                label,
                f"{ours:.2f} s",
                baseline,
                f"{statistics.median(times[key]):.2f} s",
                f"{ratio:.2f}x",
                target,
            ]
        )
    table = markdown_table(
        ["measure", "falcopkg", "baseline", "baseline time", "ratio (paired median)", "target"],
        rows,
    )
    print(table)
    print("each run:", times, file=sys.stderr)
    if options.no_doc:
        return
    machine = ", ".join(f"{k} {v}" for k, v in machine_info().items())
    tools = ", ".join(
        v
        for v in (
            tool_version(["curl", "--version"]),
            tool_version(["openssl", "version"]),
            tool_version(["tar", "--version"]),
        )
        if v
    )
    write_doc_section(
        TITLE,
        f"""
Reproduce: `.venv/bin/python benchmarks/bench_sync_cold.py --count {count} --size-mib
{options.size_mib} --repeats {options.repeats}`.

{count} assets of {options.size_mib} MiB (a tar.gz of random bytes, gzip level 1) in a local
docker-registry, locked. Each run empties falcopkg's blob cache and install directory and
runs `falcopkg sync` (the non-editable install in benchmarks/results/venv, a fresh
process), then the two baselines on the same blobs: `xargs -P 8 curl` (download only), and
a shell script that for each blob, one after another, runs `curl`, `openssl dgst -sha256`
and `tar -xzf` (the work sync does, as a script would do it). Medians of {options.repeats}
paired runs; the ratio is the median of the per-run ratios.

{table}

Machine: {machine}. Tools: {tools}.

Blob bodies are read with `readinto` from the connection into one reused buffer instead of
`iter_content`. Measured in-process on 200 MiB (a throwaway script, not in benchmarks/):
reading alone costs about 0.06 s of CPU either way with urllib3 2.8, and `open_blob` with
its sha256 0.21-0.22 s before, 0.19-0.20 s after, so the issue's 0.29 s vs 0.065 s was
not reproduced here and the gain is small. Importing requests (which brings
charset_normalizer, http.cookiejar and logging) is the network path's own cost and was not
trimmed. The `xargs -P 8 curl` row (target 1.5x) is not met; see "sync (issue 5)" for
the CPU a cold sync must spend beyond a plain download (two sha256 passes, inflating,
writing blobs and files, one fsync per installed file).
""",
    )


if __name__ == "__main__":
    main()
