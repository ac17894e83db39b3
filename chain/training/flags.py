"""The training options the command line offers, each declared once (torch-free).

A `TrainFlag` holds one option's help, its type on the command line, its flag, metavar and
`chain.bounds` parser, and its default: the options dataclass's field takes its default and its
metadata from it (`declared`), ``chain train vaegan`` and ``chain train spade`` build their typer
options from the tables `VAEGAN_FLAGS` and `SPADE_FLAGS` (in ``--help``'s order), and their help shows the
default (a ``{default}`` in the help). A flag that sets a field of a network's config
(``path``, e.g. ``"model.latent_dim"``) is also in its class's ``FLAGS``; its default is the
model config's, which ``--help`` cannot import (torch): the declaration states it and
``tests/test_declared_training_options.py`` holds it to the config's.

Nothing here imports torch, so ``chain train vaegan --help`` answers without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chain import bounds
from chain.config import ChainConfig
from chain.options import OPTION, Option, declared_options

#: The key of a field's metadata that holds its `TrainFlag`.
TRAIN_FLAG = "chain.train_flag"


def short_number(value: float) -> str:
    """``2e-4`` as the help writes it."""
    mantissa, _, exponent = f"{value:.0e}".partition("e")
    return f"{mantissa}e{int(exponent)}"


def widths(value: tuple[int, ...]) -> str:
    return ",".join(str(number) for number in value)


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


@dataclass(frozen=True)
class TrainFlag:
    """One training option: how the command line offers it, and its default."""

    option: Option
    #: The default: the options field's, or for a ``path`` the model config's.
    default: Any = None
    #: The nested config field it sets (``"model.latent_dim"``); None: the options field of its name.
    path: str | None = None
    #: How ``--help`` writes the default into a ``{default}`` of the help.
    show: Callable[[Any], str] = str

    @property
    def help(self) -> str:
        """The help as ``--help`` shows it."""
        return self.option.help.replace("{default}", self.show(self.default))


def flag(help: str, type: Any, default: Any = None, *, parser: Callable[[Any], Any] | None = None,  # noqa: A002
         metavar: str | None = None, flags: tuple[str, ...] = (), path: str | None = None,
         show: Callable[[Any], str] = str) -> TrainFlag:
    return TrainFlag(Option(help, type, flags, metavar, parser), default, path, show)


def declared(table: dict[str, TrainFlag], name: str) -> Any:
    """The options dataclass field ``name``: its default and declaration from ``table``."""
    declaration = table[name]
    return dataclasses.field(default=declaration.default,
                             metadata={OPTION: declaration.option, TRAIN_FLAG: declaration})


def nested_flags(table: dict[str, TrainFlag]) -> dict[str, str]:
    """The flags of ``table`` that set a network config's field -> that (dotted) field."""
    return {name: declaration.path for name, declaration in table.items() if declaration.path is not None}


def _chain_option(name: str) -> Option:
    """A ``chain run`` option (`ChainConfig`) that training takes too, as its field declares it."""
    return next(declared.option for declared in declared_options(ChainConfig) if declared.field == name)


SIZE = bounds.ascii_text("--size")
#: `models.vaegan.VAEGANConfig`'s width x height: a VAE-GAN's training size when ``--size`` is not given.
VAEGAN_SIZE = "256x144"
EPOCHS = bounds.TRAINING["epochs"]

