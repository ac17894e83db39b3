"""The Python API. Every CLI command is a thin shell over one function here."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

from chain.device import resolve_device
from chain.errors import ChainError
from chain.labels import parse_remap
from chain.media import Trim, check_preset, open_source
from chain.pipeline import Chain, Outputs, Progress, check_output_paths
from chain.stages import StageContext, build_stage
from chain.stages.base import Segmenter, Synthesizer
from chain.stages.smoothing import SmoothedSegmenter, parse_smoothing
from chain.summary import RunSummary

NONE = "none"


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """``["size=256", "steps=20"]`` → ``{"size": "256", "steps": "20"}`` (stage options)."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ChainError(f"stage option {pair!r} is not KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


def build_chain(
    *,
    seg: str | None = "deeplab",
    synth: str | None = "colorize",
    seg_weights: str | None = None,
    synth_weights: str | None = None,
    seg_options: Mapping[str, str] | None = None,
    synth_options: Mapping[str, str] | None = None,
    smooth: str | None = None,
    remap: Sequence[str] = (),
    background: str | None = None,
    class_overrides: Mapping[str, str] | None = None,
    device: str | None = "auto",
) -> Chain:
    """Build stages by name (``"deeplab:resnet101"``, ``"none"``) and join them into a `Chain`."""
    resolved = resolve_device(device)
    smoothing = parse_smoothing(smooth)
    segmenter: Segmenter | None = None
    synthesizer: Synthesizer | None = None
    if seg and seg != NONE:
        segmenter = build_stage("segmenter", seg, StageContext(seg_weights, resolved, dict(seg_options or {})))
        if smoothing:
            segmenter = SmoothedSegmenter(segmenter, smoothing)
    elif smoothing:
        raise ChainError("--smooth needs a segmenter (--seg)")
    if synth and synth != NONE:
        synthesizer = build_stage("synthesizer", synth,
                                  StageContext(synth_weights, resolved, dict(synth_options or {})))
    if segmenter is None and synthesizer is None:
        raise ChainError("--seg none and --synth none leave nothing to run")
    return Chain(segmenter=segmenter, synthesizer=synthesizer, remap=remap, background=background,
                 class_overrides=dict(class_overrides) if class_overrides else None)


def run(
    source: str | Path,
    output: str | Path | None = None,
    *,
    seg: str | None = "deeplab",
    synth: str | None = "colorize",
    seg_weights: str | None = None,
    synth_weights: str | None = None,
    seg_options: Mapping[str, str] | None = None,
    synth_options: Mapping[str, str] | None = None,
    smooth: str | None = None,
    remap: Sequence[str] = (),
    background: str | None = None,
    class_overrides: Mapping[str, str] | None = None,
    masks: str | Path | None = None,
    overlay: str | Path | None = None,
    compare: str | Path | None = None,
    save_labels: str | Path | None = None,
    summary: str | Path | None = None,
    start: float = 0.0,
    duration: float | None = None,
    max_frames: int | None = None,
    size: str | None = None,
    fps: float | None = None,
    batch_size: int = 1,
    device: str | None = "auto",
    crf: int | None = None,
    preset: str | None = None,
    progress: Progress | None = None,
    strict: bool = False,
    cluster: str | None = None,
    shards: int | None = None,
    shard_seconds: float | None = None,
) -> RunSummary:
    """Run a chain over a video, image folder or image — what ``chain run`` does.

    Example::

        import chain
        chain.run("lastjedi.mp4", "out.mp4", seg="deeplab", synth="colorize",
                  remap=["person=bear"], masks="masks.mp4", max_frames=100)

    Damaged frames are skipped and reported in the summary's ``input_damage``; ``strict=True``
    makes damage an error instead. ``cluster="ray"`` (a local Ray instance), ``"auto"`` or
    ``"ray://HOST:PORT"`` shards the run over Ray (`chain.cluster`), in ``shards`` shards or
    ``shard_seconds`` each.
    """
    if cluster is None and (shards is not None or shard_seconds is not None):
        raise ChainError("--shards and --shard-seconds split a run over a cluster: add --cluster ray")
    # Cheap checks first: a typo should not wait for weights to load.
    trim = Trim(start, duration, max_frames)
    with open_source(source, trim=trim, size=size, fps=fps):
        pass
    parse_remap(remap)
    parse_smoothing(smooth)
    check_preset(preset)
    as_path = lambda value: Path(value) if value is not None else None  # noqa: E731
    outputs = Outputs(video=as_path(output), masks=as_path(masks), overlay=as_path(overlay),
                      compare=as_path(compare), labels=as_path(save_labels), summary=as_path(summary))
    check_output_paths(Path(source), outputs)
    if cluster is not None:
        from chain.cluster import run_sharded, warmup_frames

        factory = functools.partial(
            build_chain, seg=seg, synth=synth, seg_weights=seg_weights, synth_weights=synth_weights,
            seg_options=seg_options, synth_options=synth_options, smooth=smooth, remap=remap, background=background,
            class_overrides=class_overrides, device=device)
        return run_sharded(source, outputs, factory=factory, cluster=cluster, shards=shards,
                           shard_seconds=shard_seconds, warmup=warmup_frames(parse_smoothing(smooth)), trim=trim,
                           size=size, fps=fps, batch_size=batch_size, crf=crf, preset=preset, progress=progress,
                           strict=strict)
    pipeline = build_chain(seg=seg, synth=synth, seg_weights=seg_weights, synth_weights=synth_weights,
                           seg_options=seg_options, synth_options=synth_options, smooth=smooth,
                           remap=remap, background=background, class_overrides=class_overrides, device=device)
    return pipeline(source, outputs, trim=trim, size=size, fps=fps,
                    batch_size=batch_size, crf=crf, preset=preset, progress=progress, strict=strict)
