"""Bad-inputs cases: weights (generated neighbours of each case; see tests/bad_inputs/__init__.py)."""

from __future__ import annotations
