"""Run options, each declared once: in the metadata of the configuration field it sets.

A field of `chain.config.ChainConfig` or `RunConfig`, of `chain.media.Outputs` or of
`chain.media.Trim` that the command line offers is declared with `option`: its help, its type
on the command line, its flag, its metavar and the `chain.bounds` parser that checks its text.
The field's own default is the option's. From these declarations `chain.cli` builds ``chain run``'s
options, `RunConfig.of` sorts ``chain.run``'s flat keywords into the nested configuration, the web
page (`chain.ui.settings`) offers those declared for it and spells its command line, and the
summary's ``request`` records every `ChainConfig` field; adding a run option is one field (and its
use).

Nothing here imports anything of chain: the configuration's modules, on low floors, declare with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: The key of a field's metadata that holds its `Option`.
OPTION = "chain.option"


@dataclass(frozen=True)
class Option:
    """How the command line offers one configuration field."""

    #: One line for ``chain run --help`` (rich markup: ``\\[`` shows a bracket).
    help: str
    #: The command line's annotation (``str | None``, ``list[str] | None`` for a repeatable option,
    #: ``bool`` for a flag), which may differ from the field's (text that the field parses).
    type: Any
    #: The command line's names; empty: ``--`` and the keyword with dashes.
    flags: tuple[str, ...] = ()
    #: What the value is called in ``--help``; None: typer's own.
    metavar: str | None = None
    #: Turns the command line's text into the value (a `chain.bounds` parser), or refuses it in one line.
    parser: Callable[[Any], Any] | None = None
    #: The flat keyword (`RunConfig.of`, the CLI's parameter); None: the field's name.
    keyword: str | None = None
    #: Whether the web page offers it (`chain.ui`: a control of the page's own, or one made from this
    #: declaration); False for what only the command line and Python take.
    page: bool = True

    def flag(self, keyword: str) -> str:
        """The long flag that sets this option (``keyword`` is its keyword): how a command line spells it."""
        return next((flag for flag in self.flags if flag.startswith("--")), "--" + keyword.replace("_", "-"))


def option(help: str, type: Any, *, default: Any = dataclasses.MISSING,  # noqa: A002 (the option's words)
           default_factory: Any = dataclasses.MISSING, flags: tuple[str, ...] = (), metavar: str | None = None,
           parser: Callable[[Any], Any] | None = None, keyword: str | None = None, page: bool = True) -> Any:
    """A dataclass field that is also a run option (see the module's docstring)."""
    declared = Option(help, type, flags, metavar, parser, keyword, page)
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={OPTION: declared})
    return dataclasses.field(default=default, metadata={OPTION: declared})


@dataclass(frozen=True)
class Declared:
    """A run option found on a configuration class: its keyword, declaration and default."""

    keyword: str
    field: str
    option: Option
    #: The command line's default: the field's, or None where the field builds an empty value.
    default: Any

    @property
    def flag(self) -> str:
        """The long flag that sets it (``--seg-opt``)."""
        return self.option.flag(self.keyword)


def declared_options(cls: type) -> Iterator[Declared]:
    """The run options the fields of the dataclass ``cls`` declare, in field order."""
    for item in dataclasses.fields(cls):
        declared = item.metadata.get(OPTION)
        if declared is None:
            continue
        # A plain default is the command line's too; a collection (no rules, no stage options) is
        # the command line's "not given".
        plain = item.default is None or isinstance(item.default, (bool, int, float, str))
        default = item.default if plain and item.default is not dataclasses.MISSING else None
        yield Declared(declared.keyword or item.name, item.name, declared, default)
