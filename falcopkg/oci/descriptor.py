"""OCI content descriptors and fetched manifests (OCI image spec "descriptor")."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from falcopkg.core.reference import DIGEST_RE
from falcopkg.oci.errors import InvalidManifestError

# Go's ocispec.Platform field order: falcoctl/ORAS serialise platforms in this order, and
# manifests must be byte-compatible with theirs.
_PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant")


@dataclass(frozen=True)
class Descriptor:
    """What a manifest says about a blob or another manifest.

    ``platform`` is the OCI platform object (``{"architecture": ..., "os": ...}``) of an image
    index entry; ``annotations`` are string pairs. Both are None when absent.
    """

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None
    platform: Mapping[str, Any] | None = None
    artifact_type: str | None = None

    @property
    def platform_name(self) -> str | None:
        """``os/architecture[/variant]`` (e.g. ``linux/arm64``), or None without a platform."""
        if not self.platform:
            return None
        name = f"{self.platform.get('os', '')}/{self.platform.get('architecture', '')}"
        variant = self.platform.get("variant")
        return f"{name}/{variant}" if variant else name

    def to_dict(self) -> dict[str, Any]:
        """JSON object in the field order of Go's ocispec.Descriptor (annotations sorted)."""
        data: dict[str, Any] = {"mediaType": self.media_type}
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        data["digest"] = self.digest
        data["size"] = self.size
        if self.annotations:
            data["annotations"] = {key: self.annotations[key] for key in sorted(self.annotations)}
        if self.platform:
            known = {key: self.platform[key] for key in _PLATFORM_KEYS if key in self.platform}
            extra = {key: value for key, value in self.platform.items() if key not in known}
            data["platform"] = {**known, **extra}
        return data

    @classmethod
    def from_dict(cls, data: object, *, context: str = "descriptor") -> Descriptor:
        """Parse and validate a descriptor; ``context`` names where it came from in errors."""
        if not isinstance(data, Mapping):
            raise InvalidManifestError(f"{context}: a descriptor must be a JSON object")
        media_type = data.get("mediaType")
        digest = data.get("digest")
        size = data.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise InvalidManifestError(f"{context}: missing or invalid mediaType")
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise InvalidManifestError(f"{context}: missing or invalid digest {digest!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidManifestError(f"{context}: missing or invalid size {size!r}")
        annotations = data.get("annotations")
        if annotations is not None and not (
            isinstance(annotations, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
        ):
            raise InvalidManifestError(f"{context}: annotations must map strings to strings")
        platform = data.get("platform")
        if platform is not None and not (
            isinstance(platform, Mapping)
            and isinstance(platform.get("os"), str)
            and isinstance(platform.get("architecture"), str)
        ):
            raise InvalidManifestError(f"{context}: platform needs string os and architecture")
        artifact_type = data.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise InvalidManifestError(f"{context}: invalid artifactType {artifact_type!r}")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=dict(annotations) if annotations else None,
            platform=dict(platform) if platform else None,
            artifact_type=artifact_type,
        )


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest exactly as the registry sent it; ``digest`` is verified or computed locally."""

    media_type: str
    digest: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))

    def json(self) -> dict[str, Any]:
        """The manifest as a JSON object; InvalidManifestError if it is not one."""
        try:
            value = json.loads(self.data)
        except (ValueError, RecursionError) as exc:  # int()'s digit limit, deep nesting too
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise InvalidManifestError(
                f"manifest {self.digest} is not valid JSON: {reason}"
            ) from None
        if not isinstance(value, dict):
            raise InvalidManifestError(f"manifest {self.digest} is not a JSON object")
        return value
