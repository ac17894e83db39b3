"""Bad-inputs cases: every numeric option of ``chain run``, ``chain train vaegan``, ``chain train spade``,
``chain eval spade`` (and ``chain info``'s one argument) at its neighbours: 0, -1, -0, 2**63, 2**64,
1e308, inf, nan, digits that are not ASCII (²⁵⁶, ٢٥٦, ２５６), empty text and whitespace.

Only 0 and -0 are ever in range (where an option takes 0); every other neighbour is refused in one
line that names the option, before any input is decoded or network loaded. Where a value is
accepted, the run goes on: ``chain run`` writes its output, the other commands stop at the missing
input they were given (``nosuch``), which proves that parsing let the value through.

`ENV_CASES` are the environment variables chain reads (``grep -rn os.environ chain``) at the same
kind of neighbours; tests/test_options_fuzz.py runs them (a `Case` cannot set the environment).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.bad_inputs import case, make_video

#: The neighbours of every numeric option, as typed.
NEIGHBOURS = {
    "zero": "0", "minus-one": "-1", "minus-zero": "-0", "2e63": str(2**63), "2e64": str(2**64), "1e308": "1e308",
    "inf": "inf", "minus-inf": "-inf", "nan": "nan", "superscript": "²⁵⁶", "arabic-indic": "٢٥٦",
    "full-width": "２５６", "empty": "", "whitespace": " ",
}
ZEROS = ("zero", "minus-zero")

_CLIP: Path | None = None


def clip(folder: Path, name: str = "in.mp4") -> str:
    """A 12-frame 64x48 clip in ``folder``, copied from one written once per session (PyAV)."""
    global _CLIP
    if _CLIP is None:
        _CLIP = make_video(Path(tempfile.mkdtemp(prefix="chain-options-")) / "in.mp4")
    shutil.copy(_CLIP, folder / name)
    return name


RUN = ["run", "in.mp4", "out.mp4", "-q", "--seg", "palette:voc", "--synth", "colorize"]


@dataclass(frozen=True)
class Numeric:
    """A numeric option of a command. ``zero`` is what 0 and -0 do: None, refused (out of range);
    ``ACCEPTED``, the command goes on (`COMMANDS`); other text, an error matching it."""

    command: str
    option: str
    zero: str | None = None


ACCEPTED = "accepted"
#: What each command does once its options parse: "output" (written), or an error matching the regex
#: (the input named does not exist).
COMMANDS = {"run": "output", "train vaegan": r"nosuch\.mp4", "train spade": r"nosuch", "eval spade": r"nosuch"}


def _run_args(option: str) -> list[str]:
    return RUN + ([] if option == "--max-frames" else ["--max-frames", "2"])


def _base(command: str, folder: Path, option: str) -> list[str]:
    if command == "run":
        clip(folder)
        return _run_args(option)
    if command == "train vaegan":
        return ["train", "vaegan", "nosuch.mp4", "--out", "runs/vaegan", "-q"]
    if command == "train spade":
        return ["train", "spade", "--data", "nosuch", "--out", "runs/spade", "-q"]
    return ["eval", "spade", "nosuch", "nosuch.mp4"]


_TRAINING = ("--epochs", "--batch", "--lr", "--duration", "--max-frames", "--checkpoint-every", "--max-steps")
OPTIONS = [
    *(Numeric("run", name) for name in ("--duration", "--max-frames", "--fps", "--batch", "--threads",
                                         "--shards", "--shard-seconds")),
    Numeric("run", "--start", ACCEPTED), Numeric("run", "--crf", ACCEPTED),
    Numeric("run", "--latent-noise", "no option latent_noise"),  # in range, but colorize has no latent code
    *(Numeric("train vaegan", name) for name in ("--latent", *_TRAINING)),
    *(Numeric("train vaegan", name, ACCEPTED) for name in ("--start", "--seed", "--pixel-weight")),
    *(Numeric("train spade", name) for name in ("--ngf", "--spade-hidden", "--ndf", *_TRAINING)),
    *(Numeric("train spade", name, ACCEPTED) for name in ("--start", "--seed")),
    *(Numeric("eval spade", name) for name in ("--max-items", "--duration", "--batch")),
    Numeric("eval spade", "--start", ACCEPTED),
]


def _expect(item: Numeric, neighbour: str) -> tuple[str, str | None]:
    """The case's ending and message for ``item`` at ``neighbour``."""
    if neighbour in ZEROS and item.zero is not None:
        if item.zero != ACCEPTED:
            return "error", item.zero
        goes_on = COMMANDS[item.command]
        return ("output", None) if goes_on == "output" else ("error", goes_on)
    return "error", rf"^error: {item.option} .*(ASCII digits|not a (whole |finite )?number|out of range)"


def _register(item: Numeric, neighbour: str, value: str) -> None:
    expect, message = _expect(item, neighbour)

    def build(folder: Path) -> list[str]:
        return [*_base(item.command, folder, item.option), item.option, value]

    outputs = ("out.mp4",) if expect == "output" else ()
    case(f"option-{item.command.replace(' ', '-')}{item.option}-{neighbour}", expect, message=message,
         outputs=outputs)(build)


for item in OPTIONS:
    for neighbour, value in NEIGHBOURS.items():
        _register(item, neighbour, value)


# --- --size: text, made of numbers --------------------------------------------------------------------
def _size_expect(command: str, neighbour: str) -> tuple[str, str | None]:
    if neighbour == "empty" and command == "run":  # no size: the input's own
        return "output", None
    if neighbour in ("superscript", "arabic-indic", "full-width"):
        return "error", r"^error: --size \S+ is not written in ASCII digits"
    # chain eval loads the weights before it reads --size: the missing ones are the first mistake. An
    # empty --size is the trainer's default for vaegan (then the missing film), refused by spade.
    return "error", r"--size" + ("|nosuch" if command == "eval spade" or neighbour == "empty" else "")


