"""CPU frames/s of chain's deeplab-mnv2 stage against the TF Lite runtime, idle and with a busy core.

Every path turns the same decoded video frames (one at a time, batch 1 as ``chain run``) into
labels at the frame's size:

- ``chain N thr``: the ``deeplab-mnv2:voc`` segmenter as ``chain run`` builds it (its CPU
  default, the ONNX Runtime backend) with ``--threads N``, or without (``default``: see
  `chain.device.onnx_threads`; run this script without $OMP_NUM_THREADS): one ONNX Runtime graph per
  frame size, with the resize and normalisation of small frames and the labels of small outputs in it
  (`chain.stages.onnx_graphs`; larger frames: resized in torch, labels by `chain.stages.resized_argmax`);
- ``tflite N thr``: the TF Lite runtime (ai-edge-litert, XNNPACK) at N threads on the same file,
  with the lean pre- and post-processing a TF Lite user would write in OpenCV (area resize to
  257x257, scale to [-1, 1]; bilinear resize of the 21 logit maps to the frame, argmax), reading
  and writing the runtime's buffers in place (`TFLiteReference.invoke_in_place`);
- ``tflite N thr net``: the TF Lite runtime's network call alone, no pre- or post-processing: the
  strictest reference, which chain's whole per-frame path is also compared with.

Conditions: "idle" (whatever else the machine runs; the load average is printed) and "busy"
(this script also runs a pure-Python busy loop, one more process competing for a core). Every
repeat times every path in turn under both conditions, so all see the same machine; each figure
is the median of ``--repeats``. The last line: the best chain setting's median frames/s over the
best TF Lite setting's, per clip and condition, then over TF Lite's network alone.

    python benchmarks/cpu_segmenter_speed.py [--repeats 7] [--frames 24] [--clips carphone_pristine.mp4 ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import chain  # noqa: E402, F401, I001  (before torch, as in `chain run`: it makes OpenMP's threads sleep)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from chain.device import configure_cpu_threads  # noqa: E402
from chain.importers.tflite import save_imported  # noqa: E402
from chain.media import Trim, open_source  # noqa: E402
from chain.stages import StageContext, build_stage  # noqa: E402
from support.tflite_reference import TFLiteReference  # noqa: E402

NETWORK = "deeplabv3_mnv2_voc_257.tflite"
CLIPS = ("carphone_pristine.mp4", "bigbuckbunny.mp4")


def seconds(step: Callable[[np.ndarray], object], frames: list[np.ndarray]) -> tuple[float, float]:
    """Wall and CPU (this process, all threads) seconds per frame of ``step`` over ``frames``."""
    start, cpu = time.perf_counter(), time.process_time()
    for frame in frames:
        step(frame)
    return (time.perf_counter() - start) / len(frames), (time.process_time() - cpu) / len(frames)


def chain_path(checkpoint: Path, threads: int | None) -> Callable[[np.ndarray], object]:
    """The ``deeplab-mnv2:voc`` stage as ``chain run --threads N`` builds it (None: no --threads)."""
    segmenter = build_stage("segmenter", "deeplab-mnv2:voc", StageContext(weights=str(checkpoint), threads=threads))
    index = np.zeros(1, np.int64)

    def step(frame: np.ndarray) -> object:
        configure_cpu_threads(threads)  # torch's share (resize, normalise) as chain run sets it
        return segmenter.segment(frame[None], indices=index)

    return step


def tflite_path(reference: TFLiteReference, *, network_only: bool) -> Callable[[np.ndarray], object]:
    """The TF Lite runtime with OpenCV pre- and post-processing, or its network call alone; both
    without copies of the runtime's input or output (`TFLiteReference.invoke_in_place`)."""
    size = reference.size
    still = np.zeros((size, size, 3), np.float32)

    def step(frame: np.ndarray) -> object:
        if network_only:
            reference.invoke_in_place(still)
            return None
        pixels = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
        logits = reference.invoke_in_place(pixels)
        return cv2.resize(logits, frame.shape[1::-1], interpolation=cv2.INTER_LINEAR).argmax(axis=-1)

    return step


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    with open_source(path, trim=Trim(max_frames=count)) as source:
        return [frame.rgb for frame in source]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frames", type=int, default=24, help="frames timed per repeat, path, clip and condition")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), help="clips in the shared data/videos folder")
    parser.add_argument("--shared", default=None, help="the shared folder (default ../shared or $CHAIN_SHARED)")
    args = parser.parse_args()
    shared = Path(args.shared or os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    weights = shared / "weights" / NETWORK
    clips = {name: read_frames(shared / "data" / "videos" / name, args.frames) for name in args.clips}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = save_imported(weights, Path(folder) / "deeplab-mnv2-voc", label_space="voc")
        paths: dict[str, Callable[[np.ndarray], object]] = {"chain default thr": chain_path(checkpoint, None)}
        for threads in (1, 2):
            paths[f"chain {threads} thr"] = chain_path(checkpoint, threads)
            reference = TFLiteReference(weights, num_threads=threads)
            paths[f"tflite {threads} thr"] = tflite_path(reference, network_only=False)
            paths[f"tflite {threads} thr net"] = tflite_path(reference, network_only=True)
        for frames in clips.values():  # warm-up: exports, sessions, caches
            for step in paths.values():
                step(frames[0])

        print(f"{NETWORK}, torch {torch.__version__}, {os.cpu_count()} CPUs, batch 1, "
              f"medians of {args.repeats} repeats x {args.frames} frames")
        print("load average at start (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        runs: dict[tuple[str, str, str], list[float]] = {}
        cpu: dict[tuple[str, str, str], list[float]] = {}
        for _ in range(args.repeats):
            for condition in ("idle", "busy"):
                busy = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        if condition == "busy" else None)
                time.sleep(0.5 if busy else 0)  # let the busy loop start before the first path is timed
                try:
                    for clip, frames in clips.items():
                        for name, step in paths.items():
                            time.sleep(0.1)  # the path before's idle workers stop spinning (TF Lite's and ours)
                            wall, used = seconds(step, frames)
                            runs.setdefault((clip, condition, name), []).append(1 / wall)
                            cpu.setdefault((clip, condition, name), []).append(1000 * used)
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
        print("load average at end (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    report(runs, cpu, clips)


def report(runs: dict[tuple[str, str, str], list[float]], cpu: dict[tuple[str, str, str], list[float]],
           clips: dict[str, list[np.ndarray]]) -> None:
    """Medians per clip and condition (frames/s; CPU ms per frame, which load disturbs less), and the ratio line."""
    medians = {key: statistics.median(values) for key, values in runs.items()}
    ratios, strict = [], []
    for clip, frames in clips.items():
        for condition in ("idle", "busy"):
            here = {name: fps for (c, cond, name), fps in medians.items() if c == clip and cond == condition}
            best = {kind: max((n for n in here if n.startswith(kind[0]) and n.endswith(kind[1])), key=here.get)
                    for kind in (("chain", "thr"), ("tflite", "thr"), ("tflite", "net"))}
            print(f"\n{clip} {frames[0].shape[1]}x{frames[0].shape[0]}, {condition}: median frames/s "
                  f"(ratio to the best TF Lite path, {best['tflite', 'thr']})")
            for name, fps in here.items():
                values = runs[clip, condition, name]
                print(f"  {name:20s} {fps:7.2f}   {fps / here[best['tflite', 'thr']]:5.2f}x   "
                      f"(min {min(values):.2f}, max {max(values):.2f})   "
                      f"CPU {statistics.median(cpu[clip, condition, name]):6.2f} ms/frame")
            chain_fps = here[best["chain", "thr"]]
            ratios.append(f"{clip.split('_')[0].split('.')[0]} {condition} {chain_fps / here[best['tflite', 'thr']]:.2f}")
            strict.append(f"{chain_fps / here[best['tflite', 'net']]:.2f}")
    print("\nchain stage / TF Lite path frames/s: " + ", ".join(ratios)
          + f"; over TF Lite's network alone: {', '.join(strict)}")


if __name__ == "__main__":
    main()
