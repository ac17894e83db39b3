"""Stage registries: segmenters and synthesizers by name, built-in and from other packages.

Another installed package adds stages by declaring an entry point in the group
``chain.stages`` that points at a `StageSpec` (or a list of them)::

    [project.entry-points."chain.stages"]
    my-segmenter = "my_package.stages:SPEC"

Stages are named on the command line as ``NAME`` or ``NAME:VARIANT``.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

import torch

from chain.errors import ChainError
from chain.stages.base import Segmenter, Synthesizer

ENTRY_POINT_GROUP = "chain.stages"
StageKind = Literal["segmenter", "synthesizer"]


@dataclass(frozen=True)
class WeightsStatus:
    """Where a stage variant's weights live and whether they are there now."""

    location: str
    present: bool
    how_to_get: str = ""


@dataclass(frozen=True)
class StageContext:
    """What every stage builder is given besides its variant.

    ``options`` are the user's ``--seg-opt``/``--synth-opt`` KEY=VALUE pairs, as text;
    `build_stage` has already rejected keys the stage does not declare. The ``*_option``
    helpers parse them with one-line errors.
    """

    weights: str | None = None
    device: torch.device = torch.device("cpu")
    options: Mapping[str, str] = field(default_factory=dict)

    def int_option(self, name: str, default: int | None, *, minimum: int) -> int | None:
        """Option ``name`` as a whole number >= ``minimum`` (``default`` when absent)."""
        text = self.options.get(name)
        if text is None:
            return default
        if not text.strip().isdigit() or int(text) < minimum:
            raise ChainError(f"stage option {name}={text!r} must be a whole number >= {minimum}")
        return int(text)

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


_REGISTRY: dict[StageKind, dict[str, StageSpec]] = {"segmenter": {}, "synthesizer": {}}
_plugins_loaded = False


def register_stage(spec: StageSpec) -> StageSpec:
    """Add (or replace) a stage. Returns it, so it can be used on a module-level constant."""
    _REGISTRY[spec.kind][spec.name] = spec
    return spec


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from chain.stages import builtin  # noqa: F401  (registers the built-in stages)

    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded: Any = entry_point.load()
        except Exception as error:  # a broken plugin must not break the tool
            warnings.warn(f"could not load chain stage plugin {entry_point.name!r}: {error}", stacklevel=2)
            continue
        for spec in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
            if isinstance(spec, StageSpec):
                register_stage(spec)


def stages(kind: StageKind) -> dict[str, StageSpec]:
    """All registered stages of one kind, by name."""
    _load_plugins()
    return dict(_REGISTRY[kind])


def parse_stage_name(text: str) -> tuple[str, str | None]:
    """``"deeplab:resnet101"`` → ``("deeplab", "resnet101")``; variants may contain ':'."""
    name, _, variant = text.strip().partition(":")
    return name.strip().lower(), (variant.strip() or None)


def get_stage(kind: StageKind, name: str) -> StageSpec:
    """The stage called ``name``, or a `ChainError` with close matches."""
    registry = stages(kind)
    if name in registry:
        return registry[name]
    close = difflib.get_close_matches(name, list(registry), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ChainError(f"unknown {kind} {name!r}{hint} (known: {', '.join(sorted(registry))}; see `chain list`)")


def build_stage(kind: StageKind, text: str, context: StageContext) -> Segmenter | Synthesizer:
    """Build the stage named by ``text`` (``NAME`` or ``NAME:VARIANT``)."""
    name, variant = parse_stage_name(text)
    spec = get_stage(kind, name)
    unknown = sorted(set(context.options) - set(spec.options))
    if unknown:
        known = f"it knows {', '.join(spec.options)}" if spec.options else "it takes none"
        raise ChainError(f"{kind} {spec.name!r} has no option {', '.join(unknown)}; {known}")
    return spec.build(spec.resolve_variant(variant), context)

