"""The documentation that is generated from the code is current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_configuration_page_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_config_doc", REPO / "scripts" / "make_config_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == module.render(), "run: python scripts/make_config_doc.py"
