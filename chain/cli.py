"""The ``chain`` command: a thin shell over `chain.api`.

``chain run``'s options are declared once, on the configuration fields they set (`chain.options`),
and made into typer options here; ``chain train vaegan`` and ``chain train spade``'s training
options likewise from their declarations (`chain.training.flags`); the other commands' own options
are declared once below and reused. `chain.entry.main` runs this app and is the one place where errors become messages and
exit codes.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from chain import bounds  # light: no torch
from chain.config import DEFAULT_SEGMENTER, DEFAULT_SYNTHESIZER, ChainConfig, RunConfig, parse_stage_name
from chain.media.outputs import Outputs
from chain.media.source import Trim
from chain.options import Declared, Option, declared_options
from chain.training import flags as training_flags  # light: the declarations, no torch

# chain.api (torch, the stages) is imported inside the commands that need it: `chain --help` and
# a typo in `chain run` answer without loading torch (about 2 s of CPU).

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Re-imagine films through neural networks: segment, remap, synthesize. "
                       "Add --debug anywhere for tracebacks.")
err = Console(stderr=True)
UNMAPPED_SHOWN = 12  # ADE20K -> CamVid leaves 109 classes unmapped: the summary file has them all
out = Console()

_type_shown = typer.core.TyperOption.display_type_rich


def _no_type_on_flags(option: typer.core.TyperOption, ctx: typer.Context) -> str | None:
    """A flag (--quiet, --help) takes no value: typer's help would show ``<bool>`` after it."""
    return None if option.is_flag else _type_shown(option, ctx)


typer.core.TyperOption.display_type_rich = _no_type_on_flags

# --- options, declared once -------------------------------------------------------------


def _parsed(parser: Callable[[Any], Any], metavar: str, *, help: str) -> Any:  # noqa: A002 (typer's name)
    """An option whose text a `chain.bounds` parser turns into its value (a bounded number, a device, a
    cluster address), or refuses in one line that names the option and what it accepts."""
    return typer.Option(parser=parser, metavar=metavar, help=help)


def _as_typer(option: Option) -> Any:
    """A declared run option (`chain.options`) as typer's annotation."""
    return Annotated[option.type, typer.Option(*option.flags, help=option.help, metavar=option.metavar,
                                               parser=option.parser)]


def _declared(cls: type, name: str) -> Any:
    """The annotation of the option that field ``name`` of ``cls`` declares (for commands beside
    ``chain run`` that take the same option)."""
    return next(_as_typer(declared.option) for declared in declared_options(cls) if declared.field == name)


#: `chain run`'s own options, which set no configuration field: a shorthand for a synthesizer option,
#: and how the run is shown.
LATENT_NOISE = Declared("latent_noise", "latent_noise", Option(
    "Autoencoder synthesizers: add Gaussian noise of this std to the latent code.", float | None,
    parser=bounds.LATENT_NOISE, metavar="STD"), None)
QUIET = Declared("quiet", "quiet", Option("No progress bar or summary table.", bool, flags=("--quiet", "-q")), False)


def run_options() -> list[Declared]:
    """``chain run``'s options, in ``--help``'s order: the chain's (`ChainConfig`), the outputs
    (`Outputs`), the part of the input (`Trim`), the run's (`RunConfig`), each declared once on its
    field; then `chain run`'s own."""
    return [*declared_options(ChainConfig), LATENT_NOISE, *declared_options(Outputs), *declared_options(Trim),
            *declared_options(RunConfig), QUIET]


#: Options whose value may be left out (a bare ``--deflicker``), and the value that stands for it.
OPTIONAL_VALUES = {"--deflicker": "on"}
_OPTIONAL_VALUE = re.compile(r"on|off|none|[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?(:[0-9]+)?", re.IGNORECASE)


