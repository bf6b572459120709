"""`falcopkg index …` and `artifact search|list` against a real HTTPS index server.

The server (tests/fixtures/index_server.py) speaks TLS with the session CA, wants HTTP basic
auth, and answers conditional requests with 304.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from falcopkg.core.index import parse_index
from falcopkg.core.index_config import OFFICIAL_INDEX
from falcopkg.digests import bytes_digest
from falcopkg.oci.credentials import CredentialStore
from falcopkg.services.indexes import IndexStore
from tests.fixtures.cli import CliResult, run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.index_server import HelperServer, IndexServer

DATA = Path(__file__).parent.parent / "data" / "index"
REALISTIC = DATA / "falcosecurity-like.yaml"
K8SAUDIT_FAMILY = [
    "k8saudit",
    "k8saudit-aks",
    "k8saudit-eks",
    "k8saudit-gke",
    "k8saudit-gke-rules",
    "k8saudit-ovh",
    "k8saudit-rules",
]


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``directory`` with its bytes and mtime (ns)."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def project(tmp_path: Path, tmp_home: TmpHome, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "falco.toml").write_text("# my project\n[dependencies]\n")
    monkeypatch.chdir(directory)
    return directory


@pytest.fixture
def server(https_index_server: IndexServer, monkeypatch: pytest.MonkeyPatch) -> IndexServer:
    shutil.copy(REALISTIC, https_index_server.root / "index.yaml")
    assert https_index_server.ca_file is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(https_index_server.ca_file))
    return https_index_server


def _add(server: IndexServer, *extra: str, password: str | None = None) -> CliResult:
    assert server.username is not None and server.password is not None
    return run_cli(
        "index",
        "add",
        "private",
        server.url_for("index.yaml"),
        "--username",
        server.username,
        "--password-stdin",
        *extra,
        input=(password or server.password) + "\n",
    )


# -- basic auth, credentials ------------------------------------------------------------------


def test_add_with_basic_auth_keeps_credentials_out_of_falco_toml(
    project: Path, server: IndexServer
) -> None:
    result = _add(server)
    assert result.exit_code == 0, result.output
    assert "added index private" in result.stderr and "40 entries" in result.stderr
    manifest = (project / "falco.toml").read_text()
    assert manifest.startswith("# my project\n[dependencies]\n")
    assert f'name = "private"\nurl = "{server.url_for("index.yaml")}"' in manifest
    assert server.password is not None and server.username is not None
    assert server.password not in manifest and server.username not in manifest
    assert server.password not in result.output
    stored = CredentialStore().get_index("private")
    assert stored is not None and stored.password == server.password
    assert server.requests[-1].auth_sent and server.requests[-1].status == 200

    # The cached copy serves search: no new request.
    server.reset_requests()
    search = run_cli("artifact", "search", "k8saudit", "--json")
    assert search.exit_code == 0, search.output
    assert [row["name"] for row in json.loads(search.stdout)] == K8SAUDIT_FAMILY
    assert {row["index"] for row in json.loads(search.stdout)} == {"private"}
    assert server.requests == []


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong", "missing"])
def test_bad_credentials_are_a_clear_error_naming_the_index(
    project: Path, server: IndexServer, password: str | None
) -> None:
    before = (project / "falco.toml").read_bytes()
    if password is None:
        result = run_cli("index", "add", "private", server.url_for("index.yaml"))
        expected = "authentication required (HTTP 401)"
    else:
        result = _add(server, password=password)
        expected = "authentication failed (HTTP 401)"
    assert result.exit_code == 1
    url = server.url_for("index.yaml")
    assert f"error: index private ({url}): {expected}" in result.stderr
    assert "hint: run `falcopkg index add private" in result.stderr
    assert "--password-stdin" in result.stderr
    assert "Traceback" not in result.stderr
    assert (project / "falco.toml").read_bytes() == before
    assert CredentialStore().get_index("private") is None
    if password is not None:
        assert password not in result.output


def test_credentials_from_environment_and_global_config(
    tmp_home: TmpHome, server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no falco.toml here: the user config is used
    assert server.username is not None and server.password is not None
    monkeypatch.setenv("FALCOPKG_INDEX_PRIVATE_USERNAME", server.username)
    monkeypatch.setenv("FALCOPKG_INDEX_PRIVATE_PASSWORD", server.password)
    result = run_cli("index", "add", "private", server.url_for("index.yaml"))
    assert result.exit_code == 0, result.output
    config = (tmp_home.config_dir / "config.toml").read_text()
    assert "private" in config and server.password not in config
    assert CredentialStore().get_index("private") is None  # nothing stored: env was used
    listed = run_cli("index", "list", "--json")
    assert json.loads(listed.stdout) == [
        {
            "name": "private",
            "url": server.url_for("index.yaml"),
            "entries": 40,
            "fetched_at": json.loads(listed.stdout)[0]["fetched_at"],
        }
    ]


def test_url_with_credentials_is_refused(project: Path, server: IndexServer) -> None:
    url = server.url_for("index.yaml").replace("https://", "https://bob:hunter2@")
    result = run_cli("index", "add", "private", url)
    assert result.exit_code == 2
    assert "credentials do not belong in the index URL" in result.stderr
    assert "hunter2" not in result.output
    assert "private" not in (project / "falco.toml").read_text()


# -- revalidation ---------------------------------------------------------------------------


def test_update_of_unchanged_index_is_304_and_rewrites_nothing(
    project: Path, server: IndexServer, tmp_home: TmpHome
) -> None:
    assert _add(server).exit_code == 0
    before_cache = snapshot(tmp_home.cache_dir)
    before_manifest = (project / "falco.toml").read_bytes()
    server.reset_requests()

    result = run_cli("index", "update")
    assert result.exit_code == 0, result.output
    assert "private: up to date (304)" in result.stderr
    [request] = server.requests
    assert request.status == 304 and request.auth_sent
    assert "If-None-Match" in request.headers
    assert snapshot(tmp_home.cache_dir) == before_cache
    assert (project / "falco.toml").read_bytes() == before_manifest

    # A changed index is downloaded and re-parsed.
    text = REALISTIC.read_text() + (
        "- name: k8saudit-new\n  type: plugin\n  registry: ghcr.io\n  repository: x/k8saudit-new\n"
    )
    (server.root / "index.yaml").write_text(text)
    os.utime(server.root / "index.yaml", (1, 2_000_000_000))  # Last-Modified moves forward
    result = run_cli("index", "update", "private")
    assert "private: updated: 41 entries" in result.stderr
    search = run_cli("artifact", "search", "k8saudit-new", "--json")
    assert json.loads(search.stdout)[0]["name"] == "k8saudit-new"


def test_broken_parsed_cache_is_rebuilt_from_the_raw_copy(
    project: Path, server: IndexServer, tmp_home: TmpHome
) -> None:
    assert _add(server).exit_code == 0
    [parsed] = list((tmp_home.cache_dir / "indexes").glob("*/parsed-*"))
    intact = parsed.read_bytes()
    damaged = intact[:-10] + b"damaged!!!"  # the CRC no longer matches
    parsed.write_bytes(damaged)
    server.reset_requests()
    result = run_cli("artifact", "list", "--type", "asset", "--json")
    assert [row["name"] for row in json.loads(result.stdout)] == ["edge-cases"]
    assert server.requests == []
    assert parsed.read_bytes() not in (b"", damaged)  # rebuilt
    assert parsed.name == f"parsed-{bytes_digest(REALISTIC.read_bytes()).partition(':')[2]}.bin"


def test_transient_server_error_is_retried(project: Path, server: IndexServer) -> None:
    server.queue_status(503, headers={"Retry-After": "0"})
    result = _add(server)
    assert result.exit_code == 0, result.output
    assert server.statuses() == [503, 200]


def test_update_reports_each_failure_and_exits_1(
    project: Path, server: IndexServer, tmp_path: Path
) -> None:
    assert _add(server).exit_code == 0
    local = tmp_path / "local.yaml"
    local.write_text(REALISTIC.read_text())
    assert run_cli("index", "add", "local", "../local.yaml").exit_code == 0  # cwd: project
    assert 'url = "../local.yaml"' in (project / "falco.toml").read_text()
    (server.root / "index.yaml").unlink()
    result = run_cli("index", "update")
    assert result.exit_code == 1
    assert f"error: index private ({server.url_for('index.yaml')}): not found (HTTP 404)" in (
        result.stderr
    )
    assert "local: up to date (unchanged)" in result.stderr
    assert "1 of 2 indexes could not be updated" in result.stderr


# -- bad indexes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("malformed_yaml", "invalid YAML"),
        ("missing_repository", "missing the mandatory field `repository`"),
        ("duplicate_name", "duplicate entry name 'k8saudit'"),
        # Python's int-string limit inside PyYAML was a traceback; aliases a memory blow-up.
        ("huge_integer", "line 6, column 14: invalid YAML: unreadable value: an integer"),
        ("alias_bomb", "invalid YAML: aliases expand the document by more than"),
    ],
)
def test_bad_index_is_a_clear_error_and_nothing_is_written(
    project: Path, server: IndexServer, case: str, fragment: str, tmp_home: TmpHome
) -> None:
    shutil.copy(DATA / "invalid" / f"{case}.yaml", server.root / "index.yaml")
    before = (project / "falco.toml").read_bytes()
    result = _add(server)
    assert result.exit_code == 1
    assert f"error: index private ({server.url_for('index.yaml')}): line " in result.stderr
    assert fragment in result.stderr
    assert (project / "falco.toml").read_bytes() == before
    assert not (tmp_home.cache_dir / "indexes").exists() or not any(
        (tmp_home.cache_dir / "indexes").rglob("meta.json")
    )


# -- TLS and http -----------------------------------------------------------------------------


def test_per_index_ca_file(
    project: Path, https_index_server: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    shutil.copy(REALISTIC, https_index_server.root / "index.yaml")
    untrusted = _add(https_index_server)
    assert untrusted.exit_code == 1
    assert "TLS verification failed" in untrusted.stderr and "ca_file" in untrusted.stderr
    assert https_index_server.ca_file is not None
    shutil.copy(https_index_server.ca_file, project / "index-ca.pem")
    result = _add(https_index_server, "--ca-file", "index-ca.pem")
    assert result.exit_code == 0, result.output
    assert 'ca_file = "index-ca.pem"' in (project / "falco.toml").read_text()
    assert run_cli("index", "update").exit_code == 0


def test_plain_http_needs_explicit_permission(
    project: Path, index_server_factory: Callable[..., IndexServer]
) -> None:
    plain = index_server_factory(tls=False, require_auth=False)
    shutil.copy(REALISTIC, plain.root / "index.yaml")
    refused = run_cli("index", "add", "lab", plain.url_for("index.yaml"))
    assert refused.exit_code == 2 and "--allow-http" in refused.stderr
    allowed = run_cli("index", "add", "lab", plain.url_for("index.yaml"), "--allow-http")
    assert allowed.exit_code == 0, allowed.output
    assert "allow_http = true" in (project / "falco.toml").read_text()
    assert run_cli("index", "update").exit_code == 0


def test_netrc_credentials_never_reach_an_index_host(
    tmp_home: TmpHome,
    tmp_path: Path,
    public_index_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the §9 chain decides what an index gets: ~/.netrc is not part of it."""
    from falcopkg.core.index_config import IndexConfig

    shutil.copy(REALISTIC, public_index_server.root / "index.yaml")
    netrc = tmp_home.home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    config = IndexConfig(
        "public",
        public_index_server.url_for("index.yaml"),
        ca_file=str(public_index_server.ca_file),
    )
    assert IndexStore(tmp_path / "cache").update(config).changed
    assert public_index_server.requests and not any(
        r.auth_sent for r in public_index_server.requests
    )


