"""The pure core: data models and decisions with no network or filesystem effects.

versions/constraints, references, index data and search, the manifest model, the
resolver, the lockfile, the install planner. Effects live in ``falcopkg.services``
(indexes, metadata, cache, installer) and ``falcopkg.oci`` (the registry client).
"""
