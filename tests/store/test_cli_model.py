"""`azaion-model` in-process: publish, fetch, list against the local store and API + CDN."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from azaion_training.cli.model import main
from azaion_training.fs import DataTree
from tests.services.azaion_api import AzaionApiServer
from tests.services.s3 import S3Server
from tests.store.conftest import EMAIL, FINGERPRINT, PASSWORD


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "azaion.onnx"
    path.write_bytes(bytes(range(256)) * 300)
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray config.yaml or .env


def run(tree: DataTree, *argv: str) -> int:
    return main(["--root", str(tree.root), *argv])


def test_local_publish_list_fetch(
    tree: DataTree, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tree, "publish", str(model)) == 0
    assert "published azaion.onnx: 75.0 KiB" in capsys.readouterr().out
    assert run(tree, "list") == 0
    listing = capsys.readouterr().out
    assert "azaion.onnx" in listing and "75.0 KiB" in listing
    assert run(tree, "fetch", "azaion.onnx") == 0
    assert "verified" in capsys.readouterr().out
    assert not any(
        p.read_bytes() == model.read_bytes() for p in tree.root.rglob("*") if p.is_file()
    )
    target = tmp_path / "out" / "plain.onnx"
    assert run(tree, "fetch", "azaion.onnx", "--decrypt-to", str(target)) == 0
    captured = capsys.readouterr()
    assert "plaintext is now on disk" in captured.err
    assert target.read_bytes() == model.read_bytes()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_publish_with_a_name(
    tree: DataTree, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tree, "publish", str(model), "--name", "azaion-2026.onnx") == 0
    assert run(tree, "list") == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("azaion-2026.onnx")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fetch", "ghost"], "no model named ghost"),  # unknown model
        (["publish", "missing.onnx"], "cannot read the model missing.onnx"),  # no such file
        (
            ["publish", "x", "--name", "../escape"],
            "model name '../escape' contains a path separator",
        ),  # unsafe
    ],
)
def test_errors_exit_1_with_one_line(
    tree: DataTree, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(tree, *argv) == 1
    err = capsys.readouterr().err
    assert f"azaion-model: error: {message}" in err


def test_empty_store_lists_nothing(tree: DataTree, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tree, "list") == 0
    assert "no models" in capsys.readouterr().err


def test_help_lists_commands_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for text in ("publish", "fetch", "list", "AZAION_API_URL", "AZAION_MODEL_KEY", "--config"):
        assert text in out


def test_remote_publish_and_fetch_from_the_environment(
    tree: DataTree,
    model: Path,
    tmp_path: Path,
    api_server: AzaionApiServer,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = s3_server.create_bucket()
    for name, value in {
        "AZAION_API_URL": api_server.url,
        "AZAION_API_ALLOW_HTTP": "true",
        "AZAION_API_EMAIL": EMAIL,
        "AZAION_API_PASSWORD": PASSWORD,
        "AZAION_CDN_HOST": s3_server.url,
        "AZAION_CDN_BUCKET": bucket,
        "AZAION_CDN_DOWNLOADER_ACCESS_KEY": "R",
        "AZAION_CDN_DOWNLOADER_ACCESS_SECRET": "reader-secret",
        "AZAION_CDN_UPLOADER_ACCESS_KEY": "W",
        "AZAION_CDN_UPLOADER_ACCESS_SECRET": "writer-secret",
        "AZAION_MODEL_KEY": "cli model secret",
        "AZAION_HARDWARE_FINGERPRINT": FINGERPRINT,
    }.items():
        monkeypatch.setenv(name, value)
    assert run(tree, "publish", str(model)) == 0
    assert ("models", "azaion.onnx.small") in api_server.resources
    target = tmp_path / "fetched.onnx"
    assert run(tree, "fetch", "azaion.onnx", "--decrypt-to", str(target)) == 0
    assert target.read_bytes() == model.read_bytes()
    assert run(tree, "list") == 0
    out = capsys.readouterr().out
    assert "75.0 KiB" in out.splitlines()[-1]
    assert "cli model secret" not in out
