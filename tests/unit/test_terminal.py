"""escape_controls: what reaches a terminal from outside cannot drive the terminal."""

from __future__ import annotations

import pytest

from falcopkg.terminal import escape_controls


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcödé, 日本", "plain text, ünïcödé, 日本"),
        ("two\nlines\tand a tab", "two\nlines\tand a tab"),
        ("\x1b]0;HACKED\x07title", "\\x1b]0;HACKED\\x07title"),  # OSC: set the window title
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # CSI: clear the screen
        ("ok\rFAKE", "ok\\x0dFAKE"),  # carriage return rewrites the line
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1 \x9b31m csi", "c1 \\x9b31m csi"),  # C1 CSI, one character
        ("\u202egnp.exe", "\\u202egnp.exe"),  # right-to-left override
        ("a\u2028b", "a\\u2028b"),
    ],
    ids=["plain", "newline-tab-kept", "osc", "csi", "cr", "nul-del", "c1", "bidi", "line-sep"],
)
def test_escape_controls(text: str, shown: str) -> None:
    assert escape_controls(text) == shown


def test_every_control_character_is_escaped() -> None:
    controls = "".join(chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\n\t")
    escaped = escape_controls(controls)
    assert escaped.isprintable()
    assert len(escaped) == 4 * len(controls)


def test_download_progress_lines_escape_the_artifact_name() -> None:
    """Progress writes to stderr itself (not through Console): a locked name is escaped too."""
    import io

    from falcopkg.cli.progress import Progress
    from falcopkg.services.fetch import BlobRequest

    stream = io.StringIO()
    progress = Progress("lines", stream)
    progress.begin(1, 10)
    progress.finished(BlobRequest("evil\x1b]0;HACKED\x07 1.0.0", "h/r", "sha256:" + "a" * 64, 10))
    assert stream.getvalue() == "Downloaded evil\\x1b]0;HACKED\\x07 1.0.0 (10 B)\n"
