"""`chain run --cluster`: 2 Ray workers against 1 on this machine, real deeplab-mnv2:voc segmenter.

Runs the same clip (the shared pexels clip: 231 frames, a keyframe every 3 s) with 1 shard and
with 2 shards on a local Ray instance of 2 CPUs (each worker one torch thread), interleaved,
repeated; prints median wall times, the speed-up, and the time spent splitting (demuxing packet
flags) and joining (remux, audio, PNG renumbering, summary) as a share of the run. The machine is
shared: the load average is printed before and after.

    python benchmarks/cluster_speedup.py [--repeats 3] [--frames 231] [--size 257]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker: the comparison is of workers
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=231)
    parser.add_argument("--size", default="257")
    args = parser.parse_args()

    import ray

    import chain
    from chain.importers.tflite import save_imported

    clip = SHARED / "data/videos/pexels-koolshooters-7322716.mp4"
    tflite = SHARED / "weights/deeplabv3_mnv2_voc_257.tflite"
    if not clip.exists() or not tflite.exists():
        sys.exit(f"needs {clip} and {tflite} (../shared or CHAIN_SHARED)")
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        weights = save_imported(tflite, Path(tmp) / "deeplab-mnv2-voc", label_space="voc")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        options = dict(seg="deeplab-mnv2:voc", seg_weights=str(weights), synth="colorize:coco-stuff",
                       remap=["person=bear"], max_frames=args.frames, size=args.size, device="cpu")
        # Warm the workers (imports, weights) so that both variants start equal.
        chain.run(clip, Path(tmp) / "warm.mp4", cluster="ray", shards=2, **{**options, "max_frames": 8})
        walls: dict[int, list[float]] = {1: [], 2: []}
        shares: list[tuple[float, float]] = []
        for repeat in range(args.repeats):
            for shards in (1, 2) if repeat % 2 == 0 else (2, 1):  # interleaved, order alternating
                out = Path(tmp) / f"r{repeat}-{shards}"
                started = time.perf_counter()
                summary = chain.run(clip, out / "out.mp4", masks=out / "masks", summary=out / "run.json",
                                    cluster="ray", shards=shards, **options)
                wall = time.perf_counter() - started
                walls[shards].append(wall)
                cluster = summary.extra["cluster"]
                if shards == 2:
                    shares.append((cluster["split_seconds"] / wall, cluster["join_seconds"] / wall))
                print(f"  repeat {repeat}: {cluster['shards']} shard(s), {summary.frames} frames, {wall:.2f} s "
                      f"(split {cluster['split_seconds']:.3f} s, join {cluster['join_seconds']:.3f} s)", flush=True)
        ray.shutdown()
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    print(f"median wall: 1 worker {one:.2f} s, 2 workers {two:.2f} s -> speed-up {one / two:.2f}x")
    print(f"2 workers: splitting {100 * statistics.median(s for s, _ in shares):.2f} % and joining "
          f"{100 * statistics.median(j for _, j in shares):.2f} % of the run (medians)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
