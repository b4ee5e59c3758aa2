"""moto's standalone S3 server on loopback, for tests of the CDN client.

`S3Server` runs `moto.server.ThreadedMotoServer` on ``127.0.0.1`` with a free port. moto accepts
any access key, so tests give the reader and the writer different keys and see them used. moto
keeps its state per process: give each test its own bucket (`S3Server.create_bucket` with a
unique name) rather than resetting the server.

Example:
    >>> with S3Server() as s3:  # doctest: +SKIP
    ...     s3.create_bucket("models")
    ...     settings = s3.cdn_settings(bucket="models")
"""

from __future__ import annotations

import secrets
from types import TracebackType
from typing import Any

from azaion_training.config import CdnSettings

REGION = "us-east-1"


class S3Server:
    """An S3-compatible server in a thread; `start`/`stop` or use it as a context manager."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._admin: Any = None
        self.url = ""

    def start(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def admin(self) -> Any:
        """A boto3 client with full rights, for test setup and tampering (made once)."""
        import boto3

        if self._admin is None:
            self._admin = boto3.session.Session().client(
                "s3",
                endpoint_url=self.url,
                aws_access_key_id="admin",
                aws_secret_access_key="admin-secret",
                region_name=REGION,
            )
        return self._admin

    def create_bucket(self, name: str | None = None) -> str:
        """Creates a bucket (a fresh unique one by default) and returns its name."""
        name = name or f"models-{secrets.token_hex(4)}"
        self.admin().create_bucket(Bucket=name)
        return name

    def cdn_settings(self, *, bucket: str, **changes: Any) -> CdnSettings:
        """CDN settings pointing at this server with distinct reader and writer keys."""
        values: dict[str, Any] = {
            "host": self.url,
            "downloader_access_key": "DOWNLOADERKEY",
            "downloader_access_secret": "downloader-secret-value",
            "uploader_access_key": "UPLOADERKEY",
            "uploader_access_secret": "uploader-secret-value",
            "bucket": bucket,
            "region": REGION,
            "timeout_s": 5,
            "retries": 1,
            **changes,
        }
        return CdnSettings.model_validate(values)