def test_a_redirect_hop_through_plain_http_is_refused(
    tmp_home: TmpHome,
    tmp_path: Path,
    public_index_server: IndexServer,
    make_http_server: Callable[..., HelperServer],
) -> None:
    """https -> http -> https ends on https, but the middle hop went over the network in the
    clear (and could have been rewritten): refused before it is requested."""
    from falcopkg.core.index_config import IndexConfig
    from falcopkg.errors import NetworkError

    shutil.copy(REALISTIC, public_index_server.root / "index.yaml")
    final = public_index_server.url_for("index.yaml")
    middle = make_http_server(lambda handler: (302, {"Location": final}, b""))
    public_index_server.queue_status(302, headers={"Location": f"{middle.url}/hop"})
    config = IndexConfig("public", final, ca_file=str(public_index_server.ca_file))
    with pytest.raises(NetworkError) as caught:
        IndexStore(tmp_path / "cache").update(config)
    assert "redirected to a plain http:// URL" in caught.value.message
    assert middle.url in caught.value.message
    assert middle.requests == []
    assert not (tmp_path / "cache" / "indexes").exists()


# -- list / remove ----------------------------------------------------------------------------


def test_list_and_remove(project: Path, server: IndexServer, tmp_home: TmpHome) -> None:
    assert _add(server).exit_code == 0
    assert run_cli("index", "add", "local", REALISTIC, "--no-fetch").exit_code == 0
    listed = run_cli("index", "list")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "URL", "ENTRIES", "FETCHED"]
    assert lines[1].split()[:3] == ["private", server.url_for("index.yaml"), "40"]
    assert lines[2].split()[2:] == ["-", "never"]

    missing = run_cli("index", "remove", "private", "nope")
    assert missing.exit_code == 1 and "no index named 'nope'" in missing.stderr
    assert "private" in (project / "falco.toml").read_text()  # nothing removed

    result = run_cli("index", "remove", "private", "local")
    assert result.exit_code == 0, result.output
    # Back to what it was (give or take the blank line that separated the tables).
    assert (project / "falco.toml").read_text().rstrip() == "# my project\n[dependencies]"
    assert not any((tmp_home.cache_dir / "indexes").iterdir())
    assert CredentialStore().get_index("private") is None


