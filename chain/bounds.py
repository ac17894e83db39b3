"""Numbers and names from text, bounded: every numeric option, ``--device`` and every environment
variable chain reads is turned into a typed value here, once, with a one-line error that names
the option and what it accepts.

Python's ``int()`` and ``float()`` are too lenient for a command line: they take ``'٢٥٦'``
(Arabic-Indic digits), ``'２５６'`` (full-width), ``'1_000'``, ``'nan'`` and ``'inf'``, and a
value such as ``2**63`` parses fine only to overflow deep inside a library (islice, a C
allocator) as an internal error. Here a number is ASCII digits, finite, and inside a range that
no real run leaves (a batch of more than 1024 frames, a film of more than 11 days).

Nothing here imports torch or the media layer: `chain.entry` checks the environment before torch
(and OpenMP behind it) is loaded.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chain.errors import ChainError

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _words(value: object) -> str:
    """How a refused value is shown: as typed, quoted when it has spaces or is empty."""
    text = str(value)
    return repr(text) if not text or text != text.strip() or not text.isprintable() or " " in text else text


@dataclass(frozen=True)
class Bound:
    """The whole numbers (``kind=int``) or finite numbers (``float``) an option accepts.

    ``name`` is what the user typed (``--batch``, ``OMP_NUM_THREADS``); ``low_open`` excludes ``low``
    (``--duration`` must be > 0). `parse` takes text or a number (typer also hands over defaults),
    `check` a number from Python.
    """

    name: str
    low: float
    high: float
    kind: type = int
    low_open: bool = False
    unit: str = ""

    def describe(self) -> str:
        """``a whole number from 1 to 1024`` / ``a number of seconds > 0 and <= 1000000``."""
        what = "a whole number" if self.kind is int else "a number"
        unit = f" of {self.unit}" if self.unit else ""
        low, high = _show(self.low), _show(self.high)
        if self.low_open:
            return f"{what}{unit} > {low} and <= {high}"
        return f"{what}{unit} from {low} to {high}"

    def refuse(self, value: object, why: str = "") -> ChainError:
        """The one-line error for ``value``."""
        return ChainError(f"{self.name} {_words(value)}{why}: give {self.describe()}")

    def parse(self, value: str | float | None) -> float | None:
        """Text (ASCII digits only, no ``nan``/``inf``) or a number → a bounded ``kind``; None stays None."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            text = value.strip()
            if not text.isascii():
                raise self.refuse(value, " is not written in ASCII digits (0-9)")
            pattern = _INT if self.kind is int else _FLOAT
            if not pattern.fullmatch(text):
                if text.lstrip("+-").lower() in ("nan", "inf", "infinity"):
                    raise self.refuse(value, " is not a finite number")
                raise self.refuse(value, " is not a number" if self.kind is float else " is not a whole number")
            return self.check(int(text) if self.kind is int else float(text), shown=text)
        return self.check(value)

    def check(self, value: float, *, shown: str | None = None) -> float:
        """``value`` itself when it is a ``kind`` in range, else a `ChainError` (showing ``shown``, the
        text typed, when given)."""
        if isinstance(value, str):  # text from Python: parsed as the command line's
            return self.parse(value)
        if self.kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            if not (isinstance(value, float) and value.is_integer()):
                raise self.refuse(value, " is not a whole number")
            value = int(value)
        if self.kind is float:
            value = float(value) + 0.0  # -0.0 is 0.0
            if not math.isfinite(value):
                raise self.refuse(value, " is not a finite number")
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or value > self.high:
            raise self.refuse(value if shown is None else shown, " is out of range")
        return value

    def __call__(self, value: str | float | None) -> float | None:  # typer's ``parser=``
        return self.parse(value)


def _show(number: float) -> str:
    return str(int(number)) if float(number).is_integer() and abs(number) < 1e16 else f"{number:g}"


