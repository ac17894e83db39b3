"""What a stage is, for the registry and for whoever builds one: its `StageSpec` (name, kind,
builder, variants, options, weights) and the `StageContext` its builder is given.

Stage modules import these (and `chain.stages.base`), never the registry. Nothing here imports
torch: a spec says where a stage's weights are, and its builder imports the stage's module only
when it is called (`chain.stages.builtin`), so `chain list` and the checks before a run load no
network code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from chain.bounds import Bound
from chain.errors import ChainError

if TYPE_CHECKING:
    import torch

    from chain.stages.base import Segmenter, Synthesizer

StageKind = Literal["segmenter", "synthesizer"]


@dataclass(frozen=True)
class WeightsStatus:
    """Where a stage variant's weights live and whether they are there now."""

    location: str
    present: bool
    how_to_get: str = ""
    #: Absent weights are refused from this status alone, before anything loads: they cannot be
    #: fetched on first use (as torchvision's and the Hugging Face Hub's are), and the stage would
    #: say nothing more than where they go and how to get them.
    refused_if_missing: bool = False


def _cpu() -> torch.device:
    import torch  # only a stage being built needs a device

    return torch.device("cpu")


@dataclass(frozen=True)
class StageContext:
    """What every stage builder is given besides its variant.

    ``options`` are the user's ``--seg-opt``/``--synth-opt`` KEY=VALUE pairs, as text;
    `build_stage` has already rejected keys the stage does not declare. The ``*_option``
    helpers parse them with one-line errors. ``threads`` is the user's ``--threads`` (None: not
    given); runtimes other than torch size their pools from it through `chain.device`.
    """

    weights: str | None = None
    device: torch.device = field(default_factory=_cpu)
    options: Mapping[str, str] = field(default_factory=dict)
    threads: int | None = None

    def int_option(self, name: str, default: int | None, *, minimum: int, maximum: int = 10**7) -> int | None:
        """Option ``name`` as a whole number from ``minimum`` to ``maximum``, in ASCII digits
        (``default`` when absent). A size within the bound that memory cannot hold is the CLI's
        out-of-memory line, which names the option to lower (`chain.entry`)."""
        text = self.options.get(name)
        if text is None:
            return default
        return Bound(f"stage option {name}", minimum, maximum).parse(text)

    def float_option(self, name: str, default: float) -> float:
        """Option ``name`` as a number (``default`` when absent)."""
        text = self.options.get(name)
        if text is None:
            return default
        try:
            return float(text)
        except ValueError:
            raise ChainError(f"stage option {name}={text!r} is not a number") from None

    def choice_option(self, name: str, choices: tuple[str, ...]) -> str:
        """Option ``name`` as one of ``choices`` (the first when absent)."""
        value = self.options.get(name, choices[0])
        if value not in choices:
            raise ChainError(f"stage option {name}={value!r}: choose one of {', '.join(choices)}")
        return value


@dataclass(frozen=True)
class StageSpec:
    """A named stage and how to build it.

    Args:
        name: what users type, e.g. ``"deeplab"``.
        kind: ``"segmenter"`` or ``"synthesizer"``.
        build: ``build(variant, context) -> Segmenter | Synthesizer``.
        summary: one line for ``chain list``.
        variants: the allowed variants; empty when any text is accepted (e.g. a folder).
        default_variant: used when the user names no variant.
        label_space: ``label_space(variant) -> name`` of the space the stage speaks, or None.
        weights: ``weights(variant, weights_arg) -> WeightsStatus``, for stages with weights.
        options: the ``KEY`` names of ``--seg-opt``/``--synth-opt`` the stage understands.
    """

    name: str
    kind: StageKind
    build: Callable[[str | None, StageContext], Segmenter | Synthesizer]
    summary: str
    variants: tuple[str, ...] = ()
    default_variant: str | None = None
    label_space: Callable[[str | None], str | None] = lambda variant: None
    weights: Callable[[str | None, str | None], WeightsStatus] | None = None
    options: tuple[str, ...] = ()

    def resolve_variant(self, variant: str | None) -> str | None:
        variant = variant or self.default_variant
        if self.variants and variant not in self.variants:
            raise ChainError(f"{self.kind} {self.name!r} has no variant {variant!r}; "
                             f"choose one of {', '.join(self.variants)}")
        return variant
