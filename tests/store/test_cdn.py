"""The CDN client against moto's standalone S3 server on loopback."""

from __future__ import annotations

import io
import os
import socket

import pytest

from azaion_training.config import CdnSettings
from azaion_training.errors import CdnError, ConfigError
from azaion_training.store.cdn import Cdn, CdnObject, parse_cdn_yaml
from tests.services.s3 import S3Server


def test_streaming_round_trip_with_metadata(cdn_settings: CdnSettings) -> None:
    cdn = Cdn.from_settings(cdn_settings)
    data = os.urandom(9 * 1024 * 1024 + 123)  # above the multipart threshold
    cdn.upload("azaion.big", io.BytesIO(data), metadata={"sha256": "abc", "plaintext-size": "7"})
    found = cdn.head("azaion.big")
    assert found is not None
    assert (found.size, dict(found.metadata)) == (
        len(data),
        {"sha256": "abc", "plaintext-size": "7"},
    )
    target = io.BytesIO()
    cdn.download("azaion.big", target)
    assert target.getvalue() == data


def test_upload_reads_from_the_current_position(cdn_settings: CdnSettings) -> None:
    cdn = Cdn.from_settings(cdn_settings)
    source = io.BytesIO(b"small part|big part")
    source.seek(len(b"small part|"))
    cdn.upload("x.big", source)
    target = io.BytesIO()
    cdn.download("x.big", target)
    assert target.getvalue() == b"big part"


def test_head_of_a_missing_object_is_none(cdn_settings: CdnSettings) -> None:
    assert Cdn.from_settings(cdn_settings).head("nothing.big") is None


def test_list_filters_by_suffix(cdn_settings: CdnSettings) -> None:
    cdn = Cdn.from_settings(cdn_settings)
    for key, size in (("b.big", 3), ("a.big", 5), ("a.txt", 1)):
        cdn.upload(key, io.BytesIO(b"x" * size))
    listed = cdn.list(suffix=".big")
    assert [(item.key, item.size) for item in listed] == [("a.big", 5), ("b.big", 3)]
    assert all(isinstance(item, CdnObject) and item.etag for item in listed)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing bucket", r"CDN upload of no-such-bucket/m.big failed: .*NoSuchBucket"),
        ("server down", r"CDN upload of .*/m.big failed: Could not connect"),
    ],
)
def test_upload_failures_say_why(
    s3_server: S3Server, cdn_settings: CdnSettings, case: str, message: str
) -> None:
    if case == "missing bucket":
        settings = s3_server.cdn_settings(bucket="no-such-bucket")
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = s3_server.cdn_settings(
            bucket=cdn_settings.bucket, host=f"http://127.0.0.1:{port}"
        )
    with pytest.raises(CdnError, match=message):
        Cdn.from_settings(settings).upload("m.big", io.BytesIO(b"data"))


def test_download_of_a_missing_object_is_a_cdn_error(cdn_settings: CdnSettings) -> None:
    with pytest.raises(CdnError, match=r"CDN download of .*/gone.big failed: 404"):
        Cdn.from_settings(cdn_settings).download("gone.big", io.BytesIO())


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("host", "AZAION_CDN_HOST"),  # no endpoint
        ("downloader_access_key", "AZAION_CDN_DOWNLOADER_ACCESS_KEY"),  # no reader key
        ("uploader_access_secret", "AZAION_CDN_UPLOADER_ACCESS_SECRET"),  # no writer secret
    ],
)
def test_missing_settings_name_the_variable(
    cdn_settings: CdnSettings, missing: str, variable: str
) -> None:
    settings = CdnSettings.model_validate({**dict(cdn_settings), missing: None})
    with pytest.raises(ConfigError, match=variable):
        Cdn.from_settings(settings)


def test_parse_cdn_yaml_over_base() -> None:
    text = b"host: https://cdn.example\ndownloader_access_key: R\ndownloader_access_secret: RS\n"
    parsed = parse_cdn_yaml(text, base=CdnSettings(bucket="mine", uploader_access_key="W"))
    assert parsed.host == "https://cdn.example"
    assert parsed.bucket == "mine"
    assert parsed.downloader_access_secret is not None
    assert parsed.downloader_access_secret.get_secret_value() == "RS"
    assert parsed.uploader_access_key is not None
    assert parsed.uploader_access_key.get_secret_value() == "W"
    assert "RS" not in repr(parsed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"host: [unclosed", "does not parse"),  # broken YAML
        (b"- a list", "expected a mapping"),  # not a mapping
        (b"hots: typo", "invalid setting hots"),  # unknown key
        (b"\xff\xfe", "does not parse"),  # not UTF-8
    ],
)
def test_parse_cdn_yaml_refuses_bad_text(text: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_cdn_yaml(text)
