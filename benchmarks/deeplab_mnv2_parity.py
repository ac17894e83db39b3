"""Parity of the torch DeepLabV3-MobileNetV2 port with the TF Lite runtime, on real footage.

For both shared networks: the 4 photos and 20 evenly spaced frames of each of the 5 shared
videos, each resized (PIL bilinear) to the network's square input and fed identically to
both runtimes. Prints per-source label-map agreement and the largest logit difference,
then the VOC port's agreement with the reference masks beside bird/dog_segmentation.bmp.

The ADE20K file is dynamic-range quantized, so the TF Lite runtime adds int8 activation
noise the float network does not have; it is also compared with the runtime on the same
graph with float kernels (``float_weights_flatbuffer``), which isolates the port itself,
and with TF Lite's builtin kernels, which quantize that noise differently from XNNPACK.
The port is then run again with its hybrid convs emulating the stock runtime's int8
arithmetic (``activation_quantization="dynamic-int8-per-pixel"``, the segmenter's
``quantization=tflite``) against the stock runtime and, with ``--builtin-emulation``, emulating
the builtin kernels (``"dynamic-int8-per-image"``) against those.

    python benchmarks/deeplab_mnv2_parity.py [--frames 20] [--shared ../shared] [--builtin-emulation]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.importers.tflite import save_imported  # noqa: E402
from chain.weights.deeplab_mnv2 import load_deeplab_mnv2  # noqa: E402
from support.tflite_reference import TFLiteReference, float_weights_flatbuffer, reference_input  # noqa: E402

NETWORKS = {"voc": "deeplabv3_mnv2_voc_257.tflite", "ade20k": "deeplabv3_mnv2_ade20k_513.tflite"}
PHOTOS = ("astronaut.png", "chelsea.png", "motorcycle_left.png", "coffee.png")


def shared_dir(override: str | None) -> Path:
    found = override or os.environ.get("CHAIN_SHARED")
    return Path(found) if found else Path(__file__).resolve().parents[1].parent / "shared"


def video_frames(path: Path, count: int) -> list[Image.Image]:
    """``count`` frames spread evenly over the whole clip (PyAV decodes them all first)."""
    import av

    with av.open(str(path)) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, num=min(count, len(frames))).round().astype(int)
    return [frames[i] for i in picks]


def port_logits(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()


def compare(model, references: dict[str, TFLiteReference], sources: dict[str, list[Image.Image]]) -> None:
    """Print agreement / max |logit diff| per source and overall, against each reference."""
    size = next(iter(references.values())).size
    totals = {name: [0, 0, 0.0] for name in references}  # agreeing pixels, pixels, max diff
    for source, images in sources.items():
        row = []
        for name, reference in references.items():
            agree = pixels = 0
            worst = 0.0
            for image in images:
                x = reference_input(image, size)
                ours, theirs = port_logits(model, x), reference(x)
                agree += int((ours.argmax(-1) == theirs.argmax(-1)).sum())
                pixels += ours.shape[0] * ours.shape[1]
                worst = max(worst, float(np.abs(ours - theirs).max()))
            total = totals[name]
            total[0], total[1], total[2] = total[0] + agree, total[1] + pixels, max(total[2], worst)
            row.append(f"{name}: {100 * agree / pixels:8.4f}% max|dlogit| {worst:.2e}")
        print(f"  {source:32s} ({len(images):2d} images)  " + "   ".join(row))
    for name, (agree, pixels, worst) in totals.items():
        print(f"  OVERALL vs {name}: {100 * agree / pixels:.4f}% of {pixels} pixels agree, max|dlogit| {worst:.2e}")


def mask_agreement(model, photos: Path) -> None:
    """VOC port vs the reference masks; logits resized to the mask as the graph resizes them."""
    for name in ("bird", "dog"):
        image = Image.open(photos / f"{name}_segmentation.bmp")
        mask = np.asarray(Image.open(photos / f"{name}_segmentation_mask.bmp")).astype(int)
        x = torch.from_numpy(reference_input(image, model.config.input_size)).permute(2, 0, 1)[None]
        with torch.inference_mode():
            logits = F.interpolate(model(x), size=mask.shape, mode="bilinear", align_corners=True)
        labels = logits.argmax(1)[0].numpy()
        if name == "bird":  # VOC ids: 0 background, 3 bird
            print(f"  bird: {100 * (labels == mask).mean():.2f}% of pixels equal the mask's VOC ids")
        else:  # a trimap, not VOC ids: 0 dog, 1 background, 2 boundary band
            inside = mask != 2
            dog = labels == 12
            print(
                f"  dog: {100 * (dog == (mask == 0))[inside].mean():.2f}% dog/not-dog agreement outside the"
                f" mask's boundary band ({100 * (dog == (mask == 0)).mean():.2f}% counting the band as background)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per video (default 20)")
    parser.add_argument("--shared", default=None, help="the shared folder (default ../shared or $CHAIN_SHARED)")
    parser.add_argument("--builtin-emulation", action="store_true",
                        help="also compare the port emulating TF Lite's builtin hybrid kernels with those")
    args = parser.parse_args()
    torch.set_num_threads(2)
    shared = shared_dir(args.shared)
    photos = shared / "data" / "photos"
    sources = {photo: [Image.open(photos / photo)] for photo in PHOTOS}
    for video in sorted((shared / "data" / "videos").glob("*.mp4")):
        sources[video.name] = video_frames(video, args.frames)

    with tempfile.TemporaryDirectory() as tmp:
        for space, file_name in NETWORKS.items():
            weights = shared / "weights" / file_name
            model, meta = load_deeplab_mnv2(save_imported(weights, Path(tmp) / space, label_space=space))
            print(f"{file_name}: {meta['graph']}")
            references = {"tflite": TFLiteReference(weights)}
            if space == "ade20k":
                references["tflite-float-kernels"] = TFLiteReference(float_weights_flatbuffer(weights))
                # How much the runtime's own kernel choice moves the quantized network.
                references["tflite-builtin-kernels"] = TFLiteReference(weights, builtin_kernels=True)
            compare(model, references, sources)
            if model.config.hybrid_weight_scales:
                emulations = [("dynamic-int8-per-pixel", "tflite")]
                if args.builtin_emulation:
                    emulations.append(("dynamic-int8-per-image", "tflite-builtin-kernels"))
                for mode, name in emulations:
                    model.set_activation_quantization(mode)
                    print(f"  port with activation_quantization={mode!r} (emulating {name}):")
                    compare(model, {name: references[name]}, sources)
                model.set_activation_quantization("none")
            if space == "voc":
                mask_agreement(model, photos)


if __name__ == "__main__":
    main()
