"""read_toml_data: the one reader of TOML files for read-only callers (manifest, user config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from falcopkg.errors import ConfigError
from falcopkg.tomlfile import load_document, read_toml_data

# (file bytes or None for a missing file, expected part of the message)
ERROR_CASES = [
    pytest.param(None, "config.toml: file not found", id="missing"),
    pytest.param(b"a = 1\nb = \n", "config.toml:2:4: invalid TOML", id="syntax-line-col"),
    pytest.param(b"a = '\xff'\n", "config.toml: not valid UTF-8", id="not-utf8"),
    # Each of these escaped as a traceback (KeyAlreadyPresent, RecursionError, ValueError).
    pytest.param(b"t = { a = 1, a = 2 }\n", "config.toml:1:", id="duplicate-inline-key"),
    pytest.param(b"[t]\na.b = 1\na.b = 2\n", "config.toml:3:", id="duplicate-dotted-key"),
    pytest.param(b"a = " + b"[" * 1000 + b"]" * 1000, "config.toml:1:", id="nested-1000"),
    pytest.param(
        b"a = 1\nb = " + b"7" * 5000, "config.toml:2:5: invalid TOML: an integer", id="5000-digits"
    ),
    pytest.param(
        b'[dependencies]\nx = "1\ny = "2"\n',
        "config.toml:2: invalid TOML: unterminated string",
        id="unterminated-string",
    ),
    pytest.param(
        b"[dependencies]\nx = '1", "config.toml:2: invalid TOML: unterminated string", id="eof"
    ),
    pytest.param(
        b"[dependencies]\n[target]\nplatforms = []\n[ dependencies ]  # again\n",
        "config.toml:4: invalid TOML: table [dependencies] is defined twice (first on line 1)",
        id="duplicate-table",
    ),
    pytest.param(
        b'[registries."localhost:5000"]\n[registries."localhost:5000"]\n',
        'config.toml:2: invalid TOML: table [registries."localhost:5000"] is defined twice',
        id="duplicate-quoted-table",
    ),
]


@pytest.mark.parametrize(("content", "expected"), ERROR_CASES)
def test_read_errors_name_the_file(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "config.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        read_toml_data(path)
    assert expected in info.value.message
    if content is not None and b"\xff" not in content:  # the editing path says the same
        with pytest.raises(ConfigError) as info:
            load_document(path)
        assert expected.split(": ")[0] in info.value.message


def test_missing_file_is_empty_when_allowed_and_hint_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "falco.toml"
    assert read_toml_data(path, missing_ok=True) == ({}, "")
    assert len(load_document(path, missing_ok=True)) == 0
    with pytest.raises(ConfigError) as info:
        read_toml_data(path, missing_hint="run `falcopkg init`")
    assert info.value.hint == "run `falcopkg init`"


def test_data_and_text_are_returned(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = '[[index]]\nname = "x"\nurl = "https://example.com/index.yaml"\n'
    path.write_text(text, encoding="utf-8")
    data, read_text = read_toml_data(path)
    assert data == {"index": [{"name": "x", "url": "https://example.com/index.yaml"}]}
    assert read_text == text


def test_table_key_lines_finds_every_key_of_a_table_in_one_pass() -> None:
    from falcopkg.tomlfile import table_key_lines

    text = (
        '[target]\nx = 1\n[dependencies]\n# a comment\na = "1"\n'
        '"b.c" = { ref = "x" }\nd.version = "2"\n\'e\' = "3"\n[other]\nf = 1\n'
    )
    assert table_key_lines(text, ("dependencies",)) == {"a": 5, "b.c": 6, "d": 7, "e": 8}
    assert table_key_lines(text, ("missing",)) == {}


def test_parsing_a_thousand_dependencies_stays_linear() -> None:
    """Each dependency records its falco.toml line: found in one pass, not one per key."""
    import time
    from pathlib import Path

    from falcopkg.core.manifest import parse_manifest

    text = "[dependencies]\n" + "".join(f'a{n} = "1"\n' for n in range(5000))
    started = time.monotonic()
    manifest = parse_manifest(text, Path("falco.toml"))
    assert time.monotonic() - started < 2.0
    assert manifest.dependencies["a4999"].where == "falco.toml:5001"