# --- the bounds of chain's options ----------------------------------------------------------------
#: Seconds of input: 10**6 is 11.6 days, longer than any film (and still exact as frame times).
MAX_SECONDS = 1_000_000
#: Frames: a day at 1000 fps is 86.4 million.
MAX_FRAMES = 1_000_000_000
#: Frames or pairs per network call: 1024 frames of 1080p are 6 GiB of RGB before any network runs,
#: and throughput stops growing long before that.
MAX_BATCH = 1024
#: Threads: more than any machine chain runs on has cores; torch's pool is not made for more.
MAX_THREADS = 1024
#: Network widths (``--ngf``, ``--ndf``, ``--spade-hidden``, ``--latent``): 16 times NVlabs' ngf of 64, 5 times
#: the VAE-GAN's 200 latent numbers. SPADE at ngf 1024 already has 16384-channel layers (tens of GiB
#: with its optimiser): wider is a typo, which would fail only as the networks are built.
MAX_WIDTH = 1024


def seconds(name: str, *, positive: bool = False) -> Bound:
    """``--start`` (>= 0) or ``--duration`` and ``--shard-seconds`` (``positive``: > 0)."""
    return Bound(name, 0, MAX_SECONDS, float, low_open=positive, unit="seconds")


#: Training: passes over the data, and optimisation steps (a million steps is weeks on a GPU).
MAX_EPOCHS = 1_000_000
MAX_STEPS = 1_000_000_000


def count(name: str, high: int = MAX_FRAMES, *, low: int = 1) -> Bound:
    """A whole number from ``low`` (1) to ``high``."""
    return Bound(name, low, high)


def width(name: str) -> Bound:
    """A network's width (channels, latent numbers): 1 to `MAX_WIDTH`."""
    return Bound(name, 1, MAX_WIDTH)


def width_list(name: str):  # noqa: ANN201 (typer's parser: str -> tuple[int, ...])
    """A parser for comma-separated network widths (``--filters 32,64,128,256``), each 1 to `MAX_WIDTH`."""
    bound = width(name)

    def parse(text: str | tuple[int, ...] | None) -> tuple[int, ...] | None:
        if text is None or isinstance(text, tuple):
            return text
        parts = [part.strip() for part in str(text).split(",")]
        if not all(part.isascii() and part.isdigit() for part in parts):
            raise ChainError(f"{name} needs comma-separated channel counts (e.g. 32,64,128,256), not {text!r}")
        return tuple(bound.check(int(part)) for part in parts)

    return parse


def ascii_text(name: str):  # noqa: ANN201 (typer's parser: str -> str)
    """A parser for options that are text made of numbers (``--size 256x144``): non-ASCII digits such
    as ``²⁵⁶`` or ``２５６`` are refused in one line, the rest is left to the option's own parser."""

    def parse(value: str | None) -> str | None:
        if value is not None and not str(value).isascii():
            raise ChainError(f"{name} {_words(value)} is not written in ASCII digits (0-9) and letters")
        return value

    return parse


#: ``chain.media.source.MIN_FPS``/``MAX_FPS``'s range: a frame a thousand seconds to a thousand a second.
FPS = Bound("--fps", 0.001, 1000, float, unit="frames per second")
FRAMES = count("--max-frames")
BATCH = count("--batch", MAX_BATCH)
THREADS = count("--threads", MAX_THREADS)
CRF = count("--crf", 63, low=0)
SHARDS = count("--shards", 10_000)
PORT = count("--port", 65535)
#: Gaussian noise on a latent code of unit variance: beyond 100 the code is all noise.
LATENT_NOISE = Bound("--latent-noise", 0, 100, float)
#: Learning rates: above 1 every optimiser chain uses diverges at once.
LEARNING_RATE = Bound("--lr", 0, 1, float, low_open=True)
#: Seeds: numpy's generators take 32 bits.
SEED = count("--seed", 2**32 - 1, low=0)
PIXEL_WEIGHT = Bound("--pixel-weight", 0, 1_000_000, float)
#: `chain train`'s numeric flags, by their names in the trainers' options classes (`chain.training.options`).
TRAINING = {"latent": width("--latent"), "ngf": width("--ngf"), "spade_hidden": width("--spade-hidden"),
            "ndf": width("--ndf"), "epochs": count("--epochs", MAX_EPOCHS), "batch": BATCH, "lr": LEARNING_RATE,
            "seed": SEED, "pixel_weight": PIXEL_WEIGHT}


