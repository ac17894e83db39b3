"""The Python API. Every CLI command is a thin shell over one function here."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path

from chain.checks import check_run, parse_options
from chain.config import ChainConfig, RunConfig
from chain.device import configure_cpu_threads, resolve_device
from chain.errors import ChainError, MissingWeightsError
from chain.pipeline import Chain, Progress
from chain.stages import StageContext, build_stage, get_stage
from chain.stages.base import Segmenter, Synthesizer
from chain.stages.deflicker import DeflickerSettings
from chain.stages.registry import check_stages, missing_weights, parse_stage_name, usable_alternatives
from chain.stages.smoothing import SmoothedSegmenter, parse_smoothing
from chain.stages.window import WindowSmoothedSegmenter
from chain.summary import RunSummary

__all__ = ["ChainConfig", "RunConfig", "build_chain", "parse_options", "run", "usable_alternatives"]
# parse_options: for the CLI and UI

NONE = "none"


def build_chain(config: ChainConfig | None = None, /, **options: object) -> Chain:
    """Build stages by name (``"deeplab:resnet101"``, ``"none"``) and join them into a `Chain`.

    ``config`` says what to build; keywords are `ChainConfig` fields, on their own
    (``build_chain(seg="palette:voc", synth="colorize")``) or changing ``config``'s.
    """
    config = dataclasses.replace(config or ChainConfig(), **options)
    seg, synth, smooth = config.seg, config.synth, config.smooth
    resolved = resolve_device(config.device)
    threads = config.threads
    if resolved.type == "cpu" or threads is not None:
        threads = configure_cpu_threads(threads)
    smoothing = parse_smoothing(smooth)
    if smoothing and not (seg and seg != NONE):
        raise ChainError("--smooth needs a segmenter (--seg)")
    wanted = {kind: (text, StageContext(weights, resolved, dict(stage_options), config.threads))
              for kind, text, weights, stage_options in (("segmenter", seg, config.seg_weights, config.seg_options),
                                                   ("synthesizer", synth, config.synth_weights, config.synth_options))
              if text and text != NONE}
    built = _build_all(wanted)
    segmenter = built.get("segmenter")
    synthesizer = built.get("synthesizer")
    if segmenter is not None and smoothing:
        segmenter = (WindowSmoothedSegmenter(segmenter, smoothing.radius) if smoothing.mode == "window"
                     else SmoothedSegmenter(segmenter, smoothing))
    if segmenter is None and synthesizer is None:
        raise ChainError("--seg none and --synth none leave nothing to run")
    pipeline = Chain(segmenter=segmenter, synthesizer=synthesizer, remap=config.remap, background=config.background,
                     class_overrides=dict(config.class_overrides) or None, deflicker=_deflicker(config))
    # The summary's request: every field as asked, except what the chain resolved (remap, background,
    # class overrides: already recorded by Chain) and the threads torch was given.
    pipeline.request.update({name: value for name, value in config.as_dict().items() if name not in pipeline.request},
                            threads=threads)
    if config.compile:
        pipeline.compile()
    return pipeline


def _deflicker(config: ChainConfig) -> DeflickerSettings | None:
    if not config.deflicker:
        return None
    strength, frames = config.deflicker
    return DeflickerSettings(strength=strength, radius=frames)


def _build_all(wanted: Mapping[str, tuple[str, StageContext]]) -> dict[str, Segmenter | Synthesizer]:
    """Build every stage, or raise one `MissingWeightsError` naming all whose weights are missing.

    Stages whose weights are not on disk are built first (a download may still fetch them), so
    that a missing SPADE checkpoint is reported before a segmenter spends time loading.
    """
    missing_first = sorted(wanted, key=lambda kind: _weights_present(kind, *wanted[kind]))
    built: dict[str, Segmenter | Synthesizer] = {}
    errors: list[str] = []
    for kind in missing_first:
        text, context = wanted[kind]
        try:
            built[kind] = build_stage(kind, text, context)
        except MissingWeightsError as error:
            errors.append(f"{kind} {text!r}: {str(error).rstrip('.')}")
    if errors:
        raise MissingWeightsError(missing_weights(errors, len(wanted)))
    return built


def _weights_present(kind: str, text: str, context: StageContext) -> bool:
    name, variant = parse_stage_name(text)
    spec = get_stage(kind, name)  # an unknown name fails here, before any weights are looked at
    if spec.weights is None:
        return True
    try:
        return spec.weights(spec.resolve_variant(variant), context.weights).present
    except ChainError:
        return True  # a bad variant: building it gives the message


def run(config: RunConfig | str | Path, output: str | Path | None = None, *, progress: Progress | None = None,
        **options: object) -> RunSummary:
    """Run a chain over a video, image folder or image — what ``chain run`` does.

    ``config`` is a `RunConfig`, or the input followed by the output and `RunConfig.of`'s keywords
    (the command line's options, by their Python names)::

        import chain
        chain.run("lastjedi.mp4", "out.mp4", seg="mask2former:coco", synth="spade",
                  remap=["person=bear"], masks="masks.mp4", max_frames=100)
        chain.run(chain.RunConfig.of("lastjedi.mp4", "out.mp4", synth="spade", batch_size=8))

    Damaged frames are skipped and reported in the summary's ``input_damage``; ``strict=True``
    makes damage an error instead. ``cluster="ray"`` (a local Ray instance), ``"auto"`` or
    ``"ray://HOST:PORT"`` shards the run over Ray (`chain.cluster`), in ``shards`` shards or
    ``shard_seconds`` each. ``progress`` is told how far the run is (the CLI shows a bar).
    """
    if not isinstance(config, RunConfig):
        config = RunConfig.of(config, output, **options)
    elif output is not None or options:
        raise TypeError("chain.run(config) takes the whole run from its RunConfig: change it with "
                        "dataclasses.replace, or pass the input and keywords instead")
    # Cheap checks first: a typo or missing weights should not wait for networks to load.
    check_run(config)
    check_stages(config.chain)
    smoothing = parse_smoothing(config.chain.smooth)
    if config.resume:
        from chain.cluster.plan import look_ahead_frames, warmup_frames
        from chain.cluster.resume import run_resumable

        if config.cluster is not None:
            raise ChainError("--resume runs on one machine; a --cluster run is not resumable yet: drop one of them")
        deflicker = _deflicker(config.chain)
        return run_resumable(config, factory=functools.partial(build_chain, config.chain),
                             warmup=warmup_frames(smoothing), look_ahead=look_ahead_frames(smoothing),
                             margin=deflicker.radius if deflicker else 0, progress=progress)
    if config.cluster is not None:
        from chain.cluster import run_sharded, warmup_frames
        from chain.cluster.plan import check_shard_seconds, look_ahead_frames

        check_shard_seconds(config.shard_seconds)  # before a Ray instance is started or joined
        # A partial of a module-level function and a frozen config: Ray pickles it to every worker.
        factory = functools.partial(build_chain, config.chain)
        deflicker = _deflicker(config.chain)
        return run_sharded(config, factory=factory, warmup=warmup_frames(smoothing),
                           look_ahead=look_ahead_frames(smoothing), margin=deflicker.radius if deflicker else 0,
                           progress=progress)
    return build_chain(config.chain)(config, progress=progress)
