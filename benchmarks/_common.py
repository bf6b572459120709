"""Helpers shared by every benchmark in this directory.

- real registries: :func:`registry_manager` starts CNCF distribution (``docker-registry``)
  through the test fixtures' :class:`RegistryManager`, outside pytest;
- measuring a command: :func:`measure` runs it once and returns wall time and the peak
  resident set size of the process (GNU ``/usr/bin/time -f %M`` when installed, else a poll
  of ``/proc/<pid>/status`` VmHWM); :func:`median_of` folds repeated runs;
- what users run: :func:`falcopkg_command` is the console script of a NON-editable install of
  this checkout in its own venv (:func:`bench_venv`, cached under benchmarks/results/ and
  rebuilt when the sources change), and :func:`bare_python` that venv's interpreter, the
  baseline for interpreter start (the project's editable .venv has a .pth import hook that
  slows every start down);
- skopeo with a fresh blob-info cache: :func:`unprivileged` runs it as ``nobody`` (as root,
  skopeo keeps one shared cache in /var/lib/containers/cache whatever HOME says);
- reporting: :func:`markdown_table`, :func:`machine_info`, and :func:`write_doc_section`,
  which replaces one ``## `` section of docs/benchmarks.md and leaves the others alone.

Run benchmarks with the project's interpreter, e.g. ``.venv/bin/python benchmarks/bench_x.py``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # for `tests.fixtures` when run as a script
    sys.path.insert(0, str(REPO_ROOT))

from falcopkg.fsutil import atomic_write_text  # noqa: E402
from tests.fixtures.certs import make_test_ca  # noqa: E402
from tests.fixtures.registries import RegistryManager, RunningRegistry  # noqa: E402

__all__ = [
    "DOC_PATH",
    "MIB",
    "REPO_ROOT",
    "UNPRIVILEGED_UID",
    "CommandFailed",
    "Measurement",
    "RegistryManager",
    "RunningRegistry",
    "bare_python",
    "bench_venv",
    "falcopkg_command",
    "format_mib",
    "format_seconds",
    "give_to_unprivileged",
    "isolated_env",
    "machine_info",
    "markdown_table",
    "measure",
    "median_of",
    "registry_manager",
    "remove_registry",
    "require_tools",
    "tool_version",
    "unprivileged",
    "write_doc_section",
    "write_random_file",
]

DOC_PATH = REPO_ROOT / "docs" / "benchmarks.md"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"  # git-ignored
BENCH_VENV = RESULTS_DIR / "venv"
UNPRIVILEGED_UID = 65534  # nobody (and nogroup)
GNU_TIME = Path("/usr/bin/time")
MIB = 1024 * 1024
_POLL_INTERVAL = 0.005  # seconds between VmHWM reads in the /proc fallback


class CommandFailed(RuntimeError):
    """A measured command exited non-zero; the message carries the tail of its stderr."""


@dataclass(frozen=True)
class Measurement:
    seconds: float  # wall time
    peak_rss_kib: int  # max resident set size of the process (KiB)

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_kib / 1024


def falcopkg_command() -> list[str]:
    """The ``falcopkg`` console script of a non-editable install of this checkout."""
    return [str(bench_venv() / "bin" / "falcopkg")]


def bare_python() -> str:
    """The interpreter of that install's venv: no .pth hook, no pip or setuptools."""
    return str(bench_venv() / "bin" / "python")


@functools.cache
def bench_venv() -> Path:
    """A venv with falcopkg installed as users get it (a built wheel, not editable).

    Made with ``python -m venv --without-pip`` from the base interpreter of this one, filled
    by this environment's pip (``pip --python``) with the dependency versions this
    environment has, and reinstalled whenever pyproject.toml or falcopkg/ changes. The
    sources are copied out first, so no stale build/ directory can leak into the wheel.
    """
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".falcopkg-source"
    fingerprint = _source_fingerprint()
    if python.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return BENCH_VENV
    base = getattr(sys, "_base_executable", sys.executable)
    if not python.exists():
        print(f"creating {BENCH_VENV} (non-editable falcopkg)", file=sys.stderr, flush=True)
        subprocess.run([base, "-m", "venv", "--without-pip", str(BENCH_VENV)], check=True)
    else:
        print(f"reinstalling falcopkg into {BENCH_VENV}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="falcopkg-bench-src-") as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (REPO_ROOT / name).exists():
                shutil.copy2(REPO_ROOT / name, source / name)
        for tree in ("falcopkg", "bin"):  # bin/falcopkg is the installed script
            shutil.copytree(
                REPO_ROOT / tree, source / tree, ignore=shutil.ignore_patterns("__pycache__")
            )
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(
            "".join(
                f"{dist.metadata['Name']}=={dist.version}\n"
                for dist in importlib.metadata.distributions()
                if dist.metadata["Name"] and dist.metadata["Name"].lower() != "falcopkg"
            )
        )
        pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(source)], check=True)
        subprocess.run([*pip, "-c", str(constraints), str(source)], check=True)
    # Byte-compile now, as pip does for users: the first measured start must not pay for it.
    subprocess.run([str(python), "-m", "compileall", "-q", str(BENCH_VENV / "lib")], check=True)
    stamp.write_text(fingerprint)
    return BENCH_VENV


