"""Decode speed and fidelity: chain's PyAV source against torchcodec (CPU, and NVDEC where CUDA is).

torchcodec is not a dependency of chain (docs/gpu-notes.md says why); install it to run this:
``pip install torchcodec`` (a build matching torch) plus FFmpeg's shared libraries (Debian:
``apt-get install ffmpeg``). Decodes the first N frames of VIDEO to RGB with each decoder,
interleaved, repeats, medians; prints frames/s, the largest pixel difference from PyAV's frames
and the load average.

    python benchmarks/torchcodec_decode.py [VIDEO] [--frames 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from chain.media import Trim, open_source


def pyav(path: Path, count: int) -> np.ndarray:
    with open_source(path, trim=Trim(max_frames=count)) as source:
        return np.stack([frame.rgb for frame in source])


def torchcodec_on(device: str) -> Callable[[Path, int], np.ndarray]:
    from torchcodec.decoders import VideoDecoder

    def decode(path: Path, count: int) -> np.ndarray:
        decoder = VideoDecoder(str(path), dimension_order="NHWC", device=device, seek_mode="approximate")
        frames = decoder.get_frames_in_range(0, min(count, len(decoder))).data
        if frames.is_cuda:
            torch.cuda.synchronize()
        return frames.cpu().numpy()

    return decode


def main() -> None:
    shared = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[2] / "shared")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", type=Path, default=shared / "data" / "videos" / "bigbuckbunny.mp4")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    try:
        import torchcodec
    except (ImportError, OSError) as error:  # OSError: FFmpeg's shared libraries are missing
        raise SystemExit(f"torchcodec is not usable here ({str(error).splitlines()[0]}); see this file's docstring") from None
    decoders = {"pyav (chain)": pyav, "torchcodec cpu": torchcodec_on("cpu")}
    if torch.cuda.is_available():
        decoders["torchcodec cuda (NVDEC)"] = torchcodec_on("cuda")
    seconds: dict[str, list[float]] = {name: [] for name in decoders}
    results: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, decode in decoders.items():
            started = time.perf_counter()
            results[name] = decode(args.video, args.frames)
            seconds[name].append(time.perf_counter() - started)
    reference = results["pyav (chain)"]
    print(f"{args.video.name}: {len(reference)} frames {reference.shape[2]}x{reference.shape[1]}; torch "
          f"{torch.__version__}, torchcodec {torchcodec.__version__}; load {os.getloadavg()[0]:.2f}")
    for name, frames in results.items():
        differs = (np.abs(frames.astype(int) - reference.astype(int)).max()
                   if frames.shape == reference.shape else f"shape {frames.shape}")
        print(f"{name:>24}: {len(frames) / statistics.median(seconds[name]):8.1f} frames/s, "
              f"max |difference from PyAV| {differs}")


if __name__ == "__main__":
    main()
