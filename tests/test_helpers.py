"""The shared test helpers: the cache key of built test models."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import recipe_key


def _recipe_a() -> int:
    return 1


def _recipe_b() -> int:
    return 2


def test_recipe_key_follows_every_part(tmp_path: Path) -> None:
    code = tmp_path / "export.py"
    code.write_text("x = 1\n")
    key = recipe_key("model", _recipe_a, 128, code)
    assert key.startswith("model-") and key == recipe_key("model", _recipe_a, 128, code)
    assert key != recipe_key("model", _recipe_b, 128, code)  # another recipe
    assert key != recipe_key("model", _recipe_a, 64, code)  # another constant
    code.write_text("x = 2\n")
    assert key != recipe_key("model", _recipe_a, 128, code)  # the code it runs changed