def with_optional_values(args: list[str]) -> list[str]:
    """``args`` with each bare option of `OPTIONAL_VALUES` given its value (click needs one)."""
    expanded = []
    for position, arg in enumerate(args):
        expanded.append(arg)
        if arg in OPTIONAL_VALUES:
            following = args[position + 1] if position + 1 < len(args) else None
            if following is None or not _OPTIONAL_VALUE.fullmatch(following):
                expanded[-1] = f"{arg}={OPTIONAL_VALUES[arg]}"
        if arg == "--":
            expanded.extend(args[position + 1:])
            break
    return expanded


# Options of other commands that are also `chain run`'s, as its fields declare them.
SegWeights = _declared(ChainConfig, "seg_weights")
SegOpt = _declared(ChainConfig, "seg_options")
Device = _declared(ChainConfig, "device")
Batch = _declared(RunConfig, "batch_size")
Start = _declared(Trim, "start")
Duration = _declared(Trim, "duration")
MaxFrames = _declared(Trim, "max_frames")
Quiet = _as_typer(QUIET.option)
TrainThreads = Annotated[int | None, _parsed(
    bounds.THREADS, "N", help="CPU threads for training \\[default: $OMP_NUM_THREADS, else torch's, one per core]. Beside "
                "other busy processes 1 thread can be several times faster: a VAE-GAN step at 64x36 took 4 s at 2 threads, "
                "0.7 s at 1.")]
CheckpointEvery = Annotated[int, _parsed(bounds.count("--checkpoint-every", bounds.MAX_STEPS), "N",
                                         help="Steps between checkpoints.")]
MaxSteps = Annotated[int | None, _parsed(bounds.count("--max-steps", bounds.MAX_STEPS), "N",
                                         help="Stop after this many steps (resumable).")]
Epochs = bounds.TRAINING["epochs"]
TrainSize = bounds.ascii_text("--size")


class _FramesPerSecond(ProgressColumn):
    """frames/s as `chain.engine.summary.frames_per_second` defines it: frames done ÷ seconds since the run
    began (not rich's moving average, which the closing line would contradict); the run's own
    figure once it has ended."""

    def __init__(self, owner: RichProgress) -> None:
        super().__init__()
        self._owner = owner

    def render(self, task) -> Text:  # noqa: ANN001 (rich's Task)
        speed = self._owner.frames_per_second()
        return Text(f"{speed:.2f} frames/s" if speed else "… frames/s", style="progress.data.speed")


class RichProgress:
    """Progress on stderr: a bar with frames/s and the time left on a terminal; elsewhere (a log,
    a pipe) a plain line every `LOG_EVERY` seconds and at the end, never cut to a width.

    Use it as a context manager around the run and call `settle` with the run's own frames/s, so
    that the last progress line and the closing line show one figure.
    """

    LOG_EVERY = 10.0

    def __init__(self) -> None:
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             _FramesPerSecond(self), TimeRemainingColumn(), console=err, transient=False)
        self._live = err.is_terminal
        self._task = None
        self._name, self._total, self._done = "", None, 0
        self._started = self._logged = 0.0
        self._final: float | None = None

    def start(self, total: int | None, description: str) -> None:
        self._name, self._total, self._done = description, total, 0
        self._started = self._logged = time.perf_counter()
        if self._live:
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)

    def advance(self, frames: int) -> None:
        self._done += frames
        if self._live:
            self._bar.advance(self._task, frames)
        elif time.perf_counter() - self._logged >= self.LOG_EVERY:
            self._logged = time.perf_counter()
            self._log("so far")

    def frames_per_second(self) -> float:
        from chain.engine.summary import frames_per_second  # a run is under way: torch is loaded

        if self._final is not None:
            return self._final
        return frames_per_second(self._done, time.perf_counter() - self._started)

    def stop(self) -> None:
        """The run has ended; the display waits for `settle` (or the end of the ``with`` block)."""

    def settle(self, frames_per_second: float) -> None:
        """Show the run's own figure (`chain.engine.summary.RunSummary.frames_per_second`) as the last one."""
        self._final = frames_per_second
        if not self._live:
            self._log("")

    def _log(self, note: str) -> None:
        total = f"/{self._total}" if self._total else ""
        err.print(f"{self._name}: {self._done}{total} frames, {self.frames_per_second():.2f} frames/s"
                  + (f" {note}" if note else ""), soft_wrap=True, highlight=False)

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live and self._task is not None:
            self._bar.refresh()
            self._bar.stop()


