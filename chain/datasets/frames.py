"""Training frames: a film decoded once into a memory-mapped uint8 cache, and seeded batches from it.

`build_frame_cache` streams the film through `chain.media.open_source` at the training size
into ``frames.npy`` (``(N, H, W, 3)`` uint8, a plain NumPy file) beside a small
``frames.json`` that says what it was made from. Frames go to disk one at a time, so a
two-hour film costs disk (27 KB a frame at 128x72), never memory; a second run with the same
film, size and trim reuses the file. `BatchSampler` shuffles with a seed per epoch, so the
batch at any global step is a pure function of (seed, step): resuming needs only the step.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from chain.errors import ChainError
from chain.media import Size, Trim, open_source
from chain.media.sizes import parse_size
from chain.media.targets import staging_path

CACHE_VERSION = 1
FRAMES_FILE = "frames.npy"
META_FILE = "frames.json"
# The .npy header is written last, once the frame count is known, into a fixed-size slot
# (a multiple of 64 bytes, as the format asks, with room for any frame count).
HEADER_BYTES = 128


@dataclass(frozen=True)
class FrameCache:
    """A film's frames at the training size: ``frames`` is ``(N, H, W, 3)`` uint8, memory-mapped."""

    path: Path
    frames: np.ndarray
    reused: bool  # True when an existing cache matched and nothing was decoded

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> Size:
        return Size(self.frames.shape[2], self.frames.shape[1])


def training_size(size: str | Size) -> Size:
    """``"128x72"`` → Size(128, 72); training and scoring need both sides, not a short side."""
    parsed = parse_size(size) if isinstance(size, str) else size
    if not isinstance(parsed, Size):
        raise ChainError(f"--size needs WIDTHxHEIGHT here (e.g. 256x144), not {size!r}")
    return parsed


def _source_key(film: Path, size: Size, trim: Trim) -> dict:
    """What a cache was made from; a cache is reused only when all of it matches."""
    stat = film.stat()
    return {
        "version": CACHE_VERSION,
        "source": str(film.resolve()),
        "source_bytes": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
        "width": size.width,
        "height": size.height,
        "start": trim.start,
        "duration": trim.duration,
        "max_frames": trim.max_frames,
    }


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A version 1.0 ``.npy`` header for uint8 ``shape``, padded to exactly HEADER_BYTES (NEP 1)."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    body = HEADER_BYTES - 10  # magic (6) + version (2) + header length (2)
    if len(text) >= body:
        raise ChainError(f"frame cache shape {shape} does not fit the .npy header")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + (text.ljust(body - 1) + "\n").encode("latin1")


