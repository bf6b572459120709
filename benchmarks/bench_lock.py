"""Benchmark `falcopkg lock` (issue 4): requests and wall time against a local registry.

Starts a private docker-registry with its access log on, pushes N/2 rulesfiles that each
need one of N/2 plugins (two platforms; two versions of every artifact), writes a local
index and a falco.toml naming the rulesfiles, then runs the `falcopkg` CLI as a user would
(a fresh process each time):

1. cold: empty cache, no falco.lock;
2. re-lock with nothing changed (falco.lock and cache present);
3. falco.lock deleted, warm cache (a new project with the same artifacts);
4. ``lock --offline`` with a warm cache and falco.lock deleted.

Requests are counted from the registry's access log, so the numbers do not depend on
falcopkg's own accounting. Usage::

    .venv/bin/python benchmarks/bench_lock.py [--artifacts 100] [--no-doc]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The registry fixtures read this when imported: "info" turns distribution's access log on.
os.environ["FALCOPKG_TEST_REGISTRY_LOG"] = "info"

import yaml
from _common import (
    RunningRegistry,
    falcopkg_command,
    isolated_env,
    machine_info,
    markdown_table,
    measure,
    registry_manager,
    write_doc_section,
)

from falcopkg.artifact.push import push_artifact
from falcopkg.artifact.types import get_type
from falcopkg.oci.client import RegistryClient, RegistryOptions

TITLE = "lock (issue 4)"
ACCESS_RE = re.compile(r'"(?:GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP/[0-9.]+"')
PLATFORMS = ("linux/amd64", "linux/arm64")


def kind_of(path: str) -> str:
    for marker, kind in (
        ("/tags/list", "tags"),
        ("/manifests/", "manifests"),
        ("/blobs/", "blobs"),
    ):
        if marker in path:
            return kind
    return "other"


def requests_since(log: Path, offset: int) -> Counter[str]:
    time.sleep(0.2)  # let the registry flush its log
    text = log.read_bytes()[offset:].decode(errors="replace")
    return Counter(kind_of(match.group(1)) for match in ACCESS_RE.finditer(text))


def publish(registry: RunningRegistry, work: Path, pairs: int) -> list[tuple[str, str]]:
    """Push ``pairs`` rulesfiles and plugins (two versions each); their (name, type)."""

    def push(number: int) -> None:
        plugin, rules = f"plugin{number:03d}", f"rules{number:03d}"
        with RegistryClient(registry.host, RegistryOptions(plain_http=True)) as client:
            for version in ("0.1.0", "0.2.0"):
                paths = []
                for platform in PLATFORMS:
                    path = work / plugin / version / platform.replace("/", "-") / f"lib{plugin}.so"
                    path.parent.mkdir(parents=True)
                    path.write_bytes(f"ELF {plugin} {version} {platform}".encode() * 64)
                    paths.append(path)
                push_artifact(
                    client,
                    f"bench/{plugin}",
                    get_type("plugin"),
                    paths,
                    version=version,
                    platforms=PLATFORMS,
                    created=None,
                )
            for version in ("1.0.0", "1.1.0"):
                path = work / rules / version / f"{rules}.yaml"
                path.parent.mkdir(parents=True)
                items = [
                    {"required_engine_version": "0.50.0"},
                    {"required_plugin_versions": [{"name": plugin, "version": "0.1.0"}]},
                    {
                        "rule": rules,
                        "desc": "d",
                        "condition": "evt.num > 0",
                        "output": "o",
                        "priority": "INFO",
                    },
                ]
                path.write_text(yaml.safe_dump(items, sort_keys=False))
                push_artifact(
                    client,
                    f"bench/{rules}",
                    get_type("rulesfile"),
                    [path],
                    version=version,
                    created=None,
                )

    with ThreadPoolExecutor(max_workers=8) as executor:
        list(executor.map(push, range(pairs)))
    return [
        entry
        for number in range(pairs)
        for entry in ((f"rules{number:03d}", "rulesfile"), (f"plugin{number:03d}", "plugin"))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=100, help="artifacts to lock (even)")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    options = parser.parse_args()
    pairs = options.artifacts // 2

    with (
        tempfile.TemporaryDirectory(prefix="bench-lock-") as temp,
        registry_manager(Path(temp)) as manager,
    ):
        work = Path(temp)
        registry = manager.create("plain")
        started = time.monotonic()
        entries = publish(registry, work / "artifacts", pairs)
        print(
            f"published {len(entries)} artifacts in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
        index = work / "index.yaml"
        index.write_text(
            yaml.safe_dump(
                [
                    {
                        "name": name,
                        "type": kind,
                        "registry": registry.host,
                        "repository": f"bench/{name}",
                    }
                    for name, kind in entries
                ]
            )
        )
        project = work / "project"
        project.mkdir()
        roots = "".join(f'{name} = "1"\n' for name, kind in entries if kind == "rulesfile")
        (project / "falco.toml").write_text(
            f'[[index]]\nname = "bench"\nurl = "{index}"\n\n'
            f'[registries."{registry.host}"]\nplain_http = true\n\n'
            f"[dependencies]\n{roots}"
        )
        env = isolated_env(work / "home")
        rows = []
        for label, flags, delete_lock in (
            ("cold (empty cache, no falco.lock)", (), False),
            ("re-lock, nothing changed", (), False),
            ("falco.lock deleted, warm cache", (), True),
            ("`--offline`, warm cache, falco.lock deleted", ("--offline",), True),
        ):
            if delete_lock:
                (project / "falco.lock").unlink()
            offset = registry.log_path.stat().st_size
            run = measure([*falcopkg_command(), "-C", str(project), "lock", *flags], env=env)
            counts = requests_since(registry.log_path, offset)
            rows.append(
                [
                    label,
                    f"{run.seconds:.2f} s",
                    str(sum(counts.values())),
                    *(str(counts[kind]) for kind in ("tags", "manifests", "blobs")),
                ]
            )
        locked = (project / "falco.lock").read_text().count("[[artifact]]")

    table = markdown_table(["run", "wall time", "requests", "tags", "manifests", "blobs"], rows)
    print(table)
    if not options.no_doc:
        machine = ", ".join(f"{k} {v}" for k, v in machine_info().items())
        write_doc_section(
            TITLE,
            f"""
`.venv/bin/python benchmarks/bench_lock.py --artifacts {options.artifacts}`: a local
docker-registry (distribution 2.8), {locked} artifacts locked ({pairs} rulesfiles in
falco.toml, each needing one of {pairs} two-platform plugins; two versions of every
artifact). Each run is a fresh `falcopkg` process; requests are counted from the registry's
access log. Machine: {machine}.

{table}

A re-lock with nothing changed asks each repository for its tags once and reuses the
digests in falco.lock and the metadata cached by digest: no manifest, config or blob
request. Without falco.lock a warm cache costs one manifest HEAD per artifact (does the tag
still name the cached digest?). `--offline` makes no request at all.
""",
        )


if __name__ == "__main__":
    main()