for command in COMMANDS:
    for neighbour, value in NEIGHBOURS.items():
        expect, message = _size_expect(command, neighbour)

        def build(folder: Path, command: str = command, value: str = value) -> list[str]:
            return [*_base(command, folder, "--size"), "--size", value]

        case(f"option-{command.replace(' ', '-')}--size-{neighbour}", expect, message=message,
             outputs=("out.mp4",) if expect == "output" else ())(build)


# --- --device and --cluster: names, not numbers --------------------------------------------------------
_DEVICES = {"meta": r"--device meta is not a device", "xla": r"--device xla is not a device",
            "cuda:-1": r"--device cuda:-1 is not a device", "cuda:99": r"--device cuda:99",
            "ｃｐｕ": r"is not a device", "": r"--device '' is not a device", "cpu": None, "CPU": None}
for device, message in _DEVICES.items():
    for command in COMMANDS:
        accepted = message is None
        expect = "output" if accepted and command == "run" else "error"

        def build(folder: Path, command: str = command, device: str = device) -> list[str]:
            return [*_base(command, folder, "--device"), "--device", device]

        case(f"option-{command.replace(' ', '-')}--device-{device or 'empty'}", expect,
             message=COMMANDS[command] if accepted and command != "run" else message,
             outputs=("out.mp4",) if expect == "output" else ())(build)

for cluster in ("", "ray:/", "ray://host", "ray://host:port", "ray://:1", "http://host:1", "RAY", "ray ray"):
    @case(f"option-run--cluster-{cluster or 'empty'}", "error", message=r"^error: --cluster .*ray://HOST:PORT")
    def _cluster(folder: Path, cluster: str = cluster) -> list[str]:
        return [*_base("run", folder, "--cluster"), "--cluster", cluster]


# --- chain info SOURCE: the neighbours as a path (none exists) ------------------------------------------
for neighbour, value in NEIGHBOURS.items():
    @case(f"info-source-{neighbour}", "error", message=r"^error: ")
    def _info(folder: Path, value: str = value) -> list[str]:
        return ["info", value]


@case("info-source-clip", "output")
def _info_clip(folder: Path) -> list[str]:
    return ["info", clip(folder)]


# --- environment variables ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvCase:
    """``chain run`` (palette:voc → colorize, 2 frames) with ``variable`` set to ``value``.

    ``value`` may hold ``{file}`` (a file that exists) or ``{folder}`` (the case's folder).
    ``expect`` is ``"output"`` or an error regex (the run refused in one line, exit 2).
    """

    name: str
    variable: str
    value: str
    expect: str


_ENV_VALUES = {"empty": "", "whitespace": "  ", "garbage": "garbage", "zero": "0", "minus-one": "-1",
               "huge": str(2**64), "float": "1.5", "superscript": "²", "no-such-user": "~nosuchuser/weights",
               "file": "{file}", "under-a-file": "{file}/weights", "folder": "{folder}"}
_OMP_THREADS = {"empty": "output", "whitespace": "output"}
_OMP_WAIT = {"empty": "output", "whitespace": "output"}
_WEIGHTS = {"no-such-user": r"CHAIN_WEIGHTS=~nosuchuser/weights: there is no user 'nosuchuser'",
            "file": r"CHAIN_WEIGHTS=\S+ is a file; it must name a folder",
            "under-a-file": r"CHAIN_WEIGHTS=\S+ is inside \S+, which is a file"}
ENV_CASES: list[EnvCase] = []
for key, text in _ENV_VALUES.items():
    ENV_CASES.append(EnvCase(f"OMP_NUM_THREADS-{key}", "OMP_NUM_THREADS", text,
                             _OMP_THREADS.get(key, r"^error: OMP_NUM_THREADS=.* (is not a number of threads|"
                                                   r"is out of range): unset it, or give a whole number from 1 to")))
    ENV_CASES.append(EnvCase(f"OMP_WAIT_POLICY-{key}", "OMP_WAIT_POLICY", text,
                             _OMP_WAIT.get(key, r"^error: OMP_WAIT_POLICY=.* is not ACTIVE or PASSIVE")))
    # Any other text is a folder name (relative ones too), made when weights are first saved.
    ENV_CASES.append(EnvCase(f"CHAIN_WEIGHTS-{key}", "CHAIN_WEIGHTS", text, _WEIGHTS.get(key, "output")))
    # Read as a yes/no flag by the Hugging Face stages: anything but 1/on/yes/true is "no".
    ENV_CASES.append(EnvCase(f"HF_HUB_OFFLINE-{key}", "HF_HUB_OFFLINE", text, "output"))
ENV_CASES += [EnvCase("OMP_NUM_THREADS-one", "OMP_NUM_THREADS", "1", "output"),
              EnvCase("OMP_NUM_THREADS-two", "OMP_NUM_THREADS", "2", "output"),  # 1024 is in range: not in this process
              EnvCase("OMP_NUM_THREADS-1025", "OMP_NUM_THREADS", "1025", r"OMP_NUM_THREADS=1025 is out of range"),
              EnvCase("OMP_WAIT_POLICY-active", "OMP_WAIT_POLICY", "active", "output"),
              EnvCase("OMP_WAIT_POLICY-PASSIVE", "OMP_WAIT_POLICY", "PASSIVE", "output")]
