"""Soak: a 100,000-frame run keeps its memory, open files and speed flat from start to end.

It generates a long clip (a textured scene panning over a looping background, 64x48 at 25 fps,
x264 ultrafast, no audio: 66 minutes of video), then runs the whole chain over it in this process
(decode → palette:voc → colorize → encode, and the summary's per-frame records) while a
progress hook samples, at every 1 % of the frames: the resident memory (VmRSS), the open file
descriptors and the frames/s since the previous sample. It prints the first and last 10 %.

    python benchmarks/soak.py [--frames 100000] [--size 64x48] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

import chain


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    rng = np.random.default_rng(0)
    ground = rng.integers(0, 255, (height, width * 4, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "250"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            x = (2 * t) % (3 * width)
            image = np.ascontiguousarray(ground[:, x:x + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Sampler:
    """A `chain.engine.pipeline.Progress` that samples memory, open files and speed every 1 % of the run."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.samples = total, 0, []
        self.every = max(1, total // 100)
        self._next, self._since, self._at = self.every, 0, time.perf_counter()

    def start(self, total: int | None, description: str) -> None:
        self._at = time.perf_counter()

    def advance(self, frames: int) -> None:
        self.done += frames
        if self.done >= self._next:
            now = time.perf_counter()
            self.samples.append((self.done, resident_mib(), len(os.listdir("/proc/self/fd")),
                                 (self.done - self._since) / (now - self._at)))
            self._next, self._since, self._at = self._next + self.every, self.done, now

    def stop(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated clip here (made once)")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        os.environ["CHAIN_STATE"] = str(work / "state")
        clip = args.keep or work / "soak.mp4"
        if not clip.exists():
            started = time.perf_counter()
            make_clip(clip, args.frames, width, height)
            print(f"made {clip} ({args.frames} frames) in {time.perf_counter() - started:.0f} s")
        sampler = Sampler(args.frames)
        started = time.perf_counter()
        summary = chain.run(clip, work / "out.mp4", seg="palette:voc", synth="colorize:coco-stuff",
                            summary=work / "run.json", batch_size=16, progress=sampler)
        seconds = time.perf_counter() - started
    print(f"{summary.frames} frames in {seconds:.0f} s ({summary.frames / seconds:.0f} frames/s overall); "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    tenth = max(1, len(sampler.samples) // 10)
    for name, part in (("first 10 %", sampler.samples[:tenth]), ("last 10 %", sampler.samples[-tenth:])):
        print(f"  {name:10s}: memory {statistics.median(s[1] for s in part):7.1f} MiB (max "
              f"{max(s[1] for s in part):.1f}), open files {max(s[2] for s in part)}, "
              f"{statistics.median(s[3] for s in part):6.0f} frames/s (median of {len(part)} samples)")
    first, last = sampler.samples[:tenth], sampler.samples[-tenth:]
    print(f"  last/first: memory {statistics.median(s[1] for s in last) / statistics.median(s[1] for s in first):.3f}x, "
          f"frames/s {statistics.median(s[3] for s in last) / statistics.median(s[3] for s in first):.3f}x")


if __name__ == "__main__":
    main()
