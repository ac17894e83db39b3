"""SPADE training and evaluation: discriminator, losses, learning, checkpoints, resume, datasets, mIoU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from chain.datasets.pairs import build_dataset_cache, dataset_layout
from chain.errors import ChainError
from chain.evaluation import SegmentationScores, confusion_matrix, evaluate_spade
from chain.labels import get_label_space
from chain.media.sizes import Size
from chain.stages import StageContext, build_stage
from chain.training.common import read_loss_log
from chain.training.loop import RunSettings
from chain.training.options import build_options, flag_values
from chain.training.spade import SpadeTrainOptions, train_spade
from chain.weights.spade import load_spade_checkpoint
from models.spade import SPADEConfig
from models.spade_discriminator import (
    MultiscaleDiscriminator,
    PatchDiscriminatorConfig,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from tests.conftest import shared_file
from tests.test_cli import assert_one_line_error, chain_cli

CAMVID = get_label_space("camvid")
OLD_OPTIONS = ("data split seg seg_weights size ngf spade_hidden ndf num_d n_layers_d batch epochs lr beta1 beta2 "
               "lambda_feat lambda_vgg vgg_weights flip seed start duration max_frames").split()
TINY = dict(size="64x64", ngf=4, spade_hidden=8, ndf=8, batch=2, n_layers_d=3)


def make_camvid(root: Path, split: str, count: int, *, seed: int = 0, size: tuple[int, int] = (80, 60)) -> Path:
    """A CamVid-layout split whose images are the colourised label maps (so a palette judge reads them exactly)."""
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
    width, height = size
    for index in range(count):
        labels = np.full((height, width), 3, np.uint8)  # road
        labels[: height // 3] = 0  # sky
        left = int(rng.integers(0, width // 2))
        labels[height // 3:, left:left + width // 3] = rng.choice([1, 5, 8])  # building, tree or car
        labels[-4:, :4] = 11  # a void corner
        Image.fromarray(CAMVID.colorize(labels)).save(root / split / f"f{index:03d}.png")
        Image.fromarray(labels).save(root / f"{split}annot" / f"f{index:03d}.png")
    return root


# --- networks and losses -------------------------------------------------------------------


def test_multiscale_discriminator_shapes_and_losses() -> None:
    torch.manual_seed(0)
    config = PatchDiscriminatorConfig(input_nc=5 + 3, ndf=8, n_layers=4, num_d=2)
    discriminator = MultiscaleDiscriminator(config)
    segmap, image = torch.rand(2, 5, 64, 96), torch.rand(2, 3, 64, 96) * 2 - 1
    features = discriminator(segmap, image)
    assert len(features) == 2 and all(len(scale) == 5 for scale in features)
    # 4x4 convs with padding 2, strides 2, 2, 2, 1, 1: rows 64 -> 33 -> 17 -> 9 -> 10 -> 11 (256 -> 35, as NVlabs).
    assert features[0][-1].shape == (2, 1, 11, 15)
    assert features[1][-1].shape[2] < features[0][-1].shape[2]
    # Hinge: a discriminator that says +2 on real and -2 on fake has zero loss; the generator pays 2.
    real = [[torch.zeros(1), torch.full((2, 1, 3, 3), 2.0)]]
    fake = [[torch.zeros(1), torch.full((2, 1, 3, 3), -2.0)]]
    assert [float(term) for term in hinge_discriminator_loss(real, fake)] == [0.0, 0.0]
    assert [float(t) for t in hinge_discriminator_loss(fake, real)] == [3.0, 3.0]
    assert float(hinge_generator_loss(fake)) == 2.0
    assert float(feature_matching_loss([[torch.ones(4), torch.zeros(1)]], [[torch.zeros(4), torch.zeros(1)]])) == 1.0


def test_discriminator_learns_real_from_fake_pairs() -> None:
    """The discriminator and its hinge loss alone, on fixed real and fake pairs: from 2 (chance) to well below."""
    torch.manual_seed(0)
    discriminator = MultiscaleDiscriminator(PatchDiscriminatorConfig(input_nc=4 + 3, ndf=8, n_layers=3, num_d=2))
    labels = torch.zeros(4, 64, 64, dtype=torch.long)
    labels[:, 32:], labels[:, :, :16] = 1, 2
    segmap = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float()
    real = torch.tensor([[0.8, 0.2, -0.5], [-0.6, -0.6, -0.6], [0.1, 0.7, 0.1], [0.0, 0.0, 0.0]])[labels]
    real = real.permute(0, 3, 1, 2)
    fake = torch.rand(real.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=4e-3, betas=(0.0, 0.9))  # training's D settings
    history = []
    for _ in range(20):
        d_real, d_fake = hinge_discriminator_loss(discriminator(segmap, real), discriminator(segmap, fake))
        optimizer.zero_grad()
        (d_real + d_fake).backward()
        optimizer.step()
        history.append(float((d_real + d_fake).detach()))
    # 2.0 -> about 0.6 (1 thread) or 0.7 (2 threads) in the last steps.
    assert history[0] == pytest.approx(2.0, abs=0.05) and np.mean(history[-3:]) < 1.0, history


def test_options_nest_the_network_configs() -> None:
    with pytest.raises(ChainError, match="multiples of 32"):
        SpadeTrainOptions(data="x", size="100x100")
    options = SpadeTrainOptions(data="x", size="128x96")
    assert options.generator_config(CAMVID).output_size == (96, 128)
    # The networks' defaults are their configs' own (NVlabs'), not copies.
    assert (options.generator.ngf, options.generator.spade_hidden) == (SPADEConfig().ngf, SPADEConfig().spade_hidden)
    assert options.discriminator.n_layers == PatchDiscriminatorConfig(input_nc=1).n_layers
    flags = build_options(SpadeTrainOptions, {"data": "x", "ngf": 8, "n_layers_d": 2, "num_d": 1})
    assert (flags.generator.ngf, flags.discriminator.n_layers, flags.discriminator.num_d) == (8, 2, 1)
    assert flags.discriminator_config(flags.generator_config(CAMVID)).input_nc == 12 + 1 + 3  # one-hot, edges, RGB
    with pytest.raises(ChainError, match="--ngf must be >= 1"):
        build_options(SpadeTrainOptions, {"data": "x", "ngf": 0})


# --- datasets ------------------------------------------------------------------------------


def test_dataset_layouts_and_cache(tmp_path: Path) -> None:
    camvid = shared_file("data/camvid")
    layout = dataset_layout(camvid, "val")
    assert layout.name == "camvid" and layout.label_space is CAMVID
    coco = dataset_layout(shared_file("data/coco_stuff_samples"), "train")
    assert coco.name == "coco-stuff" and coco.lut[255] == 182 and coco.lut[0] == 0
    with pytest.raises(ChainError, match="not a dataset folder"):
        dataset_layout(tmp_path, "train")

    cache = build_dataset_cache(shared_file("data/coco_stuff_samples"), "val", tmp_path / "pairs", size=Size(64, 64))
    assert len(cache) == 8 and cache.images.shape == (8, 64, 64, 3) and cache.labels.max() <= 182
    assert not cache.reused
    again = build_dataset_cache(shared_file("data/coco_stuff_samples"), "val", tmp_path / "pairs", size=cache.size)
    assert again.reused and np.array_equal(again.labels, cache.labels)


# --- training ------------------------------------------------------------------------------


def _painting_error(run: Path, data: Path) -> float:
    """Mean |painted - real| (levels) over the training pairs, painted through the `spade` stage."""
    stage = build_stage("synthesizer", "spade", StageContext(weights=str(run)))
    errors = []
    for label_file in sorted((data / "trainannot").glob("*.png")):
        labels = np.array(Image.open(label_file).resize((64, 64), Image.NEAREST))[None]
        real = np.array(Image.open(data / "train" / label_file.name).resize((64, 64), Image.NEAREST))
        painted = stage.synthesize(labels=labels, frames=real[None])[0].numpy()  # a tensor on the stage's device
        errors.append(np.abs(painted.astype(float) - real).mean())
    return float(np.mean(errors))


@pytest.mark.slow
def test_tiny_training_learns_and_round_trips(tmp_path: Path) -> None:
    data = make_camvid(tmp_path / "camvid", "train", 4)
    out = tmp_path / "run"
    # A tiny generator with a learning rate 10x NVlabs' learns these 4 scenes within 40 steps.
    checkpoint = train_spade(data, out, {**TINY, "lr": 2e-3, "epochs": 20}, RunSettings(progress=False, device="cpu"))
    records = list(read_loss_log(out))
    assert [r["step"] for r in records] == list(range(1, 41))
    # In the GAN game the discriminator's hinge loss hovers near 2 and its 40-step value depends on float
    # rounding (the thread count): its learning is checked on its own, below. All losses stay finite...
    assert all(np.isfinite(value) for r in records for value in r.values())
    # ...and the generator paints the training scenes far closer than after its first step (about 0.5x at 1
    # and 2 threads).
    first_step = tmp_path / "first"
    train_spade(data, first_step, {**TINY, "lr": 2e-3, "epochs": 20}, RunSettings(max_steps=1, progress=False, device="cpu"))
    assert _painting_error(out, data) < 0.7 * _painting_error(first_step, data)
    assert (out / "losses.png").is_file() and (out / "samples" / "epoch_020.png").is_file()

    # The checkpoint paints through the spade stage (run folder or checkpoint folder), in CamVid's space.
    generator, meta = load_spade_checkpoint(checkpoint)
    assert meta["label_space"] == "camvid" and meta["complete"] and meta["step"] == 40
    stage = build_stage("synthesizer", "spade", StageContext(weights=str(checkpoint)))
    assert stage.label_space is CAMVID
    labels = np.array(Image.open(data / "trainannot" / "f000.png").resize((64, 64), Image.NEAREST))[None]
    painted = stage.synthesize(labels=labels, frames=np.zeros((1, 64, 64, 3), np.uint8)).numpy()
    assert painted.shape == (1, 64, 64, 3)
    with torch.inference_mode():
        segmap = torch.zeros(1, 13, 64, 64)
        segmap.scatter_(1, torch.from_numpy(labels.astype(np.int64))[:, None], 1.0)
        segmap[:, 12] = torch.from_numpy(__import__("models.spade", fromlist=["label_edges"]).label_edges(
            torch.from_numpy(labels.astype(np.int64)))[:, 0].numpy())
        direct = ((generator(segmap).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    assert np.abs(direct.astype(int) - painted).max() <= 1


def test_resume_continues_exactly(tmp_path: Path) -> None:
    data = make_camvid(tmp_path / "camvid", "train", 4)
    straight = train_spade(data, tmp_path / "straight", {**TINY, "epochs": 2}, RunSettings(progress=False, device="cpu"))
    stopped = tmp_path / "stopped"
    train_spade(data, stopped, {**TINY, "epochs": 2}, RunSettings(max_steps=2, progress=False, device="cpu"))
    # A checkpoint written before the network configs were nested in the options (one flat dict) still resumes.
    config = stopped / "checkpoint" / "config.json"
    document = json.loads(config.read_text())
    flat = flag_values(build_options(SpadeTrainOptions, document["meta"]["train"]))
    assert set(flat) == set(OLD_OPTIONS)
    config.write_text(json.dumps({**document, "meta": {**document["meta"], "train": flat}}))
    with pytest.raises(ChainError, match="already holds a training run"):
        train_spade(data, stopped, {**TINY, "epochs": 2}, RunSettings(progress=False, device="cpu"))
    with pytest.raises(ChainError, match="--ngf 8"):
        train_spade(data, stopped, {**TINY, "ngf": 8}, RunSettings(resume=True, progress=False, device="cpu"))
    resumed = train_spade(data, stopped, settings=RunSettings(resume=True, progress=False, device="cpu"))
    for name in ("model.safetensors", "discriminator.safetensors"):
        a, b = load_file(str(straight / name)), load_file(str(resumed / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert [r["step"] for r in list(read_loss_log(stopped))] == [1, 2, 3, 4]


def test_pseudo_labels_from_a_video(carphone: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_spade(carphone, out, {"seg": "palette:camvid", "max_frames": 6, **TINY, "batch": 3, "epochs": 1},
                RunSettings(progress=False, device="cpu"))
    meta = json.loads((out / "pairs" / "pairs.json").read_text())
    assert meta["label_space"] == "camvid" and meta["key"]["segmenter"] == "palette:camvid"
    labels = np.load(out / "pairs" / "labels.npy")
    assert labels.shape == (6, 64, 64)
    # Labels come from the segmenter once: a second run reuses them.
    train_spade(carphone, tmp_path / "again", {"seg": "palette:camvid", "max_frames": 6, **TINY, "batch": 3, "epochs": 1},
                RunSettings(progress=False, device="cpu"))
    assert np.array_equal(np.load(tmp_path / "again" / "pairs" / "labels.npy"), labels)


def test_train_cli_errors(tmp_path: Path) -> None:
    assert_one_line_error(chain_cli("train", "spade", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")),
                          "dataset folder not found")
    make_camvid(tmp_path / "camvid", "train", 2)
    assert_one_line_error(chain_cli("train", "spade", "--data", str(tmp_path / "camvid"), "--out",
                                    str(tmp_path / "o"), "--size", "100x60"), "multiples of 32")
    assert_one_line_error(chain_cli("train", "spade", "--data", str(tmp_path / "camvid"), "--out",
                                    str(tmp_path / "o"), "--vgg-weights", str(tmp_path / "vgg.pth")),
                          "VGG-19 weights not found")
    assert_one_line_error(chain_cli("train", "spade", "--data", str(tmp_path / "camvid" / "train"), "--seg",
                                    "palette:klingon", "--out", str(tmp_path / "o")), "unknown label space 'klingon'")
    assert_one_line_error(chain_cli("eval", "spade", str(tmp_path / "o"), str(tmp_path / "camvid"), "--split",
                                    "test", "--seg", "palette:camvid"), "SPADE weights not found")
    assert not (tmp_path / "o").exists()


# --- evaluation ----------------------------------------------------------------------------


def test_miou_on_a_hand_made_case() -> None:
    space = CAMVID  # 0 sky, 3 road, 11 void
    truth = np.array([[0, 0, 0, 0],
                      [3, 3, 3, 3],
                      [11, 11, 3, 3]])
    predicted = np.array([[0, 0, 0, 3],
                          [3, 3, 11, 3],
                          [0, 3, 3, 0]])
    scores = SegmentationScores.from_confusion(confusion_matrix(truth, predicted, len(space)), space)
    # Void truth pixels are ignored (and what was predicted there): 10 pixels count.
    # Sky: TP 3, FN 1 (predicted road), FP 1 (a road pixel predicted sky) -> 3/5.
    # Road: TP 4, FN 2 (one predicted void, one sky), FP 1 -> 4/7. Predicting void is wrong, not a false positive.
    assert scores.pixels == 10
    assert scores.class_iou == pytest.approx({"sky": 3 / 5, "road": 4 / 7})
    assert scores.miou == pytest.approx((3 / 5 + 4 / 7) / 2)
    assert scores.pixel_accuracy == pytest.approx(7 / 10)


def test_eval_spade_scores_real_and_synthesized(tmp_path: Path) -> None:
    data = make_camvid(tmp_path / "camvid", "train", 4)
    make_camvid(data, "val", 3, seed=1, size=(64, 64))  # at the scoring size: no resampling of colours
    run = tmp_path / "run"
    train_spade(data, run, {**TINY, "epochs": 1}, RunSettings(progress=False, device="cpu"))
    report = evaluate_spade(run, data, seg="palette:camvid", split="val", samples=tmp_path / "s.png",
                            report=tmp_path / "eval.json", device="cpu")
    # The "real" images are the label colours, which the palette judge reads back exactly.
    assert report["items"] == 3 and report["size"] == "64x64"
    assert report["real"]["miou"] == pytest.approx(1.0) and report["real"]["pixel_accuracy"] == pytest.approx(1.0)
    assert report["synthesized"]["miou"] < 1.0
    assert json.loads((tmp_path / "eval.json").read_text())["real"]["miou"] == pytest.approx(1.0)
    assert Image.open(tmp_path / "s.png").size == (4 * 64, 3 * 64)
    # Its own report and samples are replaced; a file of the user's at either is refused before any work.
    again = evaluate_spade(run, data, seg="palette:camvid", split="val", samples=tmp_path / "s.png",
                           report=tmp_path / "eval.json", device="cpu", max_items=1)
    assert again["items"] == 1 and json.loads((tmp_path / "eval.json").read_text())["items"] == 1
    (tmp_path / "notes.json").write_text("the user's notes")
    with pytest.raises(ChainError, match="--report file .*notes.json exists and was not written by chain"):
        evaluate_spade(run, data, seg="no-such-judge", samples=tmp_path / "s2.png", report=tmp_path / "notes.json")
    assert (tmp_path / "notes.json").read_text() == "the user's notes" and not (tmp_path / "s2.png").exists()
    for inside in (run / "eval.json", data, data / "val" / "eval.json"):
        with pytest.raises(ChainError, match="would overwrite or sit inside the input"):
            evaluate_spade(run, data, seg="no-such-judge", report=inside)


def test_eval_spade_on_a_video_reports_flicker(carphone: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_spade(carphone, run, {"seg": "palette:camvid", "max_frames": 4, **TINY, "batch": 2, "epochs": 1},
                RunSettings(progress=False, device="cpu"))
    report = evaluate_spade(run, carphone, seg="palette:camvid", max_items=5, device="cpu")
    assert report["items"] == 5 and report["split"] is None
    flicker = report["flicker"]
    assert flicker["real_mean_abs_diff"] > 0 and flicker["relative"] >= 0
    assert 0 <= flicker["label_flicker_synthesized"] <= 1


def test_eval_with_the_real_ade20k_segmenter(tmp_path: Path) -> None:
    """The judge the README uses: real weights, mapped from ADE20K to CamVid, on real CamVid val images."""
    from chain.importers.tflite import save_imported

    judge = save_imported(shared_file("weights/deeplabv3_mnv2_ade20k_513.tflite"), tmp_path / "ade",
                          label_space="ade20k")
    data = make_camvid(tmp_path / "camvid", "train", 2)
    run = tmp_path / "run"
    train_spade(data, run, {**TINY, "epochs": 1}, RunSettings(progress=False, device="cpu"))
    report = evaluate_spade(run, shared_file("data/camvid"), seg="deeplab-mnv2:ade20k", seg_weights=str(judge),
                            split="val", size="256x192", max_items=2, device="cpu")
    assert report["items"] == 2
    # Real street images: sky and road are found; an untrained generator's noise is not a street.
    assert report["real"]["class_iou"]["sky"] > 0.5 and report["real"]["class_iou"]["road"] > 0.5
    assert report["real"]["miou"] > report["synthesized"]["miou"]


@pytest.mark.slow
def test_perceptual_loss_only_with_user_weights(tmp_path: Path) -> None:
    from torchvision.models import vgg19

    from chain.training.perceptual import VGGPerceptualLoss

    with pytest.raises(ChainError, match="cannot read VGG-19 weights"):
        VGGPerceptualLoss(tmp_path / "missing.pth")
    torch.manual_seed(0)
    weights = tmp_path / "vgg19.pth"
    # The 16 conv layers are what the loss uses; a features-only state_dict is accepted as a full one is.
    torch.save({f"features.{k}": v for k, v in vgg19(weights=None).features[:30].state_dict().items()}, weights)
    loss = VGGPerceptualLoss(weights)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(loss(image, image)) == 0.0 and float(loss(image, -image)) > 0.0

    data = make_camvid(tmp_path / "camvid", "train", 2)
    train_spade(data, tmp_path / "run", {**TINY, "epochs": 1, "vgg_weights": str(weights)}, RunSettings(progress=False, device="cpu"))
    assert all(r["g_vgg"] > 0 for r in read_loss_log(tmp_path / "run"))
    without = tmp_path / "plain"
    train_spade(data, without, {**TINY, "epochs": 1}, RunSettings(progress=False, device="cpu"))
    assert all(r["g_vgg"] == 0 for r in read_loss_log(without))


def test_a_datasets_hidden_files_are_not_pairs(tmp_path: Path) -> None:
    """A macOS ``._`` fork or a thumbnail beside the images is no training pair (nor an unreadable one)."""
    data = make_camvid(tmp_path / "camvid", "train", 3)
    (data / "train" / "._f000.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (data / "trainannot" / "._f000.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    cache = build_dataset_cache(data, "train", tmp_path / "pairs", size=Size(32, 32))
    assert len(cache) == 3
