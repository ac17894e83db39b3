"""One run's configuration, built once and passed whole.

`ChainConfig` is what `chain.api.build_chain` needs: stages, weights, their options, label handling,
device. `RunConfig` nests it with what one run over one input needs: the input, the outputs, which
part, size, frame rate, batch, encoding, strictness and the cluster. The CLI, `chain.run`, the Chain,
the cluster driver (which ships the configuration to Ray workers: both pickle) and the UI pass
them on instead of writing every option out again.

Adding an option: a field here (with its comment) and its use; on the command line also its typer
declaration in `chain.cli.run`, whose parameter names are these fields' names. `RunConfig.of`
and `build_chain(**options)` accept every field by name without further changes.

Nothing here imports torch: the CLI builds a `RunConfig` and checks it before loading networks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from chain import bounds
from chain.bounds import Smoothing, parse_device, parse_smoothing
from chain.errors import ChainError
from chain.media import Size, Trim, parse_size
from chain.media.outputs import Outputs
from chain.options import declared_options, option

# The segmenter a run uses unless told: the one a user has after following the README (imported
# from the shared TF Lite file, offline), light enough for a laptop CPU. For the blog's COCO
# classes use --seg mask2former:coco; --seg deeplab is torchvision's DeepLabV3 (a download).
DEFAULT_SEGMENTER = "deeplab-mnv2:voc"
# The synthesizer a run uses unless told: it needs no weights, and it paints in COCO-Stuff (the
# segmenter's labels converted), so any of COCO's 182 classes can be remapped to (`--remap
# person=bear`), which plain `colorize` (the segmenter's own space: VOC's 21) refused.
DEFAULT_SYNTHESIZER = "colorize:coco-stuff"


def parse_options(pairs: Iterable[str]) -> dict[str, str]:
    """``["size=256", "steps=20"]`` → ``{"size": "256", "steps": "20"}`` (stage options)."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ChainError(f"stage option {pair!r} is not KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


class Options(Mapping[str, str]):
    """Stage options, immutable (so a config can be frozen, hashed and pickled) and compared like a dict.

    Built from a mapping (values become text, as on the command line) or from ``KEY=VALUE`` text
    (``["size=256", "fit=aspect"]``); a later key wins.
    """

    def __init__(self, options: Mapping[str, object] | Iterable[str] | None = None) -> None:
        if options is None:
            items: dict[str, str] = {}
        elif isinstance(options, Mapping):
            items = {str(key): str(value) for key, value in options.items()}
        elif isinstance(options, str):  # one "k=v" string, not its characters
            items = parse_options([options])
        else:
            items = parse_options(options)
        self._items = items

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return f"Options({self._items!r})"


class StageName(NamedTuple):
    """A stage as the command line names it: ``NAME`` or ``NAME:VARIANT`` (`parse_stage_name`)."""

    name: str
    variant: str | None


#: How a run says "no stage of this kind" (``--seg none``).
NO_STAGE = "none"


def parse_stage_name(text: str) -> StageName:
    """``"deeplab:resnet101"`` → ``("deeplab", "resnet101")``; variants may contain ':'."""
    name, _, variant = text.strip().partition(":")
    return StageName(name.strip().lower(), variant.strip() or None)


def _stage(text: str | None) -> StageName | None:
    """A configuration's ``seg``/``synth`` as a `StageName`; None for no stage (None or ``"none"``)."""
    return parse_stage_name(text) if text and text != NO_STAGE else None


