"""Security checks as tests (issue 12 Build 4), against the real TLS + basic-auth registry.

Covered elsewhere, and listed in docs/reliability.md: no Authorization header after a
cross-host redirect (tests/integration/test_oci_client.py::
test_redirect_to_another_host_gets_no_authorization), control characters escaped on output
(tests/integration/test_terminal_escapes.py, tests/unit/test_terminal.py).
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from falcopkg.oci.credentials import env_var_names
from tests.fixtures.cli import CliResult, run_cli
from tests.fixtures.home import TmpHome
from tests.fixtures.registries import RunningRegistry

pytestmark = pytest.mark.registry

RULES = (
    b"- rule: secret_test\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n"
)


def _secrets(registry: RunningRegistry, *others: str) -> list[bytes]:
    """The forms a leaked credential would take: the password, and user:password in Basic."""
    assert registry.username and registry.password
    pair = f"{registry.username}:{registry.password}".encode()
    forms = [registry.password.encode(), base64.b64encode(pair)]
    return forms + [other.encode() for other in others]


def _project(root: Path, registry: RunningRegistry, repository: str, **table: str) -> Path:
    root.mkdir(parents=True)
    settings = "".join(f"{key} = {value}\n" for key, value in table.items())
    (root / "falco.toml").write_text(
        f'[registries."{registry.host}"]\n{settings}\n'
        '[install]\nrulesfiles_dir = "rules"\nplugins_dir = "plugins"\n\n'
        f'[dependencies]\nsecret-rules = {{ ref = "{registry.host}/{repository}", version = "1" }}\n'
    )
    return root


def test_credentials_never_reach_output_files_or_the_cache(
    tls_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    registry = tls_registry
    assert registry.username and registry.password and registry.ca_file
    wrong = "wrong-pw-" + registry.password[::-1]
    project = _project(tmp_path / "project", registry, unique_repo, ca_file=f'"{registry.ca_file}"')
    rules = tmp_path / "secret_rules.yaml"
    rules.write_bytes(RULES)
    ref = f"{registry.host}/{unique_repo}"
    outputs: list[CliResult] = []

    def cli(*args: str | Path, code: int = 0, **kwargs: object) -> CliResult:
        result = run_cli("-v", "-C", project, *args, **kwargs)  # type: ignore[arg-type]
        assert result.exit_code == code, result
        outputs.append(result)
        return result

    login = ("registry", "login", registry.host, "-u", registry.username, "--password-stdin")
    refused = cli(*login, code=1, input=wrong + "\n")
    assert "refused the credentials" in refused.stderr
    cli(*login, input=registry.password + "\n")
    credentials = tmp_home.config_dir / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    push = ("registry", "push", f"{ref}:1.0.0", rules, "--type", "rulesfile", "--version")
    cli(*push, "1.0.0")
    cli("lock")
    cli("sync")
    cli("registry", "pull", f"{ref}:1.0.0", "-o", tmp_path / "pulled")
    cli("artifact", "info", f"{ref}:1.0.0")
    exports = tmp_path / "exports"
    for kind in ("helm", "falcoctl", "falco-config"):
        cli("export", kind, "-o", exports / f"{kind}.yaml")
    # Error paths with a wrong password from the environment (it wins over the file).
    user_var, password_var = env_var_names(registry.host)
    wrong_env = {user_var: registry.username, password_var: wrong}
    cli("lock", "--upgrade", code=1, env=wrong_env)
    cli(*push, "1.0.1", code=1, env=wrong_env)
    cli("registry", "pull", f"{ref}:1.0.0", "-o", tmp_path / "p2", code=1, env=wrong_env)
    assert all("rejected the credentials" in r.stderr for r in outputs[-3:])

    leaks = _secrets(registry, wrong)
    for result in outputs:
        text = (result.stdout + result.stderr).encode()
        assert not [form for form in leaks if form in text], result
    files = [
        path
        for root in (tmp_home.cache_dir, project, tmp_path / "pulled", exports)
        for path in root.rglob("*")
        if path.is_file()
    ]
    assert project / "falco.lock" in files and (project / "rules" / "secret_rules.yaml") in files
    assert any(".falcopkg" in path.parts for path in files)  # the state files are searched
    assert len([path for path in files if tmp_home.cache_dir in path.parents]) >= 3
    for path in files:
        data = path.read_bytes()
        assert not [form for form in leaks if form in data], path


def test_tls_errors_are_never_ignored_unless_the_host_says_so(
    tls_registry: RunningRegistry, unique_repo: str, tmp_home: TmpHome, tmp_path: Path
) -> None:
    """An untrusted certificate fails every command with a clear TLS error naming the host;
    only `ca_file` or `insecure = true` for that host gets past it (then the registry's own
    answer, here a demand for credentials, is what comes back)."""
    registry = tls_registry
    ref = f"{registry.host}/{unique_repo}:1.0.0"
    untrusted = _project(tmp_path / "untrusted", registry, unique_repo)
    for args in (("lock",), ("artifact", "info", ref), ("registry", "pull", ref, "-o", "out")):
        result = run_cli("-C", untrusted, *args)
        assert result.exit_code == 1, result
        assert registry.host in result.stderr and "TLS" in result.stderr, result
        assert "ca_file" in result.stderr  # the hint says how to trust it
        assert "Traceback" not in result.output

    other_host = _project(tmp_path / "other", registry, unique_repo)
    text = (other_host / "falco.toml").read_text()
    (other_host / "falco.toml").write_text(
        text + '\n[registries."registry.example:5000"]\ninsecure = true\n'
    )
    result = run_cli("-C", other_host, "artifact", "info", ref)
    assert result.exit_code == 1 and "TLS" in result.stderr, result  # not this host's setting

    for table in ({"insecure": "true"}, {"ca_file": f'"{registry.ca_file}"'}):
        trusting = _project(tmp_path / f"trusting-{len(table)}{sorted(table)[0]}", registry,
                            unique_repo, **table)  # fmt: skip
        result = run_cli("-C", trusting, "artifact", "info", ref)
        assert result.exit_code == 1, result
        assert "TLS" not in result.stderr and "credentials" in result.stderr, result
