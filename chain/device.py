"""Where networks run and in what precision: one policy for stages, SPADE, the VAE-GAN and training.

* `resolve_device`: ``--device auto|cpu|cuda|cuda:N`` → a `torch.device`, with one-line errors.
* Inference (`inference_context`, `inference_dtype`): fp16 autocast on CUDA; fp32 elsewhere,
  never bf16 on a CPU (on CPUs without bf16 units it is far slower than fp32).
* CPU threads (`configure_cpu_threads`): torch's intra-op threads, decided here only: ``--threads N``,
  else ``$OMP_NUM_THREADS``, else 1 (benchmarks/cpu_segmenter_speed.py: on a busy 2-core machine
  torch at 2 threads ran the deeplab-mnv2 port 35-40x slower than at 1, measured earlier). ONNX Runtime's pool
  (`onnx_threads`, its idle workers spinning only briefly) does not collapse so: it takes
  every core unless the user set a number. Torch's OpenMP threads also sleep rather than spin
  (``OMP_WAIT_POLICY=PASSIVE``, set in ``chain/__init__.py`` before torch loads), which keeps
  ``--threads 2`` from stalling beside ONNX Runtime's pool or a busy core.
* Training (`Precision`): bf16 autocast on CUDA where supported, else fp16 with a loss scaler;
  fp32 elsewhere.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from chain.bounds import THREADS, env_threads, parse_device
from chain.errors import ChainError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None → CUDA when available, else CPU; otherwise the named device, which must exist.

    Only ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are accepted (`chain.bounds.parse_device`): torch's
    other device types (``meta`` holds no data) would fail later, as internal errors.
    """
    name = parse_device(str(device) if isinstance(device, torch.device) else device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(name)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ChainError(f"--device {name} asked for CUDA, but no CUDA GPU is available; use --device cpu")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ChainError(f"--device {name}: there {'is' if count == 1 else 'are'} {count} CUDA "
                             f"GPU{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1})")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ChainError(f"--device {name} asked for Apple's MPS, which this machine lacks; use --device cpu")
    return resolved


# Without --threads or $OMP_NUM_THREADS: torch's OpenMP threads spin-wait for each other, so one
# busy core stalls every op of a small network (0.1 s -> 4.1 s a frame measured); one thread never waits.
DEFAULT_CPU_THREADS = 1


def cpu_threads(requested: int | None = None) -> int:
    """Intra-op threads for CPU inference: ``requested`` (``--threads``), else ``$OMP_NUM_THREADS``, else 1.

    Both are bounded (`chain.bounds`): 1 to 1024, one-line errors otherwise.
    """
    if requested is not None:
        return THREADS.check(requested)
    return env_threads() or DEFAULT_CPU_THREADS


def onnx_threads(requested: int | None = None) -> int:
    """ONNX Runtime's intra-op threads: as `cpu_threads` when the user set a number, else 0 (its own
    default, one per physical core). Its idle workers spin only briefly (`chain.stages.onnx_segmenter`),
    so its pool degrades gently when another process holds a core. With ``--threads 2`` torch runs at 2 threads
    too; its spinning OpenMP threads stalled the stage 4-7x until they were made to sleep
    (``OMP_WAIT_POLICY=PASSIVE``, chain/__init__.py)."""
    if requested is not None or env_threads() is not None:
        return cpu_threads(requested)
    return 0


def configure_cpu_threads(requested: int | None = None) -> int:
    """Set torch's intra-op threads per `cpu_threads` (process-wide) and return the count."""
    threads = cpu_threads(requested)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``; nothing when ``dtype`` is None (plain fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def inference_autocast_dtype(device: torch.device) -> torch.dtype | None:
    """What inference autocasts to on ``device``: fp16 on CUDA, nothing (fp32) elsewhere."""
    return torch.float16 if device.type == "cuda" else None


def inference_context(device: torch.device) -> contextlib.AbstractContextManager:
    """fp16 autocast on CUDA; plain fp32 elsewhere (bf16 on CPUs without bf16 units is far slower)."""
    return autocast(device, inference_autocast_dtype(device))


def inference_dtype(device: torch.device) -> torch.dtype:
    """The dtype to hold inference weights in where a library takes one (diffusers): fp16 on CUDA, else fp32."""
    return inference_autocast_dtype(device) or torch.float32


class Precision:
    """Training's mixed precision on CUDA (bf16 where supported, else fp16 with a loss scaler); fp32 elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.dtype: torch.dtype | None = None
        if device.type == "cuda":
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        # Disabled, the scaler's scale/step/update are plain pass-throughs to the optimizers.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for one training step's forward passes."""
        return autocast(self.device, self.dtype)

    def state_dict(self) -> dict[str, Any] | None:
        """The loss scaler's state for a checkpoint; None when there is no scaler."""
        return self.scaler.state_dict() if self.scaler.is_enabled() else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore `state_dict`'s scaler state (ignored without a scaler)."""
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)
