"""Tables of implementations named as ``"module:attribute"``, imported only when used.

The engine, export-format and converter-format tables hold such names so that a heavy runtime
(TensorRT, the RKNN toolkit, Ultralytics) is imported by the one row that needs it, and so that
adding an implementation is one new module plus one table row. A row also carries the options
only it takes (`Option`): the command line offers each once, its help names the rows that take
it, and an option given to a row that does not take it is refused (`unknown_options`).

Example:
    >>> resolve("pathlib:PurePosixPath")("a", "b")
    PurePosixPath('a/b')
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


def resolve(target: str) -> Any:
    """The attribute named by ``"package.module:attribute"``, importing its module now.

    Raises:
        ValueError: ``target`` has no ``:``.
        ImportError, AttributeError: the module or the attribute does not exist.
    """
    module, sep, attribute = target.partition(":")
    if not sep or not module or not attribute:
        raise ValueError(f"{target!r} is not 'module:attribute'")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Option:
    """An option that only some rows of a table take: a command-line flag and a keyword.

    Attributes:
        name: the keyword its row's function is given (``corner_order``); the flag is
            ``--corner-order``.
        help: what it does, for ``--help``.
        type: parses the flag's value; ``None`` for an on/off flag.
        default: the value when the option is not given.
        metavar, choices: as argparse's.
    """

    name: str
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def option_values(
    row: str, options: Iterable[Option], given: Mapping[str, Any], *, what: str
) -> dict[str, Any]:
    """The values of every option of ``row``: ``given`` ones, else their defaults.

    Args:
        row: the row's name (``rknn``), for the message.
        options: the options the row takes.
        given: the options given (``None`` values count as not given).
        what: what a row is, for the message (``export format``).

    Raises:
        ValueError: an option was given that ``row`` does not take (one line naming it and
            the options ``row`` does take).
    """
    taken = {option.name: option for option in options}
    unknown = [name for name, value in given.items() if value is not None and name not in taken]
    if unknown:
        flags = ", ".join("--" + name.replace("_", "-") for name in unknown)
        known = ", ".join(option.flag for option in taken.values()) or "none"
        raise ValueError(f"{flags} is not an option of {what} {row} (its options: {known})")
    return {
        name: given[name] if given.get(name) is not None else option.default
        for name, option in taken.items()
    }
