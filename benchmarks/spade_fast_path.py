"""The SPADE fast path on one device: frames/s of full-size SPADE-COCO (random weights) as the
``spade`` stage runs it, variant by variant, and how far each variant's output is from fp32.

Variants, each on the same label batch, interleaved, repeats, medians:

* ``fp32 unfolded``: eval forward with spectral norm recomputed every call (before this work);
* ``fp32 folded``: `SPADEGenerator.prepare_for_inference` (spectral norm folded once);
* ``<dtype> folded (the stage)`` (CUDA only): the stage's inference precision (`chain.device.inference_context`),
  the input built in that dtype; also ``bf16 folded`` where the card has bf16, for comparison;
* ``compiled`` (``--compile``): torch.compile of the folded generator under the stage's precision,
  its warm-up timed apart.

Every variant's frames are compared with the fp32 folded ones in 8-bit levels (max and mean
|difference|). Prints the software versions and, on the CPU, the load average.

    python benchmarks/spade_fast_path.py --device cuda --batch 16 [--compile] [--repeats 5]
    python benchmarks/spade_fast_path.py --device cpu --batch 1 --ngf 8   # a quick check that it runs
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable

import torch

from chain.device import autocast, inference_autocast_dtype
from models.spade import SPADEConfig, SPADEGenerator, make_spade_input


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_levels(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] to 8-bit levels, as the stage rounds them."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ngf", type=int, default=64, help="64: NVlabs' full size")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = SPADEConfig.coco(crop_size=args.size, ngf=args.ngf)
    unfolded = SPADEGenerator(config).eval().to(device, memory_format=torch.channels_last)
    folded = copy.deepcopy(unfolded).prepare_for_inference().to(memory_format=torch.channels_last)
    blocks = torch.randint(0, config.label_nc + 1, (args.batch, args.size // 32, args.size // 32), device=device)
    labels = blocks.repeat_interleave(32, 1).repeat_interleave(32, 2)  # regions, like a segmentation

    def variant(generator: torch.nn.Module, dtype: torch.dtype | None) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            segmap = make_spade_input(labels, labels, config, dtype or torch.float32, channels_last=True)
            with autocast(device, dtype):
                return generator(segmap)
        return run

    variants = {"fp32 unfolded": variant(unfolded, None), "fp32 folded": variant(folded, None)}
    stage_dtype = inference_autocast_dtype(device)
    if stage_dtype is not None:
        variants[f"{str(stage_dtype).removeprefix('torch.')} folded (the stage)"] = variant(folded, stage_dtype)
        if stage_dtype != torch.bfloat16 and torch.cuda.is_bf16_supported():
            variants["bf16 folded"] = variant(folded, torch.bfloat16)
    warm_up_s = None
    with torch.inference_mode():
        if args.compile:
            compiled = torch.compile(folded)
            variants["compiled (the stage's precision)"] = variant(compiled, stage_dtype)
            started = time.perf_counter()
            variants["compiled (the stage's precision)"]()
            synchronize(device)
            warm_up_s = time.perf_counter() - started
        outputs = {name: run() for name, run in variants.items()}  # warm-up, and the frames compared
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, run in variants.items():
                synchronize(device)
                started = time.perf_counter()
                run()
                synchronize(device)
                seconds[name].append(time.perf_counter() - started)
    reference = to_levels(outputs["fp32 folded"])
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, load {os.getloadavg()[0]:.2f}"
    print(f"SPADE-COCO ngf {args.ngf} at {args.size}x{args.size}, batch {args.batch}, {where}; torch {torch.__version__}"
          + (f", CUDA {torch.version.cuda}" if device.type == "cuda" else ""))
    if warm_up_s is not None:
        print(f"torch.compile warm-up: {warm_up_s:.1f} s")
    for name, times in seconds.items():
        difference = (to_levels(outputs[name]) - reference).abs()
        print(f"{name:>34}: {args.batch / statistics.median(times):8.1f} frames/s; vs fp32 folded: max "
              f"{difference.max().item():.0f}, mean {difference.mean().item():.3f} levels")


if __name__ == "__main__":
    main()
