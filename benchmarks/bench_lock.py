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
import statistics
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
    registry_manager,
    require_tools,
    timed_with_cpu,
    write_doc_section,
)

from falcopkg.artifact.push import push_artifact
from falcopkg.artifact.types import get_type
from falcopkg.oci.client import RegistryClient, RegistryOptions

TITLE = "lock (issue 4)"
# Per run: wall times, then CPU seconds of falcopkg, of the registry during falcopkg's
# run, of curl, and of the registry during curl's run.
CPU_KEYS = ("falcopkg", "curl", "falcopkg_cpu", "registry_cpu", "curl_cpu", "registry_cpu_curl")
ACCESS_RE = re.compile(r'"(?:GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP/[0-9.]+"')
PLATFORMS = ("linux/amd64", "linux/arm64")
# The runs of each repeat, in order: the first re-lock after a cold lock finds the tag lists
# as the lock stamped them (services.lock_stamp) and skips the resolver; the next one has
# the stamp removed first, so the resolver runs over a warm cache (a lock after
# `lock --upgrade`, or after a falcopkg that did not stamp).
LABELS = {
    "cold": "cold lock",
    "relock": "re-lock, nothing changed (first after a lock: stamped)",
    "resolve": "re-lock, nothing changed (stamp removed: resolves)",
}


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


MANIFEST_ACCEPT = ",".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
REQUEST_RE = re.compile(r'"(GET|HEAD) (/v2/\S*) HTTP/[0-9.]+"')


def requests_made(log: Path, offset: int) -> list[tuple[str, str]]:
    """The (method, path) of every GET and HEAD the registry logged since ``offset``."""
    time.sleep(0.2)
    text = log.read_bytes()[offset:].decode(errors="replace")
    return [(m.group(1), m.group(2)) for m in REQUEST_RE.finditer(text)]


def curl_baseline(registry: RunningRegistry, made: list[tuple[str, str]], work: Path) -> Path:
    """A script that sends the same requests with curl: 8 curl processes at once (falcopkg's
    parallelism), each sending its share over kept-alive connections, bodies to /dev/null."""
    work.mkdir(parents=True, exist_ok=True)
    shares: list[list[str]] = [[] for _ in range(8)]
    for number, (method, path) in enumerate(made):
        head = "head\n" if method == "HEAD" else ""
        shares[number % 8].append(
            f'{head}header = "Accept: {MANIFEST_ACCEPT}"\n'
            f'url = "http://{registry.host}{path}"\noutput = "/dev/null"\n'
        )
    configs = []
    for number, share in enumerate(shares):
        if share:
            config = work / f"curl-{number}.conf"
            config.write_text("next\n".join(share))
            configs.append(str(config))
    script = work / "curl-baseline.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' {' '.join(configs)} | xargs -P 8 -n 1 curl -sS -f --noproxy '*' -K\n"
    )
    script.chmod(0o755)
    return script


