"""One set of choices made in the UI, and the `chain run` command line that does the same."""

from __future__ import annotations

import shlex
import typing
from dataclasses import dataclass, fields
from pathlib import Path

from chain.bounds import BATCH, FRAMES
from chain.config import DEFAULT_SEGMENTER, DEFAULT_SYNTHESIZER, ChainConfig, RunConfig
from chain.errors import ChainError
from chain.media import Trim
from chain.media.outputs import Outputs
from chain.options import Declared, declared_options


def split_list(text: str | None) -> tuple[str, ...]:
    """Comma- or newline-separated ``KEY=VALUE``/``SRC=DST`` text → its pieces, blanks dropped."""
    return tuple(piece.strip() for line in (text or "").splitlines() for piece in line.split(",") if piece.strip())


@dataclass(frozen=True)
class Settings:
    """What the page's controls say; the names follow `chain run`'s options."""

    source: str
    seg: str = DEFAULT_SEGMENTER
    synth: str = DEFAULT_SYNTHESIZER
    seg_weights: str | None = None
    synth_weights: str | None = None
    seg_options: tuple[str, ...] = ()
    synth_options: tuple[str, ...] = ()
    remap: tuple[str, ...] = ()
    background: str | None = None
    smooth: str | None = None  # runs only: a preview is one frame
    size: str | None = None
    max_frames: int | None = None
    batch: int = 1
    device: str = "auto"
    #: The page's other run options (`page_options`: a control made from each one's declaration), as
    #: ``(keyword, value)`` pairs: text as typed (parsed here by the option's declared parser), or a flag.
    more: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        # The same one-line errors as the CLI, before any weights load.
        if not self.source or not self.source.strip():
            raise ChainError("choose a video: type its path or upload one")
        more = _parsed_more(self.more)
        # The chain's half of the configuration, built (and so parsed: stage options, remap rules,
        # --smooth, the device) once, here; `run_config` hands it on as it is.
        chain = ChainConfig(seg=self.seg, synth=self.synth, seg_weights=self.seg_weights,
                            synth_weights=self.synth_weights, seg_options=self.seg_options,
                            synth_options=self.synth_options, remap=self.remap, background=self.background,
                            smooth=self.smooth, device=self.device, **more[ChainConfig])
        object.__setattr__(self, "_chain", chain)
        object.__setattr__(self, "_more", more)
        # The page's number boxes hand over floats (2.0): the command line's bounds, as whole numbers.
        object.__setattr__(self, "batch", BATCH.check(self.batch))
        if self.max_frames is not None:
            object.__setattr__(self, "max_frames", FRAMES.check(self.max_frames))
        object.__setattr__(self, "device", chain.device)

    def run_config(self, outputs: Outputs) -> RunConfig:
        """The `chain.run` configuration of these choices, writing ``outputs``."""
        return RunConfig(source=Path(self.source), outputs=outputs, chain=self._chain,
                         trim=Trim(max_frames=self.max_frames, **self._more[Trim]), size=self.size,
                         batch_size=self.batch, **self._more[RunConfig])

    def command_line(self, outputs: Outputs) -> str:
        """``chain run …`` that runs this chain into ``outputs``, quoted for a POSIX shell: each
        choice under the flag its option declares (`chain.options`), left out where it is the
        option's default; the stages are always named, so that the line says what runs."""
        declared = {item.keyword: item for cls in (ChainConfig, Outputs, Trim, RunConfig)
                    for item in declared_options(cls)}
        words = ["chain", "run", self.source]
        if outputs.video is not None:
            words.append(str(outputs.video))
        words += [declared["seg"].flag, self.seg, declared["synth"].flag, self.synth]
        chosen = [(_CONTROL_KEYWORDS.get(item.name, item.name), getattr(self, item.name)) for item in fields(self)
                  if item.name not in ("source", "seg", "synth", "more")]
        chosen += list(self.more)
        chosen += [(item.keyword, getattr(outputs, item.field)) for item in declared_options(Outputs)]
        for keyword, value in chosen:
            option = declared[keyword]
            if value is True:  # a flag the page turned on
                words.append(option.flag)
                continue
            for one in (value if isinstance(value, tuple) else (value,)):  # a repeatable option, once a value
                if one is not None and one is not False and one != option.default:
                    words += [option.flag, str(one)]
        return shlex.join(words)


#: The page's controls named otherwise than the run option they set (the page's own, shorter names).
_CONTROL_KEYWORDS = {"batch": "batch_size"}


def _page_classes() -> tuple[type, ...]:
    """The configurations whose options the page offers (the outputs are its own choice: `output_paths`)."""
    return ChainConfig, Trim, RunConfig


def page_options() -> list[Declared]:
    """The run options the page offers with a control made from their declaration: those declared for
    the page (`chain.options.Option.page`) that no control of the page's own (a `Settings` field) sets.
    A new option declared on a configuration field appears here, and so on the page, by itself."""
    own = {_CONTROL_KEYWORDS.get(item.name, item.name) for item in fields(Settings)}
    return [declared for cls in _page_classes() for declared in declared_options(cls)
            if declared.option.page and declared.keyword not in own]


def _parsed_more(more: tuple[tuple[str, object], ...]) -> dict[type, dict[str, object]]:
    """`Settings.more` as field values for each configuration class, each parsed as its declaration says."""
    found = {declared.keyword: (cls, declared) for cls in _page_classes() for declared in declared_options(cls)}
    values: dict[type, dict[str, object]] = {cls: {} for cls in _page_classes()}
    for keyword, value in more:
        if keyword not in found:
            raise ChainError(f"the page has no option {keyword!r}")
        cls, declared = found[keyword]
        if isinstance(value, str):
            text = value.strip()
            value = split_list(text) if _repeatable(declared.option.type) else text
            if declared.option.parser is not None and not isinstance(value, tuple):
                value = declared.option.parser(value)
        values[cls][declared.field] = value
    return values


def _repeatable(annotation: object) -> bool:
    """Whether a command-line type takes the option again for each value (``list[str] | None``)."""
    return any(typing.get_origin(part) is list for part in (annotation, *typing.get_args(annotation)))


def output_paths(source: str, folder: Path) -> Outputs:
    """Where a UI run writes: ``STEM-chain.mp4``, ``-masks.mp4``, ``-compare.mp4``, ``-summary.json``."""
    stem = Path(source).stem or "video"
    return Outputs(video=folder / f"{stem}-chain.mp4", masks=folder / f"{stem}-masks.mp4",
                   compare=folder / f"{stem}-compare.mp4", summary=folder / f"{stem}-summary.json")
