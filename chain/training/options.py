"""Training options: keyword-only dataclasses that nest their model's config, and the flags that set them.

A trainer's options class (`chain.training.spade.SpadeTrainOptions`,
`chain.training.vaegan.VAEGANTrainOptions`) holds the run's own settings (input, batch,
epochs, learning rate…) and, as nested dataclasses, the configs of the networks it trains,
with their defaults where the model file defines them. The options the command line offers are
declared once in `chain.training.flags`, whose tables give the fields their defaults and metadata.
Command-line flags stay flat
(``--latent``, ``--ngf``): the class's ``FLAGS`` says which nested field each one sets
(``{"latent": "model.latent_dim"}``); every other flag is a top-level field of the same name.

The options are saved in the checkpoint's meta as ``dataclasses.asdict`` (nested dicts).
`build_options` reads that, flags, or both (flags win), so checkpoints written before the
configs were nested (one flat dict of flags) still resume.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from chain.bounds import TRAINING
from chain.errors import ChainError, first_line

Options = TypeVar("Options")


def _nested(options_class: type) -> dict[str, Callable[[], Any]]:
    """The fields that hold a network's config: name -> the factory of its default."""
    return {field.name: field.default_factory for field in dataclasses.fields(options_class)
            if field.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(field.default_factory())}


def option_flags(options_class: type) -> dict[str, str]:
    """Every flag of an options class -> the (dotted) field it sets."""
    nested = _nested(options_class)
    flags = {field.name: field.name for field in dataclasses.fields(options_class) if field.name not in nested}
    return {**flags, **getattr(options_class, "FLAGS", {})}


def build_options(options_class: type[Options], values: dict[str, Any]) -> Options:
    """Options from field values (nested configs as dicts or dataclasses) and flags, flags applied last.

    Raises TypeError for a name that is neither, ValueError (or `ChainError`) for a bad value.
    """
    flags, nested = option_flags(options_class), _nested(options_class)
    top: dict[str, Any] = {}
    inner: dict[str, dict[str, Any]] = {name: {} for name in nested}
    for name, value in values.items():
        if name in nested and (isinstance(value, dict) or dataclasses.is_dataclass(value)):
            inner[name] = {**(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value),
                           **inner[name]}  # flags seen before it still win
        elif name in flags:
            outer, _, field = flags[name].partition(".")
            if field:
                inner[outer][field] = value
            else:
                top[name] = value
        else:
            raise TypeError(f"unknown training option {name!r}")
    for name, factory in nested.items():
        if inner[name]:
            # Missing fields keep the trainer's default for the config, not the model file's.
            top[name] = dataclasses.replace(factory(), **inner[name])
    return options_class(**top)


def check_flags(flags: dict[str, Any]) -> None:
    """The command line's bounds (`chain.bounds.TRAINING`) for flags given from Python too: a batch of
    2**63 or a NaN learning rate is one line here, not an overflow or a diverged run later."""
    for name, value in flags.items():
        if value is not None and name in TRAINING:
            TRAINING[name].check(value)


def options_from_flags(options_class: type[Options], flags: dict[str, Any], *, what: str) -> Options:
    """A new run's options from the flags given (None: the default); a bad value is one line."""
    check_flags(flags)
    try:
        return build_options(options_class, {name: value for name, value in flags.items() if value is not None})
    except ValueError as error:  # a model config's own checks
        raise ChainError(f"bad {what} options: {first_line(error)}") from None


def flag_values(options: Any) -> dict[str, Any]:
    """The options as flat flags, for comparing runs and naming differences."""
    values = {}
    for flag, path in option_flags(type(options)).items():
        value = options
        for part in path.split("."):
            value = getattr(value, part)
        values[flag] = value
    return values


def resumed_options(options_class: type[Options], saved: dict[str, Any], given: dict[str, Any], *,
                    input_field: str) -> Options:
    """A run's saved options, after checking that the flags given again agree (``input_field``
    may be spelled as another path to the same file; ``RESUMABLE_CHANGES`` may differ)."""
    check_flags(given)
    upgrade = getattr(options_class, "upgrade", None)  # fields an older checkpoint lacks keep their old meaning
    if upgrade is not None:
        saved = upgrade(saved)
    try:
        options = build_options(options_class, saved)
        reference = build_options(options_class, {**saved, **{k: v for k, v in given.items() if v is not None}})
    except (TypeError, ValueError) as error:  # unknown fields, or values of the wrong kind
        raise ChainError(f"the checkpoint's training options are damaged ({first_line(error)}); "
                         "it cannot be resumed") from None
    ours, theirs = flag_values(options), flag_values(reference)
    if Path(theirs[input_field]).resolve() == Path(ours[input_field]).resolve():
        theirs[input_field] = ours[input_field]
    changes = getattr(options_class, "RESUMABLE_CHANGES", ())
    conflicts = [f"--{name.replace('_', '-')} {theirs[name]} (the run has {ours[name]})"
                 for name in ours if name not in changes and theirs[name] != ours[name]]
    if conflicts:
        raise ChainError("--resume continues a run with its own options; these differ: " + "; ".join(conflicts))
    return dataclasses.replace(options, **{name: getattr(reference, name) for name in changes})