def _source_fingerprint() -> str:
    digest = hashlib.sha256(sys.version.encode())
    paths = [
        REPO_ROOT / "pyproject.toml",
        REPO_ROOT / "bin" / "falcopkg",
        *sorted((REPO_ROOT / "falcopkg").rglob("*.py")),
    ]
    for path in paths:
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def unprivileged(argv: Sequence[str]) -> list[str]:
    """``argv`` run as ``nobody`` when we are root, so tools with a system-wide cache for root
    (skopeo's blob-info cache) use the per-user one under the isolated HOME instead.

    Whatever that user must read or write has to be handed over with
    :func:`give_to_unprivileged` first.
    """
    if os.geteuid() != 0:
        return list(argv)
    if shutil.which("setpriv") is None:
        sys.exit("error: running as root needs setpriv (util-linux) to run skopeo as nobody")
    uid = str(UNPRIVILEGED_UID)
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *argv]


def give_to_unprivileged(*paths: Path) -> None:
    """Make ``paths`` (recursively) owned by the unprivileged user and their parents
    traversable, when we are root; no-op otherwise."""
    if os.geteuid() != 0:
        return
    for path in paths:
        for parent in path.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o011)
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, d) for d in dirs)]:
                os.chown(name, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
            for name in files:
                os.chown(os.path.join(root, name), UNPRIVILEGED_UID, UNPRIVILEGED_UID)


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        sys.exit(
            f"error: missing {', '.join(missing)} on PATH\n"
            "hint: apt-get install docker-registry skopeo time"
        )


def isolated_env(home: Path, *, cache_dir: Path | None = None) -> dict[str, str]:
    """This environment with every per-user location (falcopkg's, Docker's, skopeo's
    blob-info cache) moved under ``home``, so runs share no cache and no credentials."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FALCOPKG_", "REGISTRY_")) and k != "XDG_RUNTIME_DIR"
    }
    for sub in (".config/falcopkg", ".cache/falcopkg", ".docker", ".local/share"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        FALCOPKG_CONFIG=str(home / ".config/falcopkg"),
        FALCOPKG_CACHE_DIR=str(cache_dir or home / ".cache/falcopkg"),
        DOCKER_CONFIG=str(home / ".docker"),
    )
    # A proxy from the environment must not sit between the tools and 127.0.0.1.
    for var in ("NO_PROXY", "no_proxy"):
        env[var] = ",".join(filter(None, [env.get(var, ""), "127.0.0.1,localhost"]))
    return env


def measure(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
) -> Measurement:
    """Run ``argv`` once; its wall time and peak RSS. Raises CommandFailed on non-zero exit."""
    with tempfile.TemporaryDirectory(prefix="falcopkg-bench-") as work:
        stderr_path = Path(work) / "stderr"
        with stderr_path.open("wb") as stderr:
            if GNU_TIME.exists():
                rss_path = Path(work) / "rss"
                timed = [str(GNU_TIME), "-f", "%M", "-o", str(rss_path), "--", *argv]
                start = time.perf_counter()
                proc = subprocess.run(
                    timed,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    timeout=timeout,
                    check=False,
                )
                seconds = time.perf_counter() - start
                returncode = proc.returncode
                # On failure GNU time writes "Command exited with ..." before the number.
                lines = rss_path.read_text().split() if rss_path.exists() else []
                peak = int(lines[-1]) if lines and lines[-1].isdigit() else 0
            else:
                seconds, peak, returncode = _run_polling_vmhwm(argv, env, cwd, stderr, timeout)
        if returncode != 0:
            tail = stderr_path.read_text(errors="replace").strip().splitlines()[-15:]
            raise CommandFailed(f"`{' '.join(argv)}` exited with {returncode}:\n" + "\n".join(tail))
    return Measurement(seconds, peak)


def _run_polling_vmhwm(
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    cwd: Path | None,
    stderr: IO[bytes],
    timeout: float,
) -> tuple[float, int, int]:
    """Fallback without GNU time: the kernel's high-water mark of the child, read until exit.

    Only the direct child is seen (falcopkg and skopeo are single processes)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    status = Path(f"/proc/{proc.pid}/status")
    peak = 0
    while proc.poll() is None:
        if time.perf_counter() - start > timeout:
            proc.kill()
            proc.wait()
            raise CommandFailed(f"`{' '.join(argv)}` timed out after {timeout:.0f}s")
        with contextlib.suppress(OSError):
            match = re.search(r"^VmHWM:\s+(\d+) kB", status.read_text(), re.MULTILINE)
            if match:
                peak = max(peak, int(match.group(1)))
        time.sleep(_POLL_INTERVAL)
    return time.perf_counter() - start, peak, proc.returncode


def median_of(runs: Sequence[Measurement]) -> Measurement:
    """Median wall time and median peak RSS (taken separately) of repeated runs."""
    if not runs:
        raise ValueError("no runs to summarize")
    return Measurement(
        statistics.median(r.seconds for r in runs),
        int(statistics.median(r.peak_rss_kib for r in runs)),
    )


@contextlib.contextmanager
def registry_manager(base: Path) -> Iterator[RegistryManager]:
    """A :class:`RegistryManager` under ``base`` (with its own throwaway CA); every registry
    it created is stopped on exit. ``manager.create("plain")`` starts an anonymous HTTP one."""
    manager = RegistryManager(base / "registries", make_test_ca(base / "ca"))
    try:
        yield manager
    finally:
        manager.stop_all()


def remove_registry(registry: RunningRegistry) -> None:
    """Stop ``registry`` and delete its storage (big blobs must not pile up on disk)."""
    registry.stop()
    shutil.rmtree(registry.workdir, ignore_errors=True)


def write_random_file(path: Path, size: int, chunk: int = MIB) -> None:
    """``size`` bytes of incompressible data, written in ``chunk``-sized pieces."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        remaining = size
        while remaining > 0:
            step = min(chunk, remaining)
            handle.write(os.urandom(step))
            remaining -= step


def format_seconds(seconds: float) -> str:
    return f"{seconds:.2f} s"


def format_mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine_info() -> dict[str, str]:
    """What a reader needs to compare numbers: CPUs, memory, CPU model, kernel, Python."""
    info = {
        "cpus (nproc)": str(len(os.sched_getaffinity(0))),
        "memory": _meminfo_total(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    return {k: v for k, v in info.items() if v}


def _meminfo_total() -> str:
    with contextlib.suppress(OSError):
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if match:
            return f"{int(match.group(1)) / MIB:.1f} GiB"
    return ""


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if match:
            return match.group(1).strip()
    return platform.processor()


def tool_version(argv: Sequence[str]) -> str:
    """First line of ``argv``'s version output, or "" when the tool is missing."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return ""
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else ""


_DOC_INTRO = """\
# Benchmarks

Numbers measured by the scripts in `benchmarks/` (see `benchmarks/README.md`) against real
local services (CNCF distribution `docker-registry`, skopeo). Each section says how to
reproduce it; run the scripts with the project's interpreter, e.g.
`.venv/bin/python benchmarks/bench_push_pull.py`. Each script rewrites only its own section.

Machine of the first run: {machine}.
"""


def write_doc_section(title: str, body: str, *, doc: Path = DOC_PATH) -> None:
    """Replace (or append) the ``## {title}`` section of ``doc``, keeping every other section.

    Other benchmarks write their own sections, possibly at the same time: the file is read
    right before the write, and written atomically.
    """
    section = f"## {title}\n\n{body.strip()}\n"
    try:
        text = doc.read_text(encoding="utf-8")
    except FileNotFoundError:
        machine = ", ".join(f"{k} {v}" for k, v in machine_info().items())
        text = _DOC_INTRO.format(machine=machine)
    heading = re.compile(rf"^## {re.escape(title)}[ \t]*$", re.MULTILINE)
    found = heading.search(text)
    if found is None:
        new_text = text.rstrip("\n") + "\n\n" + section
    else:
        following = re.compile(r"^## ", re.MULTILINE).search(text, found.end())
        end = following.start() if following else len(text)
        rest = text[end:]
        new_text = text[: found.start()] + section + ("\n" + rest if rest else "")
    atomic_write_text(doc, new_text)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_with_cpu(
    argv: Sequence[str], registry_pid: int, *, env: Mapping[str, str] | None = None
) -> tuple[float, float, float]:
    """Wall seconds of ``argv``, its CPU seconds (its process tree), and the registry's CPU
    seconds meanwhile: what the 2 cores were busy with."""
    own, theirs = children_cpu(), process_cpu(registry_pid)
    seconds = measure(argv, env=env).seconds
    return seconds, children_cpu() - own, process_cpu(registry_pid) - theirs
