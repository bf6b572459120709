"""OCI image layout store: reading and writing a layout, beside skopeo and plain tools.

    .venv/bin/python benchmarks/bench_layout.py [--size-mib 256] [--tags 200] [--repeats 3]
                                                [--no-doc]

Measures, in a temporary directory (median of the repeats):

- write a big blob: ``OciLayout.upload_blob`` of a ``--size-mib`` file (hashed while copied,
  renamed into place) beside ``cp`` of the same file (no hashing);
- read it verified: ``download_blob`` into a new file beside ``sha256sum FILE`` (hash only);
- skopeo reading it: ``skopeo copy oci:LAYOUT:REF oci:OTHER:REF`` of an artifact with that
  layer (skopeo verifies and copies every blob) beside falcopkg's ``inspect_artifact`` +
  ``download_blob`` of the layer;
- many tags: ``--tags`` tags recorded with one ``put_manifest`` each, outside a transaction
  (one index.json rewrite per tag) and inside one (one rewrite in all).

Prints a markdown table and, unless --no-doc, writes it into the "OCI layout (issue 8)"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

from _common import (
    MIB,
    machine_info,
    markdown_table,
    require_tools,
    tool_version,
    write_doc_section,
    write_random_file,
)

from falcopkg.artifact.pack import config_descriptor, image_manifest_bytes
from falcopkg.artifact.remote import inspect_artifact
from falcopkg.digests import bytes_digest, file_digest
from falcopkg.oci import mediatypes
from falcopkg.oci.descriptor import Descriptor
from falcopkg.oci.layout import OciLayout

SECTION = "OCI layout (issue 8)"
REPOSITORY = "bench/big"
LAYER_TYPE = "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz"
CONFIG_TYPE = "application/vnd.cncf.falco.rulesfile.config.v1+json"


def timed(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def median_seconds(repeats: int, setup: Callable[[int], Callable[[], object]]) -> float:
    return statistics.median(timed(setup(run)) for run in range(repeats))


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    require_tools("skopeo", "sha256sum", "cp")
    size = args.size_mib * MIB

    with TemporaryDirectory(prefix="falcopkg-bench-layout-") as tmp:
        work = Path(tmp)
        source = work / "layer.bin"
        print(f"writing {args.size_mib} MiB of random data ...", file=sys.stderr)
        write_random_file(source, size)
        digest = file_digest(source)

        def upload(number: int) -> Callable[[], object]:
            store = OciLayout(work / f"up-{number}", "ghcr.io", create=True)
            return lambda: store.upload_blob(REPOSITORY, source, digest, size)

        def copy(number: int) -> Callable[[], object]:
            return lambda: run("cp", str(source), str(work / f"cp-{number}.bin"))

        write_ours = median_seconds(args.repeats, upload)
        write_cp = median_seconds(args.repeats, copy)

        # One artifact with that layer, tagged, to read back.
        layout = OciLayout(work / "up-0", "ghcr.io")
        config = json.dumps({"name": "big", "version": "1.0.0"}).encode()
        config_desc = config_descriptor(CONFIG_TYPE, config)
        layout.upload_blob(REPOSITORY, config, config_desc.digest, config_desc.size)
        manifest = image_manifest_bytes(config_desc, Descriptor(LAYER_TYPE, digest, size))
        layout.put_manifest(REPOSITORY, "1.0.0", manifest, mediatypes.OCI_MANIFEST)
        ref = f"oci:{layout.path}:{layout.ref_name(REPOSITORY, '1.0.0')}"

        def download(number: int) -> Callable[[], object]:
            dest = work / f"down-{number}.bin"
            return lambda: layout.download_blob(REPOSITORY, digest, dest, expected_size=size)

        def hash_only(number: int) -> Callable[[], object]:
            return lambda: run("sha256sum", str(source))

        def pull_ours(number: int) -> Callable[[], object]:
            def step() -> None:
                artifact = inspect_artifact(layout, REPOSITORY, "1.0.0")
                blob = artifact.platforms[""].layer
                dest = work / f"pull-{number}.bin"
                layout.download_blob(REPOSITORY, blob.digest, dest, expected_size=blob.size)

            return step

        def pull_skopeo(number: int) -> Callable[[], object]:
            target = f"oci:{work / f'skopeo-{number}'}:x"
            return lambda: run("skopeo", "copy", ref, target)

        read_ours = median_seconds(args.repeats, download)
        read_hash = median_seconds(args.repeats, hash_only)
        copy_ours = median_seconds(args.repeats, pull_ours)
        copy_skopeo = median_seconds(args.repeats, pull_skopeo)

        # Many tags of one small manifest.
        small = OciLayout(work / "tags", "ghcr.io", create=True)
        payload = b"layer"
        small.upload_blob(REPOSITORY, config, config_desc.digest, config_desc.size)
        small.upload_blob(REPOSITORY, payload, bytes_digest(payload), len(payload))
        small_manifest = image_manifest_bytes(
            config_desc, Descriptor(LAYER_TYPE, bytes_digest(payload), len(payload))
        )

        def tag_all(prefix: str) -> None:
            for number in range(args.tags):
                small.put_manifest(
                    REPOSITORY, f"{prefix}{number}", small_manifest, mediatypes.OCI_MANIFEST
                )

        def batched(prefix: str) -> None:
            with small.transaction():
                tag_all(prefix)

        tags_each = median_seconds(args.repeats, lambda n: lambda: tag_all(f"e{n}-"))
        tags_batch = median_seconds(args.repeats, lambda n: lambda: batched(f"b{n}-"))

    def mib_s(seconds: float) -> str:
        return f"{args.size_mib / seconds:.0f} MiB/s"

    rows = [
        [
            f"write a {args.size_mib} MiB blob",
            f"{write_ours:.2f} s ({mib_s(write_ours)})",
            f"`cp`: {write_cp:.2f} s",
        ],
        [
            "read it verified into a file",
            f"{read_ours:.2f} s ({mib_s(read_ours)})",
            f"`sha256sum`: {read_hash:.2f} s",
        ],
        [
            "fetch the artifact (inspect + layer)",
            f"{copy_ours:.2f} s",
            f"`skopeo copy oci: oci:`: {copy_skopeo:.2f} s",
        ],
        [f"record {args.tags} tags, one index.json write each", f"{tags_each:.2f} s", ""],
        [f"record {args.tags} tags in one transaction", f"{tags_batch:.2f} s", ""],
    ]
    machine = ", ".join(f"{key} {value}" for key, value in machine_info().items())
    table = markdown_table(["step", "falcopkg", "beside"], rows)
    body = (
        f"Measured {dt.date.today().isoformat()} on {machine}; "
        f"{tool_version(['skopeo', '--version'])}; median of {args.repeats} runs, "
        f"in-process for falcopkg (no interpreter start). Reproduce: "
        f"`.venv/bin/python benchmarks/bench_layout.py`.\n\n"
        f"{table}\n"
    )
    print(body)
    if not args.no_doc:
        write_doc_section(SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
