from __future__ import annotations

from pathlib import Path

import pytest

from azaion_training.config import ENVIRONMENT, Settings, env_help, load_settings
from azaion_training.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_stray_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.yaml, ./cdn.yaml or ./.env unless a test writes one


def test_defaults_match_the_spec() -> None:
    s = load_settings(environ={}, env_file=None)
    assert s.root_dir == Path("/azaion")
    assert (s.data_dir, s.data_seed_dir, s.data_deleted_dir) == (
        "data",
        "data-seed",
        "data_deleted",
    )
    assert (s.queue.host, s.queue.port, s.queue.stream) == ("127.0.0.1", 5552, "azaion-annotations")
    t = s.training
    assert (t.model, t.epochs, t.batch, t.imgsz, t.save_period) == (
        "yolo11m.yaml",
        120,
        11,
        1280,
        1,
    )
    assert (s.export.imgsz, s.export.batch) == (1280, 4)
    assert (s.infer.every, s.infer.batch, s.infer.conf, s.infer.iou) == (4, 4, 0.3, 0.3)
    assert (s.dataset.train_ratio, s.dataset.valid_ratio, s.dataset.test_ratio) == (0.7, 0.2, 0.1)
    assert s.augment.min_visible_fraction == 0.3 and s.augment.min_box_px == 2.0
    assert s.augment.interval_s == 300


@pytest.mark.parametrize(
    ("file_value", "dotenv_value", "env_value", "flag_value", "expected"),
    [
        (None, None, None, None, 120),  # built-in default
        (5, None, None, None, 5),  # config.yaml over default
        (5, 6, None, None, 6),  # .env over config.yaml
        (5, 6, 7, None, 7),  # environment over .env
        (5, 6, 7, 8, 8),  # flag over everything
        (5, None, None, 8, 8),  # flag over file
    ],
)
def test_precedence(
    tmp_path: Path, file_value, dotenv_value, env_value, flag_value, expected
) -> None:
    config = (
        _write(tmp_path / "c.yaml", f"training:\n  epochs: {file_value}\n") if file_value else None
    )
    dotenv = (
        _write(tmp_path / ".env", f"TRAINING_EPOCHS={dotenv_value}\n") if dotenv_value else None
    )
    environ = {"TRAINING_EPOCHS": str(env_value)} if env_value else {}
    overrides = {"training.epochs": flag_value}
    s = load_settings(config, overrides=overrides, environ=environ, env_file=dotenv)
    assert s.training.epochs == expected


def test_file_keeps_sibling_keys_when_env_overrides_one(tmp_path: Path) -> None:
    config = _write(tmp_path / "c.yaml", "queue:\n  host: mq.local\n  port: 6000\n")
    s = load_settings(config, environ={"RABBITMQ_PORT": "7000"}, env_file=None)
    assert (s.queue.host, s.queue.port) == ("mq.local", 7000)


def test_default_config_and_cdn_files_are_found(tmp_path: Path) -> None:
    _write(tmp_path / "config.yaml", "training:\n  batch: 3\n")
    _write(tmp_path / "cdn.yaml", "host: http://127.0.0.1:9000\ndownloader_access_key: dk\n")
    s = load_settings(environ={}, env_file=None)
    assert s.training.batch == 3
    assert s.cdn.host == "http://127.0.0.1:9000"
    assert s.cdn.downloader_access_key is not None
    assert s.cdn.downloader_access_key.get_secret_value() == "dk"


def test_cdn_file_sits_below_the_environment(tmp_path: Path) -> None:
    cdn = _write(tmp_path / "other-cdn.yaml", "host: http://from-file\nbucket: b1\n")
    s = load_settings(environ={"AZAION_CDN_HOST": "http://from-env"}, env_file=None, cdn_path=cdn)
    assert (s.cdn.host, s.cdn.bucket) == ("http://from-env", "b1")


def test_the_committed_config_files_hold_no_values() -> None:
    repo = Path(__file__).resolve().parents[1]
    s = load_settings(repo / "config.yaml", environ={}, env_file=None, cdn_path=repo / "cdn.yaml")
    assert s == load_settings(environ={}, env_file=None)
    assert list(s.secret_values()) == []


def test_missing_secret_fails_with_one_clear_line() -> None:
    s = load_settings(environ={}, env_file=None)
    with pytest.raises(ConfigError) as info:
        s.require("queue.user", "queue.password")
    message = str(info.value)
    assert "\n" not in message
    assert (
        message == "missing setting queue.user: set RABBITMQ_USER (or 'queue.user' in config.yaml)"
    )
    s = load_settings(environ={"RABBITMQ_USER": "u", "RABBITMQ_PASSWORD": ""}, env_file=None)
    with pytest.raises(ConfigError, match=r"queue\.password: set RABBITMQ_PASSWORD"):
        s.require("queue.user", "queue.password")


def test_secrets_never_show_in_repr_or_str() -> None:
    environ = {
        "RABBITMQ_PASSWORD": "rabbit-pass-123",
        "AZAION_API_PASSWORD": "api-pass-456",
        "AZAION_MODEL_KEY": "model-key-789",
        "AZAION_CDN_UPLOADER_ACCESS_SECRET": "cdn-secret-000",
    }
    s = load_settings(environ=environ, env_file=None)
    for text in (repr(s), str(s), s.model_dump_json(), repr(s.queue)):
        for secret in environ.values():
            assert secret not in text
    assert sorted(s.secret_values()) == sorted(environ.values())


@pytest.mark.parametrize(
    ("config_text", "environ", "match"),
    [
        ("training:\n  epochs: many\n", {}, r"invalid setting training\.epochs from .*c\.yaml"),
        ("", {"TRAINING_EPOCHS": "many"}, r"from environment variable TRAINING_EPOCHS"),
        ("", {"RABBITMQ_PORT": "70000"}, r"invalid setting queue\.port"),
        ("trainig:\n  epochs: 3\n", {}, r"invalid setting trainig"),  # misspelt key
        ("training: [1, 2\n", {}, r"cannot read YAML"),
        ("- a list\n", {}, r"expected a mapping"),
    ],
)
def test_invalid_values_fail_with_one_line(tmp_path: Path, config_text, environ, match) -> None:
    config = _write(tmp_path / "c.yaml", config_text)
    with pytest.raises(ConfigError, match=match) as info:
        load_settings(config, environ=environ, env_file=None)
    assert "\n" not in str(info.value)


def test_given_config_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", environ={}, env_file=None)


def test_config_from_environment_variable(tmp_path: Path) -> None:
    config = _write(tmp_path / "elsewhere.yaml", "infer:\n  every: 2\n")
    s = load_settings(environ={"AZAION_CONFIG": str(config)}, env_file=None)
    assert s.infer.every == 2


def test_every_environment_name_points_at_a_real_setting() -> None:
    s = Settings()
    for name, key in ENVIRONMENT.items():
        s.get(key)  # raises AttributeError for a typo
        assert name.isupper()
    for required in (
        "AZAION_ROOT_DIR",
        "RABBITMQ_HOST",
        "RABBITMQ_PORT",
        "RABBITMQ_QUEUE_NAME",
        "TRAINING_MODEL",
        "TRAINING_EPOCHS",
        "TRAINING_BATCH_SIZE",
        "AZAION_API_URL",
    ):
        assert required in ENVIRONMENT
    assert "RABBITMQ_PASSWORD" in env_help("queue")
