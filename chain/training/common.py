"""The pieces of the training loop (`chain.training.loop`): precision, Ctrl-C, the loss log,
optimizer state, progress, the run folder, plots and sample grids.

They make every run behave alike: mixed precision on CUDA only, Ctrl-C stops between steps
with a checkpoint, ``losses.jsonl`` is cut back to the checkpoint on resume, Adam states
travel in a safetensors file beside the weights, images are written whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from chain.errors import ChainError
from chain.media.targets import adopt, check_path, check_target, seal, staging_owner, staging_path
from chain.signals import STOP_SIGNALS, Terminated

LOSS_LOG = "losses.jsonl"
LOSS_PLOT = "losses.png"
OPTIMIZER_FILE = "optimizer.safetensors"


class TrainingInterrupted(ChainError):
    """Ctrl-C stopped training; a checkpoint was saved and ``--resume`` continues it."""

    exit_code = 130


class StopOnCtrlC:
    """Turns the first Ctrl-C (or SIGTERM, SIGHUP) into a request to stop after the current step;
    a second one aborts.

    Stopping between steps keeps the three networks and their optimizers in step with each
    other, so the checkpoint saved on the way out resumes exactly. Only the main thread can
    catch signals; elsewhere Ctrl-C behaves as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum = int(signal.SIGINT)  # the first stop signal
        self._saving = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and not self._saving:
            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)
        if not self.requested:
            self.signum = signum
        self.requested = True

    @property
    def cause(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else f"stopped by {signal.Signals(self.signum).name}"

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """While a checkpoint is written, further signals only ask to stop: `timeout -s INT`
        signals the command and then its whole process group, so a second SIGINT comes at once."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


class LossLog:
    """``losses.jsonl``, appended to one step at a time; on resume, steps after the checkpoint are dropped."""

    def __init__(self, path: Path, keep_through: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if keep_through > 0 and path.is_file():
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError, TypeError, KeyError):  # a line chain did not write
                    step = json.loads(line)["step"]
                    if isinstance(step, int) and step <= keep_through:
                        kept.append(line)
        # A new file in its place: a hard link to the old one (a backup of the run) keeps its lines.
        staging = staging_path(path)
        staging.write_text("".join(line + "\n" for line in kept))
        os.replace(staging, path)

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")


def optimizer_tensors(optimizers: dict[str, torch.optim.Optimizer],
                       generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Adam states flattened to ``{network}.{param index}.{exp_avg|exp_avg_sq|step}``, plus the noise RNG
    when the run has one."""
    tensors = {}
    for name, optimizer in optimizers.items():
        for index, entries in optimizer.state_dict()["state"].items():
            for key, value in entries.items():
                tensors[f"{name}.{index}.{key}"] = torch.as_tensor(value)
    if generator is not None:
        tensors["rng.noise"] = generator.get_state()
    return tensors


def read_optimizer_state(checkpoint_path: Path) -> dict[str, torch.Tensor]:
    """The Adam states saved beside a checkpoint; one line when the file is missing or damaged.
    Read before any network is built, so a run that cannot resume stops before any work."""
    from chain.weights.folder import read_safetensors

    path = checkpoint_path / OPTIMIZER_FILE
    if not path.is_file():
        raise ChainError(f"{path} is missing: the checkpoint cannot be resumed (it can still be used to run)")
    return read_safetensors(path)


def load_optimizer_state(optimizers: dict[str, torch.optim.Optimizer], generator: torch.Generator | None,
                         tensors: dict[str, torch.Tensor], checkpoint_path: Path) -> None:
    """Put `read_optimizer_state`'s tensors into the optimizers and the noise generator."""
    damaged = ChainError(f"{checkpoint_path / OPTIMIZER_FILE} does not fit the run's networks: the checkpoint "
                         "cannot be resumed")
    for name, optimizer in optimizers.items():
        params = [param for group in optimizer.param_groups for param in group["params"]]
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            network, _, rest = key.partition(".")
            if network == name:
                index, _, entry = rest.partition(".")
                if not index.isdigit() or int(index) >= len(params):
                    raise damaged
                state.setdefault(int(index), {})[entry] = value
        # Adam's moments must have their parameter's shape, or the first step would fail.
        if any(entries.get(moment, params[index]).shape != params[index].shape
               for index, entries in state.items() for moment in ("exp_avg", "exp_avg_sq")):
            raise damaged
        document = optimizer.state_dict()
        document["state"] = state
        optimizer.load_state_dict(document)
    if generator is not None:
        if "rng.noise" not in tensors:
            raise damaged
        generator.set_state(tensors["rng.noise"])


class TrainingDisplay:
    """A rich progress bar on stderr (decoding, then training steps with the latest losses), or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None
        self._task = None

    def __enter__(self) -> TrainingDisplay:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                      console=Console(stderr=True))
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def decoding(self, name: str) -> Callable[[int, int | None], None] | None:
        if self._progress is None:
            return None
        task = self._progress.add_task(f"decoding {name}", total=None, info="")

        def update(done: int, total: int | None) -> None:
            self._progress.update(task, completed=done, total=total)

        return update

    def start_training(self, step: int, stop: int, total_steps: int) -> None:
        if self._progress is not None:
            label = "training" if stop == total_steps else f"training (to step {stop} of {total_steps})"
            self._task = self._progress.add_task(label, total=stop, completed=step, info="")

    def advance(self, info: str) -> None:
        """One step done; ``info`` (the latest losses, say) is shown beside the bar."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, info=info)


def read_loss_log(out_dir: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a run's loss log (for scripts and tests)."""
    log = Path(out_dir) / LOSS_LOG
    if log.is_file():
        for line in log.read_text().splitlines():
            if line.strip():
                yield json.loads(line)


# -----------------------------------------------------------------------------
# What the trainers' entry points and loops share


def open_run(out_dir: Path, checkpoint_path: Path, *, resume: bool, expect_model: str) -> Any:
    """The checkpoint to resume from (`chain.weights.folder.Checkpoint`), or None for a new run.

    Refuses to resume where nothing was saved, and to start over a run that exists.
    """
    from chain.weights.folder import load_checkpoint
    from chain.weights.locations import CONFIG_FILE

    check_run_folder(out_dir)
    exists = (checkpoint_path / CONFIG_FILE).is_file()
    if resume and not exists:
        raise ChainError(f"nothing to resume: no checkpoint in {out_dir} (drop --resume to start a new run)")
    if not resume and exists:
        raise ChainError(f"{out_dir} already holds a training run; pass --resume to continue it, or choose another --out")
    if not resume:
        # The run saves its checkpoint there: whatever is in its place must be replaceable, known now.
        check_target(checkpoint_path, "checkpoint", option="checkpoint folder")
        return None
    checkpoint = load_checkpoint(checkpoint_path, expect_model=expect_model)
    step = checkpoint.meta.get("step")
    if not isinstance(checkpoint.meta.get("train"), dict) or not isinstance(step, int) or step < 0:
        raise ChainError(f"{checkpoint_path / CONFIG_FILE} lacks the training options or step a run saves; "
                         "it cannot be resumed (it can still be used to run)")
    strays = sorted(entry.name for entry in checkpoint_path.iterdir()
                    if entry.name not in CHECKPOINT_ENTRIES or entry.is_symlink() or not entry.is_file())
    if strays:
        raise ChainError(f"{checkpoint_path} holds files a checkpoint does not ({', '.join(strays[:3])}); a resumed run "
                         "replaces that folder whole: move them out first")
    adopt(checkpoint_path, "checkpoint")  # the run folder proved it the run's: the next save replaces it
    return checkpoint


RUN_MARKER = ".chain-run"
# What a training run writes into its folder, and whether each is a folder (True) or a file.
RUN_ENTRIES = {"checkpoint": True, "samples": True, "frames": True, "pairs": True, LOSS_LOG: False, LOSS_PLOT: False,
               RUN_MARKER: False}
# A run on several films caches the second, third… in frames-2, frames-3… (`chain.training.vaegan.frames_dir`).
_MORE_FRAMES = re.compile(r"frames-[1-9][0-9]*")


def run_entry_kind(name: str) -> bool | None:
    """Whether a run's entry ``name`` is a folder (True) or a file (False); None: no run writes it."""
    return True if _MORE_FRAMES.fullmatch(name) else RUN_ENTRIES.get(name)
# What a run's checkpoint folder holds (`chain.weights.folder.save_checkpoint`, with the optimizer
# state and SPADE's discriminator, `chain.training.spade.DISCRIMINATOR_FILE`).
CHECKPOINT_ENTRIES = frozenset({"config.json", "model.safetensors", OPTIMIZER_FILE, "discriminator.safetensors"})


def check_run_folder(out_dir: Path) -> None:
    """A run folder may be new, empty or a chain run's; never a folder of the user's other files.

    A chain run's folder holds its marker (`RUN_MARKER`, sealed by chain: a file the user makes
    under that name is not one) and only entries a run writes, each of the kind a run writes (a
    file named ``samples`` is not a run's), with no link anywhere in it. A run made before the marker
    is recognised by the same entries and a checkpoint that a training run saved. Names alone prove
    nothing; hidden parts count as the user's unless chain's seal is on their names.
    """
    check_path(out_dir, option="--out folder")
    if out_dir.is_symlink():
        raise ChainError(f"--out {out_dir} is a symbolic link; chain does not write through links: give a plain path")
    if out_dir.exists() and not out_dir.is_dir():
        raise ChainError(f"--out {out_dir} is a file; give the name of a new folder for the run")
    entries = [entry for entry in out_dir.iterdir() if staging_owner(entry.name) is None] if out_dir.is_dir() else []
    if not entries:
        return
    others = sorted(entry.name for entry in entries if run_entry_kind(entry.name) is None or entry.is_symlink()
                    or entry.is_dir() != run_entry_kind(entry.name))
    if not others and not _sealed_marker(out_dir) and not _legacy_run(out_dir):
        others = sorted(entry.name for entry in entries)  # a run's names, but nothing says a run wrote them
    for folder in (entry for entry in entries if not others and entry.is_dir()):
        inside = [path for path in folder.rglob("*") if path.is_symlink()
                  or (folder.name == "samples" and not path.is_file())]
        others += [str(path.relative_to(out_dir)) for path in inside[:3]]
    if others:
        shown = ", ".join(others[:3]) + (", …" if len(others) > 3 else "")
        raise ChainError(f"--out {out_dir} holds files that are not a chain training run ({shown}); chain keeps "
                         "them untouched: give a new folder")


def _sealed_marker(out_dir: Path) -> bool:
    marker = out_dir / RUN_MARKER
    try:
        document = json.loads(marker.read_text()) if marker.is_file() and not marker.is_symlink() else None
    except (OSError, ValueError):
        return False
    run = document.get("run") if isinstance(document, dict) else None
    return isinstance(run, str) and document.get("seal") == seal(f"training run {run}")


def _legacy_run(out_dir: Path) -> bool:
    """A run folder made before the marker: its checkpoint is one a chain training run saved."""
    config = out_dir / "checkpoint" / "config.json"
    try:
        document = json.loads(config.read_text()) if config.is_file() else None
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and isinstance(document.get("meta"), dict) and "train" in document["meta"]


def mark_run_folder(out_dir: Path) -> None:
    """Create the run's folder (if new) and its sealed marker, once `check_run_folder` has allowed it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not _sealed_marker(out_dir):
        run = secrets.token_hex(8)
        staging = staging_path(out_dir / RUN_MARKER)
        staging.write_text(json.dumps({"written_by": "chain training run", "run": run,
                                       "seal": seal(f"training run {run}")}) + "\n")
        os.replace(staging, out_dir / RUN_MARKER)


def plot_run_losses(out_dir: Path, keys: tuple[str, ...], title: str) -> None:
    """``losses.png`` from ``losses.jsonl``, smoothed over about a hundredth of the run."""
    from chain.training.metrics import plot_losses

    log = out_dir / LOSS_LOG
    if log.is_file() and log.stat().st_size > 0:
        records = sum(1 for _ in log.open())
        plot_losses(log, out_dir / LOSS_PLOT, keys, title=f"{title}, {out_dir.name}", smooth=max(1, records // 100))


def write_image_grid(images: torch.Tensor, path: Path, per_row: int) -> Path:
    """Save images in [0, 1] ``(N, 3, H, W)`` as one PNG grid, atomically: a reader (or a run stopped
    while writing) never sees half an image."""
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(path)
    try:
        save_image(images.detach().float().cpu().clamp(0, 1), str(staging), nrow=per_row, padding=2, format="png")
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)
    return path