# -- search output -----------------------------------------------------------------------------


def test_search_order_is_the_same_in_every_process(
    tmp_home: TmpHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("index", "add", "falcosecurity-like", REALISTIC).exit_code == 0
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-m", "falcopkg", "artifact", "search", "k8saudit", "audit"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    names = [line.split()[0] for line in outputs[0].splitlines()[1:]]
    assert names[: len(K8SAUDIT_FAMILY)] == K8SAUDIT_FAMILY
    assert len(names) == len(set(names)) > len(K8SAUDIT_FAMILY)


def test_search_filters_and_empty_result(
    tmp_home: TmpHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("index", "add", "a", REALISTIC).exit_code == 0
    assert run_cli("index", "add", "b", DATA / "second.yaml").exit_code == 0
    result = run_cli("artifact", "search", "k8saudit", "--type", "plugin", "--index", "b", "--json")
    assert [(r["name"], r["index"]) for r in json.loads(result.stdout)] == [("k8saudit", "b")]
    both = run_cli("artifact", "search", "k8saudit", "--json")
    assert [(r["name"], r["index"]) for r in json.loads(both.stdout)][:2] == [
        ("k8saudit", "a"),
        ("k8saudit", "b"),
    ]
    none = run_cli("artifact", "search", "zzzzzzzz")
    assert none.exit_code == 0 and none.stdout == "" and "no artifact matches" in none.stderr
    unknown = run_cli("artifact", "list", "--index", "nope")
    assert unknown.exit_code == 1 and "no index named 'nope'" in unknown.stderr


def test_official_index_is_the_default_with_a_hint(
    tmp_home: TmpHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Seed the cache as if the official index had been fetched (the tests have no internet).
    data = REALISTIC.read_bytes()
    entries = parse_index(data.decode(), "seed")
    IndexStore(tmp_home.cache_dir)._store(OFFICIAL_INDEX, data, bytes_digest(data), entries)
    result = run_cli("artifact", "search", "k8saudit")
    assert result.exit_code == 0, result.output
    assert "using the official falcosecurity index" in result.stderr
    assert "hint: add your own with `falcopkg index add NAME URL`" in result.stderr
    assert result.stdout.splitlines()[1].split()[:3] == ["k8saudit", "plugin", "falcosecurity"]


def test_remove_points_at_the_other_config(
    project: Path, tmp_home: TmpHome, server: IndexServer
) -> None:
    assert run_cli("index", "add", "mine", REALISTIC, "--global").exit_code == 0
    result = run_cli("index", "remove", "mine")
    assert result.exit_code == 1
    assert f"no index named 'mine' in {project / 'falco.toml'}" in result.stderr
    assert "hint: it is in user config" in result.stderr and "with --global" in result.stderr
    assert run_cli("index", "remove", "mine", "--global").exit_code == 0


def test_remove_refuses_an_index_a_dependency_names(project: Path, tmp_home: TmpHome) -> None:
    assert run_cli("index", "add", "local", REALISTIC, "--no-fetch").exit_code == 0
    manifest = project / "falco.toml"
    text = manifest.read_text().replace(
        "[dependencies]\n",
        '[dependencies]\nfalco-rules = { index = "local", version = "4" }\njson = "0.7"\n',
    )
    manifest.write_text(text)
    before = manifest.read_bytes()
    refused = run_cli("index", "remove", "local")
    assert refused.exit_code == 1
    assert "dependency falco-rules uses index 'local'" in refused.stderr
    assert "--force" in refused.stderr
    assert manifest.read_bytes() == before

    forced = run_cli("index", "remove", "local", "--force")
    assert forced.exit_code == 0, forced
    assert "warning: dependency falco-rules uses index 'local'" in forced.stderr
    assert "`falcopkg lock`" in forced.stderr
    assert "[[index]]" not in manifest.read_text()


def test_an_absolute_index_path_is_stored_absolute(project: Path, tmp_home: TmpHome) -> None:
    assert run_cli("index", "add", "abs", REALISTIC.resolve(), "--no-fetch").exit_code == 0
    assert run_cli("index", "add", "rel", "idx/index.yaml", "--no-fetch").exit_code == 0
    text = (project / "falco.toml").read_text()
    assert f'url = "{REALISTIC.resolve()}"' in text
    assert 'url = "idx/index.yaml"' in text
