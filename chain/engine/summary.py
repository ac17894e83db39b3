"""What a run reports: per-frame class shares, per-stage time, totals.

Per-frame records are streamed to the summary file as frames pass, so a feature film's
summary costs no memory; totals are appended at the end.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from chain.labels import LabelSpace
from chain.media.source import InputDamage
from chain.media.targets import SUMMARY_PREFIX, Staged, publish_all, remove_stale_staging, staging_path
from chain.signals import deferred_signals
from chain.version import __version__


class StageTimer:
    """Wall-clock seconds spent in each named stage.

    Safe across threads (a run's decoder, networks and writer time their own stages at once), so
    the stages' seconds may add up to more than the run's: they overlap.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:  # `+=` on a dict entry is a read and a write: two threads could lose one
                self.seconds[stage] += elapsed


def frames_per_second(frames: int, seconds: float) -> float:
    """chain's one definition of a run's speed, used by the summary, the closing line, the progress
    bar and the web page: frames written ÷ wall-clock seconds since the run opened its input
    (loading the networks comes before and is not counted; decoding, the networks, encoding and,
    at the end, the encoder's flush are). A bar shows it so far, not a moving average."""
    return frames / seconds if seconds > 0 else 0.0


@dataclass
class RunSummary:
    """The result of `Chain.__call__`: totals of the run (per-frame records live in the JSON file)."""

    frames: int
    fps: float
    width: int
    height: int
    seconds: float
    stage_seconds: dict[str, float]
    segmenter: str | None
    synthesizer: str | None
    label_space: str | None
    target_space: str | None
    unmapped_classes: list[str]
    remapped: list[str]
    mean_class_share: dict[str, float]
    outputs: dict[str, str]
    audio: str
    label_flicker: float | None = None
    #: Mean |difference| between consecutive synthesized frames over the same for the input
    #: frames, both at the output size (1 = as steady as the input); None without two output frames.
    output_flicker: float | None = None
    #: The two means behind it, in 8-bit levels per pixel and channel.
    output_change: float | None = None
    input_change: float | None = None
    #: Damaged frames skipped and a short input (None when the input decoded whole).
    input_damage: InputDamage | None = None
    #: Label flicker along the input's motion and the warping error of painting and input
    #: (`chain.steadiness.SteadinessTracker.to_dict`; None for fewer than two frames).
    steadiness: dict[str, Any] | None = None
    #: Mean class shares in the synthesizer's space, after conversion and --remap (what it painted from).
    target_class_share: dict[str, float] = field(default_factory=dict)
    #: How the run was asked for: input path, chain version, command line, stages and their options.
    request: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        """The run's speed, as `frames_per_second` defines it (``seconds`` is from opening the input)."""
        return frames_per_second(self.frames, self.seconds)

    def to_dict(self) -> dict[str, Any]:
        # The --compile warm-up happens once per run, not per frame: it is in stage_seconds only.
        stage_ms = {name: 1000 * secs / max(1, self.frames) for name, secs in self.stage_seconds.items()
                    if name != "compile"}
        return {
            "request": self.request, "frames": self.frames, "fps": self.fps, "width": self.width, "height": self.height,
            "seconds": round(self.seconds, 3), "frames_per_second": round(self.frames_per_second, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "stage_ms_per_frame": {k: round(v, 2) for k, v in stage_ms.items()},
            "segmenter": self.segmenter, "synthesizer": self.synthesizer,
            "label_space": self.label_space, "target_space": self.target_space,
            "unmapped_classes": self.unmapped_classes, "remapped": self.remapped,
            "mean_class_share": self.mean_class_share, "target_class_share": self.target_class_share,
            "outputs": self.outputs, "audio": self.audio,
            "label_flicker": None if self.label_flicker is None else round(self.label_flicker, 5),
            "output_flicker": None if self.output_flicker is None else round(self.output_flicker, 4),
            "output_change": None if self.output_change is None else round(self.output_change, 4),
            "input_change": None if self.input_change is None else round(self.input_change, 4),
            "input_damage": None if self.input_damage is None else self.input_damage.to_dict(),
            "steadiness": self.steadiness,
            **self.extra,
        }


class ClassShareTracker:
    """Per-frame class shares and label flicker of one label space, streamed as they come.

    Flicker is the share of pixels whose label differs from the previous frame's: the
    figure temporal smoothing should bring down. ``target`` is the synthesizer's space and the
    id table into it (conversion and remap), for the same shares in that space. A batch is
    counted at once on its device (one ``bincount`` over the batch); the counts reach the host
    once per batch.
    """

    def __init__(self, space: LabelSpace, stream: TextIO | None,
                 target: tuple[LabelSpace | None, np.ndarray | None] = (None, None)) -> None:
        self.space = space
        self.target_space, self.target_lut = target
        self._stream = stream
        self._total = np.zeros(len(space), dtype=np.float64)
        self._previous: torch.Tensor | None = None
        self._flicker_total = 0.0
        self.frames = 0
        self.first: torch.Tensor | None = None  # the first frame's labels: a shard's edge (`join`)

    def add(self, index: int, time_s: float, labels: np.ndarray | torch.Tensor) -> None:
        """One frame's label map ``(H, W)``."""
        self.add_batch(np.array([index]), np.array([time_s]), _label_tensor(labels)[None])

    def add_batch(self, indices: np.ndarray, times: np.ndarray, labels: np.ndarray | torch.Tensor) -> None:
        """Consecutive frames' label maps ``(B, H, W)`` (a tensor on any device, or numpy)."""
        labels = _label_tensor(labels)
        classes, frames, pixels = len(self.space), labels.shape[0], labels[0].numel()
        flat = labels.reshape(frames, -1)
        # One bincount for the batch: frame b's ids land in bins b*(C+1)..; ids past the space go to
        # each frame's last bin, which is dropped (they count in the frame's size, not in a class).
        offsets = torch.arange(frames, device=labels.device)[:, None] * (classes + 1)
        counts = torch.bincount((flat.clamp(max=classes) + offsets).ravel(), minlength=frames * (classes + 1))
        counts = counts.view(frames, classes + 1)[:, :classes]
        previous = self._previous if self._previous is not None and self._previous.shape == labels.shape[1:] else None
        changed = (labels[1:] != labels[:-1]).flatten(1).sum(dim=1)
        if previous is not None:  # compared on its own: no copy of the batch's maps behind it
            changed = torch.cat([(labels[0] != previous.to(labels.device)).sum()[None], changed])
        shares_batch = counts.cpu().numpy() / max(1, pixels)
        changed = changed.cpu().tolist()
        flickers: list[float | None] = [None] * (frames - len(changed)) + [count / pixels for count in changed]
        self._previous = labels[-1].clone()
        if self.first is None:
            self.first = labels[0].clone()
        for index, time_s, shares, flicker in zip(indices, times, shares_batch, flickers):
            self._total += shares
            self.frames += 1
            if flicker is not None:
                self._flicker_total += flicker
            if self._stream is not None:
                classes_named = {self.space.names[i]: round(float(shares[i]), 5)
                                 for i in np.argsort(-shares) if shares[i] >= 1e-5}
                record = {"index": int(index), "time": round(float(time_s), 4), "classes": classes_named,
                          "flicker": None if flicker is None else round(flicker, 5)}
                self._stream.write(("" if self.frames == 1 else ",\n") + json.dumps(record))

    def join(self, later: ClassShareTracker) -> float | None:
        """Add the totals of the frames right after these (a later shard of the run, `chain.cluster`).

        Returns the flicker between the two sides of the boundary (None if there is none), which
        counts as it would have in one pass.
        """
        flicker = None
        if self._previous is not None and later.first is not None and self._previous.shape == later.first.shape:
            flicker = int((self._previous.cpu() != later.first.cpu()).sum()) / later.first.numel()
            self._flicker_total += flicker
        self._total = self._total + later._total  # arrays from another process may be read-only
        self._flicker_total += later._flicker_total
        self.frames += later.frames
        self.first = self.first if self.first is not None else later.first
        self._previous = later._previous if later._previous is not None else self._previous
        return flicker

    def detach(self) -> ClassShareTracker:
        """This tracker without its output stream and with its edge frames on the host, to send to
        another process."""
        self._stream = None
        self.first = self.first.cpu() if self.first is not None else None
        self._previous = self._previous.cpu() if self._previous is not None else None
        return self

    @property
    def mean_flicker(self) -> float | None:
        """Mean share of pixels changing label between consecutive frames (None for one frame)."""
        return self._flicker_total / (self.frames - 1) if self.frames > 1 else None

    def mean_shares(self, min_share: float = 1e-4) -> dict[str, float]:
        mean = self._total / max(1, self.frames)
        return {self.space.names[i]: round(float(mean[i]), 5) for i in np.argsort(-mean) if mean[i] >= min_share}

    def mean_target_shares(self, min_share: float = 1e-4) -> dict[str, float]:
        """`mean_shares` in the synthesizer's space: each source share added to the class it became."""
        if self.target_space is None or self.target_lut is None:
            return {}
        mean = np.bincount(np.asarray(self.target_lut, dtype=np.intp), weights=self._total / max(1, self.frames),
                           minlength=len(self.target_space))
        return {self.target_space.names[i]: round(float(mean[i]), 5)
                for i in np.argsort(-mean) if mean[i] >= min_share}


class FrameChangeTracker:
    """Output flicker: how much consecutive synthesized frames differ, against the input's own change.

    Each consecutive pair contributes its mean absolute difference (8-bit levels, over pixels
    and channels) for the output and for the input; the flicker is the ratio of the two
    means, so a still input that the synthesizer paints differently every frame scores high
    and a synthesizer that follows the input's motion scores about 1. Streaming: only the
    previous pair of frames is kept. A batch's differences are summed at once, in integers.
    """

    def __init__(self) -> None:
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._output_total = self._input_total = 0.0
        self.pairs = 0
        self.first: tuple[np.ndarray, np.ndarray] | None = None  # a shard's edge (`join`)

    def add(self, output: np.ndarray, input_frame: np.ndarray) -> None:
        """The next synthesized frame and its input frame, ``(H, W, 3)`` uint8 of the same size."""
        self.add_batch(output[None], input_frame[None])

    def add_batch(self, outputs: np.ndarray, inputs: np.ndarray) -> None:
        """The next synthesized frames and their input frames, ``(B, H, W, 3)`` uint8 of one size."""
        if self._previous is not None:
            outputs_with = np.concatenate([self._previous[0][None], outputs])
            inputs_with = np.concatenate([self._previous[1][None], inputs])
        else:
            outputs_with, inputs_with = outputs, inputs
        for output_change, input_change in zip(_mean_abs_differences(outputs_with),
                                               _mean_abs_differences(inputs_with)):
            self._output_total += output_change  # pair by pair, in the order one frame at a time adds
            self._input_total += input_change
        self.pairs += len(outputs_with) - 1
        self._previous = (outputs[-1], inputs[-1])
        if self.first is None:
            self.first = (outputs[0], inputs[0])

    def join(self, later: FrameChangeTracker) -> None:
        """Add the frames right after these (a later shard of the run), the pair across the boundary too."""
        if self._previous is not None and later.first is not None:
            self._output_total += _mean_abs_difference(later.first[0], self._previous[0])
            self._input_total += _mean_abs_difference(later.first[1], self._previous[1])
            self.pairs += 1
        self._output_total += later._output_total
        self._input_total += later._input_total
        self.pairs += later.pairs
        self.first = self.first if self.first is not None else later.first
        self._previous = later._previous if later._previous is not None else self._previous

    @property
    def output_change(self) -> float | None:
        return self._output_total / self.pairs if self.pairs else None

    @property
    def input_change(self) -> float | None:
        return self._input_total / self.pairs if self.pairs else None

    @property
    def flicker(self) -> float | None:
        """Output change over input change (None for one frame, or an input that never changes)."""
        return self._output_total / self._input_total if self.pairs and self._input_total > 0 else None


def _label_tensor(labels: np.ndarray | torch.Tensor) -> torch.Tensor:
    return labels.long() if isinstance(labels, torch.Tensor) else torch.from_numpy(labels.astype(np.int64))


def _mean_abs_differences(frames: np.ndarray) -> list[float]:
    """Mean |difference| of each consecutive pair of ``frames`` ``(N, H, W, C)``: ``N - 1`` values.

    Summed exactly in int64 and divided once, which is the float64 mean numpy takes of the int16
    differences (every partial sum is an integer below 2**53), so the figures do not depend on batching.
    """
    if len(frames) < 2:
        return []
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).to(torch.int16)
    sums = (pixels[1:] - pixels[:-1]).abs_().reshape(len(frames) - 1, -1).sum(dim=1)
    return [total / pixels[0].numel() for total in sums.tolist()]


def _mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    return _mean_abs_differences(np.stack([b, a]))[0]


def audio_note(codec: str | None, *, written: bool, copied: bool) -> str:
    """What became of the input's sound, for the summary: none, not written, copied or re-encoded."""
    if codec is None:
        return "none in input"
    if not written:
        return "not written (no video output)"
    return f"{codec} copied" if copied else f"{codec} re-encoded"


class _NamedStream:
    """A text stream whose OS errors name the summary the user asked for: a full disk otherwise
    reports no path at all (Python's buffered writes carry none)."""

    def __init__(self, stream: TextIO, target: Path) -> None:
        self._stream, self._target = stream, target

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(self._target)) from error

    def close(self) -> None:
        try:
            self._stream.close()
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(self._target)) from error


