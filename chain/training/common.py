"""What every training loop here shares: precision, Ctrl-C, the loss log, optimizer state, progress.

Each trainer (`chain.training.vaegan`, `chain.training.spade`) keeps its own networks, steps
and samples; these pieces make the runs behave alike: mixed precision on CUDA only, Ctrl-C
stops between steps with a checkpoint, ``losses.jsonl`` is cut back to the checkpoint on
resume, Adam states travel in a safetensors file beside the weights.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from chain.errors import ChainError

LOSS_LOG = "losses.jsonl"
LOSS_PLOT = "losses.png"
OPTIMIZER_FILE = "optimizer.safetensors"


class TrainingInterrupted(ChainError):
    """Ctrl-C stopped training; a checkpoint was saved and ``--resume`` continues it."""

    exit_code = 130


class Precision:
    """Mixed precision on CUDA (bf16 where supported, else fp16 with a loss scaler); fp32 elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype: torch.dtype | None = None
        if device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        # Disabled, the scaler's scale/step/update are plain pass-throughs to the optimizers.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def state_dict(self) -> dict[str, Any] | None:
        return self.scaler.state_dict() if self.scaler.is_enabled() else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


class StopOnCtrlC:
    """Turns the first Ctrl-C into a request to stop after the current step (a second one aborts).

    Stopping between steps keeps the three networks and their optimizers in step with each
    other, so the checkpoint saved on the way out resumes exactly. Only the main thread can
    catch signals; elsewhere Ctrl-C behaves as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self._saving = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and not self._saving:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """While a checkpoint is written, further Ctrl-Cs only ask to stop: `timeout -s INT`
        signals the command and then its whole process group, so a second SIGINT comes at once."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False

    def __enter__(self) -> StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class LossLog:
    """``losses.jsonl``, appended to one step at a time; on resume, steps after the checkpoint are dropped."""

    def __init__(self, path: Path, keep_through: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if keep_through > 0 and path.is_file():
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    if line.strip() and json.loads(line)["step"] <= keep_through:
                        kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))

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


def load_optimizer_state(optimizers: dict[str, torch.optim.Optimizer], generator: torch.Generator | None,
                          path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ChainError(f"{path} is missing: the checkpoint cannot be resumed (it can still be used to run)")
    tensors = load_file(str(path))
    for name, optimizer in optimizers.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            network, _, rest = key.partition(".")
            if network == name:
                index, _, entry = rest.partition(".")
                state.setdefault(int(index), {})[entry] = value
        document = optimizer.state_dict()
        document["state"] = state
        optimizer.load_state_dict(document)
    if generator is not None:
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
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

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
