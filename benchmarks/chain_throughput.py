"""Frames/s of the chain end to end against its networks alone and its decode + encode alone.

On the same frames of one clip, in one process, interleaved and repeated (medians):

- networks alone: the chain's network step (segment, remap, synthesize, resize) on batches
  decoded beforehand;
- decode + encode alone: the clip decoded at the working size and encoded into an MP4 (x264), no
  networks, one thread;
- end to end, pipelined (`chain.engine.overlap`, what ``chain run`` does) and serial (``overlap=False``).

Then a breakdown of the pipelined run: the pipeline's fill (until the first batch reaches the
networks), the networks inside the run, the networks' waits for the decoder/writer, and the drain
(after the last batch: the queued writes, the encoder's flush, moving outputs into place). The
last line is ``end-to-end / networks-alone: R`` (frames/s ratio, pipelined run).

    python benchmarks/chain_throughput.py                       # deeplab-mnv2:voc + colorize, CPU
    python benchmarks/chain_throughput.py --spade-random        # + full-size SPADE-COCO, random weights
    python benchmarks/chain_throughput.py --device cuda --seg deeplab:resnet50 --seg-weights random \\
        --spade-random --batch 32 --clip 1080p.mp4 --frames 2000
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def build(args: argparse.Namespace):
    """The chain: ``--seg`` (+ real deeplab-mnv2 weights imported from ../shared) and the synthesizer."""
    import chain
    from chain.engine.pipeline import Chain

    weights = args.seg_weights
    if weights is None and args.seg.startswith("deeplab-mnv2"):
        from chain.importers.tflite import save_imported

        folder = tempfile.mkdtemp()
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        weights = str(save_imported(SHARED / "weights/deeplabv3_mnv2_voc_257.tflite",
                                    Path(folder) / "deeplab-mnv2-voc", label_space="voc"))
    pipeline = chain.build_chain(seg=args.seg, seg_weights=weights, synth="none" if args.spade_random else args.synth,
                                 device=args.device, threads=args.threads)
    if not args.spade_random:
        return pipeline
    import torch

    from chain.device import resolve_device
    from chain.labels import COCO_STUFF
    from chain.stages.spade import SpadeSynthesizer
    from models.spade import SPADEConfig, SPADEGenerator

    torch.manual_seed(0)
    device = resolve_device(args.device)
    generator = SPADEGenerator(SPADEConfig.coco()).to(device).eval()
    spade = SpadeSynthesizer(generator, label_space=COCO_STUFF, fit="squash", device=device,
                             default_background="grass", description="SPADE coco (random weights)")
    return Chain(segmenter=pipeline.segmenter, synthesizer=spade)


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    from chain.engine.batches import batches as read_batches
    from chain.engine.summary import StageTimer
    from chain.media import Trim, open_sink, open_source
    from chain.media.outputs import Outputs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=SHARED / "data/videos/pexels-koolshooters-7322716.mp4")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="256", help="working size (--size of chain run)")
    parser.add_argument("--seg", default="deeplab-mnv2:voc")
    parser.add_argument("--seg-weights", default=None)
    parser.add_argument("--synth", default="colorize")
    parser.add_argument("--spade-random", action="store_true", help="full-size SPADE-COCO, random weights, 256x256")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (chain's default: 1)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.spade_random and args.size == "256":
        args.size = "256x256"
    pipeline = build(args)
    trim = Trim(max_frames=args.frames)
    with open_source(args.clip, trim=trim, size=args.size) as source:
        info = source.info
        batches = list(read_batches(source, args.batch, StageTimer()))
    frames = sum(len(batch.indices) for batch in batches)
    print(f"{args.clip.name}: {frames} frames at {info.width}x{info.height}, batch {args.batch}, "
          f"{pipeline.segmenter.description if pipeline.segmenter else '-'} + "
          f"{pipeline.synthesizer.description if pipeline.synthesizer else '-'}, {args.device}; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)

    def networks() -> None:
        for batch in batches:
            pipeline._infer(batch, StageTimer())

    def decode_encode(workdir: Path) -> None:
        with open_source(args.clip, trim=trim, size=args.size) as frames_in:
            sink = open_sink(workdir / "copy.mp4", fps=frames_in.info.fps)
            for frame in frames_in:
                sink.write(frame.rgb, frame.time)
            sink.commit()

    marks: list[tuple[float, float]] = []  # (start, end) of each network step of the latest run
    infer = pipeline._infer

    def watched(batch, timer):
        started = time.perf_counter()
        try:
            return infer(batch, timer)
        finally:
            marks.append((started, time.perf_counter()))

    pipeline._infer = watched
    seconds: dict[str, list[float]] = {}
    stages: dict[str, list[dict[str, float]]] = {"pipelined": [], "serial": []}
    phases: list[tuple[float, float, float, float]] = []

    def end_to_end(name: str, workdir: Path) -> None:
        marks.clear()
        started = time.perf_counter()
        summary = pipeline(args.clip, Outputs.of(video=workdir / f"{name}.mp4"), trim=trim, size=args.size,
                           batch_size=args.batch, overlap=name == "pipelined")
        ended = time.perf_counter()
        seconds.setdefault(f"end to end, {name}", []).append(ended - started)
        stages[name].append(summary.stage_seconds)
        if name == "pipelined":
            inside = sum(end - start for start, end in marks)
            phases.append((marks[0][0] - started, inside, marks[-1][1] - marks[0][0] - inside, ended - marks[-1][1]))

    def alone(name: str, run) -> None:
        seconds.setdefault(name, []).append(timed(run))

    networks()  # warm-up: first-call allocations and lazy imports out of the timings
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            workdir = Path(folder)
            variants = [functools.partial(alone, "networks alone", networks),
                        functools.partial(alone, "decode + encode alone", functools.partial(decode_encode, workdir)),
                        functools.partial(end_to_end, "pipelined", workdir),
                        functools.partial(end_to_end, "serial", workdir)]
            for variant in variants[repeat % 4:] + variants[:repeat % 4]:  # each goes first in turn
                variant()
        print(f"  repeat {repeat + 1}: " + ", ".join(f"{k} {frames / v[-1]:.1f}" for k, v in seconds.items())
              + f" frames/s; load {os.getloadavg()[0]:.2f}", flush=True)

    median = {name: statistics.median(values) for name, values in seconds.items()}
    for name, value in median.items():
        print(f"{name:>24}: {frames / value:8.2f} frames/s  ({1000 * value / frames:7.2f} ms/frame)")
    for name, runs in stages.items():
        keys = sorted({key for run in runs for key in run})
        parts = ", ".join(f"{key} {1000 * statistics.median(run.get(key, 0) for run in runs) / frames:.2f}"
                          for key in keys)
        print(f"stages, {name} (ms/frame, each lane's own time): {parts}")
    fill, inside, waits, drain = (1000 * statistics.median(phase[i] for phase in phases) / frames for i in range(4))
    alone, end_to_end = (1000 * median[name] / frames for name in ("networks alone", "end to end, pipelined"))
    print(f"pipelined run (ms/frame): fill {fill:.2f} + networks {inside:.2f} + networks waiting {waits:.2f} "
          f"+ drain {drain:.2f}; networks alone {alone:.2f}, decode + encode alone "
          f"{1000 * median['decode + encode alone'] / frames:.2f}")
    unhidden = fill + waits + drain
    print(f"not overlapped: fill + waits + drain = {unhidden:.2f} ms/frame; networks slower beside the decoder and "
          f"writer by {inside - alone:+.2f} ms/frame; end to end {end_to_end:.2f} <= 1.05 x {alone:.2f} + "
          f"{unhidden:.2f}: {'yes' if end_to_end <= 1.05 * alone + unhidden else 'no'}; load {os.getloadavg()[0]:.2f}")
    print(f"end-to-end / networks-alone: {alone / end_to_end:.3f}")


if __name__ == "__main__":
    main()