class SummaryFile:
    """``{"per_frame": [...streamed...], "run": {...totals...}}`` written atomically."""

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(target)
        self.staging = staging_path(target)
        self.stream = _NamedStream(self.staging.open("x"), target)
        # The first key says who wrote the file, so a later run may replace it (chain.media.targets).
        self.stream.write(f'{SUMMARY_PREFIX} {__version__}", "per_frame": [\n')

    def finish(self, summary: RunSummary) -> None:
        """Write the run's totals and close the file, still under its temporary name."""
        self.stream.write('\n],\n"run": ' + json.dumps(summary.to_dict(), indent=2) + "\n}\n")
        self.stream.close()

    def staged(self, option: str = "--summary file") -> Staged:
        """The finished file, for `chain.media.targets.publish_all` (with the run's other outputs)."""
        return Staged(self.staging, self.target, "summary", option)

    def publish(self) -> None:
        """Move the finished file into place (replacing only a summary chain wrote)."""
        publish_all([self.staged()])

    def abort(self) -> None:
        """Drop the partial file; closing may fail again (a full disk) and must not keep it."""
        try:
            self.stream.close()
        except OSError:
            pass
        finally:
            self.staging.unlink(missing_ok=True)


def tracked_figures(tracker: ClassShareTracker | None, changes: FrameChangeTracker | None) -> dict[str, Any]:
    """The `RunSummary` fields that a run's trackers hold: one machine's (`Chain`) and a sharded
    run's, whose shards' trackers are joined first (`chain.cluster.run`), alike."""
    return dict(mean_class_share=tracker.mean_shares() if tracker else {},
                target_class_share=tracker.mean_target_shares() if tracker else {},
                label_flicker=tracker.mean_flicker if tracker else None,
                output_flicker=changes.flicker if changes else None,
                output_change=changes.output_change if changes else None,
                input_change=changes.input_change if changes else None)


def publish_run(summary: RunSummary, staged: list[Staged], summary_file: SummaryFile | None, *,
                record: bool = True, published: Callable[[], None] | None = None,
                publish: Callable[..., None] = publish_all) -> None:
    """The end of every run, on one machine or joined from parts: the summary file gets the totals,
    then every finished output (``staged``, and the summary file) is moved into place together, stop
    signals held, so that outputs appear together or not at all; the summary then names its file.

    ``record``: note the outputs in chain's ledger (a shard's parts, published into the driver's
    staging folders, are not the user's outputs). ``published`` runs once they are all in place,
    still with signals held (the cluster forgets its staging names there: none may be discarded).
    ``publish`` places them (`chain.media.targets.publish_all`; the cluster passes its own name for
    it, where its tests stop a run half-way through placing).
    """
    if summary_file is not None:
        summary_file.finish(summary)
    with deferred_signals():
        publish(staged + ([summary_file.staged()] if summary_file is not None else []), record=record)
        if published is not None:
            published()
        if summary_file is not None:
            summary.outputs["summary"] = str(summary_file.target)
