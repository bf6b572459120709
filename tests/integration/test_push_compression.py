"""Packed layers on a real registry: the digest of a push does not depend on its thread count."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from falcopkg.artifact.parallel_gzip import BLOCK_SIZE
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.registries import RunningRegistry

RULES = Path(__file__).parent.parent.parent / "fixtures" / "rules" / "acme_rules.yaml"
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}  # fixed created annotation


def _plugin(path: Path) -> Path:
    """Several blocks: compressible text around a stretch of random bytes (stored)."""
    text = RULES.read_bytes()
    body = text * (BLOCK_SIZE // len(text) + 1)
    path.write_bytes(body + random.Random(7).randbytes(BLOCK_SIZE * 2) + body)
    return path


def _push(reg: RunningRegistry, repo: str, plugin: Path, *options: str) -> dict[str, object]:
    result = run_cli(
        "registry", "push", f"{reg.host}/{repo}", str(plugin), "--type", "plugin",
        "--version", "1.0.0", "--name", "big", "--platform", "linux/amd64", "--plain-http", "--json",
        *options,
        env=EPOCH,
    )  # fmt: skip
    assert result.exit_code == 0, result
    payload: dict[str, object] = json.loads(result.stdout)
    return payload


def test_push_digest_is_the_same_with_any_thread_count(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    reg = plain_registry
    plugin = _plugin(tmp_path / "libbig.so")
    one = _push(reg, f"{unique_repo}-one", plugin, "--jobs", "1")
    four = _push(reg, f"{unique_repo}-four", plugin, "-j", "4")
    default = _push(reg, f"{unique_repo}-default", plugin)
    assert one["manifests"] == four["manifests"] == default["manifests"]
    assert one["digest"] == four["digest"] == default["digest"]

    # The uploaded layer is one gzip member every reader takes: gzip -t, tarfile, falcopkg.
    layout = tmp_path / "layout"
    subprocess.run(
        ["skopeo", "copy", "--all", *reg.skopeo_args(), "--src-tls-verify=false",
         f"docker://{reg.host}/{unique_repo}-four:1.0.0", f"dir:{layout}"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    layer_digest = one["manifests"]["linux/amd64"]["layer"]["digest"]  # type: ignore[index]
    blob = layout / str(layer_digest).split(":", 1)[1]
    subprocess.run(["gzip", "-t", str(blob)], check=True, timeout=60)
    with tarfile.open(blob, "r:gz") as tar:
        extracted = tar.extractfile("libbig.so")
        assert extracted is not None and extracted.read() == plugin.read_bytes()
    pulled = run_cli(
        "registry", "pull", f"{reg.host}/{unique_repo}-one:1.0.0", "--platform", "linux/amd64",
        "-o", str(tmp_path / "out"), "--plain-http",
    )  # fmt: skip
    assert pulled.exit_code == 0, pulled
    assert (tmp_path / "out" / "libbig.so").read_bytes() == plugin.read_bytes()


def test_push_compression_options(
    plain_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    reg = plain_registry
    plugin = _plugin(tmp_path / "libbig.so")
    default = _push(reg, unique_repo, plugin)
    stored = _push(reg, f"{unique_repo}-stored", plugin, "--compression-level", "0")
    size = plugin.stat().st_size

    def layer_size(payload: dict[str, object]) -> int:
        return int(payload["manifests"]["linux/amd64"]["layer"]["size"])  # type: ignore[index]

    assert layer_size(default) < size < layer_size(stored)
    bad = run_cli("registry", "push", f"{reg.host}/{unique_repo}", str(plugin), "--type",
                  "plugin", "--version", "1.0.0", "--jobs", "0", "--plain-http")  # fmt: skip
    assert bad.exit_code == 2 and "--jobs" in bad.stderr


GO_READER = """package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		panic(err)
	}
	zr.Multistream(false) // read the first member only: all of the archive must be in it
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			panic(err)
		}
		fmt.Printf("%s %x\\n", h.Name, sum.Sum(nil))
	}
	if _, err := io.Copy(io.Discard, zr); err != nil { // to the end: checks CRC-32 and size
		panic(err)
	}
}
"""


def test_packed_layer_reads_with_go_compress_gzip(tmp_path: Path) -> None:
    """falcoctl reads layers with Go's compress/gzip: the same reader, built here, must agree."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain (apt-get install golang-go)")
    from falcopkg.artifact.pack import pack_files

    (tmp_path / "reader").mkdir()
    (tmp_path / "reader" / "main.go").write_text(GO_READER)
    (tmp_path / "reader" / "go.mod").write_text("module reader\n\ngo 1.19\n")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOCACHE": str(tmp_path / "gocache")}
    subprocess.run(
        [go, "build", "-o", str(tmp_path / "read"), "."],
        cwd=tmp_path / "reader", env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    plugin = _plugin(tmp_path / "libbig.so")
    layer = pack_files([plugin, RULES], tmp_path / "out", threads=3)
    listed = subprocess.run(
        [str(tmp_path / "read"), str(layer.path)], check=True, capture_output=True, text=True,
        timeout=60,
    ).stdout.split()  # fmt: skip
    expected = [
        item
        for path in (plugin, RULES)
        for item in (path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    ]
    assert listed == expected