# --- --device -------------------------------------------------------------------------------------
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]{1,3})?", re.ASCII)


def parse_device(text: str | None) -> str:
    """``--device`` as text: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (None: ``auto``).

    Other torch device types (``meta``, ``xla``, ``ipu``…) hold no data or need code chain does not
    have; `chain.device.resolve_device` then checks that the device exists.
    """
    if text is None:
        return "auto"
    value = str(text).strip().lower()
    if not _DEVICE.fullmatch(value):
        raise ChainError(f"--device {_words(text)} is not a device chain runs on; use auto, cpu, cuda, cuda:N or mps")
    return value


# --- --cluster ------------------------------------------------------------------------------------
_CLUSTER = re.compile(r"ray|auto|ray://[^\s/]+:[0-9]{1,5}", re.ASCII)


def parse_cluster(text: str | None) -> str | None:
    """``--cluster``: ``ray`` (a local Ray instance), ``auto`` or ``ray://HOST:PORT`` (None: no cluster)."""
    if text is None:
        return None
    value = str(text).strip()
    if not _CLUSTER.fullmatch(value):
        raise ChainError(f"--cluster {_words(text)}: use ray (a local Ray instance), auto or ray://HOST:PORT")
    return value


# --- --deflicker ----------------------------------------------------------------------------------
#: A bare ``--deflicker``: STRENGTH 0.8, reaching 3 frames each way (README "Steady films": the
#: cost stays under 20 ms a frame at 256x256 on one core; a longer reach steadies more, for more).
DEFAULT_DEFLICKER = (0.8, 3)
DEFLICKER = Bound("--deflicker", 0, 1, float)
DEFLICKER_FRAMES = count("--deflicker's FRAMES", 24)


def parse_deflicker(value: str | float | bool | tuple[float, int] | list | None) -> tuple[float, int] | None:
    """``--deflicker STRENGTH[:FRAMES]``: how far each painting moves towards its steady target (0 to 1)
    and how many frames each way it looks at; ``on`` (or True) is the default, ``off``/0 is None."""
    if value is None or value is False:
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() in ("on", "")):
        return DEFAULT_DEFLICKER
    if isinstance(value, str) and value.strip().lower() in ("off", "none"):
        return None
    if isinstance(value, (tuple, list)):
        strength, frames = value
    elif isinstance(value, str) and ":" in value:
        strength, _, frames = value.partition(":")
    else:
        strength, frames = value, DEFAULT_DEFLICKER[1]
    strength, frames = DEFLICKER.parse(strength), DEFLICKER_FRAMES.parse(frames)
    return (strength, frames) if strength else None


# --- --smooth ----------------------------------------------------------------------------------------
_SMOOTH = re.compile(r"^(ema|flow)(?::(0(?:\.\d+)?|1(?:\.0*)?))?$")
_WINDOW = re.compile(r"^window(?::(\d+))?$")
#: ALPHA of a bare ``flow``: tuned on the shared clips (benchmarks/smoothing_flicker.py).
DEFAULT_FLOW_ALPHA = 0.85
#: ``window``'s K when not given (measured on the shared clips, benchmarks/steadiness.py), and its
#: largest (`chain.stages.window` keeps 2K+1 frames' probabilities); here, torch-free, for the configuration.
DEFAULT_WINDOW_RADIUS = 5
MAX_WINDOW_RADIUS = 8


@dataclass(frozen=True)
class Smoothing:
    """A parsed ``--smooth``: the mode and the weight of the past (`chain.stages.smoothing` applies
    ``ema`` and ``flow``, `chain.stages.window` ``window``)."""

    mode: Literal["ema", "flow", "window"]
    alpha: float
    #: ``window``: how many frames before and after each frame are fused with it.
    radius: int = 0

    def __str__(self) -> str:
        return f"window ±{self.radius}" if self.mode == "window" else f"{self.mode} {self.alpha}"


