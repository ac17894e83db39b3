"""One training loop for every generator: a `Trainer` says what is particular, `train` does the rest.

`train` opens the run folder (new, or ``--resume`` with the checkpoint's options, checked
against the flags given again), checks a checkpoint's weights before allocating anything,
asks the trainer for its data and networks, restores weights, Adam states, the noise stream
and the loss scaler, then steps until the last epoch ends (or ``max_steps``): each step is
logged to ``losses.jsonl``; each epoch ends with a sample grid (written atomically); a
checkpoint is saved every ``checkpoint_every`` steps, at the end and on Ctrl-C/SIGTERM/SIGHUP
(then `TrainingInterrupted`); ``losses.png`` follows the log.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from chain.datasets.frames import BatchSampler
from chain.device import Precision, resolve_device
from chain.errors import ChainError
from chain.training.common import (
    LOSS_LOG,
    OPTIMIZER_FILE,
    LossLog,
    StopOnCtrlC,
    TrainingDisplay,
    TrainingInterrupted,
    load_optimizer_state,
    mark_run_folder,
    open_run,
    optimizer_tensors,
    plot_run_losses,
    read_optimizer_state,
    write_image_grid,
)
from chain.training.options import option_flags, options_from_flags, resumed_options
from chain.weights.folder import save_checkpoint
from chain.weights.locations import CHECKPOINT_DIR, CONFIG_FILE

SAMPLES_DIR = "samples"


@dataclass(frozen=True)
class Saved:
    """What a trainer puts in its checkpoint besides the loop's own meta and the Adam states."""

    config: Any                                   # the model's config dataclass (``config.json``)
    state_dict: dict[str, torch.Tensor]           # ``model.safetensors``
    meta: dict[str, Any]                          # e.g. the label space, the number of training items
    extra_files: dict[str, dict[str, torch.Tensor]] = dataclasses.field(default_factory=dict)


