"""CPU frames/s of the deeplab-mnv2 paths against the TF Lite runtime, idle and with a busy core.

Paths: the torch port at 1 and 2 intra-op threads, ONNX Runtime (the port exported with
``torch.onnx.export``) at 1 and 2 threads (and 2 without spin-waiting) when ``onnxruntime`` is installed, and the TF Lite
runtime (ai-edge-litert) at 1 and 2 threads, all on the same real frame at the network's square
input size, batch 1, network only (chain's resize and argmax are the same for every path).
Conditions: "idle" (whatever else the machine runs; the load average is printed) and "busy"
(this script also runs a pure-Python busy loop, one more process competing for a core).
Every repeat times every path in turn, so both conditions and all paths see the same machine;
each figure is the median of ``--repeats``. The last line: the best chain path's median frames/s
over the best TF Lite setting's, under the busy condition (the one users hit on a shared laptop)
and idle.

    python benchmarks/cpu_segmenter_speed.py [--repeats 7] [--frames 6] [--network voc]
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

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.importers.tflite import import_tflite  # noqa: E402
from models.deeplab_mnv2 import DeepLabMNv2  # noqa: E402
from tests.tflite_reference import TFLiteReference, reference_input  # noqa: E402

NETWORKS = {"voc": "deeplabv3_mnv2_voc_257.tflite", "ade20k": "deeplabv3_mnv2_ade20k_513.tflite"}


def frames_per_second(step: Callable[[], None], frames: int) -> float:
    """Frames/s over ``frames`` calls of ``step``, after one warm-up call."""
    step()
    start = time.perf_counter()
    for _ in range(frames):
        step()
    return frames / (time.perf_counter() - start)


def torch_path(model: DeepLabMNv2, image: np.ndarray, threads: int) -> Callable[[], None]:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last)

    def step() -> None:
        torch.set_num_threads(threads)  # process-wide: set before every call, the paths interleave
        with torch.inference_mode():
            model(x)

    return step


def onnx_paths(model: DeepLabMNv2, image: np.ndarray, folder: Path) -> dict[str, Callable[[], None]]:
    """ONNX Runtime sessions at 1 and 2 threads; none when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: no ONNX paths")
        return {}
    x = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    path = folder / "deeplab.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["pixels"], output_names=["logits"], dynamo=False)
    paths = {}
    for threads, spin in ((1, True), (2, True), (2, False)):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if not spin:  # idle workers sleep instead of spinning: kinder to a busy core
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {"pixels": x.numpy()}
        paths[f"onnx {threads} thread{'s' if threads > 1 else ''}{'' if spin else ' no spin'}"] = (
            lambda session=session, feed=feed: session.run(None, feed))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frames", type=int, default=6, help="frames timed per repeat, path and condition")
    parser.add_argument("--network", default="voc", choices=tuple(NETWORKS))
    parser.add_argument("--shared", default=None, help="the shared folder (default ../shared or $CHAIN_SHARED)")
    args = parser.parse_args()
    shared = Path(args.shared or os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    weights = shared / "weights" / NETWORKS[args.network]
    config, state_dict, _ = import_tflite(weights, label_space=args.network)
    model = DeepLabMNv2(config).eval()
    model.load_state_dict(state_dict)
    model = model.to(memory_format=torch.channels_last)
    references = {threads: TFLiteReference(weights, num_threads=threads) for threads in (1, 2)}
    image = reference_input(Image.open(shared / "data" / "photos" / "astronaut.png"), references[1].size)

    paths: dict[str, Callable[[], None]] = {
        "torch 1 thread": torch_path(model, image, 1), "torch 2 threads": torch_path(model, image, 2)}
    with tempfile.TemporaryDirectory() as folder:
        paths.update(onnx_paths(model, image, Path(folder)))
    for threads, reference in references.items():
        paths[f"tflite {threads} thread{'s' if threads > 1 else ''}"] = (
            lambda reference=reference: reference(image))

    print(f"{NETWORKS[args.network]}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"medians of {args.repeats} repeats x {args.frames} frames")
    print("load average at start (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for condition in ("idle", "busy"):
            busy = (subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    if condition == "busy" else None)
            time.sleep(0.5 if busy else 0)  # let the busy loop start before the first path is timed
            try:
                for name, step in paths.items():
                    runs.setdefault((condition, name), []).append(frames_per_second(step, args.frames))
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    print("load average at end (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    medians = {key: statistics.median(values) for key, values in runs.items()}
    ratios = {}
    for condition in ("idle", "busy"):
        tflite = max(fps for (c, name), fps in medians.items() if c == condition and name.startswith("tflite"))
        print(f"\n{condition}: median frames/s (ratio to the best TF Lite setting, {tflite:.2f} frames/s)")
        for (c, name), fps in medians.items():
            if c == condition:
                print(f"  {name:24s} {fps:7.2f}   {fps / tflite:5.2f}x   (min {min(runs[c, name]):.2f},"
                      f" max {max(runs[c, name]):.2f})")
        best = max((name for c, name in medians if c == condition and not name.startswith("tflite")),
                   key=lambda name: medians[condition, name])
        ratios[condition] = (best, medians[condition, best] / tflite)
    print("\nbest chain path / best TF Lite frames/s: " + ", ".join(
        f"{condition} {ratio:.2f} ({name})" for condition, (name, ratio) in ratios.items()))


if __name__ == "__main__":
    main()
