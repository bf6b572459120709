"""The [[index]] tables: validation with file:line errors, comment-preserving edits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomlkit

from falcopkg.core.index_config import (
    OFFICIAL_INDEX,
    IndexConfig,
    add_index,
    has_userinfo,
    read_index_configs,
    remove_index,
)
from falcopkg.errors import ConfigError

DATA = Path(__file__).parent.parent / "data" / "index"
EDIT = DATA / "edit"


def _plain(text: str) -> Any:
    """``text`` parsed by the stdlib tomllib (Python 3.11+), as the read-only path does."""
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads(text)


def _expectations(path: Path) -> list[str]:
    first = path.read_text().splitlines()[0]
    return [part.strip() for part in first.removeprefix("# expect: ").split(" | ")]


@pytest.mark.parametrize("path", sorted((DATA / "config").glob("*.toml")), ids=lambda p: p.stem)
@pytest.mark.parametrize("parser", ["tomlkit", "tomllib"])
def test_invalid_index_tables_are_clear_errors(path: Path, parser: str) -> None:
    text = path.read_text()
    document = tomlkit.parse(text) if parser == "tomlkit" else _plain(text)
    with pytest.raises(ConfigError) as caught:
        read_index_configs(document, Path("falco.toml"), text=text)
    message = f"{caught.value.message}\nhint: {caught.value.hint}"
    for fragment in _expectations(path):
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_valid_tables_with_options_and_base_dir(tmp_path: Path) -> None:
    text = (
        '[[index]]\nname = "falcosecurity"\nurl = "https://falcosecurity.github.io/falcoctl/index.yaml"\n'
        '[[index]]\nname = "local"\nurl = "indexes/local.yaml"\n'
        '[[index]]\nname = "lab"\nurl = "http://lab.internal/index.yaml"\nallow_http = true\n'
        'ca_file = "certs/ca.pem"\n'
    )
    configs = read_index_configs(tomlkit.parse(text), tmp_path / "falco.toml")
    assert configs == [
        OFFICIAL_INDEX,
        IndexConfig("local", "indexes/local.yaml"),
        IndexConfig(
            "lab", "http://lab.internal/index.yaml", allow_http=True, ca_file="certs/ca.pem"
        ),
    ]
    assert configs[1].local_path() == tmp_path / "indexes" / "local.yaml"
    assert configs[2].ca_path() == tmp_path / "certs" / "ca.pem"
    assert not configs[1].is_remote and configs[2].is_remote
    assert read_index_configs(_plain(text), tmp_path / "falco.toml", text=text) == configs


def test_file_url_and_no_tables() -> None:
    assert IndexConfig("f", "file:///srv/my%20index.yaml").local_path() == Path(
        "/srv/my index.yaml"
    )
    assert read_index_configs(tomlkit.parse("[target]\n"), "falco.toml") == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://bob:pw@example.com/index.yaml", True),
        ("https://bob@example.com/index.yaml", True),
        ("https://example.com/a@b/index.yaml", False),
        ("/srv/me@home/index.yaml", False),
        ("https://example.com/index.yaml", False),
    ],
)
def test_has_userinfo(url: str, expected: bool) -> None:
    assert has_userinfo(url) is expected


def test_add_and_remove_keep_comments_and_order() -> None:
    document = tomlkit.parse((EDIT / "before.toml").read_text())
    assert add_index(
        document, "acme", "https://acme.example.com/index.yaml", ca_file="certs/acme-ca.pem"
    )
    assert tomlkit.dumps(document) == (EDIT / "after_add.toml").read_text()
    removed = remove_index(document, "falcosecurity")
    assert removed == OFFICIAL_INDEX
    assert tomlkit.dumps(document) == (EDIT / "after_remove.toml").read_text()


def test_add_is_idempotent_and_refuses_another_url() -> None:
    document = tomlkit.document()
    assert add_index(document, OFFICIAL_INDEX.name, OFFICIAL_INDEX.url)
    before = tomlkit.dumps(document)
    assert not add_index(document, OFFICIAL_INDEX.name, OFFICIAL_INDEX.url)
    assert tomlkit.dumps(document) == before
    with pytest.raises(ConfigError) as caught:
        add_index(document, OFFICIAL_INDEX.name, "https://elsewhere.example.com/index.yaml")
    assert "already exists" in caught.value.message
    assert caught.value.hint is not None and "index remove falcosecurity" in caught.value.hint


def test_add_to_inline_array_and_remove_last_drops_the_key() -> None:
    document = tomlkit.parse('index = [{ name = "a", url = "https://a.example.com/i.yaml" }]\n')
    add_index(document, "b", "https://b.example.com/i.yaml")
    assert [c.name for c in read_index_configs(document, "falco.toml")] == ["a", "b"]
    remove_index(document, "a")
    remove_index(document, "b")
    assert "index" not in document


def test_remove_unknown_name_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        remove_index(tomlkit.document(), "nope")
    assert "no index named 'nope'" in caught.value.message
