"""The chain: decode → segment → convert → remap → synthesize → encode, a batch at a time."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from chain.checks import CheckedRun
from chain.config import RunConfig, run_config_for_chain
from chain.engine.batches import Batch, Part, looking_ahead
from chain.engine.batches import batches as read_batches
from chain.engine.overlap import Lanes
from chain.engine.render import resize_frames
from chain.engine.summary import (
    ClassShareTracker,
    FrameChangeTracker,
    RunSummary,
    StageTimer,
    SummaryFile,
    audio_note,
    publish_run,
    tracked_figures,
)
from chain.engine.views import Views
from chain.errors import ChainError, first_line
from chain.labels import LabelSpace, conversion, describe_remap, remap_notes, remap_table
from chain.labels.remap import UnknownRemapClass
from chain.labels.saved import LABELS_META_FILE, labels_meta
from chain.media import (
    FrameSink,
    ImageFolderSink,
    SourceInfo,
    Trim,
    open_audio,
    open_sink,
    open_source,
)
from chain.media.outputs import Outputs, check_image_outputs, check_output_paths, option_name
from chain.media.source import InputDamage
from chain.signals import deferred_signals
from chain.stages.base import Segmenter, Synthesizer, check_segmenter
from chain.stages.deflicker import Deflicker, DeflickerSettings
from chain.stages.registry import synthesizers_in
from chain.steadiness import SteadinessTracker
from chain.version import __version__

#: Outputs that show or save labels at frame size (with the summary's class shares, they keep the
#: segmenter's labels at frame size; otherwise it labels at the synthesizer's grid).
_LABEL_OUTPUTS = ("masks", "overlay", "compare", "labels")


class Progress(Protocol):
    """How a run reports progress (the CLI shows a rich progress bar)."""

    def start(self, total: int | None, description: str) -> None: ...
    def advance(self, frames: int) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class Inferred:
    """What the networks made of a batch (None where a stage is absent)."""

    labels: torch.Tensor | None  # (B, H, W) in the segmenter's space, on its device
    target: torch.Tensor | None  # (B, H, W) in the synthesizer's space, remapped
    synthesized: np.ndarray | None  # (B, H, W, 3) uint8 at the frames' size, on the host


class Chain:
    """A segmenter and a synthesizer joined by label-space conversion and the user's remapping.

    Args:
        segmenter: frames → labels; None when the synthesizer consumes frames.
        synthesizer: labels (or frames) → frames; None to only inspect the segmentation.
        remap: ``SRC=DST`` rules applied in the synthesizer's label space (``*=snow`` for the rest),
            as text or as the ``(SRC, DST)`` pairs a `ChainConfig` parsed them into.
        background: the target class that the segmenter's catch-all class (VOC "background",
            ADE20K "other") becomes; default: the synthesizer's `default_background`.
        class_overrides: source-class → target-class names that win over the synonym table
            when converting between spaces (e.g. ``{"cow": "sheep"}``).
        deflicker: steady the paintings over time (`chain.stages.deflicker`); None: as painted.
    """

    def __init__(self, *, segmenter: Segmenter | None, synthesizer: Synthesizer | None,
                 remap: Sequence[str | tuple[str, str]] = (), background: str | None = None,
                 class_overrides: dict[str, str] | None = None, deflicker: DeflickerSettings | None = None) -> None:
        if segmenter is not None:
            check_segmenter(segmenter)
        if synthesizer is not None and synthesizer.consumes == "labels":
            if segmenter is None:
                raise ChainError(f"the synthesizer ({synthesizer.description}) paints label maps; "
                                 "choose a segmenter with --seg")
            if synthesizer.label_space is None:
                synthesizer.bind(segmenter.label_space)
        if deflicker is not None and synthesizer is None:
            raise ChainError("--deflicker steadies the synthesizer's paintings: choose one with --synth")
        self.segmenter = segmenter
        self.synthesizer = synthesizer
        self.deflicker: Deflicker[tuple[Batch, Inferred, bool]] | None = (
            Deflicker(deflicker) if deflicker is not None else None)
        self.source_space: LabelSpace | None = segmenter.label_space if segmenter else None
        uses_labels = synthesizer is not None and synthesizer.consumes == "labels"
        self.target_space = synthesizer.label_space if uses_labels else self.source_space
        overrides = dict(class_overrides or {})
        # The background only means something where labels change space: the segmenter's catch-all
        # class becomes a class of the synthesizer's. Labels that stay in one space keep their own.
        converts = self.source_space is not None and self.source_space is not self.target_space
        if background is not None and not converts:
            raise ChainError(_background_refusal(background, self.source_space))
        background = background or (synthesizer.default_background if converts else None)
        if background:
            self.target_space.id_of(background)  # an unknown name fails here, with suggestions
            overrides.setdefault(self.source_space.fallback, background)
        self.conversion = (conversion(self.source_space, self.target_space, overrides=overrides or None)
                           if self.source_space is not None else None)
        if remap and self.target_space is None:
            raise ChainError("--remap needs label maps: choose a segmenter with --seg")
        try:
            self.remap_lut = remap_table(self.target_space, remap) if remap else None
        except UnknownRemapClass as error:
            raise ChainError(f"{error}{synthesizers_in(error.spaces)}") from None
        #: How the chain was asked for (stage names, options, remap; the command line from the CLI):
        #: written to the summary's ``request`` with the input path and chain's version.
        self.request: dict[str, Any] = {"remap": [rule if isinstance(rule, str) else "=".join(rule) for rule in remap],
                                        "background": background,
                                        "class_overrides": dict(class_overrides or {})}
        self._compiled = False
        self._warm_up_pending = False  # `compile`: the next run's first batch compiles the networks
        #: What each inspection output receives for a batch (the compare's label panel names what the
        #: synthesizer is given, the remapped classes marked).
        self.views = Views(self.source_space, self.target_space,
                           notes=remap_notes(self.target_space, self.remap_lut) if self.remap_lut is not None else None,
                           painted_labels=synthesizer is not None and synthesizer.paints_labels,
                           target_ids=np.unique(self.target_lut) if self.target_lut is not None else None)
        # Conversion and remap as one table, built once and applied where the labels are (None: nothing changes).
        lut = self.target_lut
        identity = lut is None or np.array_equal(lut, np.arange(len(lut)))
        self._target_tables = {} if identity else {torch.device("cpu"): torch.from_numpy(lut.astype(np.int64))}
        #: Whether this run's outputs show labels at frame size (set per run from its outputs).
        self._labels_shown = True

    def compile(self) -> None:
        """``--compile``: ``torch.compile`` each stage's network. The next run first puts its first
        batch through the stages once, unwritten, timed as the summary's "compile" stage (the
        compilation happens then), and resets the stages before the run proper."""
        if self._compiled:
            return
        stages = [stage for stage in (self.segmenter, self.synthesizer) if stage is not None]
        if not [stage.compile() for stage in stages].count(True):  # every stage asked, not only the first
            # Name what it does compile: mask2former, segformer, vaegan and controlnet run torch too.
            raise ChainError("--compile: none of these stages can be compiled ("
                             + "; ".join(stage.description for stage in stages)
                             + "); it compiles the deeplab and deeplab-mnv2 segmenters (with --seg-opt backend=torch "
                               "where ONNX Runtime runs them, on the CPU) and spade; run without --compile")
        if not torch.cuda.is_available():
            # Inductor's C++ toolchain logs "No CUDA runtime is found" once per process: noise in a CPU run.
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        self._compiled = self._warm_up_pending = True

    @property
    def _stages(self) -> list[Segmenter | Synthesizer]:
        return [stage for stage in (self.segmenter, self.synthesizer) if stage is not None]

    @property
    def target_lut(self) -> np.ndarray | None:
        """Source id → target id, conversion and remap together (None without a segmenter)."""
        if self.conversion is None:
            return None
        return self.remap_lut[self.conversion.lut] if self.remap_lut is not None else self.conversion.lut

    def target_labels(self, labels: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Segmenter labels → the synthesizer's space, remapped: a tensor on its device by one lookup,
        numpy (in the target space's dtype) by the two tables."""
        if not isinstance(labels, torch.Tensor):
            return self.remapped(self.conversion.apply(labels))
        if not self._target_tables:
            return labels
        table = self._target_tables.get(labels.device)
        if table is None:
            table = self._target_tables[labels.device] = self._target_tables[torch.device("cpu")].to(labels.device)
        return torch.take(table, labels)  # a gather: 3.5x faster than table[labels] on the CPU here

    def remapped(self, converted: np.ndarray) -> np.ndarray:
        """Labels already in the synthesizer's space, with the user's remap applied."""
        return self.remap_lut[converted] if self.remap_lut is not None else converted

    def __call__(self, run: RunConfig | CheckedRun | str | Path, outputs: Outputs | None = None, *,
                 progress: Progress | None = None, part: Part | None = None, overlap: bool = True,
                 **options: object) -> RunSummary:
        """Run the chain as ``run`` says (its `ChainConfig` aside: this chain is built) and write its
        outputs; returns the run's totals.

        ``run`` is a `RunConfig`, or the input followed by its `Outputs` and `RunConfig.of`'s
        run keywords (``pipeline("in.mp4", Outputs(video=...), trim=Trim(max_frames=5))``), or a
        `CheckedRun`, whose output paths `chain.checks.check_run` has checked already.
        Damaged input (frames that would not decode, a file shorter than it says) is reported in
        the summary's ``input_damage``; with ``strict`` it is an error and nothing is written.
        ``part`` makes this run one shard of a longer one (`chain.cluster`). With ``overlap``
        (`chain.engine.overlap`), decoding runs ahead of the networks and writing behind them, in their
        own threads; ``overlap=False`` runs every step in this thread. Both write the same frames.
        """
        checked = isinstance(run, CheckedRun)
        config = run_config_for_chain(run.config if checked else run, outputs, options)
        source, outputs, trim, size, fps = config.source, config.outputs, config.trim, config.working_size, config.fps
        batch_size, crf, preset, strict = config.batch_size, config.crf, config.preset, config.strict
        self._check_outputs(Path(source), outputs, paths_checked=checked)
        self._labels_shown = outputs.summary is not None or any(
            getattr(outputs, name) is not None for name in _LABEL_OUTPUTS)
        if batch_size < 1:
            raise ChainError(f"--batch must be >= 1, got {batch_size}")
        timer = StageTimer()
        started = time.perf_counter()

        # 1. Open the input lazily and every output under a temporary name.
        with open_source(source, trim=trim, size=size, fps=fps) as frames_in:
            info = frames_in.info
            if not checked:
                check_image_outputs(outputs, info.frame_count)  # from the header: before a frame is decoded
            sinks, summary_file = self._open_outputs(outputs, info, trim, crf=crf, preset=preset,
                                                     audio=part is None)
            tracker = (ClassShareTracker(self.source_space, summary_file.stream if summary_file else None,
                                         target=(self.target_space, self.target_lut))
                       if self.source_space is not None else None)
            changes = FrameChangeTracker() if self.synthesizer is not None else None
            steadiness = SteadinessTracker()
            lanes = Lanes(overlap=overlap)
            try:
                if progress:  # before --compile's warm-up, which takes a while: the bar shows the time
                    progress.start(info.frame_count, Path(source).name)
                batches = read_batches(frames_in, batch_size, timer, part)
                # `--smooth window` labels a frame once it has seen what follows; vaegan's smooth paints it so.
                batches = looking_ahead(batches, max(stage.look_ahead for stage in self._stages),
                                        part.painted_until if part else None)
                if self._warm_up_pending:
                    batches = self._warm_up(batches, timer, (info.frame_count or 0) % batch_size)
                for stage in (self.segmenter, self.synthesizer, self.deflicker):
                    if stage is not None:
                        stage.reset()
                emitted = (steadiness, changes, tracker, sinks, timer)
                count = 0
                if part is not None:
                    self._start_part(part, timer)
                # 2. Stream batches through the stages into the outputs.
                for batch in lanes.ahead(batches):
                    if batch.ahead is not None:
                        for stage in self._stages:
                            if stage.look_ahead:
                                stage.look(batch.ahead.frames[:stage.look_ahead],
                                           indices=batch.ahead.indices[:stage.look_ahead])
                    if part is not None and batch.indices[0] < part.painted_from:
                        if self.segmenter is not None:
                            with timer("segment"):  # warm-up: the segmenter's state, nothing written
                                self._segment(batch.frames, batch.indices)
                        continue
                    written = part is None or part.written(int(batch.indices[0]))
                    inferred = self._infer(batch, timer)
                    if self.deflicker is not None:  # it answers `radius` frames later, in order
                        lanes.behind(self._steady, batch, inferred, written, emitted)
                    elif written:
                        lanes.behind(self._emit, batch, inferred, *emitted)
                    if written:
                        count += len(batch.indices)
                        if progress:
                            lanes.behind(progress.advance, len(batch.indices))
                if self.deflicker is not None:
                    lanes.behind(self._steady_rest, emitted)
                lanes.finish()  # every batch written; the decoder and writer threads have ended
                if count == 0:
                    raise ChainError(f"{source} yielded no frames (check --start/--duration)")
                damage = frames_in.damage if frames_in.damage.damaged else None
                if damage is not None and strict:
                    raise ChainError(f"{source} is damaged: {damage.describe()}; nothing was written (--strict)")
                # 3. Finish every output under its temporary name, then move them all into place;
                # a stop signal then waits, so outputs appear together or not at all.
                with timer("encode"):
                    for sink in sinks.values():
                        with _os_errors_name(sink.target):
                            sink.finish()
                summary = self._summary(info, count, timer, started, tracker, changes,
                                        {name: str(sink.target) for name, sink in sinks.items()}, sinks.get("video"),
                                        damage)
                summary.steadiness = steadiness.to_dict()
                # A shard's parts go into the driver's own staging folders, which it joins and removes.
                publish_run(summary, [sink.staged(option_name(name)) for name, sink in sinks.items()], summary_file,
                            record=part is None)
                if part is not None:
                    part.labels = tracker.detach() if tracker else None
                    part.changes = changes
                    part.steadiness = steadiness
            except BaseException:
                with deferred_signals():  # a second Ctrl-C must not cut the clean-up short
                    lanes.stop()  # no thread may still write to a sink being removed
                    for sink in sinks.values():
                        sink.abort()
                    if summary_file:
                        summary_file.abort()
                raise
            finally:
                if progress:
                    progress.stop()
        return summary

    def _warm_up(self, batches: Iterator[Batch], timer: StageTimer, last_size: int) -> Iterator[Batch]:
        """Run the first batch through the compiled stages once (timed as "compile"); the batches again.

        A smaller last batch (``last_size`` frames, 0 for none) is a new shape, which torch.compile
        compiles again: its frames are warmed up too, so that compiling stays out of the stage times.
        """
        first = next(batches, None)
        if first is None:
            return batches
        from torch._dynamo.exc import TorchDynamoException  # torch is loaded: the stages compiled with it

        with timer("compile"):
            try:
                for size in [len(first.indices)] + ([last_size] if 0 < last_size < len(first.indices) else []):
                    frames, labels = first.frames[:size], None
                    if self.segmenter is not None:
                        labels = self.target_labels(self._segment(frames, first.indices[:size])[0])
                    if self.synthesizer is not None:
                        self.synthesizer.synthesize(labels=labels if self.synthesizer.consumes == "labels" else None,
                                                    frames=frames)
            except TorchDynamoException as error:  # its messages run to pages: the first line says what
                raise ChainError(f"--compile: torch.compile failed ({first_line(error)}); run without --compile") \
                    from None
        self._warm_up_pending = False
        return itertools.chain([first], batches)

    def _start_part(self, part: Part, timer: StageTimer) -> None:
        """Bring frame-to-frame state where a one-machine run has it at the part's first painted frame."""
        if self.synthesizer is None:
            return
        if self.synthesizer.anchored_on_first_frame and part.anchor is not None and part.painted_from > 0:
            frames, labels = part.anchor[None], None
            with timer("synthesize"):  # painted for its cross-frame state only
                if self.synthesizer.consumes == "labels":
                    labels = self.target_labels(self._segment(frames, np.array([0]))[0])
                self.synthesizer.synthesize(labels=labels, frames=frames)
            if self.segmenter is not None:
                self.segmenter.reset()  # the anchor is not part of the smoothing's past
        self.synthesizer.seek(part.painted_from)

    def _summary(self, info: SourceInfo, count: int, timer: StageTimer, started: float,
                 tracker: ClassShareTracker | None, changes: FrameChangeTracker | None, written: dict[str, str],
                 video_sink: FrameSink | None, damage: InputDamage | None) -> RunSummary:
        """4. The run's report."""
        with_sound = video_sink is not None and hasattr(video_sink, "audio_copied")
        audio = audio_note(info.audio_codec, written=with_sound, copied=with_sound and video_sink.audio_copied)
        return RunSummary(
            frames=count, fps=float(info.fps), width=info.width, height=info.height,
            seconds=time.perf_counter() - started, stage_seconds=dict(timer.seconds),
            segmenter=self.segmenter.description if self.segmenter else None,
            synthesizer=self.synthesizer.description if self.synthesizer else None,
            label_space=self.source_space.name if self.source_space else None,
            target_space=self.target_space.name if self.target_space else None,
            unmapped_classes=list(self.conversion.unmapped) if self.conversion else [],
            remapped=describe_remap(self.target_space, self.remap_lut) if self.remap_lut is not None else [],
            request={"input": str(info.path), "chain_version": __version__, **self.request},
            outputs=written, audio=audio, input_damage=damage, **tracked_figures(tracker, changes),
        )

    def _check_outputs(self, source: Path, outputs: Outputs, *, paths_checked: bool) -> None:
        """What this chain can write (``paths_checked``: `check_run` has checked the paths themselves)."""
        given = outputs.given()
        if not given:
            raise ChainError("nothing to write: give an output path, or --masks/--overlay/--compare/"
                             "--save-labels/--summary")
        if outputs.video is not None and self.synthesizer is None:
            raise ChainError("an output video needs a synthesizer (--synth); to see labels only, use --masks")
        label_outputs = [name for name in ("masks", "overlay", "labels") if name in given]
        if label_outputs and self.segmenter is None:
            raise ChainError(f"--{label_outputs[0]} needs a segmenter (--seg)")
        if not paths_checked:
            check_output_paths(source, outputs)

    def _open_outputs(self, outputs: Outputs, info: SourceInfo, trim: Trim, *, crf: int | None,
                      preset: str | None, audio: bool = True) -> tuple[dict[str, FrameSink], SummaryFile | None]:
        sinks: dict[str, FrameSink] = {}
        try:
            for name in ("video", "masks", "overlay", "compare"):
                path = getattr(outputs, name)
                if path is None:
                    continue
                kind = outputs.kind(name)
                sound = None
                if audio and name == "video" and info.kind == "video" and info.audio_codec is not None:
                    sound = open_audio(info.path, start=trim.start, duration=info.duration)
                sinks[name] = open_sink(path, fps=info.fps, audio=sound, crf=crf, preset=preset, kind=kind)
            if outputs.labels is not None:
                sinks["labels"] = ImageFolderSink(outputs.labels)  # always a folder, whatever its name
                sinks["labels"].add_file(LABELS_META_FILE, labels_meta(self.source_space))
            summary_file = SummaryFile(Path(outputs.summary)) if outputs.summary is not None else None
        except BaseException:
            for sink in sinks.values():
                sink.abort()
            raise
        return sinks, summary_file

    def painted_label_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the synthesizer's labels are made at for frames of ``height × width``: its grid
        (so that logits are upsampled no further than the painting needs), else the frame size."""
        synthesizer = self.synthesizer
        grid = (synthesizer.label_size(height, width) if synthesizer is not None and synthesizer.consumes == "labels"
                else None)
        return tuple(grid) if grid else (height, width)

    def _label_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The sizes to segment frames of ``height × width`` at: first what the synthesizer paints
        from, then the frame size when an output shows labels (or the summary counts them) and the
        grid differs. The synthesizer's labels are made the same way whichever outputs a run asks for."""
        grid, frame = self.painted_label_size(height, width), (height, width)
        return [grid, frame] if self._labels_shown and grid != frame else [grid]

    def _segment(self, frames: np.ndarray, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(painted, shown)``: labels at the synthesizer's size and at the size outputs show them
        (the same tensor when those sizes agree); one step of the segmenter's state."""
        maps = self.segmenter.segment_sizes(frames, indices=indices, sizes=self._label_sizes(*frames.shape[1:3]))
        return maps[0], maps[-1]

    def _infer(self, batch: Batch, timer: StageTimer) -> Inferred:
        """The networks' part of a batch: the labels outputs show (at frame size when an output shows
        labels or the summary counts them, else the synthesizer's grid) in both spaces, and the
        synthesized frames at the frame size, painted from labels made at the synthesizer's grid."""
        labels = target = painted = synthesized = None
        height, width = batch.frames.shape[1:3]
        if self.segmenter is not None:
            with timer("segment"):
                painted, labels = self._segment(batch.frames, batch.indices)
            with timer("remap"):
                target = self.target_labels(labels)
                painted = target if painted is labels else self.target_labels(painted)
        if self.synthesizer is not None:
            with timer("synthesize"):
                synthesized = self.synthesizer.synthesize(
                    labels=painted if self.synthesizer.consumes == "labels" else None, frames=batch.frames)
                # Resized where it was painted; the batch's one copy to the host, as uint8.
                synthesized = resize_frames(synthesized, height, width)
        return Inferred(labels, target, synthesized)

    def _steady(self, batch: Batch, inferred: Inferred, written: bool, emitted: tuple[Any, ...]) -> None:
        """``--deflicker``: hand a painted batch over; emit the batches it has steadied (the writer thread's part)."""
        timer = emitted[-1]
        with timer("deflicker"):
            ready = self.deflicker.push(batch.indices, batch.frames, inferred.synthesized, (batch, inferred, written))
        self._emit_steadied(ready, emitted)

    def _steady_rest(self, emitted: tuple[Any, ...]) -> None:
        """The batches the deflicker still holds at the end of the run (they have every frame there is)."""
        with emitted[-1]("deflicker"):
            ready = self.deflicker.drain()
        self._emit_steadied(ready, emitted)

    def _emit_steadied(self, ready: list[tuple[tuple[Batch, Inferred, bool], np.ndarray]],
                       emitted: tuple[Any, ...]) -> None:
        for (batch, inferred, written), steadied in ready:
            if written:
                self._emit(batch, dataclasses.replace(inferred, synthesized=steadied), *emitted)

    def _emit(self, batch: Batch, inferred: Inferred, steadiness: SteadinessTracker,
              changes: FrameChangeTracker | None, tracker: ClassShareTracker | None, sinks: dict[str, FrameSink],
              timer: StageTimer) -> None:
        """Everything after the networks: trackers, views and every sink's writes (the writer
        thread's part of a batch; it only reads ``batch`` and ``inferred``)."""
        labels, target, synthesized = inferred.labels, inferred.target, inferred.synthesized
        with timer("inspect"):
            if changes is not None:  # both at the output size: synthesized frames were resized above
                changes.add_batch(synthesized, batch.frames)
            if tracker is not None:
                tracker.add_batch(batch.indices, batch.times, labels)
            steadiness.add_batch(batch.frames, labels, synthesized)
            views = self.views(batch.frames, labels, target, synthesized, wanted=sinks.keys())
        with timer("encode"):
            for name, images in views.items():
                with _os_errors_name(sinks[name].target):
                    for image, time_s in zip(images, batch.times):
                        sinks[name].write(image, float(time_s))


@contextlib.contextmanager
def _os_errors_name(target: Path) -> Iterator[None]:
    """FFmpeg's I/O errors name no file, and others name the hidden staging file: name the output."""
    try:
        yield
    except OSError as error:
        if error.filename is None or ".partial-" in str(error.filename):
            raise OSError(error.errno, error.strerror or str(error), str(target)) from error
        raise


def _background_refusal(background: str, space: LabelSpace | None) -> str:
    """Why ``--background`` is refused when no labels change space, and what to do instead."""
    if space is None:
        return "--background needs a segmenter whose labels are converted for the synthesizer (--seg)"
    return (f"--background {background}: the segmenter and the synthesizer both use {space.name} labels, so nothing "
            f"is converted; to repaint {space.fallback!r}, use --remap {space.fallback}={background}")


