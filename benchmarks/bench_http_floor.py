"""The floor under `lock`'s request-bound rows (issue 13): what 1000 small registry requests
cost in Python's HTTP stack (requests + urllib3, as falcopkg's transport uses it) versus curl.

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
import json
import resource
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from _common import registry_manager, require_tools

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
        rows: dict[str, list[float]] = {"one": [], "eight": [], "curl": [], "cpu": []}
        for _ in range(args.repeats):
            wall, cpu = _requests_run(urls, 1)
            rows["one"].append(wall)
            rows["cpu"].append(cpu)
            rows["eight"].append(_requests_run(urls, 8)[0])
            rows["curl"].append(_curl_run(urls, Path(tmp)))
        median = {key: statistics.median(values) for key, values in rows.items()}
        per_request_ms = median["cpu"] / args.requests * 1000
        print(f"{args.requests} tags-list GETs, medians of {args.repeats} paired runs")
        print(
            f"requests, 1 thread : {median['one']:.2f} s wall, {median['cpu']:.2f} s CPU "
            f"({per_request_ms:.2f} ms CPU per request)"
        )
        print(f"requests, 8 threads: {median['eight']:.2f} s wall")
        print(f"xargs -P 8 curl    : {median['curl']:.2f} s wall")
        print(f"floor ratio (requests 8 threads / curl): {median['eight'] / median['curl']:.2f}x")


if __name__ == "__main__":
    main()
