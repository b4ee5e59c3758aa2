"""The documentation that is generated from the code is current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make_config_doc():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "make_config_doc", REPO / "scripts" / "make_config_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_page_is_current() -> None:
    module = _make_config_doc()
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == module.render(), "run: python scripts/make_config_doc.py"


def test_config_yaml_defaults_are_current() -> None:
    module = _make_config_doc()
    committed = (REPO / "config.yaml").read_text(encoding="utf-8")
    assert committed == module.render_config(), "run: python scripts/make_config_doc.py"


def test_config_yaml_uncommented_gives_the_defaults(tmp_path: Path) -> None:
    """Every line of config.yaml, uncommented, is valid and sets exactly the built-in default."""
    import yaml

    from azaion_training.config import Settings, load_settings

    _header, body = _make_config_doc().render_config().split("\n\n", 1)
    lines = [line[2:].split(" # ")[0] for line in body.splitlines() if line.startswith("# ")]
    data = yaml.safe_load("\n".join(line for line in lines if not line.lstrip().startswith("#")))
    assert set(data) >= {"root_dir", "queue", "training", "infer"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    loaded = load_settings(config, environ={}, env_file=None)
    assert loaded.model_dump() == Settings().model_dump()
