"""Stage registries: segmenters and synthesizers by name, built-in and from other packages.

Another installed package adds stages by declaring an entry point in the group
``chain.stages`` that points at a `StageSpec` (or a list of them)::

    [project.entry-points."chain.stages"]
    my-segmenter = "my_package.stages:SPEC"

Stages are named on the command line as ``NAME`` or ``NAME:VARIANT``. The stages that ship
with chain are listed in `chain.stages.builtin`, loaded the first time stages are asked for;
the types a stage is described with (`StageSpec`, `StageContext`) are `chain.stages.spec`.
"""

from __future__ import annotations

import difflib
import warnings
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from chain.errors import ChainError
from chain.stages.spec import StageContext, StageKind, StageSpec

if TYPE_CHECKING:
    from chain.stages.base import Segmenter, Synthesizer

ENTRY_POINT_GROUP = "chain.stages"

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
    # Imported here, not at the top: only a caller asking for stages needs the list (a plugin's
    # entry point may import torch; the built-in specs do not).
    from chain.stages.builtin import BUILTIN_STAGES

    for spec in BUILTIN_STAGES:
        register_stage(spec)
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


def synthesizers_in(spaces: list[str]) -> str:
    """``" (synthesizers in those spaces: spade:coco, colorize:coco-stuff)"``, or nothing."""
    names = []
    for spec in stages("synthesizer").values():
        if spec.variants:
            names += [f"{spec.name}:{v}" for v in spec.variants if spec.label_space(v) in spaces]
        else:  # a stage that takes its space as the variant (colorize:SPACE)
            names += [f"{spec.name}:{s}" for s in spaces[:2] if spec.label_space(s) == s]
    return f" (synthesizers in those spaces: {', '.join(names)})" if names else ""
