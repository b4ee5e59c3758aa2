"""Tables of implementations named as ``"module:attribute"``, imported only when used.

The engine, export-format and converter-format tables hold such names so that a heavy runtime
(TensorRT, the RKNN toolkit, Ultralytics) is imported by the one row that needs it, and so that
adding an implementation is one new module plus one table row.

Example:
    >>> resolve("pathlib:PurePosixPath")("a", "b")
    PurePosixPath('a/b')
"""

from __future__ import annotations

import importlib
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
