"""`follow --once`, `mirror` and `vendor` SIGKILLed at random points (issue 12 Build 3).

One pushed world per module (two versions of a rules file, a two-platform plugin). Each loop
measures one run of its command, then SIGKILLs it after delays from a seeded RNG spread over
that run (tests/fixtures/kills.py) and checks after every kill what must hold:

- follow: falco.lock is a lock some complete round wrote (old or new), every installed file
  is a complete version of itself, state.json loads; the next round converges.
- mirror: every tag in the destination leads to a whole graph (manifests, children, blobs);
  the next `mirror` completes and the destination serves every locked digest.
- vendor: index.json is valid JSON naming only roots whose graph is whole
  (``OciLayout.verify()`` is clean); the next `vendor` completes.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from falcopkg.core.lockfile import Lock, parse_lock
from falcopkg.digests import bytes_digest
from falcopkg.oci import mediatypes
from falcopkg.oci.client import RegistryClient, RegistryOptions
from falcopkg.oci.errors import NotFoundError
from falcopkg.oci.layout import OciLayout
from falcopkg.services.state import load_state
from tests.fixtures.cli import run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.kills import (
    KillClock,
    kill_after,
    kill_lanes,
    run_to_end,
    start_up_time,
    survived,
)
from tests.fixtures.project import Project, push_plugin
from tests.fixtures.registries import RegistryManager, RunningRegistry

pytestmark = [pytest.mark.registry, pytest.mark.slow]

FOLLOW_KILLS = 75
MIRROR_KILLS = 55
VENDOR_KILLS = 65


def _rules(tag: str, size: int) -> bytes:
    line = f"- list: {tag}\n  items: []\n".encode()
    return line + (f"# {tag} " + "x" * 70 + "\n").encode() * (size // 80)


OLD = {
    "kill_rules.yaml": _rules("old-main", 600 * 1024),
    "only_old.yaml": _rules("only-old", 256 * 1024),
    **{f"part_{n}.yaml": _rules(f"old-part-{n}", 64 * 1024) for n in range(4)},
}
NEW = {
    "kill_rules.yaml": _rules("new-main", 700 * 1024),
    "only_new.yaml": _rules("only-new", 256 * 1024),
    **{f"part_{n}.yaml": _rules(f"new-part-{n}", 80 * 1024) for n in range(4)},
}


@pytest.fixture(scope="module")
def world(
    plain_registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, str]]:
    """kill-rules 1.0.0 (OLD) and 1.1.0 (NEW), kill-plugin 0.1.0 for two platforms, pushed
    once for the module: (repository prefix, name -> type)."""
    prefix = f"tests/kill-loops-{secrets.token_hex(3)}"
    pusher = Project(tmp_path_factory.mktemp("kill-loops-push"), plain_registry.host, prefix)
    pusher.push("kill-rules", "1.0.0", OLD)
    pusher.push("kill-rules", "1.1.0", NEW)
    push_plugin(pusher, "kill-plugin", "0.1.0")
    return prefix, dict(pusher.pushed)


def _project(
    tmp_path: Path, registry: RunningRegistry, world: tuple[str, dict[str, str]]
) -> Project:
    root = tmp_path / "project"
    root.mkdir(parents=True)
    prefix, pushed = world
    return Project(root, registry.host, prefix, pushed=dict(pushed))


def _locked(project: Project) -> Lock:
    return parse_lock(project.lock_path.read_text(), project.lock_path)


# -- follow --once -----------------------------------------------------------------------------


def _check_rules_dir(rules_dir: Path) -> None:
    for name in sorted(set(OLD) | set(NEW)):
        path = rules_dir / name
        if path.exists():
            assert path.read_bytes() in (OLD.get(name), NEW.get(name)), f"{name}: torn"
    stray = [p.name for p in rules_dir.iterdir() if p.name not in OLD and p.name not in NEW]
    assert stray == [".falcopkg"], f"stray files in the rules directory: {stray}"
    load_state(rules_dir)  # raises on a torn or invalid state file


def test_follow_killed_mid_round_leaves_an_old_or_new_lock_and_converges(
    tmp_home: TmpHome,
    tmp_path: Path,
    plain_registry: RunningRegistry,
    world: tuple[str, dict[str, str]],
) -> None:
    """Each round moves the lock one way: falco.toml alternates between `=1.0.0` and `1`,
    so every killed round is applying a change (down or up) when the signal lands. Two
    projects, one per lane, share the cache."""
    projects = []
    for lane in range(2):
        project = _project(tmp_path / f"lane-{lane}", plain_registry, world)
        project.allowed_types = ("rulesfile",)
        _want(project, "=1.0.0")
        assert project.sync().exit_code == 0
        projects.append(project)
    start_up = start_up_time()
    # The lock texts complete rounds write, one per direction: a kill leaves one of them.
    complete: set[str] = {projects[0].lock_path.read_text()}
    durations = []
    for constraint in ("1", "=1.0.0", "1"):
        _want(projects[0], constraint)
        durations.append(run_to_end("-C", projects[0].root, "follow", "--once"))
        complete.add(projects[0].lock_path.read_text())
    assert len(complete) == 2, "a round that changes nothing rewrote the lock"
    # A lane's other half is another follow: scale to a run under that load.
    clock = KillClock(start_up, 1.3 * max(durations), seed=12)
    delays = [clock.delay() for _ in range(3 * FOLLOW_KILLS)]

    def attempt(lane: int, iteration: int) -> bool | None:
        project = projects[lane]
        _want(project, ("=1.0.0", "1")[(iteration // 2) % 2])
        if not kill_after(["-C", project.root, "follow", "--once"], delays[iteration]):
            return None
        assert project.lock_path.read_text() in complete, "falco.lock is neither old nor new"
        _check_rules_dir(project.rules_dir)
        return True

    for _ in kill_lanes(FOLLOW_KILLS, attempt):
        survived("follow --once")

    for project in projects:
        _want(project, "1")
        final = run_cli("-C", project.root, "follow", "--once")
        assert final.exit_code == 0, final
        assert {a.name: a.version for a in _locked(project).artifacts} == {"kill-rules": "1.1.0"}
        assert project.installed() == {f"rules/{name}": data for name, data in NEW.items()}
        assert run_cli("-C", project.root, "verify").exit_code == 0
        state_dir = project.rules_dir / ".falcopkg"
        assert not [p for p in state_dir.iterdir() if "staging" in p.name]


def _want(project: Project, constraint: str) -> None:
    project.dependencies = {"kill-rules": constraint}
    project.write_manifest()


# -- mirror ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def destination(
    registry_manager: RegistryManager, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRegistry]:
    """A second registry: mirror uploads every blob (no cross-registry mount)."""
    registry = registry_manager.create("plain", workdir=tmp_path_factory.mktemp("kill-dest"))
    yield registry
    registry.stop()


@pytest.fixture
def airgap_project(
    tmp_home: TmpHome,
    tmp_path: Path,
    plain_registry: RunningRegistry,
    world: tuple[str, dict[str, str]],
) -> Project:
    """kill-rules =1.1.0 and kill-plugin locked and synced: the cache is warm."""
    project = _project(tmp_path, plain_registry, world)
    project.dependencies = {"kill-rules": "=1.1.0", "kill-plugin": "0.1"}
    project.write_manifest()
    result = project.sync()
    assert result.exit_code == 0, result
    return project


def _whole_graph(client: RegistryClient, repository: str, reference: str) -> str:
    """Digest of the manifest ``reference``, after checking every manifest and blob under it
    is in ``repository``."""
    root = client.get_manifest(repository, reference)
    stack = [(root.media_type, root.data)]
    while stack:
        media_type, data = stack.pop()
        body = json.loads(data)
        if mediatypes.is_index(media_type):
            for entry in body["manifests"]:
                child = client.get_manifest(repository, entry["digest"])
                stack.append((child.media_type, child.data))
            continue
        for blob in [body["config"], *body["layers"]]:
            size = client.head_blob(repository, blob["digest"])
            assert size == blob["size"], f"{repository}: blob {blob['digest']} missing"
    return root.digest


def _check_mirrored(client: RegistryClient, prefix: str, lock: Lock) -> None:
    """No tag in the destination points at a partial graph."""
    for artifact in lock.artifacts:
        repository = f"{prefix}/{artifact.repository}"
        try:
            tags = client.list_tags(repository)
        except NotFoundError:
            continue  # not reached yet
        for tag in tags:
            _whole_graph(client, repository, tag)


def test_mirror_killed_mid_copy_leaves_no_tag_on_a_partial_graph_and_completes(
    airgap_project: Project, destination: RunningRegistry
) -> None:
    """Every kill copies to a fresh prefix (a whole copy to interrupt); its lane checks the
    destination at once, this thread runs the next `mirror` to completion."""
    project = airgap_project
    lock = _locked(project)
    start_up = start_up_time()
    run = [
        run_to_end("-C", project.root, "mirror", f"{destination.host}/measure-{n}", "--plain-http")
        for n in range(2)
    ]
    clock = KillClock(start_up, 1.3 * max(run), seed=13)
    delays = [clock.delay() for _ in range(3 * MIRROR_KILLS)]
    clients = [RegistryClient(destination.host, RegistryOptions(plain_http=True)) for _ in "ab"]

    def mirror_args(prefix: str) -> list[str | Path]:
        return ["-C", project.root, "mirror", f"{destination.host}/{prefix}", "--plain-http"]

    def attempt(lane: int, iteration: int) -> str | None:
        prefix = f"k{iteration}"
        if not kill_after(mirror_args(prefix), delays[iteration]):
            return None
        _check_mirrored(clients[lane], prefix, lock)
        return prefix

    client = RegistryClient(destination.host, RegistryOptions(plain_http=True))
    for count, prefix in enumerate(kill_lanes(MIRROR_KILLS, attempt)):
        again = run_cli(*mirror_args(prefix))
        assert again.exit_code == 0, again
        for artifact in lock.artifacts:
            repository = f"{prefix}/{artifact.repository}"
            assert _whole_graph(client, repository, artifact.version or "") == artifact.digest
        survived("mirror")
        if count % 16 == 0:  # an independent reader, on a sample (each call is a process)
            _skopeo_sees_the_locked_digests(destination, prefix, lock)


def _skopeo_sees_the_locked_digests(registry: RunningRegistry, prefix: str, lock: Lock) -> None:
    for artifact in lock.artifacts:
        ref = f"docker://{registry.host}/{prefix}/{artifact.repository}:{artifact.version}"
        found = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", ref],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
        assert bytes_digest(found) == artifact.digest


# -- vendor ------------------------------------------------------------------------------------


def _check_layout(layout: Path, host: str) -> None:
    index = layout / "index.json"
    if index.exists():
        document = json.loads(index.read_bytes())
        if not (layout / "oci-layout").exists():  # killed while creating the layout
            assert document["manifests"] == [], "a root before the layout was complete"
            return
    if (layout / "oci-layout").exists():
        problems = OciLayout(layout, host).verify()
        assert problems == [], [str(p) for p in problems]


def test_vendor_killed_mid_write_leaves_a_valid_layout_and_completes(
    airgap_project: Project, plain_registry: RunningRegistry
) -> None:
    """Every kill writes a fresh layout from the warm cache; its lane checks the layout at
    once, this thread runs the next `vendor` to completion."""
    project = airgap_project
    lock = _locked(project)
    start_up = start_up_time()
    run = [run_to_end("-C", project.root, "vendor", project.root / f"m{n}") for n in range(2)]
    clock = KillClock(start_up, 1.3 * max(run), seed=14)
    delays = [clock.delay() for _ in range(3 * VENDOR_KILLS)]
    wanted = sorted(f"{a.source}:{a.version}" for a in lock.artifacts)

    def attempt(lane: int, iteration: int) -> Path | None:
        layout = project.root / f"layout-{iteration}"
        if not kill_after(["-C", project.root, "vendor", layout], delays[iteration]):
            return None
        _check_layout(layout, plain_registry.host)
        return layout

    for layout in kill_lanes(VENDOR_KILLS, attempt):
        again = run_cli("-C", project.root, "vendor", layout)
        assert again.exit_code == 0, again
        assert sorted(again.stdout.split()) == wanted
        assert OciLayout(layout, plain_registry.host).verify() == []
        survived("vendor")
