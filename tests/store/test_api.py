"""The API client against a real HTTP server on loopback implementing SPEC 10.1."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from azaion_training.config import ApiSettings, SecuritySettings
from azaion_training.errors import ApiError, AuthError, ConfigError, UnsafePathError
from azaion_training.store import security
from azaion_training.store.api import AzaionApi, resource_path
from tests.services.azaion_api import AzaionApiServer, platform_resource_key
from tests.store.conftest import EMAIL, FINGERPRINT, PASSWORD


@pytest.fixture
def api(api_settings: ApiSettings, security_settings: SecuritySettings) -> Iterator[AzaionApi]:
    with AzaionApi.from_settings(api_settings, security_settings) as client:
        yield client


def changed(settings: ApiSettings, **changes: object) -> ApiSettings:
    """A validated copy (model_copy(update=...) would skip validation of secrets and paths)."""
    return ApiSettings.model_validate({**dict(settings), **changes})


def paths(server: AzaionApiServer) -> list[tuple[str, int]]:
    return [(call.path, call.status) for call in server.calls]


def test_upload_then_download_round_trip(api: AzaionApi, api_server: AzaionApiServer) -> None:
    data = os.urandom(3000)
    api.upload(folder="models", name="azaion.small", data=data)
    assert api_server.resources[("models", "azaion.small")] == data
    assert api.download(folder="models", name="azaion.small") == data
    assert api_server.fingerprints == [FINGERPRINT]
    # logged in lazily, once, and the token was sent as a Bearer header
    assert paths(api_server) == [
        ("/login", 200),
        ("/resources/models", 200),
        ("/resources/get/models", 200),
    ]
    assert all(c.authorization.startswith("Bearer ") for c in api_server.calls[1:])


def test_resource_key_matches_the_servers_derivation(api: AzaionApi) -> None:
    assert api.resource_key == platform_resource_key(
        email=EMAIL, password=PASSWORD, fingerprint=FINGERPRINT
    )


def test_nothing_is_sent_before_the_first_call(api: AzaionApi, api_server: AzaionApiServer) -> None:
    assert api_server.calls == []
    assert "correct horse" not in repr(api)


def test_expired_token_logs_in_again(api: AzaionApi, api_server: AzaionApiServer) -> None:
    api.upload(folder="models", name="a.small", data=b"a")
    api_server.advance_clock(3601)
    assert api.download(folder="models", name="a.small") == b"a"
    assert paths(api_server) == [
        ("/login", 200),
        ("/resources/models", 200),
        ("/resources/get/models", 401),
        ("/login", 200),
        ("/resources/get/models", 200),
    ]


def test_tokens_refused_after_relogin_raise_auth_error(api_settings: ApiSettings) -> None:
    # token_ttl_s=0: every token the server issues is already expired.
    with AzaionApiServer(users={EMAIL: PASSWORD}, token_ttl_s=0) as server:
        settings = changed(api_settings, url=server.url)
        with (
            AzaionApi.from_settings(settings, SecuritySettings(hardware_fingerprint="x")) as api,
            pytest.raises(AuthError, match="after logging in again"),
        ):
            api.upload(folder="models", name="a.small", data=b"a")
        assert [c.path for c in server.calls] == [
            "/login",
            "/resources/models",
            "/login",
            "/resources/models",
        ]


def test_wrong_password_is_an_auth_error(
    api_settings: ApiSettings, security_settings: SecuritySettings
) -> None:
    settings = changed(api_settings, password="wrong")
    with (
        AzaionApi.from_settings(settings, security_settings) as api,
        pytest.raises(AuthError, match=r"login as trainer@azaion.test refused \(401\)"),
    ):
        api.download(folder="models", name="a.small")


@pytest.mark.parametrize(
    ("inject", "expected"),
    [
        ("fail", 503),  # one 5xx answer
        ("drop", 0),  # one connection closed without an answer
    ],
)
def test_transient_failure_is_retried(
    api: AzaionApi, api_server: AzaionApiServer, inject: str, expected: int
) -> None:
    api.upload(folder="models", name="a.small", data=b"payload")
    if inject == "fail":
        api_server.fail_next(503)
    else:
        api_server.drop_next()
    assert api.download(folder="models", name="a.small") == b"payload"
    assert paths(api_server)[-2:] == [
        ("/resources/get/models", expected),
        ("/resources/get/models", 200),
    ]


def test_persistent_5xx_gives_up_after_the_retries(
    api: AzaionApi, api_server: AzaionApiServer
) -> None:
    api.login()
    api_server.fail_next(502, times=10)
    with pytest.raises(ApiError, match=r"upload of models/a.small failed \(502\)"):
        api.upload(folder="models", name="a.small", data=b"a")
    assert paths(api_server)[1:] == [("/resources/models", 502)] * 3  # 1 try + 2 retries


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("login", "the answer has no token"),  # 200 with JSON but no token
        ("download", "expected a file, got application/json"),  # 200 with a JSON error body
    ],
)
def test_unexpected_answers_are_refused(
    api: AzaionApi, api_server: AzaionApiServer, call: str, message: str
) -> None:
    if call == "download":
        api.login()
    api_server.fail_next(200)
    with pytest.raises(ApiError, match=message):
        if call == "login":
            api.login()
        else:
            api.download(folder="models", name="a.small")


def test_missing_resource_is_an_api_error(api: AzaionApi) -> None:
    with pytest.raises(ApiError, match=r"download of models/none.small failed \(404\)"):
        api.download(folder="models", name="none.small")


def test_unreachable_api_is_an_api_error(
    api_settings: ApiSettings, security_settings: SecuritySettings
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = changed(api_settings, url=f"http://127.0.0.1:{port}")
    with (
        AzaionApi.from_settings(settings, security_settings) as api,
        pytest.raises(ApiError, match=r"cannot reach http://127\.0\.0\.1"),
    ):
        api.login()


def test_silent_server_times_out(
    api_settings: ApiSettings, security_settings: SecuritySettings
) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings = changed(api_settings, url=url, timeout_s=0.3, retries=0)
        with (
            AzaionApi.from_settings(settings, security_settings) as api,
            pytest.raises(ApiError, match=r"did not answer within 0.3 s"),
        ):
            api.login()


def test_tls_verified_by_default_and_trusted_with_its_ca(
    tmp_path: Path, api_settings: ApiSettings, security_settings: SecuritySettings
) -> None:
    with AzaionApiServer(users={EMAIL: PASSWORD}, tls=True, tls_dir=tmp_path / "tls") as server:
        assert server.url.startswith("https://")
        settings = changed(api_settings, url=server.url)
        with (
            AzaionApi.from_settings(settings, security_settings) as api,
            pytest.raises(ApiError, match=r"TLS verification .* failed.*AZAION_API_CA_BUNDLE"),
        ):
            api.login()
        assert server.calls == []
        trusted = changed(settings, ca_bundle=server.ca_file)
        with AzaionApi.from_settings(trusted, security_settings) as api:
            api.upload(folder="models", name="tls.small", data=b"over tls")
            assert api.download(folder="models", name="tls.small") == b"over tls"


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("url", "AZAION_API_URL"),  # no URL
        ("email", "AZAION_API_EMAIL"),  # no user
        ("password", "AZAION_API_PASSWORD"),  # no password
    ],
)
def test_missing_settings_name_the_variable(
    api_settings: ApiSettings, missing: str, variable: str
) -> None:
    settings = changed(api_settings, **{missing: None})
    with pytest.raises(ConfigError, match=variable):
        AzaionApi.from_settings(settings, SecuritySettings(hardware_fingerprint="x"))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("config/cdn.yaml", ("config", "cdn.yaml")),  # folder and name
        ("cdn.yaml", ("", "cdn.yaml")),  # no folder
        ("a/b/cdn.yaml", ("a/b", "cdn.yaml")),  # nested folder
    ],
)
def test_resource_path(spec: str, expected: tuple[str, str]) -> None:
    assert resource_path(spec) == expected


def test_resource_path_refuses_unsafe_names() -> None:
    with pytest.raises(UnsafePathError):
        resource_path("config/..")


def test_no_secret_in_logs_or_errors(
    api: AzaionApi,
    api_server: AzaionApiServer,
    api_settings: ApiSettings,
    security_settings: SecuritySettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    api.upload(folder="models", name="a.small", data=b"a")
    api_server.advance_clock(3601)  # forces a re-login
    api_server.fail_next(503)  # and a retry
    api.download(folder="models", name="a.small")
    wrong = changed(api_settings, password=PASSWORD + "!")
    with AzaionApi.from_settings(wrong, security_settings) as refused:
        try:
            refused.login()
        except AuthError as exc:
            errors.append(str(exc))
    tokens = {c.authorization.split()[1] for c in api_server.calls if c.authorization}
    assert len(tokens) == 2
    secrets = {PASSWORD, PASSWORD + "!", api.resource_key, *tokens}
    secrets.add(security.hardware_hash(FINGERPRINT))
    text = caplog.text + "\n".join(errors) + "\n".join(str(r.args) for r in caplog.records)
    assert "refused" in text  # the scan saw the interesting records
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "allow_http", "accepted"),
    [
        ("https://api.azaion.test", False, True),
        ("HTTPS://api.azaion.test", False, True),
        ("http://api.azaion.test", False, False),
        ("http://127.0.0.1:8080", True, True),
        ("ftp://api.azaion.test", True, False),
        ("api.azaion.test", True, False),
    ],
)
def test_the_api_url_must_be_https_unless_plain_http_is_allowed(
    url: str, allow_http: bool, accepted: bool
) -> None:
    settings = ApiSettings(url=url, email=EMAIL, password=PASSWORD, allow_http=allow_http)
    security_settings = SecuritySettings(hardware_fingerprint=FINGERPRINT)
    if accepted:
        assert AzaionApi.from_settings(settings, security_settings).url == url
    else:
        with pytest.raises(ConfigError, match=r"api\.url must start with https://"):
            AzaionApi.from_settings(settings, security_settings)
