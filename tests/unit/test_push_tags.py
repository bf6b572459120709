"""Which floating tags (X.Y, X, latest) a push moves, given the repository's tags."""

from __future__ import annotations

import pytest

from falcopkg.artifact.push import FloatingTags, floating_tags

CASES = [
    ("1.0.0", [], FloatingTags(("1.0", "1", "latest"), ())),
    (
        "1.2.4",
        ["1.3.0", "1.3", "1", "latest"],
        FloatingTags(("1.2",), (("1", "1.3.0"), ("latest", "1.3.0"))),
    ),
    (
        "1.2.4",
        ["1.2.5", "2.0.0"],
        FloatingTags((), (("1.2", "1.2.5"), ("1", "1.2.5"), ("latest", "2.0.0"))),
    ),
    ("1.1.9", ["1.2.0", "2.0.0"], FloatingTags(("1.1",), (("1", "1.2.0"), ("latest", "2.0.0")))),
    ("1.3.1", ["1.3.0", "2.0.0-rc.1", "main"], FloatingTags(("1.3", "1", "latest"), ())),
    ("1.3.0", ["1.3.0"], FloatingTags(("1.3", "1", "latest"), ())),  # pushed again
    ("0.10.0", ["0.9.0", "0.2.0"], FloatingTags(("0.10", "0", "latest"), ())),
    ("2.0.0-rc.1", ["1.0.0"], FloatingTags((), ())),
    ("1.0.0", ["v9.0.0"], FloatingTags(("1.0", "1", "latest"), ())),  # not a release tag
]


@pytest.mark.parametrize(("version", "existing", "expected"), CASES)
def test_floating_tags(version: str, existing: list[str], expected: FloatingTags) -> None:
    assert floating_tags(version, existing) == expected
