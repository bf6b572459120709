"""The floor under `lock`'s request-bound rows (issue 13): what 1000 small registry requests
cost in Python's HTTP stacks versus curl, and what falcopkg's own client costs for them.

A re-lock with nothing changed is one tags-list GET per artifact; a cold lock adds manifest
and config GETs. This measures only those requests, with no falcopkg code in between, side by
side in one run: requests on one session in one thread, on 8 threads (the metadata
provider's prefetch width), and `xargs -P 8 curl` (8 processes, kept-alive connections), all
against the same local docker-registry and the same 1000 URLs. Its ratio is the best a
Python client on requests can reach here, whatever falcopkg does around it. Usage::

    .venv/bin/python benchmarks/bench_http_floor.py [--requests 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests
from _common import machine_info, registry_manager, require_tools, write_doc_section

TITLE = "lock: the floor of the HTTP stack (issue 13)"
REPOSITORIES = 50


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _requests_run(urls: list[str], threads: int) -> tuple[float, float]:
    session = requests.Session()
    started, cpu = time.perf_counter(), _cpu()

    def get(url: str) -> None:
        response = session.get(url, timeout=10)
        response.raise_for_status()
        response.content  # noqa: B018 - read the body, as the client does

    if threads == 1:
        for url in urls:
            get(url)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(get, urls))
    session.close()
    return time.perf_counter() - started, _cpu() - cpu


def _http_client_run(urls: list[str], threads: int) -> tuple[float, float]:
    local = threading.local()

    def get(url: str) -> None:
        parts = urlsplit(url)
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(parts.netloc, timeout=10)
        connection.request("GET", parts.path, headers={"User-Agent": "bench"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} for {url}")

    return _timed(get, urls, threads)


def _falcopkg_run(urls: list[str], threads: int) -> tuple[float, float]:
    from falcopkg.oci.client import RegistryClient, RegistryOptions

    host = urlsplit(urls[0]).netloc
    client = RegistryClient(host, RegistryOptions(plain_http=True))
    repositories = [urlsplit(url).path.split("/v2/")[1].rsplit("/tags/", 1)[0] for url in urls]
    try:
        return _timed(client.list_tags, repositories, threads)
    finally:
        client.close()


def _timed(call: Callable[[str], object], items: list[str], threads: int) -> tuple[float, float]:
    started, cpu = time.perf_counter(), _cpu()
    if threads == 1:
        for item in items:
            call(item)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(call, items))
    return time.perf_counter() - started, _cpu() - cpu


def _curl_run(urls: list[str], work: Path) -> float:
    listing = work / "urls.txt"
    # 8 curl processes, each fetching its share over one kept-alive connection.
    shares = [urls[i::8] for i in range(8)]
    for number, share in enumerate(shares):
        (work / f"share-{number}.txt").write_text(
            "".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in share)
        )
    listing.write_text("\n".join(str(work / f"share-{n}.txt") for n in range(8)) + "\n")
    started = time.perf_counter()
    subprocess.run(
        ["xargs", "-P", "8", "-n", "1", "curl", "-sS", "--fail", "-K"],
        stdin=listing.open("rb"),
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args()
    require_tools("curl", "xargs")
    with (
        tempfile.TemporaryDirectory(prefix="falcopkg-http-floor-") as tmp,
        registry_manager(Path(tmp)) as manager,
    ):
        registry = manager.create("plain")
        base = f"http://{registry.host}"
        # Tiny repositories (one manifest each), so every tags list is a real answer.
        empty_config = b"{}"
        digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        for number in range(REPOSITORIES):
            repo = f"floor/r{number}"
            post = requests.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=10)
            location = post.headers["Location"]
            separator = "&" if "?" in location else "?"
            requests.put(
                f"{base}{location}{separator}digest={digest}"
                if location.startswith("/")
                else f"{location}{separator}digest={digest}",
                data=empty_config,
                timeout=10,
            ).raise_for_status()
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": digest,
                    "size": 2,
                },
                "layers": [],
            }
            requests.put(
                f"{base}/v2/{repo}/manifests/1.0.0",
                data=json.dumps(manifest),
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                timeout=10,
            ).raise_for_status()
        urls = [f"{base}/v2/floor/r{n % REPOSITORIES}/tags/list" for n in range(args.requests)]
        clients: list[tuple[str, Callable[[list[str], int], tuple[float, float]]]] = [
            ("requests", _requests_run),
            ("http.client", _http_client_run),
            ("falcopkg RegistryClient", _falcopkg_run),
        ]
        walls: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        curl: list[float] = []
        for _ in range(args.repeats):
            for name, run in clients:
                for threads in (1, 8):
                    wall, cpu = run(urls, threads)
                    walls.setdefault(f"{name}/{threads}", []).append(wall)
                    cpus.setdefault(f"{name}/{threads}", []).append(cpu)
            curl.append(_curl_run(urls, Path(tmp)))
        curl_median = statistics.median(curl)
        rows = []
        for name, _ in clients:
            for threads in (1, 8):
                key = f"{name}/{threads}"
                wall, cpu = statistics.median(walls[key]), statistics.median(cpus[key])
                rows.append(
                    f"| {name}, {threads} thread{'s' if threads > 1 else ''} | {wall:.2f} s "
                    f"| {cpu:.2f} s ({cpu / args.requests * 1000:.2f} ms per request) "
                    f"| {wall / curl_median:.2f}x |"
                )
        rows.append(f"| `xargs -P 8 curl` | {curl_median:.2f} s | (other processes) | 1.00x |")
        table = "\n".join(
            [
                "| client | wall | CPU (this process) | vs curl |",
                "| --- | ---: | ---: | ---: |",
                *rows,
            ]
        )
        print(table)
        if not args.no_doc:
            write_doc_section(TITLE, _doc(table, args))


def _doc(table: str, args: argparse.Namespace) -> str:
    return f"""Reproduce: `.venv/bin/python benchmarks/bench_http_floor.py --repeats {args.repeats}`.
Only the requests a re-lock makes ({args.requests} tags-list GETs to a local
docker-registry), with no resolution around them, in one run, medians of {args.repeats}:
requests on one session (the stack falcopkg used before this round), bare `http.client`
with one kept-alive connection per thread (the standard library's floor), and falcopkg's
`RegistryClient.list_tags` (its transport on http.client: pooled connections, guarded
reads, auth, pagination checks), each in 1 thread and in 8 (the metadata provider's
prefetch width), against `xargs -P 8 curl` (8 processes over kept-alive connections).
The benchmark runs from the editable `.venv`, in one process: no interpreter start counts.

{table}

A request costs the client a quarter to a third of the CPU on http.client that it costs on
requests + urllib3; on 2 cores that CPU competes with the registry's own, so it sets how
close a lock can get to curl. Machine: {", ".join(f"{k} {v}" for k, v in machine_info().items())}.
"""


if __name__ == "__main__":
    main()
