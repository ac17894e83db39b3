"""Seconds a frame of the ``palette`` segmenter at 1280x720: the per-pixel search it was, the lookup it is.

Frames: Big Buck Bunny (a cartoon, 1280x720) from ``$CHAIN_SHARED/data/videos``, else random
pixels (the lookup's worst case: nearly every pixel a new colour). Both variants label the same
frames, interleaved; the lookup's first frame (empty table) is reported apart from the rest,
where its table is warm. Repeats, medians, the load average.

    python benchmarks/palette_speed.py [--frames 8] [--space coco-stuff] [--random]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from chain.labels import get_label_space
from chain.media import Trim, open_source
from chain.stages.lookup import PaletteSegmenter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # support/: the per-pixel search is the reference there
from support.palette import per_pixel_search  # noqa: E402


def load_frames(count: int, random: bool) -> tuple[list[np.ndarray], str]:
    shared = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[2] / "shared")
    video = shared / "data" / "videos" / "bigbuckbunny.mp4"
    if random or not video.is_file():
        rng = np.random.default_rng(0)
        return [rng.integers(0, 256, (1, 720, 1280, 3), dtype=np.uint8) for _ in range(count)], "random pixels"
    with open_source(video, trim=Trim(max_frames=count), size="1280x720") as source:
        return [frame.rgb[None] for frame in source], video.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--space", default="coco-stuff")
    parser.add_argument("--random", action="store_true", help="random pixels instead of the cartoon")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = get_label_space(args.space)
    frames, what = load_frames(args.frames, args.random)
    lookup = PaletteSegmenter(space)
    search_s, lookup_s, first_s = [], [], None
    for index, frame in enumerate(frames):
        started = time.perf_counter()
        expected = per_pixel_search(frame, space.palette)
        search_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        labels = lookup.segment(frame, indices=np.array([index]))
        elapsed = time.perf_counter() - started
        if first_s is None:
            first_s = elapsed
        else:
            lookup_s.append(elapsed)
        assert np.array_equal(labels, expected), f"frame {index}: the lookup differs from the search"
    colours = len(np.unique(np.concatenate([f.reshape(-1, 3) for f in frames]), axis=0))
    search, warm = statistics.median(search_s), statistics.median(lookup_s)
    print(f"palette:{space.name}, {len(frames)} frames of {what} at 1280x720 ({colours:,} distinct colours), "
          f"1 thread, load {os.getloadavg()[0]:.2f}")
    print(f"per-pixel search: {search * 1000:7.1f} ms/frame (median)")
    print(f"lookup, 1st frame: {first_s * 1000:6.1f} ms (empty table)")
    print(f"lookup, warm:     {warm * 1000:7.1f} ms/frame (median)")
    print(f"search / lookup (warm): {search / warm:.1f}x; identical labels on every frame")


if __name__ == "__main__":
    main()
