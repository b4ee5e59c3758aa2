"""`azaion-model` in-process: publish, fetch, list against the local store and API + CDN."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from azaion_training.cli.model import main
from azaion_training.config import load_settings
from azaion_training.fs import DataTree
from azaion_training.store.models import publish_file
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
    assert "published azaion.onnx v1: 75.0 KiB" in capsys.readouterr().out
    assert run(tree, "list") == 0
    listing = capsys.readouterr().out
    assert "azaion.onnx  (current v1)" in listing and "75.0 KiB" in listing
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
    assert capsys.readouterr().out.splitlines()[-2].startswith("azaion-2026.onnx")


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
    assert not (tree.root / "model-store" / "model.key").exists()  # no key for a failed publish


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
    remote_environment(monkeypatch, api_server, s3_server)
    assert run(tree, "publish", str(model)) == 0
    assert ("models", "azaion.onnx.small") in api_server.resources
    target = tmp_path / "fetched.onnx"
    assert run(tree, "fetch", "azaion.onnx", "--decrypt-to", str(target)) == 0
    assert target.read_bytes() == model.read_bytes()
    assert run(tree, "list") == 0
    out = capsys.readouterr().out
    assert "75.0 KiB" in out.splitlines()[-1] and "* v1" in out.splitlines()[-1]
    assert "cli model secret" not in out


def remote_environment(
    monkeypatch: pytest.MonkeyPatch, api_server: AzaionApiServer, s3_server: S3Server
) -> str:
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
    return bucket


@pytest.mark.parametrize("command", ["publish", "fetch"])
def test_missing_key_file_exits_1_naming_it_and_creates_nothing(
    tree: DataTree,
    model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    missing = tmp_path / "keys" / "model.key"
    monkeypatch.setenv("AZAION_MODEL_KEY_FILE", str(missing))
    argv = ["publish", str(model)] if command == "publish" else ["fetch", "azaion.onnx"]
    if command == "fetch":  # a model published with a key that is now unreachable
        monkeypatch.setenv("AZAION_MODEL_KEY", "some secret")
        assert run(tree, "publish", str(model)) == 0
        monkeypatch.delenv("AZAION_MODEL_KEY")
    capsys.readouterr()
    assert run(tree, *argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"azaion-model: error: the model key file {missing} does not exist; no key was created "
        "(fix security.model_key_file, or make a new key with `azaion-model init-key`)"
    ]
    assert not missing.exists() and not missing.parent.exists()
    assert not (tree.root / "model-store" / "model.key").exists()


def test_init_key_creates_0600_once(
    tree: DataTree,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "keys" / "model.key"
    monkeypatch.setenv("AZAION_MODEL_KEY_FILE", str(path))
    assert run(tree, "init-key") == 0
    assert f"created a new model key in {path}" in capsys.readouterr().out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text()
    assert run(tree, "init-key") == 1
    assert "already exists" in capsys.readouterr().err
    assert path.read_text() == secret


def test_list_shows_versions_with_scores_and_rollback(
    tree: DataTree, model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
    metadata = {"scores": {"mAP50": 0.81234, "mAP50-95": 0.5}, "dataset": "azaion-2026-12-02"}
    publish_file(settings, tree, model, "azaion.onnx", metadata)
    second = tmp_path / "second.onnx"
    second.write_bytes(b"another model" * 1000)
    assert run(tree, "publish", str(second), "--name", "azaion.onnx") == 0
    capsys.readouterr()
    assert run(tree, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "azaion.onnx  (current v2)"
    assert lines[1].startswith("  * v2 ") and "12.7 KiB" in lines[1]
    assert lines[2].startswith("    v1 ") and "75.0 KiB" in lines[2]
    assert "mAP50=0.8123, mAP50-95=0.5, dataset=azaion-2026-12-02" in lines[2]
    assert f"sha256 {hashlib.sha256(model.read_bytes()).hexdigest()}" in lines[2]
    assert run(tree, "rollback", "azaion.onnx") == 0
    assert "azaion.onnx: v1 (" in capsys.readouterr().out
    target = tmp_path / "rolled.onnx"
    assert run(tree, "fetch", "azaion.onnx", "--decrypt-to", str(target)) == 0
    assert target.read_bytes() == model.read_bytes()
    assert run(tree, "rollback", "azaion.onnx", "v7") == 1
    assert "model azaion.onnx has no version 7 (kept: v1, v2)" in capsys.readouterr().err


def test_decrypted_file_is_created_0600(
    tree: DataTree, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(tree, "publish", str(model)) == 0
    target = tmp_path / "plain" / "azaion.onnx"
    created: list[tuple[str, int]] = []
    real_open = os.open

    def recording_open(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        descriptor = real_open(path, flags, mode, *args, **kwargs)
        if flags & os.O_CREAT and Path(path).parent == target.parent:
            created.append((str(path), stat.S_IMODE(os.fstat(descriptor).st_mode)))
        return descriptor

    monkeypatch.setattr(os, "open", recording_open)
    umask = os.umask(0)  # the mode must come from the creation itself, not from the umask
    try:
        assert run(tree, "fetch", "azaion.onnx", "--decrypt-to", str(target)) == 0
    finally:
        os.umask(umask)
    assert created and all(mode == 0o600 for _, mode in created), created
    assert target.read_bytes() == model.read_bytes()


@pytest.mark.parametrize(
    "key",
    [
        "azaion.onnx.big",  # the canonical big part: no version named, no digest
        "azaion.onnx@v1.big",  # the big part of the current version
    ],
)
def test_big_part_without_digest_is_refused_unless_allowed(
    tree: DataTree,
    model: Path,
    api_server: AzaionApiServer,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str,
) -> None:
    bucket = remote_environment(monkeypatch, api_server, s3_server)
    assert run(tree, "publish", str(model)) == 0
    admin = s3_server.admin()
    body = admin.get_object(Bucket=bucket, Key=key)["Body"].read()
    admin.put_object(Bucket=bucket, Key=key, Body=body)  # re-uploaded without its metadata
    capsys.readouterr()
    assert run(tree, "fetch", "azaion.onnx") == 1
    assert "has no recorded SHA-256, so it cannot be verified: refused" in capsys.readouterr().err
    for _ in range(2):
        assert run(tree, "fetch", "azaion.onnx", "--allow-unverified") == 0
        captured = capsys.readouterr()
        assert "verified only if no warning said otherwise" in captured.out
        assert "accepted UNVERIFIED" in captured.err  # warned on every use
