"""The Python API. Every CLI command is a thin shell over one function here."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path

from chain.checks import CheckedRun, check_run
from chain.config import ChainConfig, RunConfig, StageName
from chain.device import configure_cpu_threads, resolve_device
from chain.engine.pipeline import Chain, Progress
from chain.engine.summary import RunSummary
from chain.errors import ChainError, MissingWeightsError
from chain.stages import StageContext, build_stage, get_stage
from chain.stages.base import Segmenter, Synthesizer
from chain.stages.deflicker import DeflickerSettings
from chain.stages.registry import check_stages, missing_weights
from chain.stages.smoothing import SmoothedSegmenter
from chain.stages.window import WindowSmoothedSegmenter

__all__ = ["build_chain", "run"]

def build_chain(config: ChainConfig | None = None, /, **options: object) -> Chain:
    """Build stages by name (``"deeplab:resnet101"``, ``"none"``) and join them into a `Chain`.

    ``config`` says what to build; keywords are `ChainConfig` fields, on their own
    (``build_chain(seg="palette:voc", synth="colorize")``) or changing ``config``'s.
    """
    config = dataclasses.replace(config or ChainConfig(), **options)
    resolved = resolve_device(config.device)
    threads = config.threads
    if resolved.type == "cpu" or threads is not None:
        threads = configure_cpu_threads(threads)
    smoothing = config.smoothing
    if smoothing and config.segmenter is None:
        raise ChainError("--smooth needs a segmenter (--seg)")
    wanted = {kind: (text, stage, StageContext(weights, resolved, dict(stage_options), config.threads))
              for kind, text, stage, weights, stage_options in (
                  ("segmenter", config.seg, config.segmenter, config.seg_weights, config.seg_options),
                  ("synthesizer", config.synth, config.synthesizer, config.synth_weights, config.synth_options))
              if stage is not None}
    built = _build_all(wanted)
    segmenter = built.get("segmenter")
    synthesizer = built.get("synthesizer")
    if segmenter is not None and smoothing:
        segmenter = (WindowSmoothedSegmenter(segmenter, smoothing.radius) if smoothing.mode == "window"
                     else SmoothedSegmenter(segmenter, smoothing))
    if segmenter is None and synthesizer is None:
        raise ChainError("--seg none and --synth none leave nothing to run")
    pipeline = Chain(segmenter=segmenter, synthesizer=synthesizer, remap=config.remap_rules,
                     background=config.background, class_overrides=dict(config.class_overrides) or None,
                     deflicker=_deflicker(config))
    # The summary's request: every field as asked, except what the chain resolved (background, class
    # overrides: already recorded by Chain) and the threads torch was given. The remap rules as typed
    # (the Chain was given them parsed).
    pipeline.request.update({name: value for name, value in config.as_dict().items() if name not in pipeline.request},
                            threads=threads, remap=list(config.remap))
    if config.compile:
        pipeline.compile()
    return pipeline


def _deflicker(config: ChainConfig) -> DeflickerSettings | None:
    if not config.deflicker:
        return None
    strength, frames = config.deflicker
    return DeflickerSettings(strength=strength, radius=frames)


def _build_all(wanted: Mapping[str, tuple[str, StageName, StageContext]]) -> dict[str, Segmenter | Synthesizer]:
    """Build every stage, or raise one `MissingWeightsError` naming all whose weights are missing.

    Stages whose weights are not on disk are built first (a download may still fetch them), so
    that a missing SPADE checkpoint is reported before a segmenter spends time loading.
    """
    missing_first = sorted(wanted, key=lambda kind: _weights_present(kind, *wanted[kind][1:]))
    built: dict[str, Segmenter | Synthesizer] = {}
    errors: list[str] = []
    for kind in missing_first:
        text, stage, context = wanted[kind]
        try:
            built[kind] = build_stage(kind, stage, context)
        except MissingWeightsError as error:
            errors.append(f"{kind} {text!r}: {str(error).rstrip('.')}")
    if errors:
        raise MissingWeightsError(missing_weights(errors, len(wanted)))
    return built


def _weights_present(kind: str, stage: StageName, context: StageContext) -> bool:
    name, variant = stage
    spec = get_stage(kind, name)  # an unknown name fails here, before any weights are looked at
    if spec.weights is None:
        return True
    try:
        return spec.weights(spec.resolve_variant(variant), context.weights).present
    except ChainError:
        return True  # a bad variant: building it gives the message


def run(config: RunConfig | CheckedRun | str | Path, output: str | Path | None = None, *,
        progress: Progress | None = None, **options: object) -> RunSummary:
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

    A `CheckedRun` is a configuration whose input, outputs (`chain.checks.check_run`) and stages
    (`chain.stages.registry.check_stages`) its caller has checked already: the CLI checks them before
    importing this module (and torch), and they are not checked twice.
    """
    if isinstance(config, (RunConfig, CheckedRun)) and (output is not None or options):
        raise TypeError("chain.run(config) takes the whole run from its RunConfig: change it with "
                        "dataclasses.replace, or pass the input and keywords instead")
    if isinstance(config, CheckedRun):
        checked = config
    else:
        if not isinstance(config, RunConfig):
            config = RunConfig.of(config, output, **options)
        # Cheap checks first: a typo or missing weights should not wait for networks to load.
        checked = check_run(config)
        check_stages(config.chain)
    config = checked.config
    smoothing = config.chain.smoothing
    if config.resume:
        from chain.cluster.plan import look_ahead_frames, warmup_frames
        from chain.cluster.resume import run_resumable

        if config.cluster is not None:
            raise ChainError("--resume runs on one machine; a --cluster run is not resumable yet: drop one of them")
        deflicker = _deflicker(config.chain)
        return run_resumable(checked, factory=functools.partial(build_chain, config.chain),
                             warmup=warmup_frames(smoothing), look_ahead=look_ahead_frames(smoothing),
                             margin=deflicker.radius if deflicker else 0, progress=progress)
    if config.cluster is not None:
        from chain.cluster import run_sharded, warmup_frames
        from chain.cluster.plan import check_shard_seconds, look_ahead_frames

        check_shard_seconds(config.shard_seconds)  # before a Ray instance is started or joined
        # A partial of a module-level function and a frozen config: Ray pickles it to every worker.
        factory = functools.partial(build_chain, config.chain)
        deflicker = _deflicker(config.chain)
        return run_sharded(checked, factory=factory, warmup=warmup_frames(smoothing),
                           look_ahead=look_ahead_frames(smoothing), margin=deflicker.radius if deflicker else 0,
                           progress=progress)
    return build_chain(config.chain)(checked, progress=progress)
