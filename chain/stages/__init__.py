"""Pipeline stages: segmenters (frames → labels) and synthesizers (labels or frames → frames)."""

from chain.stages.base import Segmenter, Synthesizer
from chain.stages.registry import (
    ENTRY_POINT_GROUP,
    StageContext,
    StageSpec,
    WeightsStatus,
    build_stage,
    get_stage,
    register_stage,
    stages,
)

__all__ = [
    "ENTRY_POINT_GROUP", "Segmenter", "StageContext", "StageSpec", "Synthesizer", "WeightsStatus", "build_stage",
    "get_stage", "register_stage", "stages",
]