def _command_line(ctx: typer.Context) -> list[str]:
    """The command as typed: `chain.entry` passes its arguments (without --debug) as ``obj``."""
    args = (ctx.find_root().obj or {}).get("argv")
    return ["chain", *(args if args is not None else sys.argv[1:])]


def run_config(params: dict[str, object], command: list[str] | None = None) -> RunConfig:
    """`chain run`'s parsed parameters as a `RunConfig`: they are named as `RunConfig.of`'s keywords."""
    options = {name: value for name, value in params.items() if name not in ("quiet", "latent_noise")}
    if params.get("latent_noise") is not None:  # a shorthand for the synthesizer option (a later key wins)
        options["synth_options"] = [*(params.get("synth_options") or []), f"latent_noise={params['latent_noise']}"]
    return RunConfig.of(**options, command=command)


def run(ctx: typer.Context, source: Path, output: str | None = None, **options: Any) -> None:
    """Segment, remap and synthesize every frame of SOURCE."""
    from chain.checks import check_run
    from chain.stages.registry import check_stages

    config = run_config(ctx.params, command=_command_line(ctx))
    # The cheap checks before torch is imported; api.run takes the checked run and does not repeat them.
    checked = check_run(config)
    check_stages(config.chain)
    from chain import api

    quiet = options["quiet"]
    if quiet and config.cluster is not None:
        from chain.cluster.run import quiet_ray

        quiet_ray()
    progress = None if quiet else RichProgress()
    with progress or contextlib.nullcontext():
        result = api.run(checked, progress=progress)
        if progress is not None:
            progress.settle(result.frames_per_second)
    if result.input_damage is not None:  # shown even with --quiet: the output is not the whole input
        err.print(Text.assemble(("warning: ", "yellow"), f"{source}: {result.input_damage.describe()}; wrote the "
                                f"{result.frames} frames that decoded (--strict makes this an error)"), soft_wrap=True)
    if quiet:
        return
    report = result.to_dict()
    frames = report["frames"]
    # The speed unrounded, as the progress line settled on it: one figure (chain.engine.summary.frames_per_second).
    err.print(f"[bold]{frames}[/] frame{'' if frames == 1 else 's'} at {report['width']}x{report['height']}, "
              f"{result.frames_per_second:.2f} frames/s; audio: {report['audio']}", soft_wrap=True)
    err.print("ms/frame: " + ", ".join(f"{k} {v:.1f}" for k, v in report["stage_ms_per_frame"].items())
              + (f"; compile (warm-up on the first batch) {report['stage_seconds']['compile']:.1f} s"
                 if "compile" in report["stage_seconds"] else ""), soft_wrap=True)
    if report["label_flicker"] is not None:
        err.print(f"label flicker: {100 * report['label_flicker']:.2f} % of pixels change label per frame", soft_wrap=True)
    steady = report.get("steadiness") or {}
    if steady.get("input_warp_error") is not None:
        err.print(_steadiness_line(steady), soft_wrap=True)
    if report.get("output_flicker") is not None:
        err.print(f"output flicker: {report['output_flicker']:.2f}x the input's change between frames "
                  f"(mean |Δ| {report['output_change']:.2f} vs {report['input_change']:.2f} levels)", soft_wrap=True)
    if report["unmapped_classes"]:
        unmapped = report["unmapped_classes"]
        shown = ", ".join(unmapped[:UNMAPPED_SHOWN])
        more = f", … ({len(unmapped) - UNMAPPED_SHOWN} more in --summary)" if len(unmapped) > UNMAPPED_SHOWN else ""
        err.print(f"unmapped into {report['target_space']} (became its fallback): {shown}{more}", soft_wrap=True)
    if report["remapped"]:
        err.print("remapped: " + "; ".join(report["remapped"]), soft_wrap=True)
    for name, path in report["outputs"].items():
        err.print(f"wrote {_written(name, config.outputs)}: {path}", soft_wrap=True, highlight=False)