def bench_size(artifacts: int, repeats: int) -> dict[str, object]:
    """Cold lock and re-lock of ``artifacts`` artifacts, each paired with curl."""
    pairs = artifacts // 2
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
        lock = [*falcopkg_command(), "-C", str(project), "lock"]
        results: dict[str, dict[str, list[float]]] = {}
        counts: dict[str, Counter[str]] = {}
        scripts: dict[str, Path] = {}
        for run in range(repeats):
            for label in LABELS:
                if label == "cold":
                    (project / "falco.lock").unlink(missing_ok=True)
                    home = work / f"home-{run}"  # empty cache
                if label == "resolve":
                    for stamp in home.rglob("*.stamp"):
                        stamp.unlink()
                env = isolated_env(home)
                offset = registry.log_path.stat().st_size
                seconds, cpu, registry_cpu = timed_with_cpu(lock, registry.pid, env=env)
                if label not in scripts:
                    made = requests_made(registry.log_path, offset)
                    counts[label] = requests_since(registry.log_path, offset)
                    scripts[label] = curl_baseline(registry, made, work / label)
                baseline, curl_cpu, registry_cpu_curl = timed_with_cpu(
                    [str(scripts[label])], registry.pid
                )
                times = results.setdefault(label, {key: [] for key in CPU_KEYS})
                for key, value in zip(
                    CPU_KEYS,
                    (seconds, baseline, cpu, registry_cpu, curl_cpu, registry_cpu_curl),
                    strict=True,
                ):
                    times[key].append(value)
                print(
                    f"{artifacts} {label}: falcopkg {seconds:.2f} s, curl {baseline:.2f} s",
                    file=sys.stderr,
                )
        locked = (project / "falco.lock").read_text().count("[[artifact]]")
    return {"artifacts": locked, "results": results, "counts": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--artifacts", type=int, nargs="+", default=[10, 100, 1000], help="sizes (even)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    options = parser.parse_args()
    require_tools("curl", "docker-registry")
    rows = []
    cpu_rows = []
    for artifacts in options.artifacts:
        found = bench_size(artifacts, options.repeats)
        results = found["results"]
        counts = found["counts"]
        assert isinstance(results, dict) and isinstance(counts, dict)
        for label, name in LABELS.items():
            times = results[label]
            ours = statistics.median(times["falcopkg"])
            theirs = statistics.median(times["curl"])
            ratio = statistics.median(
                a / b for a, b in zip(times["falcopkg"], times["curl"], strict=True)
            )
            target = "1.5x" if label == "cold" else "2x"
            count = counts[label]
            rows.append(
                [
                    name,
                    str(found["artifacts"]),
                    f"{sum(count.values())} ({count['tags']} / {count['manifests']} / "
                    f"{count['blobs']})",
                    f"{ours:.2f} s",
                    f"{theirs:.2f} s",
                    f"{ratio:.2f}x",
                    f"≤ {target}" if found["artifacts"] == 1000 else "",
                ]
            )
            med = {key: statistics.median(times[key]) for key in CPU_KEYS}
            # Both sides' CPU on 2 cores, if it could overlap perfectly: no run is faster.
            floor = max(theirs, (med["falcopkg_cpu"] + med["registry_cpu_curl"]) / 2)
            cpu_rows.append(
                [
                    name,
                    str(found["artifacts"]),
                    f"{med['falcopkg_cpu']:.2f} s",
                    f"{med['registry_cpu']:.2f} s",
                    f"{med['curl_cpu']:.2f} s",
                    f"{med['registry_cpu_curl']:.2f} s",
                    f"{floor:.2f} s ({floor / theirs:.2f}x)",
                ]
            )
    table = markdown_table(
        [
            "run",
            "artifacts",
            "requests (tags / manifests / blobs)",
            "falcopkg",
            "same requests with curl",
            "ratio (paired median)",
            "target",
        ],
        rows,
    )
    cpu_table = markdown_table(
        [
            "run",
            "artifacts",
            "falcopkg CPU",
            "registry CPU meanwhile",
            "curl CPU",
            "registry CPU meanwhile",
            "2-core floor for this falcopkg CPU (ratio)",
        ],
        cpu_rows,
    )
    print(table)
    print(cpu_table)
    if not options.no_doc:
        machine = ", ".join(f"{k} {v}" for k, v in machine_info().items())
        sizes = " ".join(str(n) for n in options.artifacts)
        write_doc_section(
            TITLE,
            f"""
Reproduce: `.venv/bin/python benchmarks/bench_lock.py --artifacts {sizes} --repeats
{options.repeats}`. A local docker-registry (distribution 2.8); N artifacts locked (N/2
rulesfiles in falco.toml, each needing one of N/2 two-platform plugins; two versions of
every artifact). falcopkg is the non-editable install (benchmarks/results/venv), a fresh
process per run. Cold: empty cache, no falco.lock. Re-lock: falco.lock and cache present,
nothing changed; the first re-lock after the cold one finds the tag lists as the cold lock
stamped them and skips the resolver, the second has the stamp removed first and resolves
over the warm cache (as after `lock --upgrade`). The baseline sends the very requests that falcopkg's run made (taken from
the registry's access log, GET and HEAD) with `curl`: 8 curl processes at once
(falcopkg's parallelism), each sending an eighth of them over kept-alive connections, in
the same run, alternating with falcopkg; medians
of {options.repeats} paired runs. Machine: {machine}.

{table}

The CPU both sides used in the same runs (medians; user + system seconds of the process
tree, the registry's from /proc): the registry serving curl's requests is the baseline's
cost, so no lock can be faster than the registry's CPU plus falcopkg's own spread over the
2 cores (the floor column; it assumes perfect overlap, which one Python process with a GIL
does not reach).

{cpu_table}

What changed for issue 13 (profiles and counters of in-process locks on this machine):
the transport runs on `http.client` instead of requests + urllib3, about 0.4 ms of CPU per
registry request instead of 1.3-1.6 ms (see "lock: the floor of the HTTP stack"); on 2
cores that CPU competes with the registry's own, which is most of what the curl baseline
measures. A cold lock reads each layer as it downloads (teed into the blob cache, the
rules YAML kept in memory): no staging directory, no extracted files, 3 fsyncs instead of
2,003 for 1000 artifacts. Metadata records are written without fsync and outside the
provider's lock; an unchanged tag list is not rewritten (a re-lock writes no record).
Then, from py-spy profiles of who holds the GIL during a 1000-artifact re-lock (1.12 s of
GIL time before, 0.69 s after): constraints compare precomputed tuple keys instead of
semver objects (`allows` 3.9 us -> 0.6 us; 0.25 s of a re-lock), a falco.lock over 16 KiB
keeps its parsed TOML in the cache in marshal form keyed by the lock's sha256 (0.19 s of
tomllib -> a few ms; the lock is still validated), and response heads are parsed by the
transport itself instead of http.client's email-package parser (about 0.1 ms a response,
16% of a cold lock's GIL time). What is left: interpreter start and imports (0.25 s of CPU
even for 10 artifacts), the HTTP exchange of each request, and GIL hand-offs between the 8
fetch threads (system time). The CPU table shows why the targets are not met on 2 cores:
the registry itself spends 11-12 s of CPU serving a cold lock's 5,500 requests, so even a
perfectly overlapped falcopkg would need about 1.4x curl's time with the CPU it uses now;
the 1.5x cold target would need falcopkg's CPU per request near curl's.

Then, from phase timings of a 1000-artifact re-lock (wall and CPU at each step of one
process) and `strace -c` of a cold lock: metadata the cache holds whole is read in the
resolver's thread, not through the 8-thread prefetch pool (0.6 s -> 0.25 s of CPU for a
re-lock's 1000 cached candidates: the pool only added GIL hand-offs to work that waits for
nothing); the lock a command writes keeps its parsed form in the lock cache, so the re-lock
that follows a lock skips tomllib as well; cache records are read with 4 system calls
instead of up to 8 and written without a `mkdir` per file, an `isatty` ioctl per open or a
failing `unlink` after each rename, and a manifest or config is verified in memory instead
of being read back (a cold lock: about 207,000 system calls other than futex -> 137,000);
a socket's timeout is set only when the one it has would end a wait late (3 `ioctl`s less
per request). A re-lock went from about 30,000 voluntary context switches to 5,000, and a
cold lock's CPU from 10-13 s to 7.4 s.

Then, cache files: a cold lock of 1000 artifacts created 8,003 cache files and now creates
6,503 (4,500 manifest and config blobs, 1,000 root records that also hold what their
layers contain, 1,000 tag records written once when the lock ends; tested in
tests/integration/test_lock_e2e.py). Each new file is an inode allocation, and this
machine's root filesystem is ext4 without a journal (`/sys/fs/ext4/vda/journal_task` reads
`<none>`): there, every allocation also scans for inodes deleted in the last minutes
(`perf`: `find_get_block_common`, `recently_deleted`, `find_inode_bit` and
`ext4_get_group_desc`: 37% of falcopkg's samples in one such run), so a cold lock right
after the registry's push uploads or a previous cache were deleted is 15-40% slower. Journaled
ext4, the usual case, skips that scan. With HOME and the cache on tmpfs (`/dev/shm`), the
same cold lock took 10.3-10.5 s beside curl's 6.5-6.8 s (1.54x-1.58x) where the disk gave
11.5-12.1 s (1.73x-1.77x) in the same hour.

Then, packs: manifests, configs and the root, layer and tag records are appended to 256 pack
files per kind (`services/packs.py`) instead of a file each, so a cold lock of 1000
artifacts creates 2,256 cache files (1,500 of them the layers `sync` installs from) instead
of 6,503. Measured first as an upper bound (the same lock with manifests and configs not
kept at all: 10.0-12.0 s instead of 12.1-13.7 s, and 12.3-14.8 s instead of 16.3-21.7 s
right after a previous cache was deleted), then paired, old and new code alternating
against one registry: system time 1.0-1.3 s instead of 1.4-2.0 s, wall 8.5-9.9 s instead of
8.9-10.9 s. In the table's runs falcopkg's CPU was 4.8 s (was 5.8 s) when this machine was
fast; it is 6.9-8.0 s when curl's own time for the same requests grows by half (steal time
from the host: `/proc/stat`). Tried and dropped, for no measurable gain: fetching the tag
lists of a rulesfile's plugins the moment its metadata is read instead of in the
resolver's next wave (the 8 workers are already busy in a cold lock, and a re-lock is
CPU-bound on 2 cores, so overlap has nothing left to fill).

Then, the stamp (`services/lock_stamp.py`): a plain `lock` that finds falco.lock up to
date records the digest of every tag list it read, keyed by falco.toml's and falco.lock's
bytes and the indexes' contents; the next `lock` with the same key asks for those tag lists
all at once (the same 1000 requests) and, when every one is unchanged, is done without
running the resolver, reading a cached record or rendering the lock. A resolution that
looked a tag up (a digest not in falco.lock) or warned is not stamped, and upgrades,
`--offline` and `--dry-run` always resolve. Stamped re-locks took 1.0 s of falcopkg CPU
instead of 1.8 s at 1000 artifacts; a re-lock that resolves asks for its tag lists ahead of
the resolver, from falco.lock's artifacts, instead of one dependency level at a time. At 10
and 100 artifacts both re-locks are interpreter start and imports (0.3 s of CPU), which the
stamp does not touch.

Then, from a per-thread CPU profile of a cold lock (cProfile on `time.thread_time` in every
fetch thread, which the GIL-holder samples of a 2-core machine shared with the registry
blur): 43,000 `pathlib` parses (a pack store looked up through a fresh `Path` and its hash
on every cached read; three joins per blob path), 2,500 failing opens of pre-pack record
files in a cache that never had any, the YAML alias-expansion walk over every rules file
(now only when the text holds a `*`, without which no alias exists), a loader class made
per document, each URL split twice per request, and `Headers.get` going through
`Mapping.get`'s KeyError. In 4 interleaved pairs on one registry a cold lock's CPU went
from 11.1 s to 10.0 s, and in 3 more with the smaller cuts from 9.9 s to 8.8 s; wall time
follows by about half (2 cores). Also measured there: the registry's CPU for the same
requests depends on how they arrive (5,500 requests from one thread: 29.8 s; from 8
threads: 21-23 s; from curl's 8 processes: 18.4-19.6 s): the CPU falcopkg uses on the
shared cores makes the registry slower too, so the floor column, which counts the
registry's CPU of curl's run, is below what a Python client on the same 2 cores can reach.
A 1 ms GIL switch interval instead of 5 ms (3 pairs: 17.9-18.1 s vs 16.5-18.7 s) gained
nothing and was dropped.

Then, deferred appends: inside a batch of parallel fetches the cache records wait in
memory (served to lookups from there) and go to their packs when the batch ends, one
`write` per pack, and a key missing from a pack unchanged since it was indexed costs one
`stat` instead of an open, `fstat` and read. A cold lock's system time went from
1.10-1.42 s to 0.96-1.17 s in 4 interleaved pairs, and its CPU from 7.9-8.8 s to 6.6 s in
the table's runs. And the stamp is now recorded by the lock that writes falco.lock too
(the first lock of a project included), when every tag it looked up names the digest the
new falco.lock records and it warned of nothing: a re-lock takes a kept version's digest
from falco.lock, so it would read the same tag lists and resolve to the same lock. A lock
that turned a candidate down (it read that tag, falco.lock does not pin it) is not stamped;
the next plain lock resolves and stamps. So the first re-lock after a lock is now the
stamped one; the "stamp removed" row is a re-lock that resolves over a warm cache.
""",
        )


if __name__ == "__main__":
    main()