class Trainer(Protocol):
    """What one generator's training provides to `train`. Made from (options, device)."""

    OPTIONS: ClassVar[type]       # its options dataclass (`chain.training.options`)
    INPUT: ClassVar[str]          # the options field naming the training input
    MODEL_KIND: ClassVar[str]     # the checkpoint's model kind
    TITLE: ClassVar[str]          # "SPADE", "VAE-GAN": messages and the loss plot
    PLOTTED: ClassVar[tuple[str, ...]]
    RESUME: ClassVar[str]         # the command that continues a run: {input} and {out} are filled in

    options: Any
    noise: torch.Generator | None  # training noise whose state is checkpointed (after `build`), if any

    def check_resumable(self, checkpoint: Any, path: Path) -> None:
        """Check the checkpoint's weights fit the networks the options make, without allocating them."""

    def check_inputs(self) -> None:
        """Cheap checks of the inputs, so a mistake is one line before any work or progress bar."""

    def prepare(self, out_dir: Path, display: TrainingDisplay) -> int:
        """Decode or reuse the training data under ``out_dir``; the number of training items."""

    def build(self) -> dict[str, torch.optim.Optimizer]:
        """The networks, fresh from the options' seed, on the device; their optimizers by name."""

    def restore(self, checkpoint: Any, path: Path) -> None:
        """Load the checkpoint's weights into the built networks."""

    def train_step(self, indices: Any, step: int, precision: Precision) -> dict[str, float]:
        """One step on the items ``indices`` (global ``step``, 0-based); the losses to log."""

    def saved(self) -> Saved:
        """The networks' config, weights and extra meta and files, for the checkpoint."""

    def sample_grid(self) -> tuple[torch.Tensor, int]:
        """Images in [0, 1] ``(N, 3, H, W)`` and the images per row, from fixed inputs (no training noise)."""

    def describe(self, record: dict[str, Any]) -> str:
        """A logged record as the progress bar's text."""


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How a run is driven, not what it learns: none of it is saved with the options."""

    checkpoint_every: int = 500
    device: str | None = "auto"
    resume: bool = False
    progress: bool = True
    max_steps: int | None = None                                  # stop (resumably) after this many steps in all
    on_step: Callable[[int, dict[str, float]], None] | None = None  # after each step (tests use it)

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1:
            raise ChainError(f"--checkpoint-every must be >= 1, got {self.checkpoint_every}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ChainError(f"--max-steps must be >= 1, got {self.max_steps}")


def train(trainer_class: type[Trainer], out_dir: str | Path, flags: dict[str, Any], settings: RunSettings) -> Path:
    """Train ``trainer_class``'s networks into ``out_dir``; returns the checkpoint folder.

    ``flags`` are the options given (None: the default, or on resume the checkpoint's value);
    a name that is none of the options class's flags is a TypeError.
    """
    unknown = sorted(set(flags) - set(option_flags(trainer_class.OPTIONS)))
    if unknown:
        raise TypeError(f"unknown training option {unknown[0]!r}")
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / CHECKPOINT_DIR
    checkpoint = open_run(out_dir, checkpoint_path, resume=settings.resume, expect_model=trainer_class.MODEL_KIND)
    if checkpoint is None:
        options = options_from_flags(trainer_class.OPTIONS, flags, what=trainer_class.TITLE)
    else:
        options = resumed_options(trainer_class.OPTIONS, checkpoint.meta["train"], flags,
                                  input_field=trainer_class.INPUT)
    device = resolve_device(settings.device)
    trainer = trainer_class(options, device)
    if checkpoint is not None:  # before any network is built: a damaged config could ask for any size
        trainer.check_resumable(checkpoint, checkpoint_path)
        resumed_optimizers = read_optimizer_state(checkpoint_path)
    trainer.check_inputs()
    mark_run_folder(out_dir)  # from here on the folder is this run's (`check_run_folder`)

    with TrainingDisplay(settings.progress) as display:
        sampler = BatchSampler(trainer.prepare(out_dir, display), options.batch, options.seed)
        total_steps = options.epochs * sampler.steps_per_epoch
        stop = min(total_steps, settings.max_steps) if settings.max_steps is not None else total_steps
        optimizers = trainer.build()
        precision = Precision(device)
        step = 0
        if checkpoint is not None:
            trainer.restore(checkpoint, checkpoint_path)
            step = int(checkpoint.meta["step"])
            # CPU and CUDA noise generators differ: across devices, a new noise stream and the rest exact.
            same_device = torch.device(checkpoint.meta.get("device", "cpu")).type == device.type
            noise = trainer.noise if same_device else None
            load_optimizer_state(optimizers, noise, resumed_optimizers, checkpoint_path)
            if trainer.noise is not None and noise is None:
                trainer.noise.manual_seed(options.seed + step)
            precision.load_state_dict(checkpoint.meta.get("scaler"))
        log = LossLog(out_dir / LOSS_LOG, keep_through=step)

        def save(at_step: int) -> None:
            saved = trainer.saved()
            meta = {**saved.meta, "step": at_step, "epoch": at_step // sampler.steps_per_epoch,
                    "steps_per_epoch": sampler.steps_per_epoch, "total_steps": total_steps,
                    "complete": at_step >= total_steps, "train": dataclasses.asdict(trainer.options),
                    "device": str(device), "precision": precision.name, "scaler": precision.state_dict()}
            save_checkpoint(checkpoint_path, model=trainer_class.MODEL_KIND, config=saved.config,
                            state_dict=saved.state_dict, meta=meta,
                            extra_files={**saved.extra_files,
                                         OPTIMIZER_FILE: optimizer_tensors(optimizers, trainer.noise)})

        def plot() -> None:
            plot_run_losses(out_dir, trainer_class.PLOTTED, f"{trainer_class.TITLE} training")

        def end_of_epoch(epoch: int) -> None:
            grid, per_row = trainer.sample_grid()
            write_image_grid(grid, out_dir / SAMPLES_DIR / f"epoch_{epoch:03d}.png", per_row)

        hint = trainer_class.RESUME.format(input=getattr(options, trainer_class.INPUT), out=out_dir)
        display.start_training(step, stop, total_steps)
        step = _steps(trainer, sampler, precision, log, display, settings.on_step, step=step, stop=stop,
                      save=save, plot=plot, end_of_epoch=end_of_epoch, every=settings.checkpoint_every,
                      stopped=lambda at: f"at step {at} of {total_steps}; checkpoint saved in {checkpoint_path}. "
                                         f"Continue with: {hint}")
        if not (checkpoint_path / CONFIG_FILE).is_file():  # nothing to do, but a run leaves a checkpoint
            save(step)
            plot()
    return checkpoint_path


def _steps(trainer: Trainer, sampler: BatchSampler, precision: Precision, log: LossLog, display: TrainingDisplay,
           on_step: Callable[[int, dict[str, float]], None] | None, *, step: int, stop: int,
           save: Callable[[int], None], plot: Callable[[], None], end_of_epoch: Callable[[int], None], every: int,
           stopped: Callable[[int], str]) -> int:
    """Steps from ``step`` to ``stop``; a stop signal ends them after the current step, with a checkpoint."""
    with StopOnCtrlC() as ctrl_c:
        while step < stop:
            started = time.perf_counter()
            losses = trainer.train_step(sampler.batch(step), step, precision)
            step += 1
            record = {"step": step, "epoch": (step - 1) // sampler.steps_per_epoch + 1, **losses,
                      "seconds": round(time.perf_counter() - started, 4)}
            log.append(record)
            display.advance(trainer.describe(record))
            if on_step is not None:
                on_step(step, record)
            epoch_done = step % sampler.steps_per_epoch == 0
            checkpoint_due = step % every == 0 or step == stop or ctrl_c.requested
            if epoch_done:
                end_of_epoch(step // sampler.steps_per_epoch)
            if checkpoint_due:
                with ctrl_c.saving():
                    save(step)
            if epoch_done or checkpoint_due:
                plot()
            if ctrl_c.requested and step < stop:
                display.stop()
                interrupted = TrainingInterrupted(f"{ctrl_c.cause} {stopped(step)}")
                interrupted.exit_code = 128 + ctrl_c.signum
                raise interrupted
    return step
