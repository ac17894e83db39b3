"""What the UI offers to choose: the stages `chain list` shows, usable ones apart from the rest."""

from __future__ import annotations

from dataclasses import dataclass

from chain.config import parse_stage_name
from chain.labels import LABEL_SPACES
from chain.stages import stages
from chain.stages.spec import StageKind, StageSpec

#: Stages whose variant is a path or a repository: typed into the menu, never listed.
TYPED = {"labels": "labels:DIR (a folder written by --save-labels)", "hf": "hf:REPO_OR_FOLDER"}
# Built-in spaces only: a model's own space has no name another run could look up.
_SPACE_VARIANTS = ("palette", "colorize")


@dataclass(frozen=True)
class StageChoice:
    """One ``NAME[:VARIANT]`` as ``--seg``/``--synth`` take it, and whether it can run here."""

    text: str
    label_space: str | None
    usable: bool
    why: str = ""  # for an unusable stage: where its weights were looked for and how to get them
    summary: str = ""


def _variants(spec: StageSpec) -> list[str | None]:
    if spec.variants:
        return list(spec.variants)
    if spec.name in _SPACE_VARIANTS:  # any label space is a variant: offer the built-in ones
        return [spec.default_variant] + [name for name in LABEL_SPACES if name != spec.default_variant]
    return [spec.default_variant]


def stage_choices(kind: StageKind) -> list[StageChoice]:
    """Every listed variant of every ``kind`` stage, in registry order (typed-only ones left out)."""
    choices = []
    for spec in stages(kind).values():
        if spec.name in TYPED:
            continue
        for variant in _variants(spec):
            text = spec.name + (f":{variant}" if variant else "")
            try:
                space = spec.label_space(variant)
            except Exception:  # noqa: BLE001 — a plugin's broken metadata must not hide the menu
                space = None
            status = spec.weights(variant, None) if spec.weights else None
            if status is None or status.present:
                choices.append(StageChoice(text, space, True, summary=spec.summary))
            else:
                how = f"; get them with `{status.how_to_get}`" if status.how_to_get else ""
                choices.append(StageChoice(text, space, False, f"no weights at {status.location}{how}",
                                           spec.summary))
    return choices


def missing_text(kind: StageKind) -> str:
    """Markdown: the stages that cannot run here and why, and the ones to type by hand."""
    lines = [f"- `{choice.text}`: {choice.why}" for choice in stage_choices(kind) if not choice.usable]
    typed = [f"- type `{text}`" for name, text in TYPED.items() if name in stages(kind)]
    return "\n".join(lines + typed) or "every stage can run here"


def options_hint(kind: StageKind, text: str | None) -> str:
    """Which ``KEY=VALUE`` options the stage named ``text`` takes, for the options box."""
    spec = stages(kind).get(parse_stage_name(text or "")[0])
    if spec is None:
        return "KEY=VALUE, comma-separated"
    return f"{spec.name} takes: {', '.join(spec.options)}" if spec.options else f"{spec.name} takes none"
