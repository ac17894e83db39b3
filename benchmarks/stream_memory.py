"""Peak memory of a 2,000-frame run against a 200-frame run, and decode+encode frames/s.

Streaming means memory must not grow with the video's length. This builds a 2,000+-frame
clip by looping real footage (../shared bigbuckbunny's 1280x720 video; no audio), then runs
the whole chain (decode → palette segmenter → colorize → encode, plus masks, overlay, saved
labels and summary) for 200 and for 2,000 frames, each in a fresh process that reports its own
peak RSS. Repeats and prints medians and the ratio.

    python benchmarks/stream_memory.py [--repeats 3] [--size 320]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
VIDEOS = SHARED / "data" / "videos"


def make_long_clip(target: Path, frames: int) -> None:
    """Loop bigbuckbunny's video until ``frames`` frames (x264 ultrafast), keeping the rate."""
    source = VIDEOS / "bigbuckbunny.mp4"
    with av.open(str(target), "w") as output:
        stream = None
        written = 0
        while written < frames:
            with av.open(str(source)) as container:
                for frame in container.decode(video=0):
                    if stream is None:
                        stream = output.add_stream("libx264", rate=container.streams.video[0].average_rate,
                                                   options={"preset": "ultrafast", "crf": "23"})
                        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
                        stream.codec_context.time_base = 1 / container.streams.video[0].average_rate
                    frame.pts = written
                    frame.time_base = stream.codec_context.time_base
                    output.mux(stream.encode(frame))
                    written += 1
                    if written == frames:
                        break
        output.mux(stream.encode(None))


def child(source: str, frames: int, size: str, workdir: str) -> None:
    """One measured run in this process; prints a JSON line with its peak RSS."""
    import chain

    out = Path(workdir)
    started = time.perf_counter()
    summary = chain.run(source, out / "out.mp4", seg="palette:voc", synth="colorize", max_frames=frames, size=size,
                        masks=out / "masks.mp4", overlay=out / "overlay.mp4", save_labels=out / "labels",
                        summary=out / "summary.json", batch_size=4)
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": summary.frames, "peak_mib": peak_mib, "seconds": elapsed}))


def measure(source: Path, frames: int, size: str) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        result = subprocess.run([sys.executable, __file__, "--child", str(source), str(frames), size, workdir],
                                capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def round_trip_fps(source: Path, repeats: int) -> float:
    """Median decode+encode frames/s of a plain copy through chain.media (no networks)."""
    from chain.media import open_audio, open_sink, open_source

    speeds = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as workdir, open_source(source) as frames:
            audio = open_audio(source, start=0.0, duration=None)
            sink = open_sink(Path(workdir) / "out.mp4", fps=frames.info.fps, audio=audio)
            started = time.perf_counter()
            for frame in frames:
                sink.write(frame.rgb, frame.time)
            sink.commit()
            speeds.append(sink.frames_written / (time.perf_counter() - started))
    return statistics.median(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="320", help="working size of the measured chain runs")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--skip-round-trip", action="store_true", help="only the memory measurement")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2], args.child[3])
        return
    if not VIDEOS.is_dir():
        sys.exit(f"{VIDEOS} not found: this benchmark needs ../shared")

    for name in () if args.skip_round_trip else ("bigbuckbunny.mp4", "carphone_pristine.mp4"):
        print(f"decode+encode (libx264 medium, CRF 18, audio copied) {name}: "
              f"{round_trip_fps(VIDEOS / name, args.repeats):.1f} frames/s (median of {args.repeats})", flush=True)

    with tempfile.TemporaryDirectory() as workdir:
        long_clip = Path(workdir) / "long.mp4"
        make_long_clip(long_clip, 2000)
        results: dict[int, list[dict]] = {200: [], 2000: []}
        for _ in range(args.repeats):
            for frames in (200, 2000):  # interleaved, so drift on a noisy machine hits both
                results[frames].append(measure(long_clip, frames, args.size))
                run = results[frames][-1]
                print(f"  run: {frames} frames, peak RSS {run['peak_mib']:.0f} MiB, {run['seconds']:.0f} s", flush=True)
    peak = {n: statistics.median(r["peak_mib"] for r in runs) for n, runs in results.items()}
    speed = {n: statistics.median(r["frames"] / r["seconds"] for r in runs) for n, runs in results.items()}
    for frames in (200, 2000):
        runs = ", ".join(f"{r['peak_mib']:.0f}" for r in results[frames])
        print(f"{frames:>5} frames: peak RSS {peak[frames]:.0f} MiB (runs: {runs}), {speed[frames]:.1f} frames/s")
    ratio = peak[2000] / peak[200]
    print(f"peak memory ratio 2000/200 frames: {ratio:.3f} (target <= 1.3) -> {'OK' if ratio <= 1.3 else 'FAIL'}")


if __name__ == "__main__":
    main()