#: ``chain train vaegan``'s options (`chain.training.vaegan.VAEGANTrainOptions`), in ``--help``'s order.
VAEGAN_FLAGS: dict[str, TrainFlag] = {
    # None: the model config's size, `VAEGAN_SIZE`.
    "size": flag("Training frame size WxH \\[default: {default}].", str | None, None, parser=SIZE, metavar="WxH",
                 show=lambda _: VAEGAN_SIZE),
    "latent": flag("Latent numbers \\[default: {default}].", int | None, 200, path="model.latent_dim",
                   parser=bounds.TRAINING["latent"], metavar="N"),
    "epochs": flag("Passes over the film \\[default: {default}].", int | None, 6, parser=EPOCHS, metavar="N"),
    "batch": flag("Frames per step \\[default: {default}].", int | None, 12, parser=bounds.BATCH, metavar="N"),
    "lr": flag("Adam learning rate \\[default: {default}].", float | None, 2e-4, parser=bounds.TRAINING["lr"],
               metavar="LR", show=short_number),
    "seed": flag("Seed of weights, batches and noise \\[default: {default}].", int | None, 0,
                 parser=bounds.TRAINING["seed"], metavar="N"),
    # Cosine by default: at 64x36 a constant rate's last weights scored 21.75 dB where cosine's scored
    # 26.02 (docs/results/vaegan_cpu.json).
    "lr_schedule": flag("cosine (from --lr down to 0 at the last step) or constant \\[default: {default}].",
                        str | None, "cosine"),
    "pixel_weight": flag("Extra pixel-space reconstruction weight (not in the paper) \\[default: {default}].",
                         float | None, 0.0, path="model.pixel_weight", parser=bounds.TRAINING["pixel_weight"],
                         metavar="WEIGHT", show="{:g}".format),
    # The parser gives a tuple; typer reads a tuple annotation as several values.
    "filters": flag("Channels of each stride-2 convolution \\[default: {default}].", str | None,
                    (80, 160, 320, 640), path="model.filters", parser=bounds.width_list("--filters"),
                    metavar="C1,C2,...", show=widths),
    "upsample": flag("Decoder upsampling: resize (nearest + convolution) or transposed (the first checkpoints') "
                     "\\[default: {default}].", str | None, "resize", path="model.upsample"),
    # Each batch mirrored, cropped and recoloured at random (`chain.datasets.augment`): for models meant
    # to reconstruct films they never saw.
    "augment": flag("Mirror, crop and recolour each batch at random: for reconstructing films the model never "
                    "saw \\[default: {default}].", bool | None, False, flags=("--augment/--no-augment",),
                    show=yes_no),
}

#: ``chain train spade``'s options (`chain.training.spade.SpadeTrainOptions`), in ``--help``'s order.
SPADE_FLAGS: dict[str, TrainFlag] = {
    "seg": flag("Label a video's frames with this segmenter (pseudo-labels).", str | None, None),
    "seg_weights": TrainFlag(_chain_option("seg_weights"), None),
    "split": flag("Dataset split to train on \\[default: {default}].", str | None, "train"),
    "size": flag("Training size WxH, multiples of 32 \\[default: {default}].", str | None, "256x192", parser=SIZE,
                 metavar="WxH"),
    "ngf": flag("Generator width \\[default: {default}, as NVlabs].", int | None, 64, path="generator.ngf",
                parser=bounds.TRAINING["ngf"], metavar="N"),
    "spade_hidden": flag("SPADE label-MLP width \\[default: {default}].", int | None, 128,
                         path="generator.spade_hidden", parser=bounds.TRAINING["spade_hidden"], metavar="N"),
    "ndf": flag("Discriminator width \\[default: {default}].", int | None, 64, path="discriminator.ndf",
                parser=bounds.TRAINING["ndf"], metavar="N"),
    "epochs": flag("Passes over the pairs \\[default: {default}].", int | None, 50, parser=EPOCHS, metavar="N"),
    "batch": flag("Pairs per step \\[default: {default}].", int | None, 8, parser=bounds.BATCH, metavar="N"),
    "lr": flag("Base learning rate (G lr/2, D 2*lr) \\[default: {default}].", float | None, 2e-4,
               parser=bounds.TRAINING["lr"], metavar="LR", show=short_number),
    "vgg_weights": flag("torchvision VGG-19 weights (.pth) to add the perceptual loss; none is used without them.",
                        str | None, None),
    "seed": flag("Seed of weights, batches and flips \\[default: {default}].", int | None, 0,
                 parser=bounds.TRAINING["seed"], metavar="N"),
}
