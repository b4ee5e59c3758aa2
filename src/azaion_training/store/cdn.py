"""Client of the S3-compatible CDN that holds the big parts of models (SPEC section 10.2).

Two boto3 clients, as the platform hands out two key pairs: a read-only one built from the
downloader keys (head, download, list) and a write one built from the uploader keys (upload).
Objects stream from and to file objects, so a large model never has to fit in memory. Every
failure raises `CdnError` saying what was asked and why it failed; a missing object is ``None``
from `Cdn.head`. A failure to connect at all raises the subclass `CdnUnreachableError`, so a
caller can tell "not reachable" (a cache may stand in) from "refused" (401/403/404: it may not).

``cdn.yaml`` (read by `config.load_settings`, or fetched from the API and parsed by
`parse_cdn_yaml`):

    host: https://cdn.example.com        # endpoint URL
    downloader_access_key: ...
    downloader_access_secret: ...
    uploader_access_key: ...
    uploader_access_secret: ...
    bucket: models                       # optional, default "models"
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import yaml
from pydantic import SecretStr, ValidationError

from azaion_training.config import CdnSettings, how_to_set
from azaion_training.errors import CdnError, CdnUnreachableError, ConfigError

if TYPE_CHECKING:
    from botocore.client import BaseClient

logger = logging.getLogger(__name__)

MULTIPART_CHUNK_BYTES = 8 * 1024 * 1024
"""Objects above this size move in parts of this size."""

MULTIPART_CONCURRENCY = 4
"""Parts in flight at once; with the chunk size this bounds the memory a transfer uses."""

_NOT_FOUND = ("404", "NoSuchKey", "NotFound")


@dataclass(frozen=True)
class CdnObject:
    """One stored object.

    Attributes:
        key: the object's name in the bucket.
        size: its size in bytes.
        etag: the entity tag (changes whenever the content does), without quotes.
        metadata: user metadata (``x-amz-meta-*``), keys in lower case; empty from `Cdn.list`.
    """

    key: str
    size: int
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)


class Cdn:
    """The bucket of the CDN, read through one client and written through another.

    Example:
        >>> cdn = Cdn.from_settings(settings.cdn)  # doctest: +SKIP
        >>> with open("azaion.big", "rb") as source:  # doctest: +SKIP
        ...     cdn.upload("azaion.big", source, metadata={"sha256": digest})
    """

    def __init__(self, *, reader: BaseClient, writer: BaseClient, bucket: str) -> None:
        """Wraps two boto3 S3 clients (read-only and write) and a bucket name."""
        self._reader = reader
        self._writer = writer
        self.bucket = bucket

    @classmethod
    def from_settings(cls, cdn: CdnSettings) -> Cdn:
        """Builds both clients from the CDN settings (``cdn.yaml``).

        Raises:
            ConfigError: the host or one of the four keys is not set.
        """
        keys = (
            "host",
            "downloader_access_key",
            "downloader_access_secret",
            "uploader_access_key",
            "uploader_access_secret",
        )
        for key in keys:
            value = getattr(cdn, key)
            if not value or (isinstance(value, SecretStr) and not value.get_secret_value()):
                raise ConfigError(f"missing setting cdn.{key}: {how_to_set(f'cdn.{key}')}")
        return cls(
            reader=_client(cdn, cdn.downloader_access_key, cdn.downloader_access_secret),
            writer=_client(cdn, cdn.uploader_access_key, cdn.uploader_access_secret),
            bucket=cdn.bucket,
        )

    def __repr__(self) -> str:
        return f"Cdn(bucket={self.bucket!r})"

    def upload(
        self, key: str, source: BinaryIO, *, metadata: Mapping[str, str] | None = None
    ) -> None:
        """Streams ``source`` (read from its current position) into object ``key``.

        Raises:
            CdnError: the upload failed; the message says why.
        """
        extra = {"Metadata": dict(metadata)} if metadata else None
        with _translated("upload", self.bucket, key):
            self._writer.upload_fileobj(
                source, self.bucket, key, ExtraArgs=extra, Config=_transfer_config()
            )
        logger.debug("CDN uploaded %s/%s", self.bucket, key)

    def download(self, key: str, target: BinaryIO) -> None:
        """Streams object ``key`` into ``target``.

        Raises:
            CdnError: the object is missing or the download failed.
        """
        with _translated("download", self.bucket, key):
            self._reader.download_fileobj(self.bucket, key, target, Config=_transfer_config())
        logger.debug("CDN downloaded %s/%s", self.bucket, key)

    def delete(self, key: str) -> None:
        """Deletes object ``key`` (through the write client); a missing object is no error.

        Raises:
            CdnError: the deletion failed.
        """
        with _translated("deletion", self.bucket, key):
            self._writer.delete_object(Bucket=self.bucket, Key=key)
        logger.debug("CDN deleted %s/%s", self.bucket, key)

    def head(self, key: str) -> CdnObject | None:
        """The size, tag and metadata of object ``key``, or ``None`` when it does not exist.

        Raises:
            CdnError: the CDN cannot be asked.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._reader.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return None
            raise _cdn_error("lookup", self.bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise _cdn_error("lookup", self.bucket, key, exc) from exc
        return CdnObject(
            key=key,
            size=int(answer["ContentLength"]),
            etag=str(answer.get("ETag", "")).strip('"'),
            metadata={k.lower(): v for k, v in answer.get("Metadata", {}).items()},
        )

    def list(self, *, suffix: str = "", prefix: str = "") -> list[CdnObject]:
        """Every object whose key starts with ``prefix`` and ends with ``suffix``, sorted by key
        (metadata not included).

        Raises:
            CdnError: the listing failed.
        """
        found: list[CdnObject] = []
        with _translated("listing", self.bucket, "*"):
            pages = self._reader.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    if item["Key"].endswith(suffix):
                        etag = str(item.get("ETag", "")).strip('"')
                        found.append(CdnObject(key=item["Key"], size=int(item["Size"]), etag=etag))
        return sorted(found, key=lambda item: item.key)


def parse_cdn_yaml(data: bytes, *, base: CdnSettings | None = None) -> CdnSettings:
    """CDN settings from the text of a ``cdn.yaml``, over ``base`` (key by key).

    Raises:
        ConfigError: the text is not a YAML mapping of CDN settings.
    """
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cdn.yaml does not parse: {' '.join(str(exc).split())}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"cdn.yaml: expected a mapping, got {type(loaded).__name__}")
    merged: dict[str, Any] = {**dict(base or CdnSettings()), **loaded}
    try:
        return CdnSettings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"cdn.yaml: invalid setting {key}: {first['msg']}") from None