def _run_signature() -> inspect.Signature:
    """``run``'s parameters for typer: the input and output arguments, then every declared option."""
    arguments = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter("source", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
            Path, typer.Argument(help="Video file, folder of images, or image.")]),
        inspect.Parameter("output", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=Annotated[
            str | None, typer.Argument(help="Output video (.mp4 .mkv .mov .webm .avi), image, or folder for PNG "
                                            "frames (a trailing / always means a folder).")]),
    ]
    options = [inspect.Parameter(declared.keyword, inspect.Parameter.KEYWORD_ONLY, default=declared.default,
                                 annotation=_as_typer(declared.option)) for declared in run_options()]
    return inspect.Signature([*arguments, *options], return_annotation=None)


def declare_run_options() -> None:
    """Give ``run`` the parameters of the declared options. typer reads a command's options from its
    signature when it makes the command (each time the app runs), so a field declared with
    `chain.options.option` is a ``chain run`` option with nothing else to write here."""
    run.__signature__ = _run_signature()
    run.__annotations__ = {name: parameter.annotation for name, parameter in run.__signature__.parameters.items()}


declare_run_options()
app.command()(run)


def _written(name: str, outputs: Outputs) -> str:
    """What an output is, for the closing lines: ``image``, ``compare video``, ``PNG frames``, ``label maps``."""
    if name in ("summary", "labels"):
        return {"summary": "summary", "labels": "label maps"}[name]
    kind = {"video": "video", "image": "image", "folder": "PNG frames"}[outputs.kind(name)]
    return kind if name == "video" else f"{name} {kind}"


import_app = typer.Typer(help="Bring networks from other formats into chain checkpoints.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("tflite")
def import_tflite(
    file: Annotated[Path, typer.Argument(help="A DeepLabV3-MobileNetV2 .tflite file.")],
    labels: Annotated[str, typer.Option(help="Its label space: voc or ade20k.")],
    out: Annotated[Path, typer.Option(help="Checkpoint folder to write (e.g. ~/.cache/chain/weights/deeplab-mnv2-voc).")],
) -> None:
    """Read a TF Lite DeepLabV3-MobileNetV2 (weights and graph) into a chain checkpoint."""
    from chain.importers.tflite import save_imported
    from chain.media.targets import check_target

    check_target(out, "checkpoint", option="--out folder")
    from chain.weights.locations import deeplab_mnv2_checkpoint

    written = save_imported(file, out, label_space=labels)
    # Where chain looks anyway needs no --seg-weights.
    weights = "" if Path(written).resolve() == deeplab_mnv2_checkpoint(labels).resolve() else f" --seg-weights {written}"
    err.print(f"wrote {written} (use --seg deeplab-mnv2:{labels}{weights})", soft_wrap=True)


train_app = typer.Typer(help="Train networks on your own footage.", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _training_signature(arguments: list[inspect.Parameter], table: dict, run_control: list[inspect.Parameter]) -> \
        inspect.Signature:
    """A ``chain train`` command's parameters: its input and ``--out``, the training options its trainer
    declares (`chain.training.flags`; None: the default, or on resume the checkpoint's), then how the
    run is driven."""
    options = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        declaration.option.type, typer.Option(*declaration.option.flags, help=declaration.help,
                                              metavar=declaration.option.metavar, parser=declaration.option.parser)])
        for name, declaration in table.items()]
    return inspect.Signature([*arguments, *options, *run_control], return_annotation=None)


