"""Reading and writing TOML documents with precise errors and comment-preserving edits.

tomlkit keeps comments and order, which `falcopkg add/remove/index add` rely on. Read-only
callers use :func:`read_toml_data`, which parses with the stdlib ``tomllib`` so that commands
like ``artifact search`` never import tomlkit (it is imported inside the functions below).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falcopkg.errors import ConfigError

SYNTAX_HINT = "fix the syntax at that line"
# tomllib's messages end with the position: "Cannot overwrite a value (at line 2, column 6)".
_TOMLLIB_POSITION = re.compile(
    r"^(?P<reason>.*) \(at line (?P<line>[0-9]+), column (?P<column>[0-9]+)\)$"
)
_TOO_MANY_DIGITS = "an integer with more than 4,300 digits (Python's limit)"
_LONG_NUMBER = re.compile(r"[0-9][0-9_]{4300,}")

if TYPE_CHECKING:
    from tomlkit.exceptions import ParseError
    from tomlkit.toml_document import TOMLDocument


def read_toml_data(
    path: Path, *, missing_ok: bool = False, missing_hint: str | None = None
) -> tuple[dict[str, Any], str]:
    """A TOML file as plain data plus its text (for line numbers in later errors).

    A missing file is ``({}, "")`` when ``missing_ok``, else a ConfigError with
    ``missing_hint``; a syntax error names the file, line and column.
    """
    text = _read_text(path, missing_ok=missing_ok, missing_hint=missing_hint)
    if text is None:
        return {}, ""
    return parse_toml_data(text, str(path)), text


def parse_toml_data(text: str, source: str, *, hint: str = SYNTAX_HINT) -> dict[str, Any]:
    """Plain data from TOML text: the stdlib ``tomllib`` when there is one (fast, no tomlkit),
    tomlkit otherwise. Text that is not valid TOML is a ConfigError naming ``source``, the
    line and column, whichever way the parser failed (duplicate keys, arrays nested a
    thousand deep, integers over Python's 4,300-digit limit)."""
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            return tomllib.loads(text)
        except (ValueError, RecursionError):  # TOMLDecodeError is a ValueError
            raise _invalid_toml(text, source, hint) from None
    data: dict[str, Any] = parse_document(text, source, hint=hint).unwrap()
    return data


def load_document(path: Path, *, missing_ok: bool = False) -> TOMLDocument:
    """Parse ``path`` as TOML for editing; a syntax error names the file, line and column."""
    text = _read_text(path, missing_ok=missing_ok)
    return parse_document("" if text is None else text, str(path))


def _read_text(path: Path, *, missing_ok: bool, missing_hint: str | None = None) -> str | None:
    """The file's text; None when it is missing and ``missing_ok``."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ConfigError(f"{path}: file not found", hint=missing_hint) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 ({exc.reason})") from None


def parse_document(text: str, source: str, *, hint: str = SYNTAX_HINT) -> TOMLDocument:
    """A tomlkit document (for editing); invalid TOML is a ConfigError as in
    :func:`parse_toml_data`."""
    import tomlkit

    try:
        return tomlkit.parse(text)
    except (ValueError, RecursionError, tomlkit.exceptions.TOMLKitError):
        # ParseError is a ValueError; KeyAlreadyPresent (a duplicate key in an inline or
        # dotted table) is only a TOMLKitError.
        raise _invalid_toml(text, source, hint) from None


def _invalid_toml(text: str, source: str, hint: str) -> ConfigError:
    """The error for ``text``, which a parser refused: where tomlkit says (its line and
    column), else where tomllib says; ``source:LINE:COL: invalid TOML: reason``."""
    line, column, reason = _tomllib_problem(text)
    if reason != _TOO_MANY_DIGITS:  # tomlkit calls that "Invalid number", past its end
        problem = _tomlkit_error(text)
        if problem is not None:
            clean = _clean_syntax_error(problem, text, source)
            if clean is not None:
                return clean
            line, column, reason = problem.line, problem.col, _parse_reason(problem)
    where = (
        f"{source}:{line}:{column}" if line and column else f"{source}:{line}" if line else source
    )
    return ConfigError(f"{where}: invalid TOML: {reason}", hint=hint)


def _tomlkit_error(text: str) -> ParseError | None:
    """tomlkit's ParseError for ``text`` (it has a position), or None."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    try:
        tomlkit.parse(text)
    except ParseError as exc:
        return exc
    except (ValueError, RecursionError, tomlkit.exceptions.TOMLKitError):
        return None
    return None  # tomlkit accepts some text tomllib refuses


def _tomllib_problem(text: str) -> tuple[int | None, int | None, str]:
    """(line, column, reason) from tomllib's message ``reason (at line L, column C)``."""
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            match = _TOMLLIB_POSITION.match(str(exc))
            if match:
                return int(match["line"]), int(match["column"]), match["reason"]
            return None, None, str(exc)
        except ValueError:  # int()'s digit limit: the one other ValueError tomllib lets out
            long_number = _LONG_NUMBER.search(text)
            if long_number is None:
                return None, None, _TOO_MANY_DIGITS
            start = long_number.start()
            line_start = text.rfind("\n", 0, start) + 1
            return text.count("\n", 0, start) + 1, start - line_start + 1, _TOO_MANY_DIGITS
        except RecursionError:
            return None, None, "arrays or tables nested too deeply"
    return None, None, "not valid TOML"


_TABLE_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(?:#.*)?$")


def _clean_syntax_error(exc: ParseError, text: str, source: str) -> ConfigError | None:
    """Our own words for two of tomlkit's raw messages: a string not closed on its line
    (tomlkit: "Control characters … use \\u000a instead") and a table defined twice
    (tomlkit: 'Key "x" already exists.' at column 0). None: tomlkit's message as it is."""
    from tomlkit.exceptions import InvalidControlChar, UnexpectedEofError

    lines = text.splitlines()
    line_text = lines[exc.line - 1] if 0 < exc.line <= len(lines) else ""
    newline_in_string = isinstance(exc, InvalidControlChar) and "\\u000a" in str(exc)
    open_at_end = isinstance(exc, UnexpectedEofError) and any(
        line_text.count(quote) % 2 for quote in ('"', "'")
    )
    if newline_in_string or open_at_end:
        return ConfigError(
            f"{source}:{exc.line}: invalid TOML: unterminated string",
            hint='close the string on the same line (`"…"`), or use `"""…"""` for several lines',
        )
    header = _TABLE_HEADER_RE.match(line_text)
    if "already exists" in str(exc) and header is not None:
        brackets, name = header.group(1), header.group(2)
        shown = f"{brackets}{name}{brackets.replace('[', ']')}"
        earlier = next(
            (
                number
                for number, other in enumerate(lines[: exc.line - 1], start=1)
                if (found := _TABLE_HEADER_RE.match(other)) is not None and found.group(2) == name
            ),
            None,
        )
        also = f" (first on line {earlier})" if earlier else ""
        return ConfigError(
            f"{source}:{exc.line}: invalid TOML: table {shown} is defined twice{also}",
            hint=f"merge the two {shown} tables into one",
        )
    return None


def _parse_reason(exc: ParseError) -> str:
    # tomlkit's message ends with " at line L col C"; we print the location ourselves.
    message = str(exc)
    marker = message.rfind(" at line ")
    return message[:marker] if marker > 0 else message


def save_document(path: Path, document: TOMLDocument) -> None:
    import tomlkit

    from falcopkg.fsutil import atomic_write_text

    atomic_write_text(path, tomlkit.dumps(document))


def key_line(text: str, dotted_key: str) -> int | None:
    """Best-effort line number (1-based) where the last part of ``dotted_key`` is written.

    tomlkit does not keep positions of parsed items, so error messages about a bad value
    or an unknown key find the line by scanning the source text.
    """
    last = dotted_key.rsplit(".", 1)[-1]
    candidates = (f"{last} =", f"{last}=", f'"{last}" =', f'"{last}"=', f"[{dotted_key}]")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(candidates) or f"[{dotted_key}]" in stripped:
            return number
    return None


def unwrap(value: Any) -> Any:
    """Plain Python values from tomlkit items (dicts, lists, str, int …)."""
    return value.unwrap() if hasattr(value, "unwrap") else value


def key_path_line(text: str, path: Sequence[str | int]) -> int | None:
    """Line (1-based) where the key at ``path`` is written, or its nearest table's header line.

    Unlike :func:`key_line`, ``path`` is split already (hosts like ``ghcr.io`` contain dots),
    the search starts at the deepest table header that is a prefix of ``path``, so the same
    key name in another table is not taken, and an int selects the n-th (0-based) table of an
    array of tables (``("index", 1, "url")``).
    """
    lines = text.splitlines()
    start, depth = -1, 0
    seen: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(lines):
        header = _header_path(line)
        if header is None:
            continue
        names, is_array = header
        keys: tuple[str | int, ...] = names
        if is_array:
            position = seen.get(names, 0)
            seen[names] = position + 1
            keys = (*keys, position)
        if len(keys) > depth and tuple(path[: len(keys)]) == keys:
            start, depth = number, len(keys)
    if depth == len(path):
        return start + 1
    wanted = path[depth]
    if isinstance(wanted, int):
        return start + 1 if start >= 0 else None
    assignments = (f"{wanted} =", f"{wanted}=", f'"{wanted}" =', f'"{wanted}"=')
    for number in range(start + 1, len(lines)):
        stripped = lines[number].strip()
        if stripped.startswith("["):
            break
        if stripped.startswith(assignments):
            return number + 1
    return start + 1 if start >= 0 else None


def table_key_lines(text: str, table: tuple[str, ...]) -> dict[str, int]:
    """Line (1-based) of each key written directly in ``table`` (its first segment, for a
    dotted key), in one pass over ``text``: for messages about many keys at once, where
    :func:`key_path_line` per key would read the text once per key."""
    found: dict[str, int] = {}
    inside = False
    for number, line in enumerate(text.splitlines(), start=1):
        header = _header_path(line)
        if header is not None:
            inside = header == (table, False)
            continue
        stripped = line.strip()
        if not inside or not stripped or stripped.startswith("#"):
            continue
        if stripped[0] in "\"'":
            end = stripped.find(stripped[0], 1)
            key = stripped[1:end] if end > 0 else ""
        else:
            key = stripped.split("=", 1)[0].split(".", 1)[0].strip()
        if key:
            found.setdefault(key, number)
    return found


def _header_path(line: str) -> tuple[tuple[str, ...], bool] | None:
    """``[a."b.c"]`` → (("a", "b.c"), False); ``[[index]]`` → (("index",), True)."""
    stripped = line.strip()
    is_array = stripped.startswith("[[")
    if not stripped.startswith("["):
        return None
    opening = 2 if is_array else 1
    closing = stripped.find("]]" if is_array else "]", opening)
    if closing < 0:
        return None
    keys: list[str] = []
    current, quote = "", ""
    for char in stripped[opening:closing]:
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            keys.append(current.strip())
            current = ""
        else:
            current += char
    keys.append(current.strip())
    return tuple(keys), is_array
