"""The artifact type registry is data: lookups by name and by media type."""

from __future__ import annotations

import pytest

from falcopkg.artifact.platforms import host_platform, platform_dict, validate_platform
from falcopkg.artifact.types import ARTIFACT_TYPES, get_type, type_for_media_type
from falcopkg.errors import UsageError

MEDIA_TYPES = [
    ("rulesfile", "application/vnd.cncf.falco.rulesfile.config.v1+json", False),
    ("rulesfile", "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz", False),
    ("plugin", "application/vnd.cncf.falco.plugin.config.v1+json", True),
    ("plugin", "application/vnd.cncf.falco.plugin.layer.v1+tar.gz", True),
    ("asset", "application/vnd.cncf.falco.asset.config.v1+json", False),
    ("asset", "application/vnd.cncf.falco.asset.layer.v1+tar.gz", False),
]


@pytest.mark.parametrize(("name", "media_type", "multi_platform"), MEDIA_TYPES)
def test_type_for_media_type(name: str, media_type: str, multi_platform: bool) -> None:
    found = type_for_media_type(media_type)
    assert found is get_type(name)
    assert found.multi_platform is multi_platform


@pytest.mark.parametrize("media_type", ["application/vnd.oci.image.layer.v1.tar+gzip", "", None])
def test_unknown_media_type(media_type: str | None) -> None:
    assert type_for_media_type(media_type) is None


def test_get_type_unknown_lists_known_types() -> None:
    with pytest.raises(UsageError) as info:
        get_type("driver")
    assert "'driver'" in info.value.message
    assert info.value.hint == "use one of: rulesfile, plugin, asset"
    assert list(ARTIFACT_TYPES) == ["rulesfile", "plugin", "asset"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", {"architecture": "amd64", "os": "linux"}),
        ("linux/arm64", {"architecture": "arm64", "os": "linux"}),
        ("linux/x86_64", {"architecture": "x86_64", "os": "linux"}),
        ("linux/arm/v7", {"architecture": "arm", "os": "linux", "variant": "v7"}),
    ],
)
def test_platform_dict(text: str, expected: dict[str, str]) -> None:
    assert platform_dict(text) == expected


@pytest.mark.parametrize("text", ["linux", "Linux/amd64", "linux/", "/amd64", "linux/amd64/v8/x"])
def test_invalid_platform(text: str) -> None:
    with pytest.raises(UsageError, match="expected OS/ARCH"):
        validate_platform(text)


def test_host_platform_is_valid() -> None:
    assert validate_platform(host_platform()) == host_platform()
