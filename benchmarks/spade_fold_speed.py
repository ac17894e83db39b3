"""What folding spectral norm into the weights saves: full-size SPADE-COCO (random weights), eval mode.

Times, interleaved on the same input: the generator's forward with spectral norm recomputed
every call (today's eval forward) and the folded one (`SPADEGenerator.prepare_for_inference`),
and the sigma recomputation alone (every `SpectralNormConv2d.normalized_weight`). Repeats,
medians; prints the load average, since a busy machine moves every figure.

    python benchmarks/spade_fold_speed.py [--repeats 5] [--size 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

from models.spade import SPADEConfig, SPADEGenerator, SpectralNormConv2d, make_spade_input


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = SPADEConfig.coco(crop_size=args.size)
    unfolded = SPADEGenerator(config).eval().to(memory_format=torch.channels_last)
    folded = copy.deepcopy(unfolded).prepare_for_inference().to(memory_format=torch.channels_last)
    labels = torch.randint(0, 183, (1, args.size // 32, args.size // 32))
    labels = labels.repeat_interleave(32, 1).repeat_interleave(32, 2)  # blocks, like a segmentation
    segmap = make_spade_input(labels, labels, config, channels_last=True)
    layers = [m for m in unfolded.modules() if isinstance(m, SpectralNormConv2d)]

    times: dict[str, list[float]] = {"unfolded": [], "folded": [], "sigma": []}
    with torch.inference_mode():
        unfolded(segmap), folded(segmap)  # warm-up
        for _ in range(args.repeats):
            for name, run in (("unfolded", lambda: unfolded(segmap)), ("folded", lambda: folded(segmap)),
                              ("sigma", lambda: [layer.normalized_weight() for layer in layers])):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"SPADE-COCO {args.size}x{args.size}, batch 1, {args.threads} thread(s), {len(layers)} spectral-norm convs, "
          f"load {os.getloadavg()[0]:.2f}")
    for name, ms in median.items():
        print(f"{name:>9}: {ms:8.1f} ms (median of {args.repeats})")
    print(f"saved per forward: {median['unfolded'] - median['folded']:.1f} ms; "
          f"folded / unfolded: {median['folded'] / median['unfolded']:.3f}")


if __name__ == "__main__":
    main()
