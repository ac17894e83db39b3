"""The Python API. Every CLI command is a thin shell over one function here."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

from chain.checks import DEFAULT_SEGMENTER, DEFAULT_SYNTHESIZER, check_run, parse_options
from chain.device import configure_cpu_threads, resolve_device
from chain.errors import ChainError, MissingWeightsError
from chain.media import Trim
from chain.pipeline import Chain, Outputs, Progress
from chain.stages import StageContext, build_stage, get_stage, stages
from chain.stages.base import Segmenter, Synthesizer
from chain.stages.registry import parse_stage_name
from chain.stages.smoothing import SmoothedSegmenter, parse_smoothing
from chain.summary import RunSummary

__all__ = ["build_chain", "parse_options", "run", "usable_alternatives"]  # parse_options: for the CLI and UI

NONE = "none"


def build_chain(
    *,
    seg: str | None = DEFAULT_SEGMENTER,
    synth: str | None = DEFAULT_SYNTHESIZER,
    seg_weights: str | None = None,
    synth_weights: str | None = None,
    seg_options: Mapping[str, str] | None = None,
    synth_options: Mapping[str, str] | None = None,
    smooth: str | None = None,
    remap: Sequence[str] = (),
    background: str | None = None,
    class_overrides: Mapping[str, str] | None = None,
    device: str | None = "auto",
    threads: int | None = None,
    command: Sequence[str] | None = None,
) -> Chain:
    """Build stages by name (``"deeplab:resnet101"``, ``"none"``) and join them into a `Chain`.

    ``command`` is the command line that asked for it (the CLI passes ``sys.argv``), for the run summary.
    ``threads``: torch's CPU threads (`chain.device.cpu_threads`: default $OMP_NUM_THREADS, else 1).
    """
    resolved = resolve_device(device)
    requested_threads = threads
    if resolved.type == "cpu" or threads is not None:
        threads = configure_cpu_threads(threads)
    smoothing = parse_smoothing(smooth)
    if smoothing and not (seg and seg != NONE):
        raise ChainError("--smooth needs a segmenter (--seg)")
    wanted = {kind: (text, StageContext(weights, resolved, dict(options or {}), requested_threads))
              for kind, text, weights, options in (("segmenter", seg, seg_weights, seg_options),
                                                   ("synthesizer", synth, synth_weights, synth_options))
              if text and text != NONE}
    built = _build_all(wanted)
    segmenter = built.get("segmenter")
    synthesizer = built.get("synthesizer")
    if segmenter is not None and smoothing:
        segmenter = SmoothedSegmenter(segmenter, smoothing)
    if segmenter is None and synthesizer is None:
        raise ChainError("--seg none and --synth none leave nothing to run")
    pipeline = Chain(segmenter=segmenter, synthesizer=synthesizer, remap=remap, background=background,
                     class_overrides=dict(class_overrides) if class_overrides else None)
    pipeline.request.update(
        command=list(command) if command is not None else None, device=device, threads=threads, smooth=smooth,
        seg=seg, seg_weights=seg_weights, seg_options=dict(seg_options or {}),
        synth=synth, synth_weights=synth_weights, synth_options=dict(synth_options or {}))
    return pipeline


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
        raise MissingWeightsError(f"missing weights ({len(errors)} of {len(wanted)} stages): " + "; ".join(errors)
                                  + f". {usable_alternatives()}")
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


def usable_alternatives() -> str:
    """The segmenters and synthesizers whose weights are here now (or that need none), for messages."""
    parts = []
    for kind in ("segmenter", "synthesizer"):
        names = []
        for spec in stages(kind).values():
            # A stage whose space comes only from its argument (`labels:DIR`, `hf:REPO`) reads a
            # folder the user names: not an alternative to offer.
            if spec.weights is None:
                if spec.label_space(spec.default_variant) is not None or kind == "synthesizer":
                    names.append(spec.name)
                continue
            for variant in spec.variants or (spec.default_variant,):
                try:
                    present = spec.weights(variant, None).present
                except Exception:  # noqa: BLE001 — a broken status check must not hide the real message
                    present = False
                if present:
                    names.append(spec.name + (f":{variant}" if variant else ""))
        parts.append(f"{kind}s usable here: {', '.join(names) if names else 'none'}")
    return "; ".join(parts) + " (see `chain list`)"


def run(
    source: str | Path,
    output: str | Path | None = None,
    *,
    seg: str | None = DEFAULT_SEGMENTER,
    synth: str | None = DEFAULT_SYNTHESIZER,
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
    threads: int | None = None,
    crf: int | None = None,
    preset: str | None = None,
    progress: Progress | None = None,
    strict: bool = False,
    cluster: str | None = None,
    shards: int | None = None,
    shard_seconds: float | None = None,
    command: Sequence[str] | None = None,
) -> RunSummary:
    """Run a chain over a video, image folder or image — what ``chain run`` does.

    Example::

        import chain
        chain.run("lastjedi.mp4", "out.mp4", seg="mask2former:coco", synth="spade",
                  remap=["person=bear"], masks="masks.mp4", max_frames=100)

    Damaged frames are skipped and reported in the summary's ``input_damage``; ``strict=True``
    makes damage an error instead. ``cluster="ray"`` (a local Ray instance), ``"auto"`` or
    ``"ray://HOST:PORT"`` shards the run over Ray (`chain.cluster`), in ``shards`` shards or
    ``shard_seconds`` each. ``threads``: torch's CPU threads (default $OMP_NUM_THREADS, else 1).
    ``command`` (the CLI's ``sys.argv``) is recorded in the summary's ``request``.
    """
    if cluster is None and (shards is not None or shard_seconds is not None):
        raise ChainError("--shards and --shard-seconds split a run over a cluster: add --cluster ray")
    # Cheap checks first: a typo should not wait for weights to load.
    trim = Trim(start, duration, max_frames)
    outputs = Outputs.of(video=output, masks=masks, overlay=overlay, compare=compare, labels=save_labels,
                         summary=summary)
    check_run(source, outputs, trim=trim, size=size, fps=fps, remap=remap, preset=preset)
    smoothing = parse_smoothing(smooth)
    if cluster is not None:
        from chain.cluster import run_sharded, warmup_frames
        from chain.cluster.plan import check_shard_seconds

        check_shard_seconds(shard_seconds)  # before a Ray instance is started or joined

        factory = functools.partial(
            build_chain, seg=seg, synth=synth, seg_weights=seg_weights, synth_weights=synth_weights,
            seg_options=seg_options, synth_options=synth_options, smooth=smooth, remap=remap, background=background,
            class_overrides=class_overrides, device=device, threads=threads, command=command)
        return run_sharded(source, outputs, factory=factory, cluster=cluster, shards=shards,
                           shard_seconds=shard_seconds, warmup=warmup_frames(smoothing), trim=trim,
                           size=size, fps=fps, batch_size=batch_size, crf=crf, preset=preset, progress=progress,
                           strict=strict)
    pipeline = build_chain(seg=seg, synth=synth, seg_weights=seg_weights, synth_weights=synth_weights,
                           seg_options=seg_options, synth_options=synth_options, smooth=smooth,
                           remap=remap, background=background, class_overrides=class_overrides, device=device,
                           threads=threads, command=command)
    return pipeline(source, outputs, trim=trim, size=size, fps=fps,
                    batch_size=batch_size, crf=crf, preset=preset, progress=progress, strict=strict)