def parse_smoothing(text: str | None) -> Smoothing | None:
    """``"ema:0.6"``, ``"flow"``, ``"flow:0.7"``, ``"window:2"`` → a `Smoothing`; None/"none"/ALPHA 0 → None."""
    if text is None or text.strip() in ("", "none"):
        return None
    window = _WINDOW.match(text.strip())
    if window:
        radius = int(window.group(1)) if window.group(1) is not None else DEFAULT_WINDOW_RADIUS
        if not 1 <= radius <= MAX_WINDOW_RADIUS:
            raise ChainError(f"--smooth {text!r}: window:K takes K from 1 to {MAX_WINDOW_RADIUS} frames")
        return Smoothing("window", 0.0, radius)
    match = _SMOOTH.match(text.strip())
    if match and match.group(2) is None and match.group(1) == "flow":
        return Smoothing("flow", DEFAULT_FLOW_ALPHA)
    alpha = float(match.group(2)) if match and match.group(2) is not None else None
    if alpha is None or not 0 <= alpha < 1:
        raise ChainError(f"--smooth {text!r}: use ema:ALPHA or flow[:ALPHA] with 0 <= ALPHA < 1 "
                         f"(e.g. ema:0.6, flow), window[:K], or none")
    return Smoothing(match.group(1), alpha) if alpha > 0 else None


# --- environment variables ------------------------------------------------------------------------
OMP_NUM_THREADS = Bound("OMP_NUM_THREADS", 1, MAX_THREADS)
_WAIT_POLICIES = ("active", "passive")


def env_threads(environ: os._Environ | dict[str, str] | None = None) -> int | None:
    """``$OMP_NUM_THREADS`` as a bounded number; None when unset or empty (empty means unset)."""
    environ = os.environ if environ is None else environ
    text = environ.get("OMP_NUM_THREADS", "").strip()
    if not text:
        return None
    if not _INT.fullmatch(text):
        raise ChainError(f"OMP_NUM_THREADS={_words(text)} is not a number of threads: unset it, or give "
                         f"{OMP_NUM_THREADS.describe()} (--threads N does the same for one run)")
    try:
        return OMP_NUM_THREADS.parse(text)
    except ChainError:
        raise ChainError(f"OMP_NUM_THREADS={text} is out of range: unset it, or give {OMP_NUM_THREADS.describe()}"
                         ) from None


def weights_folder(environ: os._Environ | dict[str, str] | None = None) -> Path | None:
    """``$CHAIN_WEIGHTS`` as a folder path (None when unset or empty); ``~`` and ``~user`` expanded.

    It need not exist yet (chain makes it), but no part of it may be a file.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("CHAIN_WEIGHTS", "")
    if not text.strip():
        return None
    try:
        folder = Path(text).expanduser()
    except RuntimeError:  # ~nosuchuser, or ~ without a home
        user = text[1:].split("/", 1)[0]
        raise ChainError(f"CHAIN_WEIGHTS={text}: there is no user {user!r} to expand ~{user} for; "
                         "give the weights folder as a full path") from None
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == folder else f"is inside {part}, which is a file"
                raise ChainError(f"CHAIN_WEIGHTS={text} {where}; it must name a folder of weights")
            break
    return folder


def check_environment(environ: os._Environ | None = None) -> None:
    """The environment variables chain (and torch's OpenMP, read once as torch loads) take, checked
    before torch is imported: a one-line error instead of libgomp's stray line or a traceback later.

    Empty ``OMP_NUM_THREADS`` and ``OMP_WAIT_POLICY`` mean unset (libgomp would warn about them):
    they are removed, and chain's own default applies.
    """
    environ = os.environ if environ is None else environ
    for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY"):
        if name in environ and not environ[name].strip():
            del environ[name]
    env_threads(environ)
    policy = environ.get("OMP_WAIT_POLICY")
    if policy is None:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"  # what chain/__init__.py sets when it is unset
    elif policy.strip().lower() not in _WAIT_POLICIES:
        raise ChainError(f"OMP_WAIT_POLICY={_words(policy)} is not ACTIVE or PASSIVE; unset it (chain uses PASSIVE)")
    weights_folder(environ)