def _parsed_rules(rules: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``--remap`` rules as ``(SRC, DST)`` pairs. `chain.labels` (its spaces' tables) is loaded only
    for a run that remaps: ``chain --help`` builds no configuration with rules and need not wait for it."""
    if not rules:
        return ()
    from chain.labels import parse_remap

    return tuple(parse_remap(rules))


def _rules(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``--remap`` rules as a tuple: one string is one argument (it may hold comma-separated rules)."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class ChainConfig:
    """What a `Chain` is built from (`chain.api.build_chain`); recorded in the run summary's ``request``."""

    # Each field the command line offers is declared once, with `option` (`chain.options`): its
    # help, its type and flag on the command line, the parser of its text. The comment above a
    # field is for readers of this file; the help is what users read.

    #: Segmenter ``NAME[:VARIANT]`` (`chain list`); None or ``"none"`` when the synthesizer reads frames.
    seg: str | None = option("Segmenter NAME[:VARIANT], or 'none' (see `chain list`).", str,
                             default=DEFAULT_SEGMENTER, flags=("--seg",))
    #: Synthesizer ``NAME[:VARIANT]``; None or ``"none"`` to only inspect the segmentation.
    synth: str | None = option("Synthesizer NAME[:VARIANT], or 'none' (see `chain list`). The default paints COCO-Stuff "
                               "labels: any COCO class can be a --remap target.", str,
                               default=DEFAULT_SYNTHESIZER, flags=("--synth",))
    #: The segmenter's weights: a file or folder, or ``"random"`` (the architecture, untrained).
    seg_weights: str | None = option("Segmenter weights: a file/folder, or 'random'.", str | None, default=None)
    #: The synthesizer's weights: a file or folder.
    synth_weights: str | None = option("Synthesizer weights: a file or folder.", str | None, default=None)
    #: Segmenter options (``--seg-opt size=256``): a mapping or ``KEY=VALUE`` texts.
    seg_options: Options = option("Segmenter option KEY=VALUE (repeatable).", list[str] | None,
                                  default_factory=Options, flags=("--seg-opt",))
    #: Synthesizer options (``--synth-opt fit=squash``).
    synth_options: Options = option("Synthesizer option KEY=VALUE (repeatable).", list[str] | None,
                                    default_factory=Options, flags=("--synth-opt",))
    #: Temporal smoothing: ``ema:ALPHA``, ``flow[:ALPHA]`` (`chain.stages.smoothing`), ``window[:K]``
    #: (`chain.stages.window`), or None.
    smooth: str | None = option(
        "Temporal smoothing of class probabilities: ema:ALPHA (moving average, ALPHA = weight of the past, "
        "e.g. 0.6), flow[:ALPHA] (the average follows the optical flow; default 0.85), window[:K] (each frame "
        "fused with the K frames before and after it along the flow; default 5, at most 8), or none.",
        str | None, default=None)
    #: ``--deflicker STRENGTH[:FRAMES]``: how far each painting moves towards its steady target (0 to 1)
    #: and how many frames each way it looks at (`chain.stages.deflicker`); True for the default, None for none.
    #: On the command line it is text (typer would read a tuple annotation as two arguments; the parser
    #: makes the tuple).
    deflicker: tuple[float, int] | None = option(
        "Steady the paintings over time, guided by the input's motion: STRENGTH from 0 (off) to 1 (all the way to "
        "the steady target), looking FRAMES (1-24) each way; a bare --deflicker is 0.8:3.", str | None,
        default=None, flags=("--deflicker",), parser=bounds.parse_deflicker, metavar="[STRENGTH[:FRAMES]]", page=False)
    #: ``SRC=DST`` rules in the synthesizer's label space (comma-separated allowed; ``*=snow``).
    remap: tuple[str, ...] = option(
        "Swap classes in the synthesizer's label space: SRC=DST (repeatable, comma-separated; '*=snow').",
        list[str] | None, default=())
    #: What the segmenter's catch-all class (VOC background) becomes in the synthesizer's space.
    background: str | None = option(
        "What the segmenter's catch-all class (VOC background) becomes in the synthesizer's space.",
        str | None, default=None)
    #: Source-class → target-class names that win over the synonym table (``{"cow": "sheep"}``); Python only.
    class_overrides: Options = field(default_factory=Options)
    #: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (`chain.bounds.parse_device`).
    device: str | None = option("auto, cpu, cuda, cuda:N or mps.", str, default="auto", parser=parse_device,
                                metavar="DEVICE")
    #: torch's CPU threads (default: $OMP_NUM_THREADS, else 1; `chain.device.cpu_threads`).
    threads: int | None = option(
        "CPU threads for the networks \\[default: $OMP_NUM_THREADS, else 1 for torch (more stall when other "
        "processes share the cores) and one per core for ONNX Runtime].", int | None, default=None,
        parser=bounds.THREADS, metavar="N", page=False)
    #: ``torch.compile`` the stages' networks (`Chain.compile`; the warm-up is timed as "compile").
    compile: bool = option("torch.compile the networks: a warm-up on the first batch (reported as 'compile'), then "
                           "faster frames, mostly on GPUs.", bool, default=False, flags=("--compile",), page=False)
    #: The command line that asked for this (the CLI's), for the summary; None from Python.
    command: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # Normalised once, so that every user of a config sees immutable values of one type.
        for name in ("seg_options", "synth_options", "class_overrides"):
            object.__setattr__(self, name, Options(getattr(self, name)))
        object.__setattr__(self, "remap", _rules(self.remap))
        # The texts are kept as asked (the summary's request records them); what they mean is parsed
        # here, once and torch-free: a typo fails as the configuration is built, and every user of the
        # configuration reads the typed values (`segmenter`, `smoothing`, `remap_rules`…) instead.
        object.__setattr__(self, "_remap_rules", _parsed_rules(self.remap))
        object.__setattr__(self, "_smoothing", parse_smoothing(self.smooth))
        object.__setattr__(self, "_segmenter", _stage(self.seg))
        object.__setattr__(self, "_synthesizer", _stage(self.synth))
        # The command line's bounds (`chain.bounds`) hold for Python's callers too.
        object.__setattr__(self, "device", parse_device(self.device))
        if self.threads is not None:
            object.__setattr__(self, "threads", bounds.THREADS.check(self.threads))
        object.__setattr__(self, "deflicker", bounds.parse_deflicker(self.deflicker))
        if self.command is not None:
            object.__setattr__(self, "command", tuple(self.command))

    @property
    def segmenter(self) -> StageName | None:
        """``seg`` parsed; None when the chain has no segmenter."""
        return self._segmenter

    @property
    def synthesizer(self) -> StageName | None:
        """``synth`` parsed; None when the chain has no synthesizer."""
        return self._synthesizer

    @property
    def smoothing(self) -> Smoothing | None:
        """``smooth`` parsed (`chain.bounds.parse_smoothing`); None for no smoothing."""
        return self._smoothing

    @property
    def remap_rules(self) -> tuple[tuple[str, str], ...]:
        """``remap`` parsed: ``(SRC, DST)`` pairs in order (`chain.labels.parse_remap`)."""
        return self._remap_rules

    def as_dict(self) -> dict[str, object]:
        """Every field as plain JSON values (options as dicts, rules as lists): the summary's ``request``."""
        return {item.name: _plain(getattr(self, item.name)) for item in dataclasses.fields(self)}


def _plain(value: object) -> object:
    if isinstance(value, Options):
        return dict(value)
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class RunConfig:
    """One run of a chain over one input: what ``chain run`` and `chain.run` are asked.

    Build it with `RunConfig.of` from the flat keywords of `chain.run`, or field by field.
    """

    #: The input: a video file, a folder of images, or an image.
    source: Path
    #: Where the run writes (at least one output; `Outputs.of` reads a trailing slash as a folder).
    outputs: Outputs = field(default_factory=Outputs)
    #: The stages and how labels pass between them.
    chain: ChainConfig = field(default_factory=ChainConfig)
    #: Which part of the input: ``--start``, ``--duration``, ``--max-frames``.
    trim: Trim = field(default_factory=Trim)
    #: Working and output size: ``WxH`` or a short side (``"256"``), or a `Size`; None keeps the input's
    #: (parsed when the configuration is built: `working_size`).
    size: str | Size | None = option("Working/output size: WxH (256x144) or a short side (256).", str | None,
                                     default=None, parser=bounds.ascii_text("--size"), metavar="SIZE")
    #: Output frame rate (frames dropped or repeated); None keeps every frame at its own time.
    fps: float | None = option("Output frame rate (frames are dropped or repeated).", float | None, default=None,
                               parser=bounds.FPS, metavar="FPS", page=False)
    #: Frames per network call.
    batch_size: int = option("Frames per network call.", int, default=1, flags=("--batch",), parser=bounds.BATCH,
                             metavar="N")
    #: x264/VP9 quality (lower is better); None: the encoder's default.
    crf: int | None = option("x264/VP9 quality (lower is better).", int | None, default=None, parser=bounds.CRF,
                             metavar="0-63", page=False)
    #: x264 preset (``ultrafast`` … ``veryslow``).
    preset: str | None = option("x264 preset, e.g. ultrafast, medium, slow.", str | None, default=None, page=False)
    #: Damaged input is an error (nothing written) instead of a warning.
    strict: bool = option("Damaged input (undecodable frames, a file shorter than it says) is an error, not a "
                          "warning.", bool, default=False, flags=("--strict",), page=False)
    #: Run in parts that a stopped run of the same command continues from (`chain.cluster.resume`).
    resume: bool = option("Run in parts kept beside the outputs: if a run of the same command was stopped, do only "
                          "what it left.", bool, default=False, flags=("--resume",), page=False)
    #: Shard the run over Ray: ``"ray"`` (a local instance), ``"auto"`` or ``"ray://HOST:PORT"``.
    cluster: str | None = option("Shard the run over Ray: 'ray' (a local instance), 'auto' or ray://HOST:PORT (an "
                                 "existing cluster).", str | None, default=None, parser=bounds.parse_cluster,
                                 metavar="CLUSTER", page=False)
    #: With ``cluster``: this many shards (default: one per GPU, else per CPU).
    shards: int | None = option("--cluster: this many shards \\[default: one per GPU/CPU].", int | None, default=None,
                                parser=bounds.SHARDS, metavar="N", page=False)
    #: With ``cluster``: shards of about this many seconds.
    shard_seconds: float | None = option("--cluster: shards of about this many seconds.", float | None, default=None,
                                         parser=bounds.seconds("--shard-seconds", positive=True), metavar="SECONDS", page=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Path(self.source))
        object.__setattr__(self, "batch_size", bounds.BATCH.check(self.batch_size))
        if isinstance(self.size, str):
            bounds.ascii_text("--size")(self.size)
        # Kept as asked, parsed once here: every reader opens the input at `working_size`.
        object.__setattr__(self, "_working_size", parse_size(self.size) if isinstance(self.size, str) else self.size)
        object.__setattr__(self, "cluster", bounds.parse_cluster(self.cluster))
        for name, bound in (("crf", bounds.CRF), ("shards", bounds.SHARDS), ("shard_seconds", _SHARD_SECONDS)):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, bound.check(getattr(self, name)))
        if self.cluster is None and (self.shards is not None or self.shard_seconds is not None):
            raise ChainError("--shards and --shard-seconds split a run over a cluster: add --cluster ray")

    @property
    def working_size(self) -> Size | int | None:
        """``size`` parsed: a `Size`, a short side, or None for the input's own size."""
        return self._working_size

    @classmethod
    def of(cls, source: str | Path, output: str | Path | Outputs | None = None, **options: object) -> RunConfig:
        """A configuration from `chain.run`'s flat keywords.

        ``output`` is the output video (or image, or PNG folder), or a whole `Outputs`; the other
        outputs are ``masks``, ``overlay``, ``compare``, ``save_labels`` and ``summary`` (text that
        ends in a slash names a folder); ``start``, ``duration`` and ``max_frames`` make the
        ``trim``; every field of `ChainConfig` and of `RunConfig` is taken by its name.
        """
        chain = {name: options.pop(name) for name in _field_names(ChainConfig) if name in options}
        paths = {declared.field: options.pop(declared.keyword) for declared in declared_options(Outputs)
                 if declared.keyword in options}
        parts = {declared: options.pop(declared.keyword) for declared in declared_options(Trim)
                 if declared.keyword in options}
        unknown = sorted(set(options) - (_field_names(cls) - {"source", "outputs", "chain"}))
        if unknown:
            raise TypeError(f"unknown run option(s): {', '.join(unknown)}")
        if isinstance(output, Outputs):
            if paths:
                raise TypeError(f"give {', '.join(paths)} in the Outputs, not beside it")
            outputs = output
        else:
            outputs = Outputs.of(video=output, **paths)
        if parts:
            # The command line's bounds (Trim checks only the sign), by each field's declared parser.
            values = {declared.field: declared.option.parser(value) for declared, value in parts.items()}
            if "trim" in options:
                raise TypeError("give either trim or start/duration/max_frames")
            options["trim"] = Trim(**values)
        return cls(source=Path(source), outputs=outputs, chain=ChainConfig(**chain), **options)


_SHARD_SECONDS = bounds.seconds("--shard-seconds", positive=True)


def _field_names(cls: type) -> set[str]:
    return {item.name for item in dataclasses.fields(cls)}


def run_config_for_chain(run: RunConfig | str | Path, outputs: Outputs | None, options: dict[str, object]) -> RunConfig:
    """`Chain.__call__`'s arguments as one `RunConfig`; stage keywords are refused (the chain is built)."""
    if isinstance(run, RunConfig):
        if outputs is not None or options:
            raise TypeError("a Chain called with a RunConfig takes the whole run from it")
        return run
    built = sorted(name for name in options if name in _field_names(ChainConfig))
    if built:
        raise TypeError(f"{', '.join(built)}: the chain is built already; give them to chain.build_chain")
    return RunConfig.of(run, outputs, **options)
