#!/usr/bin/env bash
# Issue 13's GPU check in one device call: chain end to end against its networks alone, from a
# 1080p H.264 input, with DeepLabV3-R50 (random weights) + full-size SPADE-COCO (random weights)
# at 256x256; then SPADE's fast path (spectral norm folded, fp16/bf16 against fp32, compiled).
#
# Prepare here, once (the device machine has torch, typer, rich and OpenCV, but no PyAV, and
# nothing can be fetched there; ../shared does not travel, so the input is drawn there):
#   pip download av==18.1.0 --no-deps --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       --only-binary=:all: -d .gpu-wheels        # .gitignore'd
# Then: device run, carry [".gpu-wheels"], command "bash benchmarks/gpu_issue13.sh", timeout_s 600.
# Everything it prints is also under $OUT. Locally, for a dry run on the CPU:
#   DEVICE=cpu FRAMES=4 BATCH=2 bash benchmarks/gpu_issue13.sh
set -euo pipefail
OUT=${OUT:-$(mktemp -d)}
DEVICE=${DEVICE:-cuda}
FRAMES=${FRAMES:-2000}
BATCH=${BATCH:-32}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

if ! $PY -c "import av" 2>/dev/null; then
    $PY -m pip install --quiet --no-deps --no-index .gpu-wheels/*.whl
fi
$PY - <<'EOF' | tee "$OUT/versions.txt"
import platform, av, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, PyAV {av.__version__} (FFmpeg "
      f"{av.ffmpeg_version_info}), CUDA {torch.version.cuda}, "
      f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")
EOF

# A 1080p H.264 input: moving coloured discs on a gradient, 25 fps, x264 ultrafast (drawn, so
# nothing has to travel; what matters here is the decoder's work per frame, not the content).
INPUT="$OUT/input-1080p.mp4"
$PY - "$INPUT" "$FRAMES" <<'EOF'
import sys
import av
import numpy as np
path, frames = sys.argv[1], int(sys.argv[2])
height, width = 1080, 1920
ys, xs = np.mgrid[0:height, 0:width]
background = np.stack([xs * 255 // width, ys * 255 // height, np.full_like(xs, 96)], axis=-1).astype(np.uint8)
with av.open(path, "w") as container:
    stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "23"})
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for index in range(frames):
        image = background.copy()
        for disc in range(6):
            cy = int(height / 2 + 350 * np.sin(index / 20 + disc))
            cx = int(width / 2 + 800 * np.cos(index / 31 + 2 * disc))
            image[(ys - cy) ** 2 + (xs - cx) ** 2 < 120 ** 2] = (40 * disc, 255 - 40 * disc, 128)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
print(f"input: {frames} frames of {width}x{height} H.264 at {path}")
EOF

$PY benchmarks/chain_throughput.py --device "$DEVICE" --seg deeplab:resnet50 --seg-weights random --spade-random \
    --batch "$BATCH" --clip "$INPUT" --frames "$FRAMES" --size 256 --repeats 3 2>&1 | tee "$OUT/throughput.txt"
$PY benchmarks/spade_fast_path.py --device "$DEVICE" --batch "$BATCH" --repeats 3 --compile 2>&1 | tee "$OUT/fast_path.txt"
rm -f "$INPUT"
