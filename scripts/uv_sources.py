"""Prints, one per line, the uv arguments that name pip's configured package sources.

uv reads no pip configuration; `scripts/setup.sh` gives it pip's indexes, find-links and
constraints (files and ``PIP_*`` variables, the variables winning, as in pip) so that both install
the same packages from the same places:

    python -m pip config list | python scripts/uv_sources.py
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable

FLAGS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}


def uv_arguments(config_lines: Iterable[str]) -> list[str]:
    """uv's arguments for the sources in ``pip config list``'s lines (``section.key='value'``)."""
    found: dict[str, list[str]] = {}
    for line in sorted(config_lines, key=lambda line: line.startswith(":env:")):
        key, _, quoted = line.strip().partition("=")
        name = key.rpartition(".")[2]
        if name in FLAGS and quoted:
            found[name] = " ".join(shlex.split(quoted)).split()
    return [
        part for name, values in found.items() for value in values for part in (FLAGS[name], value)
    ]


if __name__ == "__main__":
    print("\n".join(uv_arguments(sys.stdin)))