def _client(cdn: CdnSettings, key_id: SecretStr | None, secret: SecretStr | None) -> BaseClient:
    import boto3
    from botocore.config import Config

    assert key_id is not None and secret is not None
    config = Config(
        connect_timeout=cdn.timeout_s,
        read_timeout=cdn.timeout_s,
        retries={"max_attempts": cdn.retries + 1, "mode": "standard"},
        s3={"addressing_style": "path"},
        signature_version="s3v4",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=cdn.host,
        aws_access_key_id=key_id.get_secret_value(),
        aws_secret_access_key=secret.get_secret_value(),
        region_name=cdn.region,
        verify=str(cdn.ca_bundle) if cdn.ca_bundle is not None else None,
        config=config,
    )


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_CHUNK_BYTES,
        multipart_chunksize=MULTIPART_CHUNK_BYTES,
        max_concurrency=MULTIPART_CONCURRENCY,
    )


@contextlib.contextmanager
def _translated(action: str, bucket: str, key: str) -> Iterator[None]:
    """Turns boto3/botocore errors inside the block into `CdnError`."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise _cdn_error(action, bucket, key, exc) from exc


def _cdn_error(action: str, bucket: str, key: str, exc: BaseException) -> CdnError:
    from botocore.exceptions import ClientError
    from botocore.exceptions import ConnectionError as Unreachable

    if isinstance(exc, Unreachable):
        reason = " ".join(str(exc).split())
        return CdnUnreachableError(f"CDN {action} of {bucket}/{key} failed: {reason}")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        reason = f"{code}: {error.get('Message') or _status_text(code)}"
    else:
        reason = " ".join(str(exc).split())
    return CdnError(f"CDN {action} of {bucket}/{key} failed: {reason}")


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status_text(code: str) -> str:
    return {"403": "access denied", "404": "not found"}.get(code, "refused")
