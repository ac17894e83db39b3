"""Registers the stages that ship with chain. Imported once by the registry."""

from chain.stages import controlnet, deeplab, deeplab_mnv2, hf_segmenter, simple, spade, vaegan
from chain.stages.registry import register_stage

BUILTIN_STAGES = (deeplab.SPEC, deeplab_mnv2.SPEC, simple.PALETTE, simple.SAVED_LABELS, simple.COLORIZE, spade.SPEC, vaegan.SPEC,
                  controlnet.SPEC, hf_segmenter.HF, hf_segmenter.MASK2FORMER, hf_segmenter.SEGFORMER)

for _spec in BUILTIN_STAGES:
    register_stage(_spec)
