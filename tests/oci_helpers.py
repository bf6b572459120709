"""Small artifacts pushed with the OCI client directly, for the client's own tests."""

from __future__ import annotations

import hashlib
import json

from falcopkg.oci import mediatypes
from falcopkg.oci.client import RegistryClient


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_bytes(config: bytes, layer: bytes, title: str = "rules.yaml") -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.cncf.falco.rulesfile.config.v1+json",
            "digest": digest_of(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz",
                "digest": digest_of(layer),
                "size": len(layer),
                "annotations": {"org.opencontainers.image.title": title},
            }
        ],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def push_artifact(client: RegistryClient, repository: str, tag: str, layer: bytes) -> str:
    config = json.dumps({"name": repository, "version": tag}).encode()
    client.upload_blob(repository, config, digest_of(config), len(config))
    client.upload_blob(repository, layer, digest_of(layer), len(layer))
    return client.put_manifest(
        repository, tag, manifest_bytes(config, layer), mediatypes.OCI_MANIFEST
    )
