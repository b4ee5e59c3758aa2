"""The one CLI runner: options bound to settings, help from the settings model, exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from azaion_training.cli._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    command_parser,
    queue_options,
    run,
    setting,
)
from azaion_training.config import Settings
from azaion_training.errors import DatasetError


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("azaion-test", "A test command.", env_sections=("infer",))
    setting(parser, "--every", key="infer.every", type=int, metavar="N", help="every N-th frame")
    setting(parser, "--workers", key="augment.workers", type=int, default_text="the CPUs", help="w")
    queue_options(parser, commits=True)
    return parser


def test_help_shows_the_default_and_variable_of_each_bound_setting() -> None:
    text = " ".join(_parser().format_help().split())
    assert "every N-th frame (default 4; INFER_EVERY)" in text
    assert "w (default the CPUs; AZAION_AUGMENT_WORKERS)" in text
    assert "RabbitMQ host (default 127.0.0.1; RABBITMQ_HOST)" in text
    assert "(default 200; AZAION_QUEUE_COMMIT_EVERY)" in text


@pytest.mark.parametrize(
    ("argv", "every", "host"),
    [
        ([], 4, "127.0.0.1"),  # not given: the settings keep their default
        (["--every", "7", "--host", "rabbit"], 7, "rabbit"),
    ],
)
def test_bound_options_override_their_settings(
    tmp_path: Path, argv: list[str], every: int, host: str
) -> None:
    seen: list[Settings] = []

    def body(args: argparse.Namespace, settings: Settings) -> int:
        seen.append(settings)
        return EXIT_OK

    assert run(_parser(), [*argv, "--root", str(tmp_path)], body) == EXIT_OK
    (settings,) = seen
    assert (settings.infer.every, settings.queue.host, settings.root_dir) == (every, host, tmp_path)


@pytest.mark.parametrize(
    ("failure", "code", "line"),
    [
        (DatasetError("no images"), EXIT_ERROR, "azaion-test: error: no images"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "azaion-test: interrupted"),
        (
            OSError(28, "No space left on device", "/root/x.tmp"),
            EXIT_ERROR,
            "azaion-test: error: /root/x.tmp: No space left on device",
        ),
        (PermissionError("plain text"), EXIT_ERROR, "azaion-test: error: plain text"),
    ],
)
def test_the_error_boundary(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    failure: BaseException,
    code: int,
    line: str,
) -> None:
    def body(args: argparse.Namespace, settings: Settings) -> int:
        raise failure

    assert run(_parser(), ["--root", str(tmp_path)], body) == code
    assert line in capsys.readouterr().err


def test_a_missing_required_setting_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RABBITMQ_USER", raising=False)
    code = run(_parser(), ["--root", str(tmp_path)], lambda a, s: EXIT_OK, require=["queue.user"])
    assert code == EXIT_ERROR
    assert "RABBITMQ_USER" in capsys.readouterr().err


def test_an_abbreviated_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["--ever", "3"])  # --every, abbreviated
    assert exited.value.code == 2
    assert "unrecognized arguments: --ever 3" in capsys.readouterr().err


def test_settings_that_do_not_load_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("training: {epoch: 3}\n")  # epochs, misspelt
    args = ["--config", str(config), "--root", str(tmp_path)]
    assert run(_parser(), args, lambda a, s: EXIT_OK) == 2
    assert "invalid setting training.epoch from" in capsys.readouterr().err


def test_ultralytics_settings_go_under_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.delenv("YOLO_CONFIG_DIR", raising=False)
    assert run(_parser(), ["--root", str(tmp_path)], lambda a, s: EXIT_OK) == EXIT_OK
    assert os.environ["YOLO_CONFIG_DIR"] == str(tmp_path.absolute() / ".ultralytics")
    monkeypatch.setenv("YOLO_CONFIG_DIR", "/elsewhere")
    assert run(_parser(), ["--root", str(tmp_path)], lambda a, s: EXIT_OK) == EXIT_OK
    assert os.environ["YOLO_CONFIG_DIR"] == "/elsewhere", "the user's own choice is kept"


def test_the_environment_in_help_has_defaults_and_meanings() -> None:
    text = _parser().format_help()
    assert "INFER_EVERY" in text and "infer.every (default: 4)" in text
    assert "AZAION_ROOT_DIR                      root_dir (default: /azaion)" in text


@pytest.mark.parametrize("command", ["dataset", "model", "train", "augment"])
def test_a_root_that_is_a_file_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    root = tmp_path / "file"
    root.write_text("not a folder")
    argv = {"dataset": ["info"], "model": ["list"], "train": [], "augment": ["--once"]}[command]
    main = importlib.import_module(f"azaion_training.cli.{command}").main
    assert main(["--root", str(root), *argv]) == EXIT_ERROR
    error = capsys.readouterr().err.strip()
    assert error.endswith(f"the root {root} is not a folder (check AZAION_ROOT_DIR / --root)")
    assert len(error.splitlines()) == 1
