#!/usr/bin/env python3
"""Rebuild the quickstart's OCI image layout (``layout/``) and its ``falco.lock``.

    .venv/bin/python examples/quickstart/build_layout.py            # rebuild layout/, re-lock
    .venv/bin/python examples/quickstart/build_layout.py --output D  # only write a layout to D

The artifacts are written here, for this example: one rules file that requires the
``quickstart`` plugin, and that plugin as a stand-in library per platform (a line of text, not
a shared library: Falco cannot load it). They are pushed with falcopkg's own ``push_artifact``
into an ``OciLayout`` as the registry ``registry.example.com``, with no ``created`` time, so
the layout is byte-for-byte the same on every run. Then ``falcopkg lock`` runs against the
layout (with an empty cache and user config) to write ``falco.lock`` again.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLE_DIR = Path(__file__).resolve().parent
REPO_ROOT = EXAMPLE_DIR.parents[1]
HOST = "registry.example.com"
RULES_REPOSITORY = "falco-quickstart/rules/quickstart-rules"
PLUGIN_REPOSITORY = "falco-quickstart/plugins/quickstart"
PLATFORMS = ("linux/amd64", "linux/arm64")

RULES_VERSION = "1.0.0"
PLUGIN_VERSION = "0.1.0"

RULES_YAML = """\
# Example rules of the falcopkg quickstart (written for the example; not a real ruleset).
# They need Falco's engine 0.50.0 or newer and the quickstart plugin 0.1.0 or newer: falcopkg
# reads both requirements from this file when it locks.

- required_engine_version: 0.50.0

- required_plugin_versions:
    - name: quickstart
      version: 0.1.0

- rule: Quickstart example event
  desc: Every event of the quickstart plugin whose value is above 10.
  condition: quickstart.value > 10
  output: Quickstart event (value=%quickstart.value)
  priority: NOTICE
  source: quickstart
  tags: [example]
"""


def stand_in_plugin(platform: str) -> str:
    return (
        f"falcopkg quickstart: stand-in for libquickstart.so on {platform}.\n"
        "This is text, not a shared library; Falco cannot load it.\n"
    )


def build_layout(output: Path) -> None:
    """Write the layout into ``output`` (replaced as a whole; nothing else is kept there)."""
    from falcopkg.artifact.config import Requirement
    from falcopkg.artifact.push import push_artifact
    from falcopkg.artifact.types import get_type
    from falcopkg.oci.layout import LOCK_FILE, OciLayout

    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=output.parent) as work_name:
        work = Path(work_name)
        sources = work / "src"
        rules = sources / "quickstart_rules.yaml"
        rules.parent.mkdir(parents=True)
        rules.write_text(RULES_YAML, encoding="utf-8")
        libraries = []
        for platform in PLATFORMS:
            library = sources / platform.replace("/", "-") / "libquickstart.so"
            library.parent.mkdir(parents=True)
            library.write_text(stand_in_plugin(platform), encoding="utf-8")
            libraries.append(library)

        built = work / "layout"
        layout = OciLayout(built, HOST, create=True)
        with layout.transaction():
            push_artifact(
                layout,
                PLUGIN_REPOSITORY,
                get_type("plugin"),
                libraries,
                version=PLUGIN_VERSION,
                platforms=PLATFORMS,
                add_floating_tags=True,
                requirements=[Requirement("plugin_api_version", "3.0.0")],
                created=None,
            )
            push_artifact(
                layout,
                RULES_REPOSITORY,
                get_type("rulesfile"),
                [rules],
                version=RULES_VERSION,
                add_floating_tags=True,
                created=None,
            )
        (built / LOCK_FILE).unlink(missing_ok=True)
        problems = layout.verify()
        if problems:
            raise SystemExit("\n".join(str(p) for p in problems))

        # Swap the new layout in: the old one is moved aside first and removed last.
        old = work / "old"
        if output.exists():
            output.rename(old)
        built.rename(output)


def relock() -> None:
    """`falcopkg lock` of the example against the layout, isolated from the user's files."""
    with tempfile.TemporaryDirectory(prefix="falcopkg-quickstart-") as home:
        env = dict(os.environ)
        env.update(
            HOME=home,
            FALCOPKG_CONFIG=str(Path(home) / "config"),
            FALCOPKG_CACHE_DIR=str(Path(home) / "cache"),
        )
        subprocess.run(
            [sys.executable, "-m", "falcopkg", "-C", str(EXAMPLE_DIR), "lock"],
            check=True,
            env=env,
            cwd=REPO_ROOT,  # `-m falcopkg` finds the checkout's package even when not installed
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        help="write the layout here and do not re-lock (default: layout/ beside this script)",
    )
    args = parser.parse_args()
    try:
        import falcopkg  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without an install
    if args.output is not None:
        build_layout(args.output)
        return
    build_layout(EXAMPLE_DIR / "layout")
    relock()


if __name__ == "__main__":
    main()
