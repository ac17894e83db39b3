"""Frames/s of the smallest COCO-panoptic segmenter (Mask2Former Swin-T) at 512 px on this machine.

The model has the architecture of ``facebook/mask2former-swin-tiny-coco-panoptic`` (``mask2former:coco``)
with random weights (no download is needed: its config is built here), saved as a transformers
folder and loaded through ``--seg hf:FOLDER``, the same code path as the real checkpoint. One
timed step is what the chain does per batch: the image processor, the network and the
semantic post-processing to a 512x512 label map. The network alone is timed on the same
inputs to give the share spent around it. Batch sizes are interleaved, repeats, medians.

    python benchmarks/hf_segmenter_speed.py [--repeats 3] [--threads 2] [--batches 1 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # support/tiny_transformers.py writes the model
from chain.device import inference_context  # noqa: E402
from chain.labels import COCO_PANOPTIC  # noqa: E402
from chain.stages import StageContext, build_stage  # noqa: E402
from support.tiny_transformers import write_mask2former  # noqa: E402

SIDE = 512


def frames(batch: int, seed: int) -> np.ndarray:
    """Smooth random pictures (blurred noise): the processor and post-processing see real-looking work."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand((batch, 3, SIDE // 16, SIDE // 16), generator=generator)
    pictures = torch.nn.functional.interpolate(noise, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    return (pictures.permute(0, 2, 3, 1) * 255).to(torch.uint8).numpy()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        write_mask2former(Path(folder), COCO_PANOPTIC.names[:133], tiny=False, short_side=SIDE)
        segmenter = build_stage("segmenter", f"hf:{folder}", StageContext(device=device))
    parameters = sum(p.numel() for p in segmenter.model.parameters()) / 1e6
    print(f"{segmenter.description}: {parameters:.1f} M parameters, {args.threads} threads, {device}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    inputs = {batch: frames(batch, seed=batch) for batch in args.batches}
    for batch in args.batches:  # warm-up: allocator, kernels
        segmenter.segment(inputs[batch], indices=np.arange(batch))
    step: dict[int, list[float]] = {batch: [] for batch in args.batches}
    network: dict[int, list[float]] = {batch: [] for batch in args.batches}
    for _ in range(args.repeats):
        for batch in args.batches:  # interleaved, so a change in machine load hits every variant
            sync(device)
            start = time.perf_counter()
            labels = segmenter.segment(inputs[batch], indices=np.arange(batch))
            sync(device)
            step[batch].append(time.perf_counter() - start)
            assert labels.shape == (batch, SIDE, SIDE)
            pixel_values = segmenter.processor(images=list(torch.from_numpy(inputs[batch]).permute(0, 3, 1, 2)),
                                               return_tensors="pt")["pixel_values"].to(device)
            sync(device)
            start = time.perf_counter()
            with torch.inference_mode(), inference_context(device):
                segmenter.model(pixel_values=pixel_values)
            sync(device)
            network[batch].append(time.perf_counter() - start)
    print(f"input {SIDE}x{SIDE} (network input {tuple(pixel_values.shape[-2:])}), {args.repeats} repeats, medians:")
    for batch in args.batches:
        total, net = statistics.median(step[batch]), statistics.median(network[batch])
        print(f"  batch {batch}: {batch / total:.3f} frames/s ({total / batch:.2f} s/frame); network alone "
              f"{net / batch:.2f} s/frame = {net / total:.0%} of the step")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
