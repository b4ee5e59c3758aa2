"""Fixtures of the security and distribution tests: the API server and settings for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azaion_training.config import ApiSettings, CdnSettings, SecuritySettings
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
