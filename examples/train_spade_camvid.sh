#!/usr/bin/env bash
# Train a SPADE generator on CamVid, stop it after a time budget (Ctrl-C keeps a resumable
# checkpoint), then score it with `chain eval spade` on CamVid val, judged by the ADE20K
# DeepLabV3-MobileNetV2 mapped to CamVid's classes.
#
#   examples/train_spade_camvid.sh CAMVID_DIR JUDGE_CHECKPOINT OUT_DIR MINUTES [train options...]
#
# JUDGE_CHECKPOINT comes from: chain import tflite deeplabv3_mnv2_ade20k_513.tflite --labels ade20k --out DIR
# e.g. on a GPU:  examples/train_spade_camvid.sh ../shared/data/camvid ~/w/ade OUT 7 --size 256x192 --batch 16
#      on 2 CPUs: examples/train_spade_camvid.sh ../shared/data/camvid ~/w/ade OUT 20 --size 128x96 --ngf 16 \
#                   --spade-hidden 32 --ndf 32 --batch 4
set -u
camvid=$1 judge=$2 out=$3 minutes=$4
shift 4
chain=${CHAIN:-python -m chain}

# SIGINT after the budget: the trainer finishes its step, saves, and exits 130.
timeout -s INT "$((minutes * 60))" $chain train spade --data "$camvid" --out "$out" --epochs 1000 \
    --checkpoint-every "${CHECKPOINT_EVERY:-500}" --quiet "$@"
status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 130 ] || [ "$status" -eq 124 ] || exit "$status"

$chain eval spade "$out" "$camvid" --split val --seg deeplab-mnv2:ade20k --seg-weights "$judge" \
    --samples "$out/eval_samples.png" --report "$out/eval.json"
