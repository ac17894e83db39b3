"""Pipeline stages: segmenters (frames → labels) and synthesizers (labels or frames → frames).

The names a plugin or a caller needs: the base classes (`chain.stages.base`), the spec types
(`chain.stages.spec`) and the registry's functions (`chain.stages.registry`). They are imported
on first use (PEP 562): the base classes bring torch, which listing stages does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chain.stages.base import Segmenter, Synthesizer
    from chain.stages.registry import ENTRY_POINT_GROUP, build_stage, get_stage, register_stage, stages
    from chain.stages.spec import StageContext, StageSpec, WeightsStatus

_HOMES = {"Segmenter": "base", "Synthesizer": "base", "ENTRY_POINT_GROUP": "registry", "build_stage": "registry",
          "get_stage": "registry", "register_stage": "registry", "stages": "registry", "StageContext": "spec",
          "StageSpec": "spec", "WeightsStatus": "spec"}
__all__ = [
    "ENTRY_POINT_GROUP", "Segmenter", "StageContext", "StageSpec", "Synthesizer", "WeightsStatus", "build_stage",
    "get_stage", "register_stage", "stages",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'chain.stages' has no attribute {name!r}")
    return getattr(importlib.import_module(f"chain.stages.{home}"), name)
