"""falcopkg: a declarative, lockfile-based package manager for Falco rules files and plugins."""

from __future__ import annotations

__version__ = "0.1.0"
