"""What `--resume` costs: a run in parts, and a run stopped past the middle then resumed, over a plain run.

Three variants on a generated 1,500-frame clip (60 s at 25 fps, 128x96, as `benchmarks/soak.py` makes
it; deeplab-mnv2's VOC port imported from ../shared, the default synthesizer, a video and a
summary), interleaved and repeated:

- plain: ``chain.run`` as usual;
- parts: the same with ``resume=True``, never stopped (the parts, their warm-ups and the join);
- stopped + resumed: ``resume=True`` interrupted (KeyboardInterrupt from the progress hook) at 60 %
  of the frames, then run again with ``resume=True``; its time is both runs' together.

    python benchmarks/resume_overhead.py [--repeats 3] [--stop-at 0.6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from soak import make_clip  # a sibling script: benchmarks/ is on the path when this runs

import chain
from chain.importers.tflite import save_imported

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


class _StopAt:
    """A progress hook that stops the run (as Ctrl-C would) once ``frames`` frames are done."""

    def __init__(self, frames: int) -> None:
        self.frames, self.done = frames, 0

    def start(self, total: int | None, description: str) -> None:
        pass

    def advance(self, frames: int) -> None:
        self.done += frames
        if self.done >= self.frames:
            raise KeyboardInterrupt

    def stop(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stop-at", type=float, default=0.6)
    parser.add_argument("--frames", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        os.environ["CHAIN_STATE"] = str(work / "state")
        clip = work / "clip.mp4"
        make_clip(clip, args.frames, 128, 96)
        weights = save_imported(SHARED / "weights" / "deeplabv3_mnv2_voc_257.tflite", work / "voc", label_space="voc")
        options = dict(seg="deeplab-mnv2:voc", seg_weights=str(weights))

        def run(name: str, **extra: object) -> float:
            folder = work / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            started = time.perf_counter()
            try:
                chain.run(clip, folder / "out.mp4", summary=folder / "run.json", **options, **extra)
            except KeyboardInterrupt:
                pass
            return time.perf_counter() - started

        frames = chain.run(clip, work / "probe.mp4", **options).frames
        times: dict[str, list[float]] = {"plain": [], "parts": [], "stopped + resumed": []}
        for _ in range(args.repeats):
            times["plain"].append(run("plain"))
            times["parts"].append(run("parts", resume=True))
            stopped = run("stopped", resume=True, progress=_StopAt(int(args.stop_at * frames)))
            folder = work / "stopped"  # the same folder: the kept parts are beside its outputs
            started = time.perf_counter()
            chain.run(clip, folder / "out.mp4", summary=folder / "run.json", resume=True, **options)
            times["stopped + resumed"].append(stopped + time.perf_counter() - started)
    plain = statistics.median(times["plain"])
    print(f"generated clip: {frames} frames at 128x96, median of {args.repeats} interleaved repeats; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for name, values in times.items():
        print(f"  {name:18s} {statistics.median(values):6.1f} s  ({statistics.median(values) / plain:.2f}x plain)")


if __name__ == "__main__":
    main()
