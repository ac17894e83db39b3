"""The stages that ship with chain, for the registry (`chain.stages.registry`), which loads this
list the first time stages are asked for. Nothing a stage module imports may import this module."""

from chain.stages import controlnet, deeplab, deeplab_mnv2, hf_segmenter, lookup, spade, vaegan
from chain.stages.spec import StageSpec

BUILTIN_STAGES: tuple[StageSpec, ...] = (
    deeplab.SPEC, deeplab_mnv2.SPEC, lookup.PALETTE, lookup.SAVED_LABELS, lookup.COLORIZE, spade.SPEC, vaegan.SPEC,
    controlnet.SPEC, hf_segmenter.HF, hf_segmenter.MASK2FORMER, hf_segmenter.SEGFORMER,
)
