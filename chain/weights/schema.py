"""What a checkpoint's ``meta`` must hold, per model kind, as small declarative tables.

A schema maps field names to a `Field`: a check of the value and whether it is required.
Fields a schema does not name pass (provenance, training options a later version adds).
`check_meta` raises one `ChainError` line naming the file, the first bad field by its path
(``meta.normalization.std[1]``) and what is wrong with it, before anything is built from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chain.errors import ChainError
from chain.labels import get_label_space

Check = Callable[[Any], None]


class Invalid(Exception):
    """A value a `Check` refuses: ``where`` is its path below the field checked, ``problem`` why."""

    def __init__(self, problem: str, where: str = "") -> None:
        super().__init__(problem)
        self.problem, self.where = problem, where


@dataclass(frozen=True)
class Field:
    """One field of a schema: its `Check` and whether the document must hold it."""

    check: Check
    required: bool = False


Schema = Mapping[str, Field]


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """An integer (not a boolean) within ``minimum..maximum``."""
    def check(value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"is {_kind(value)}, not an integer")
        _in_range(value, minimum, maximum)
    return check


def number(minimum: float | None = None, maximum: float | None = None) -> Check:
    """A finite number (not a boolean) within ``minimum..maximum``."""
    def check(value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise Invalid(f"is {value!r}, not a finite number" if isinstance(value, float) else
                          f"is {_kind(value)}, not a number")
        _in_range(value, minimum, maximum)
    return check


def _in_range(value: float, minimum: float | None, maximum: float | None) -> None:
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = (f"between {minimum:g} and {maximum:g}" if minimum is not None and maximum is not None
                  else f"at least {minimum:g}" if minimum is not None else f"at most {maximum:g}")
        raise Invalid(f"is {value:g}, must be {bounds}")


def text(value: Any) -> None:
    """A string (possibly empty)."""
    if not isinstance(value, str):
        raise Invalid(f"is {_kind(value)}, not a string")


def label_space(value: Any) -> None:
    """The name of a label space chain knows."""
    text(value)
    try:
        get_label_space(value)
    except ChainError:
        raise Invalid(f"names {value!r}, a label space this version of chain does not know") from None


def items(each: Check, *, length: int | None = None, max_length: int = 1 << 16, unique: bool = False) -> Check:
    """A list whose items pass ``each``; ``length`` items exactly, else at most ``max_length``."""
    def check(value: Any) -> None:
        if not isinstance(value, list):
            raise Invalid(f"is {_kind(value)}, not a list")
        if length is not None and len(value) != length:
            raise Invalid(f"has {len(value)} items, not {length}")
        if len(value) > max_length:
            raise Invalid(f"has {len(value)} items, more than {max_length}")
        for index, item in enumerate(value):
            try:
                each(item)
            except Invalid as invalid:
                raise Invalid(invalid.problem, f"[{index}]{invalid.where}") from None
        if unique:
            seen: dict[Any, int] = {}
            for index, item in enumerate(value):
                if item in seen:
                    raise Invalid(f"repeats {item!r} (items {seen[item]} and {index})")
                seen[item] = index
    return check


def mapping(schema: Schema) -> Check:
    """A JSON object whose fields pass ``schema`` (fields it does not name pass)."""
    def check(value: Any) -> None:
        if not isinstance(value, dict):
            raise Invalid(f"is {_kind(value)}, not an object")
        for name, field in schema.items():
            if name not in value:
                if field.required:
                    raise Invalid("is missing", f".{name}")
                continue
            try:
                field.check(value[name])
            except Invalid as invalid:
                raise Invalid(invalid.problem, f".{name}{invalid.where}") from None
    return check


def check_meta(meta: Any, schema: Schema, *, source: Any, remedy: str) -> None:
    """A one-line `ChainError` naming ``source`` (the checkpoint's ``config.json``) and the first
    field of ``meta`` that ``schema`` refuses, followed by ``remedy`` (how to get a good file)."""
    try:
        mapping(schema)(meta)
    except Invalid as invalid:
        raise ChainError(f"{source}: meta{invalid.where} {invalid.problem}; {remedy}") from None


def meta_error(source: Any, where: str, problem: str, remedy: str) -> ChainError:
    """The same line as `check_meta`'s, for a relation between fields that a table cannot say."""
    return ChainError(f"{source}: meta.{where} {problem}; {remedy}")