def _open_cached(cache_dir: Path, key: dict) -> FrameCache | None:
    meta_path, frames_path = cache_dir / META_FILE, cache_dir / FRAMES_FILE
    if not meta_path.is_file() or not frames_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        frames = np.load(frames_path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if {k: meta.get(k) for k in key} != key:
        return None
    if frames.dtype != np.uint8 or frames.shape != (meta.get("frames"), key["height"], key["width"], 3):
        return None
    return FrameCache(frames_path, frames, reused=True)


def build_frame_cache(
    film: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    size: str | Size,
    trim: Trim = Trim(),
    progress: Callable[[int, int | None], None] | None = None,
) -> FrameCache:
    """Decode ``film`` at ``size`` into ``cache_dir/frames.npy``, or reuse a matching cache there.

    ``progress(done, total)`` is called after each frame (``total`` is the container's
    estimate, or None). The file is written under a temporary name and renamed when
    complete, so an interrupted decode never leaves a cache that looks finished.
    """
    film, cache_dir = Path(film), Path(cache_dir)
    if not film.exists():
        raise ChainError(f"input not found: {film}")
    size = training_size(size)
    key = _source_key(film, size, trim)
    cached = _open_cached(cache_dir, key)
    if cached is not None:
        return cached

    cache_dir.mkdir(parents=True, exist_ok=True)
    meta_path, frames_path = cache_dir / META_FILE, cache_dir / FRAMES_FILE
    meta_path.unlink(missing_ok=True)  # the old description must not outlive the old frames
    partial = staging_path(frames_path)  # a fresh name, made here ("x"): never written through a link
    count = 0
    try:
        with open_source(film, trim=trim, size=size) as source, open(partial, "xb") as out:
            out.write(bytes(HEADER_BYTES))  # the slot for the header, filled in at the end
            for frame in source:
                out.write(np.ascontiguousarray(frame.rgb, dtype=np.uint8).tobytes())
                count += 1
                if progress is not None:
                    progress(count, source.info.frame_count)
            if count == 0:
                raise ChainError(f"{film} yielded no frames (check --start/--duration)")
            out.seek(0)
            out.write(_npy_header((count, size.height, size.width, 3)))
        os.replace(partial, frames_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    staging = staging_path(meta_path)
    with open(staging, "x") as stream:
        stream.write(json.dumps({**key, "frames": count}, indent=2) + "\n")
    os.replace(staging, meta_path)
    return FrameCache(frames_path, np.load(frames_path, mmap_mode="r"), reused=False)


class FramePool:
    """Several films' frame caches as one set: index ``i`` is frame ``i`` of the films laid end to end.

    Nothing is copied (a film may be larger than memory): `take` reads each batch from the
    caches' memory maps. Sampling the pool uniformly weights each film by its length, as if
    the films were one long film.
    """

    def __init__(self, caches: Sequence[FrameCache]) -> None:
        if not caches:
            raise ChainError("no films to train on")
        shapes = {cache.frames.shape[1:] for cache in caches}
        if len(shapes) != 1:
            raise ChainError(f"frame caches of different sizes cannot be pooled: {sorted(shapes)}")
        self.caches = list(caches)
        self.offsets = np.cumsum([0] + [len(cache) for cache in self.caches])  # film f: offsets[f]..offsets[f+1]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def film_of(self, indices: np.ndarray) -> np.ndarray:
        """Which film (0-based) each pool index belongs to."""
        return np.searchsorted(self.offsets, np.asarray(indices), side="right") - 1

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Frames ``(len(indices), H, W, 3)`` uint8 at pool ``indices``, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"frame index out of range 0..{len(self) - 1}")
        films = self.film_of(indices)
        out = np.empty((len(indices), *self.caches[0].frames.shape[1:]), dtype=np.uint8)
        for film in np.unique(films):
            chosen = films == film
            out[chosen] = self.caches[film].frames[indices[chosen] - self.offsets[film]]
        return out


class BatchSampler:
    """Shuffled batches over epochs, a pure function of (seed, step).

    Epoch ``e`` visits the frames in the order of a permutation seeded by ``(seed, e)``, in
    ``len // batch_size`` full batches (the few frames left over sit out that epoch, different
    ones each time). Indices within a batch are sorted, so reads from the memory-mapped cache
    go forwards through the file.
    """

    def __init__(self, num_frames: int, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ChainError(f"--batch must be >= 1, got {batch_size}")
        if num_frames < batch_size:
            raise ChainError(f"the film has {num_frames} frames, fewer than --batch {batch_size}")
        self.num_frames = num_frames
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = num_frames // batch_size

    def epoch(self, step: int) -> int:
        """The (0-based) epoch that global step ``step`` (0-based) falls in."""
        return step // self.steps_per_epoch

    @lru_cache(maxsize=2)  # noqa: B019 (two epochs of one sampler; samplers live as long as their run)
    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_frames)

    def batch(self, step: int) -> np.ndarray:
        """Frame indices for global step ``step``."""
        epoch, position = divmod(step, self.steps_per_epoch)
        chosen = self.permutation(epoch)[position * self.batch_size:(position + 1) * self.batch_size]
        return np.sort(chosen)
