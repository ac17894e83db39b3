"""chain's version, in a module of its own: the outputs chain writes carry it (a file's owner tag,
run.json's ``chain_version``), and the modules writing them sit on low floors, below the package's
face (``chain/__init__.py``), which they may not import."""

from __future__ import annotations

__version__ = "0.1.0"