def _keyword(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_OUT = Annotated[Path, typer.Option(help="Run folder: checkpoint/, samples/, losses.jsonl, losses.png.")]
_RESUME = Annotated[bool, typer.Option("--resume", help="Continue the run in --out where it stopped.")]


def _run_control(*, threads: bool) -> list[inspect.Parameter]:
    """The options that drive a training run (`chain.training.loop.RunSettings`), the part of the input, and the display."""
    return [_keyword("start", Start, 0.0), _keyword("duration", Duration, None), _keyword("max_frames", MaxFrames, None),
            _keyword("checkpoint_every", CheckpointEvery, 500), _keyword("max_steps", MaxSteps, None),
            _keyword("device", Device, "auto"), *([_keyword("threads", TrainThreads, None)] if threads else []),
            _keyword("resume", _RESUME, False), _keyword("quiet", Quiet, False)]


def _declare(command: Callable[..., None], signature: inspect.Signature) -> Callable[..., None]:
    """Give ``command`` the parameters of ``signature`` (typer reads them from it)."""
    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {name: parameter.annotation for name, parameter in signature.parameters.items()}
    return command


def _run_settings(options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """A ``chain train`` command's parameters as the trainer's flags and the run's settings."""
    from chain.training.loop import RunSettings

    settings = RunSettings(checkpoint_every=options.pop("checkpoint_every"), max_steps=options.pop("max_steps"),
                           device=options.pop("device"), resume=options.pop("resume"),
                           progress=not options.pop("quiet"))
    options["start"] = options["start"] or None
    return options, settings


def train_vaegan(film: list[Path], out: Path, **options: Any) -> None:
    """Train a VAE-GAN autoencoder (Larsen et al. 2015) on the frames of one FILM or several."""
    from chain.bounds import env_threads
    from chain.device import configure_cpu_threads
    from chain.training.vaegan import train_vaegan as train

    threads = options.pop("threads")
    if threads is not None or env_threads() is not None:  # else torch's own default, one thread per core
        configure_cpu_threads(threads)
    flags, settings = _run_settings(options)
    checkpoint = train(film, out, flags, settings)
    err.print(f"checkpoint: {checkpoint} (reconstruct with: chain run FILM OUT --seg none --synth vaegan "
              f"--synth-weights {out})")


def train_spade(data: Path, out: Path, **options: Any) -> None:
    """Train a SPADE generator on labelled pairs or on a video's pseudo-labels."""
    from chain.training.spade import train_spade as train

    flags, settings = _run_settings(options)
    checkpoint = train(data, out, flags, settings)
    err.print(f"checkpoint: {checkpoint} (paint with: chain run VIDEO OUT --seg SEGMENTER --synth spade "
              f"--synth-weights {out}; score with: chain eval spade {out} HELD_OUT)")


def declare_training_options() -> None:
    """Give ``chain train vaegan`` and ``chain train spade`` the parameters of the declared training
    options (`chain.training.flags`): an option declared there is on the command line with nothing
    else to write here."""
    _declare(train_vaegan, _training_signature([
        inspect.Parameter("film", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[list[Path], typer.Argument(
            help="The film (or clip, image folder) to learn; several are learnt together, each weighted by its length.")]),
        _keyword("out", _OUT)], training_flags.VAEGAN_FLAGS, _run_control(threads=True)))
    _declare(train_spade, _training_signature([
        _keyword("data", Annotated[Path, typer.Option(help="Dataset folder (CamVid or NVlabs COCO-Stuff layout), or a "
                                                           "video labelled by --seg.")]),
        _keyword("out", _OUT)], training_flags.SPADE_FLAGS, _run_control(threads=False)))


declare_training_options()
train_app.command("vaegan")(train_vaegan)
train_app.command("spade")(train_spade)


eval_app = typer.Typer(help="Measure how well trained networks work.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("spade")
def eval_spade(
    weights: Annotated[Path, typer.Argument(help="A SPADE checkpoint or `chain train spade` run folder.")],
    data: Annotated[Path, typer.Argument(help="Dataset folder (its --split is held out) or a video.")],
    seg: Annotated[str, typer.Option(help="The segmenter that judges synthesized and real images.")]
        = "deeplab-mnv2:ade20k",
    seg_weights: SegWeights = None, seg_opt: SegOpt = None,
    label_seg: Annotated[str | None, typer.Option(
        help="For a video: the segmenter whose labels are painted from \\[default: --seg].")] = None,
    split: Annotated[str, typer.Option(help="Dataset split to evaluate on.")] = "val",
    size: Annotated[str | None, _parsed(TrainSize, "WxH", help="Scoring size WxH \\[default: the generator's size].")] = None,
    max_items: Annotated[int | None, _parsed(bounds.count("--max-items"), "N", help="Score at most this many images/frames.")] = None,
    samples: Annotated[Path | None, typer.Option(help="PNG: labels | real | synthesized | judged, per row.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the scores as JSON.")] = None,
    start: Start = 0.0, duration: Duration = None, batch: Batch = 4, device: Device = "auto",
) -> None:
    """SPADE's test: segment synthesized images and score them against the labels they came from."""
    from chain.config import parse_options
    from chain.evaluation import evaluate_spade
    from chain.media import Trim

    result = evaluate_spade(weights, data, seg=seg, seg_weights=seg_weights,
                            seg_options=parse_options(seg_opt or []), label_seg=label_seg, split=split, size=size,
                            max_items=max_items, batch=batch, trim=Trim(start=start, duration=duration),
                            device=device, samples=samples, report=report)
    table = Table("images", "mIoU", "pixel accuracy", title=f"{result['items']} items at {result['size']}, "
                  f"judged by {result['segmenter']} in {result['label_space']}")
    for kind in ("synthesized", "real"):
        table.add_row(kind, f"{100 * result[kind]['miou']:.1f} %", f"{100 * result[kind]['pixel_accuracy']:.1f} %")
    out.print(table)
    per_class = Table("class", "IoU synthesized", "IoU real", title="per class")
    for name, iou in result["real"]["class_iou"].items():
        per_class.add_row(name, f"{100 * result['synthesized']['class_iou'].get(name, 0.0):.1f}", f"{100 * iou:.1f}")
    out.print(per_class)
    if "flicker" in result:
        flicker = result["flicker"]
        out.print(f"flicker: synthesized frames change {flicker['synthesized_mean_abs_diff']:.2f} levels per frame, "
                  f"real {flicker['real_mean_abs_diff']:.2f} (x{flicker['relative']:.2f}); judged labels change on "
                  f"{100 * flicker['label_flicker_synthesized']:.1f} % vs {100 * flicker['label_flicker_real']:.1f} % "
                  "of pixels")


@app.command()
def labels(space: Annotated[str | None, typer.Argument(help="A label space; omit to list them.")] = None) -> None:
    """List a label space's ids, names and colours (or the spaces)."""
    from chain.labels import LABEL_SPACES, get_label_space

    if space is None:
        table = Table("space", "ids", "fallback", "description")
        for item in LABEL_SPACES.values():
            table.add_row(item.name, str(len(item)), item.fallback, item.description)
        out.print(table)
        return
    chosen = get_label_space(space)
    table = Table("id", "name", "colour", title=f"{chosen.name}: {chosen.description}")
    for label_id, name in enumerate(chosen.names):
        r, g, b = (int(c) for c in chosen.palette[label_id])
        table.add_row(str(label_id), name, Text("      ", style=f"on rgb({r},{g},{b})") + f" {r},{g},{b}")
    out.print(table)


@app.command("list")
def list_stages() -> None:
    """List segmenters and synthesizers, their label spaces and where their weights are."""
    from chain.stages.registry import stages  # descriptions only: no torch

    # One line per fact, never cut: names and weight paths are what the user copies from here.
    for kind, option, default in (("segmenter", "--seg", DEFAULT_SEGMENTER), ("synthesizer", "--synth", DEFAULT_SYNTHESIZER)):
        out.print(Text.assemble((f"{kind}s", "bold"), f" ({option}; without it chain run uses {default})"), soft_wrap=True)
        default_name, default_variant = parse_stage_name(default)
        for spec in stages(kind).values():
            # A stage that takes any variant (colorize:SPACE) lists the one chain run uses, if it is this stage.
            taken = (default_variant,) if spec.name == default_name and default_variant else ()
            for variant in spec.variants or (*taken, spec.default_variant):
                name = spec.name + (f":{variant}" if variant and (spec.variants or variant in taken) else "")
                marks = [f"or just {spec.name}"] if variant and len(spec.variants) > 1 and variant == spec.default_variant else []
                if (spec.name, variant or spec.default_variant) == (default_name, default_variant or spec.default_variant):
                    marks.append("default")
                status = spec.weights(variant, None) if spec.weights else None
                out.print(Text.assemble((name, "bold cyan"), (f" ({'; '.join(marks)})" if marks else "", "bold"),
                                        f"  label space: {spec.label_space(variant) or '-'}"), soft_wrap=True)
                out.print(Text(f"    {spec.summary}"), soft_wrap=True)
                if status is not None:
                    present = ("present", "green") if status.present else ("missing", "yellow")
                    how = "" if status.present or not status.how_to_get else f" (get: {status.how_to_get})"
                    out.print(Text.assemble("    weights ", present, f": {status.location}{how}"), soft_wrap=True)
        out.print()


@app.command()
def info(source: Annotated[Path, typer.Argument(help="A video file, image folder or image.")]) -> None:
    """Show what chain will read from SOURCE: size, frame rate, frames, duration, audio."""
    from chain.media import open_source

    with open_source(source) as frames:
        item = frames.info
    duration = f"{item.duration:.3f} s" if item.duration is not None else "unknown"
    rotated = f", stored rotated (turned {item.rotation}° upright on decode)" if item.rotation else ""
    sar = item.sample_aspect_ratio
    if sar != 1:
        rotated += f", stored with {sar.numerator}:{sar.denominator} pixels (made square on decode)"
    out.print(f"{item.path}: {item.kind}, {item.width}x{item.height}{rotated}, {float(item.fps):.3f} fps "
              f"({item.fps}), {item.frame_count if item.frame_count is not None else 'unknown'} frames, "
              f"{duration}, audio: {item.audio_codec or 'none'}", soft_wrap=True)


@app.command()
def ui(
    source: Annotated[Path | None, typer.Argument(help="A video to open at start (or choose one).")] = None,
    out: Annotated[Path, typer.Option(help="Folder the page's runs write into.")] = Path("chain-ui-outputs"),
    port: Annotated[int | None, _parsed(bounds.PORT, "PORT", help="Port on 127.0.0.1 \\[default: 7860+].")] = None,
) -> None:
    """Open a local web page: try label swaps on one frame, then run the whole video (needs the ui extra)."""
    from chain.ui import launch

    launch(str(source) if source else None, out_dir=out, port=port)


def _steadiness_line(steady: dict) -> str:
    """The closing line's steadiness figures (`chain.steadiness`), along the input's motion."""
    parts = []
    if steady.get("label_flicker_along_motion") is not None:
        parts.append(f"labels change on {100 * steady['label_flicker_along_motion']:.2f} % of tracked pixels")
    if steady.get("painting_warp_error") is not None:
        parts.append(f"painting's warping error {steady['painting_warp_error']:.4f} "
                     f"(the input's own {steady['input_warp_error']:.4f})")
    return f"along the input's motion (at {steady['size']}): " + "; ".join(parts or ["no labels or painting"])

