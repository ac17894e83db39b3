"""How steady chain's labels and paintings are, judged from its outputs with a flow chain does not use.

Each setting is a real `chain.run` on each shared clip (the DeepLabV3-MobileNetV2 VOC port,
imported from ../shared into a temporary folder), writing its labels (`--save-labels`) and its
painting as lossless PNGs. The judge then reads the input, the labels and the painting back and
measures them along the input's motion with Farneback's optical flow (`chain.steadiness` with
``flow="farneback"``; chain itself smooths and reports with DIS), forward-backward checked:

- flicker: share of pixels whose label changes between consecutive frames (plain), and its ratio
  to the per-frame labels' (setting "none");
- mc-flicker: the same along the motion, over the pixels the flow tracks reliably, and its ratio;
- agree: share of pixels whose label equals the per-frame label; agree-stable: the same where the
  per-frame labels themselves hold still over frames t-2..t+2 (plain agreement punishes removing
  the per-frame labels' own noise);
- E_warp: the painting's warping error over the input's own at the same size (Lai et al. 2018);
  /plain: over the per-frame ("none") painting's;
- PSNR: the painting against the per-frame ("none") painting, in dB;
- seg ms, dfl ms: the segment and deflicker stages' milliseconds per frame in the run's summary
  (smoothing included in segment).

With ``--seg none`` (e.g. ``--synth vaegan --synth-weights RUN --size 64x36``) only the painting's
figures are measured.

Settings run interleaved clip by clip; the load average is printed with the figures.

    python benchmarks/steadiness.py [--frames 60] [--size 256] [--synth colorize:coco-stuff]
        [--settings "none;--smooth ema:0.5;--smooth flow;--smooth window;--deflicker on"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import chain
from chain.importers.tflite import save_imported
from chain.media import Trim, open_source
from chain.steadiness import SteadinessTracker

SHARED = Path(os.environ.get("CHAIN_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def run_setting(clip: Path, setting: str, folder: Path, *, frames: int, size: str, seg: str, synth: str,
                checkpoint: Path, synth_weights: str | None) -> dict:
    """One `chain.run` of ``setting`` (extra command-line options, "none" for none); its summary."""
    options: dict[str, object] = {}
    words = [] if setting == "none" else shlex.split(setting)
    for flag, value in zip(words[::2], words[1::2]):
        options[flag.lstrip("-").replace("-", "_")] = value
    labelled = seg != "none"
    summary = chain.run(clip, f"{folder}/painting/", seg=seg, seg_weights=str(checkpoint) if labelled else None,
                        synth=synth, synth_weights=synth_weights, save_labels=f"{folder}/labels/" if labelled else None,
                        summary=str(folder / "run.json"), size=size, max_frames=frames, **options)
    return summary.to_dict()


def pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(path)) for path in sorted(folder.glob("[0-9]*.png"))]


def judge(clip: Path, folder: Path, reference: Path, *, frames: int, size: str) -> dict[str, float]:
    """The figures of one run's outputs in ``folder`` against the per-frame run's in ``reference``."""
    with open_source(clip, trim=Trim(max_frames=frames), size=size) as source:
        inputs = np.stack([frame.rgb for frame in source])
    painted, base_painted = np.stack(pngs(folder / "painting")), np.stack(pngs(reference / "painting"))
    squared = np.mean((painted.astype(np.float64) - base_painted) ** 2)
    figures = {"psnr": float("inf") if squared == 0 else float(10 * np.log10(255 ** 2 / squared))}
    if not (folder / "labels").is_dir():  # --seg none: the painting's figures only
        tracker = SteadinessTracker(flow="farneback")
        tracker.add_batch(inputs, None, painted)
        return {**figures, "flicker": float("nan"), "mc": float("nan"), "agree": float("nan"),
                "agree_stable": float("nan"), "ewarp": tracker.painted_warp_error / tracker.input_warp_error,
                "cuts": tracker.cuts}
    labels, base_labels = np.stack(pngs(folder / "labels")), np.stack(pngs(reference / "labels"))
    tracker = SteadinessTracker(flow="farneback")
    tracker.add_batch(inputs, labels, painted)
    stable = np.ones(base_labels.shape, bool)  # the per-frame labels hold still over t-2..t+2
    for shift in (1, 2):
        stable[shift:] &= base_labels[shift:] == base_labels[:-shift]
        stable[:-shift] &= base_labels[:-shift] == base_labels[shift:]
    return {**figures, "flicker": float(np.mean(labels[1:] != labels[:-1])), "mc": tracker.label_flicker,
            "agree": float(np.mean(labels == base_labels)), "agree_stable": float(np.mean((labels == base_labels)[stable])),
            "ewarp": tracker.painted_warp_error / tracker.input_warp_error, "cuts": tracker.cuts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="256", help="working and output size (short side)")
    parser.add_argument("--seg", default="deeplab-mnv2:voc", help="the segmenter (its VOC/ADE20K port is imported "
                        "from ../shared), or none")
    parser.add_argument("--synth", default="colorize:coco-stuff")
    parser.add_argument("--synth-weights", default=None, help="e.g. a `chain train vaegan` run folder")
    parser.add_argument("--settings", default="none;--smooth ema:0.5;--smooth flow",
                        help="semicolon-separated extra options per setting; 'none' (the per-frame run) is the reference")
    parser.add_argument("--clips", default="", help="comma-separated clip names (default: every shared clip)")
    args = parser.parse_args()
    settings = [text.strip() for text in args.settings.split(";")]
    if "none" not in settings:
        settings.insert(0, "none")
    clips = sorted((SHARED / "data" / "videos").glob("*.mp4"))
    if args.clips:
        clips = [clip for clip in clips if clip.stem in args.clips.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        os.environ["CHAIN_STATE"] = str(work / "state")  # these outputs are the benchmark's, not the user's
        space = args.seg.partition(":")[2] or "voc"
        checkpoint = (save_imported(SHARED / "weights" / f"deeplabv3_mnv2_{space}_{257 if space == 'voc' else 513}.tflite",
                                    work / space, label_space=space) if args.seg != "none" else work)
        print(f"steadiness judged with Farneback flow; {args.frames} frames per clip at short side {args.size}, "
              f"synth {args.synth}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        header = (f"{'clip':26s} {'setting':22s} {'flicker':>7s} {'ratio':>5s} {'mc':>6s} {'ratio':>5s} {'agree':>6s} "
                  f"{'stable':>6s} {'E_warp':>6s} {'/plain':>6s} {'PSNR':>5s} {'seg ms':>6s} {'dfl ms':>6s}")
        print(header)
        rows: dict[str, list[dict[str, float]]] = {}
        for clip in clips:
            figures: dict[str, dict[str, float]] = {}
            for number, setting in enumerate(settings):
                folder = work / clip.stem / str(number)
                summary = run_setting(clip, setting, folder, frames=args.frames, size=args.size, seg=args.seg,
                                      synth=args.synth, checkpoint=checkpoint, synth_weights=args.synth_weights)
                stage_ms = summary["stage_ms_per_frame"]
                figures[setting] = {"segment_ms": stage_ms.get("segment", 0.0),
                                    "deflicker_ms": stage_ms.get("deflicker", 0.0)}
            reference = work / clip.stem / "0"
            for number, setting in enumerate(settings):
                figures[setting].update(judge(clip, work / clip.stem / str(number), reference, frames=args.frames,
                                              size=args.size))
            base = figures["none"]
            for setting, r in figures.items():
                r["ratio"] = r["flicker"] / base["flicker"] if base["flicker"] else float("nan")
                r["mc_ratio"] = r["mc"] / base["mc"] if base["mc"] else float("nan")
                r["ewarp_plain"] = r["ewarp"] / base["ewarp"]
                rows.setdefault(setting, []).append(r)
                print(f"{clip.stem[:26]:26s} {setting[:22]:22s} {100 * r['flicker']:6.2f}% {r['ratio']:5.2f} "
                      f"{100 * r['mc']:5.2f}% {r['mc_ratio']:5.2f} {100 * r['agree']:5.1f}% "
                      f"{100 * r['agree_stable']:5.1f}% {r['ewarp']:6.2f} {r['ewarp_plain']:6.2f} "
                      f"{min(r['psnr'], 99):5.1f} {r['segment_ms']:6.1f} {r['deflicker_ms']:6.1f}")
        print("mean over clips:")
        for setting, values in rows.items():
            mean = {key: float(np.mean([v[key] for v in values])) for key in values[0]}
            print(f"{'':26s} {setting[:22]:22s} {100 * mean['flicker']:6.2f}% {mean['ratio']:5.2f} "
                  f"{100 * mean['mc']:5.2f}% {mean['mc_ratio']:5.2f} {100 * mean['agree']:5.1f}% "
                  f"{100 * mean['agree_stable']:5.1f}% {mean['ewarp']:6.2f} {mean['ewarp_plain']:6.2f} "
                  f"{min(mean['psnr'], 99):5.1f} {mean['segment_ms']:6.1f} {mean['deflicker_ms']:6.1f}")
        print(json.dumps({"load_average_end": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
