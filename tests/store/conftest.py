"""Fixtures of the security and distribution tests: the API server and settings for it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from azaion_training.config import (
    ApiSettings,
    CdnSettings,
    SecuritySettings,
    Settings,
    load_settings,
)
from azaion_training.fs import DataTree
from tests.services.azaion_api import AzaionApiServer
from tests.services.s3 import S3Server

EMAIL = "trainer@azaion.test"
PASSWORD = "correct horse battery staple"
FINGERPRINT = "CPU: Test CPU. GPU: Test GPU. Memory: 64. DriveSerial: TEST-SERIAL-1"


@pytest.fixture
def api_server() -> Iterator[AzaionApiServer]:
    """The Azaion API on loopback with one user."""
    with AzaionApiServer(users={EMAIL: PASSWORD}) as server:
        yield server


@pytest.fixture
def api_settings(api_server: AzaionApiServer) -> ApiSettings:
    """Client settings for `api_server` (plain HTTP on loopback), with quick retries."""
    return ApiSettings(
        url=api_server.url,
        allow_http=True,
        email=EMAIL,
        password=PASSWORD,
        timeout_s=5,
        retries=2,
        backoff_s=0.01,
    )


@pytest.fixture
def security_settings() -> SecuritySettings:
    """A fixed hardware fingerprint and model secret."""
    return SecuritySettings(hardware_fingerprint=FINGERPRINT, model_key="test model secret")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on loopback, shared by the session (use a fresh bucket per test)."""
    with S3Server() as server:
        yield server


@pytest.fixture
def cdn_settings(s3_server: S3Server) -> CdnSettings:
    """CDN settings for a fresh bucket on `s3_server`."""
    return s3_server.cdn_settings(bucket=s3_server.create_bucket())


# --- model store helpers ----------------------------------------------------------------------

MODEL_SECRET = "model secret for tests"


def remote_settings(
    tree: DataTree, api: AzaionApiServer, s3: S3Server, bucket: str, **extra: str
) -> Settings:
    environ = {
        "AZAION_ROOT_DIR": str(tree.root),
        "AZAION_API_URL": api.url,
        "AZAION_API_EMAIL": EMAIL,
        "AZAION_API_ALLOW_HTTP": "true",
        "AZAION_API_PASSWORD": PASSWORD,
        "AZAION_CDN_HOST": s3.url,
        "AZAION_CDN_BUCKET": bucket,
        "AZAION_CDN_DOWNLOADER_ACCESS_KEY": "DOWNLOADERKEY",
        "AZAION_CDN_DOWNLOADER_ACCESS_SECRET": "downloader-secret-value",
        "AZAION_CDN_UPLOADER_ACCESS_KEY": "UPLOADERKEY",
        "AZAION_CDN_UPLOADER_ACCESS_SECRET": "uploader-secret-value",
        "AZAION_MODEL_KEY": MODEL_SECRET,
        "AZAION_HARDWARE_FINGERPRINT": FINGERPRINT,
        **extra,
    }
    overrides = {"api.backoff_s": 0.01, "api.retries": 2, "cdn.retries": 0}
    return load_settings(environ=environ, env_file=None, overrides=overrides)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket()


@pytest.fixture
def remote(
    tree: DataTree, api_server: AzaionApiServer, s3_server: S3Server, bucket: str
) -> Settings:
    return remote_settings(tree, api_server, s3_server, bucket)


def model_file(folder: Path, size: int, name: str = "azaion.onnx", seed: int = 0) -> Path:
    path = folder / name
    path.write_bytes(hashlib.shake_256(f"{seed}".encode()).digest(size) if size else b"")
    return path


def flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x10
    return bytes(changed)
