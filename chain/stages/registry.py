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
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from chain.config import StageName, parse_stage_name
from chain.errors import ChainError, MissingWeightsError
from chain.stages.spec import StageContext, StageKind, StageSpec

if TYPE_CHECKING:
    from chain.config import ChainConfig
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


def get_stage(kind: StageKind, name: str) -> StageSpec:
    """The stage called ``name``, or a `ChainError` with close matches."""
    registry = stages(kind)
    if name in registry:
        return registry[name]
    close = difflib.get_close_matches(name, list(registry), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ChainError(f"unknown {kind} {name!r}{hint} (known: {', '.join(sorted(registry))}; see `chain list`)")


def build_stage(kind: StageKind, stage: str | StageName, context: StageContext) -> Segmenter | Synthesizer:
    """Build the stage named by ``stage``: ``NAME`` or ``NAME:VARIANT``, or that text parsed (a
    `ChainConfig`'s ``segmenter``/``synthesizer``)."""
    spec, variant = _checked(kind, stage, context.options)
    return spec.build(variant, context)


def _checked(kind: StageKind, stage: str | StageName, options: Iterable[str]) -> tuple[StageSpec, str | None]:
    """The spec ``stage`` names and its variant, or a `ChainError` for an unknown name, variant or option."""
    name, variant = stage if isinstance(stage, StageName) else parse_stage_name(stage)
    spec = get_stage(kind, name)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        known = f"it knows {', '.join(spec.options)}" if spec.options else "it takes none"
        raise ChainError(f"{kind} {spec.name!r} has no option {', '.join(unknown)}; {known}")
    return spec, spec.resolve_variant(variant)


def check_stages(config: ChainConfig) -> None:
    """What a chain's stages need, checked from their descriptions before anything is loaded: known
    names, variants and options, and the weights a stage looks for by default where they cannot be
    fetched on first use (`WeightsStatus.refused_if_missing`). Weights a user names
    (``--seg-weights``, ``hf:FOLDER``) are checked by the stage as it loads them."""
    wanted = [(kind, text, stage, weights, options) for kind, text, stage, weights, options in (
        ("segmenter", config.seg, config.segmenter, config.seg_weights, config.seg_options),
        ("synthesizer", config.synth, config.synthesizer, config.synth_weights, config.synth_options))
        if stage is not None]
    missing = []
    for kind, text, stage, weights, options in wanted:
        spec, variant = _checked(kind, stage, options)
        status = spec.weights(variant, None) if spec.weights is not None and weights is None else None
        if status is not None and not status.present and status.refused_if_missing:
            missing.append(f"{kind} {text!r}: weights not found ({status.location}): {status.how_to_get}")
    if missing:
        raise MissingWeightsError(missing_weights(missing, len(wanted)))


def missing_weights(reasons: list[str], stages_asked: int) -> str:
    """The one line that names every stage whose weights are missing, and what is usable instead."""
    return (f"missing weights ({len(reasons)} of {stages_asked} stages): " + "; ".join(reasons)
            + f". {usable_alternatives()}")


def usable_alternatives() -> str:
    """The segmenters and synthesizers whose weights are here now (or that need none), for messages."""
    parts = []
    for kind in ("segmenter", "synthesizer"):
        names = []
        for spec in stages(kind).values():
            # A stage whose space comes only from its argument (`labels:DIR`, `hf:REPO`) reads a
            # folder the user names: not an alternative to offer.
            if spec.weights is None:
                if spec.label_space(spec.default_variant) is not None or kind == "synthesizer":
                    names.append(spec.name)
                continue
            for variant in spec.variants or (spec.default_variant,):
                try:
                    present = spec.weights(variant, None).present
                except Exception:  # noqa: BLE001 — a broken status check must not hide the real message
                    present = False
                if present:
                    names.append(spec.name + (f":{variant}" if variant else ""))
        parts.append(f"{kind}s usable here: {', '.join(names) if names else 'none'}")
    return "; ".join(parts) + " (see `chain list`)"


def synthesizers_in(spaces: list[str]) -> str:
    """``" (synthesizers in those spaces: spade:coco, colorize:coco-stuff)"``, or nothing."""
    names = []
    for spec in stages("synthesizer").values():
        if spec.variants:
            names += [f"{spec.name}:{v}" for v in spec.variants if spec.label_space(v) in spaces]
        else:  # a stage that takes its space as the variant (colorize:SPACE)
            names += [f"{spec.name}:{s}" for s in spaces[:2] if spec.label_space(s) == s]
    return f" (synthesizers in those spaces: {', '.join(names)})" if names else ""
