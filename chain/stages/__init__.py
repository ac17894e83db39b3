"""Pipeline stages: segmenters (frames → labels) and synthesizers (labels or frames → frames).

The names a plugin or a caller needs: the base classes (`chain.stages.base`), the spec types
(`chain.stages.spec`) and the registry's functions (`chain.stages.registry`).
"""

from chain.stages.base import Segmenter, Synthesizer
from chain.stages.registry import ENTRY_POINT_GROUP, build_stage, get_stage, register_stage, stages
from chain.stages.spec import StageContext, StageSpec, WeightsStatus

__all__ = [
    "ENTRY_POINT_GROUP", "Segmenter", "StageContext", "StageSpec", "Synthesizer", "WeightsStatus", "build_stage",
    "get_stage", "register_stage", "stages",
]
