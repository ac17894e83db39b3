"""Frames per second of the torch DeepLabV3-MobileNetV2 port against the TF Lite runtime.

Both on this CPU with 2 threads (``torch.set_num_threads(2)``, interpreter
``num_threads=2``), on the same real frame at each network's square input size. TF Lite
runs batch 1 (the files are frozen so); the port runs batch 1 and larger batches, compared
per frame. Each figure is the median (and the best) of ``--repeats`` timed runs, TF Lite
and the port interleaved in every repeat so a noisy machine slows both alike; the ratio is
the port's frames/s over TF Lite's, measured in this one run.

Port variants at batch 1: ``torch.no_grad`` or ``torch.inference_mode``, NCHW or
channels_last memory format; the fastest is then run at every batch size.

    python benchmarks/deeplab_mnv2_speed.py [--repeats 7] [--frames 8] [--batches 1,2,4,8] [--networks voc,ade20k]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.importers.tflite import import_tflite  # noqa: E402
from models.deeplab_mnv2 import DeepLabMNv2  # noqa: E402
from support.tflite_reference import TFLiteReference, reference_input  # noqa: E402

NETWORKS = {"voc": "deeplabv3_mnv2_voc_257.tflite", "ade20k": "deeplabv3_mnv2_ade20k_513.tflite"}
THREADS = 2


def frames_per_second(step: Callable[[], None], frames_per_call: int, frames: int) -> float:
    """Time enough calls of ``step`` to cover ``frames`` frames, after one warm-up call."""
    step()
    calls = max(1, -(-frames // frames_per_call))
    start = time.perf_counter()
    for _ in range(calls):
        step()
    return calls * frames_per_call / (time.perf_counter() - start)


def port_step(model: DeepLabMNv2, image: np.ndarray, batch: int, mode: str, channels_last: bool) -> Callable[[], None]:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].repeat(batch, 1, 1, 1).contiguous()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        context = torch.inference_mode() if mode == "inference_mode" else torch.no_grad()
        with context:
            model(x)

    return step


def measure(
    variants: dict[str, tuple[Callable[[], None], int]], reference: Callable[[], None], repeats: int, frames: int
) -> tuple[tuple[float, float], dict[str, tuple[float, float]]]:
    """(median, best) frames/s of the TF Lite reference and of each port variant, interleaved."""
    tflite_runs: list[float] = []
    port_runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        tflite_runs.append(frames_per_second(reference, 1, frames))
        for name, (step, batch) in variants.items():
            port_runs[name].append(frames_per_second(step, batch, frames))
    summary = lambda runs: (statistics.median(runs), max(runs))  # noqa: E731
    return summary(tflite_runs), {name: summary(runs) for name, runs in port_runs.items()}


def report(label: str, port: tuple[float, float], tflite: tuple[float, float]) -> None:
    print(
        f"  {label:44s} median {port[0]:6.2f} frames/s (ratio {port[0] / tflite[0]:.2f})"
        f"   best {port[1]:6.2f} (ratio {port[1] / tflite[1]:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frames", type=int, default=8, help="frames timed per repeat and variant")
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--networks", default="voc,ade20k", help="which of voc, ade20k to time")
    parser.add_argument("--shared", default=None, help="the shared folder (default ../shared or $CHAIN_SHARED)")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    shared = Path(args.shared or os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    photo = Image.open(shared / "data" / "photos" / "astronaut.png")
    print(f"torch {torch.__version__}, {THREADS} threads, medians of {args.repeats} repeats")
    # Other processes on a 2-core machine distort torch's OpenMP threads far more than TF
    # Lite's pool; the load average says how trustworthy the ratios are.
    print("load average at start (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    for space in args.networks.split(","):
        file_name = NETWORKS[space]
        weights = shared / "weights" / file_name
        config, state_dict, _ = import_tflite(weights, label_space=space)
        model = DeepLabMNv2(config).eval()
        model.load_state_dict(state_dict)
        reference = TFLiteReference(weights, num_threads=THREADS)
        image = reference_input(photo, reference.size)
        tflite_step = lambda reference=reference, image=image: reference(image)  # noqa: E731

        variants = {}
        for mode in ("no_grad", "inference_mode"):
            for channels_last in (False, True):
                name = f"{mode}{' + channels_last' if channels_last else ''}"
                variants[name] = (port_step(model, image, 1, mode, channels_last), 1)
        tflite_fps, port_fps = measure(variants, tflite_step, args.repeats, args.frames)
        print(f"\n{file_name} ({reference.size}x{reference.size}); ratios are port / TF Lite frames/s")
        report("TF Lite, batch 1", tflite_fps, tflite_fps)
        for name, fps in port_fps.items():
            report(f"port batch 1, {name}", fps, tflite_fps)

        best = max(port_fps, key=lambda name: port_fps[name][0])
        mode = "inference_mode" if best.startswith("inference_mode") else "no_grad"
        channels_last = best.endswith("channels_last")
        batched = {
            f"port batch {batch}, {best}": (port_step(model, image, batch, mode, channels_last), batch)
            for batch in (int(b) for b in args.batches.split(","))
        }
        tflite_fps, port_fps = measure(batched, tflite_step, args.repeats, args.frames)
        report("TF Lite, batch 1 (second pass)", tflite_fps, tflite_fps)
        for name, fps in port_fps.items():
            report(name, fps, tflite_fps)
        top = max(port_fps, key=lambda name: port_fps[name][0])
        print(f"  => fastest: {top}, {port_fps[top][0] / tflite_fps[0]:.2f}x TF Lite's median frames/s")
    print("\nload average at end (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
