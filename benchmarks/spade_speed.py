"""Frames/s of the full-size SPADE-COCO generator (random weights) at 256x256, batch 1 and 4,
and the share of time the chain spends outside the network.

For each batch size, one timed step is what the chain does per batch after segmentation:
convert + remap labels, build the one-hot + edge input, run the generator, turn the
result into uint8 frames, resize to the output size, and encode them (x264). The network's
own share is timed on the same inputs with the generator alone. Repeats, medians.

    python benchmarks/spade_speed.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from chain.engine.pipeline import Chain
from chain.engine.render import resize_frames
from chain.labels import COCO_STUFF, VOC
from chain.media import open_sink
from chain.stages.lookup import PaletteSegmenter
from chain.stages.spade import SpadeSynthesizer
from models.spade import SPADEConfig, SPADEGenerator, count_parameters, make_spade_input


def voc_scene(batch: int, size: int, seed: int) -> np.ndarray:
    """VOC label maps with a few large blobs, like a segmenter's output."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, size, size), dtype=np.uint8)
    for frame in labels:
        for _ in range(6):
            y, x = rng.integers(0, size - 64, 2)
            frame[y:y + rng.integers(32, 128), x:x + rng.integers(32, 128)] = rng.integers(1, 21)
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batches", default="1,4")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    generator = SPADEGenerator(SPADEConfig.coco())
    print(f"SPADE-COCO generator: {count_parameters(generator):,} parameters, {args.threads} threads, CPU")
    synthesizer = SpadeSynthesizer(generator, label_space=COCO_STUFF, fit="squash", default_background="grass")
    chain = Chain(segmenter=PaletteSegmenter(VOC), synthesizer=synthesizer)

    for batch in (int(b) for b in args.batches.split(",")):
        voc = voc_scene(batch, 256, seed=batch)
        full, network = [], []
        with tempfile.TemporaryDirectory() as workdir:
            sink = open_sink(Path(workdir) / "out.mp4", fps=Fraction(25))
            synthesizer.synthesize(labels=chain.target_labels(voc), frames=None)  # warm-up
            for _ in range(args.repeats):
                started = time.perf_counter()
                images = synthesizer.synthesize(labels=chain.target_labels(voc), frames=None)
                for image in resize_frames(images, 256, 256):
                    sink.write(image, sink.frames_written / 25)  # the sink keeps each frame's time
                full.append(time.perf_counter() - started)

                segmap = make_spade_input(torch.from_numpy(chain.target_labels(voc).astype(np.int64)),
                                          torch.from_numpy(chain.target_labels(voc).astype(np.int64)),
                                          generator.config, channels_last=True)
                with torch.inference_mode():  # the same memory format the synthesizer feeds
                    started = time.perf_counter()
                    generator(segmap)
                    network.append(time.perf_counter() - started)
            sink.commit()
        full_s, net_s = statistics.median(full), statistics.median(network)
        print(f"batch {batch}: {batch / full_s:.3f} frames/s through the chain step "
              f"({full_s / batch:.2f} s/frame; network alone {net_s / batch:.2f} s/frame); "
              f"outside the network: {100 * (full_s - net_s) / full_s:.1f} % (target < 5 %)")


if __name__ == "__main__":
    main()
