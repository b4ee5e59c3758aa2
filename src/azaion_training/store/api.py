"""Client of the Azaion REST API (SPEC section 10.1).

    POST /login                    {"email", "password"} -> {"token": JWT}
    POST /resources/{folder}       multipart upload of one file (field ``data``), Bearer token
    POST /resources/get/{folder}   {"fileName", "password", "hardware"} -> the file, encrypted
                                   with the API resource key of this user and machine

The client logs in on the first call that needs a token, and logs in again once when a call is
answered 401 or 403 (the token expired). Every request has a timeout; connection errors, read
errors and 5xx answers are retried with exponential backoff a bounded number of times
(``api.retries``, ``api.backoff_s``). TLS certificates are verified, against ``api.ca_bundle``
when set. Answers are checked (status, content type, non-empty body, token present) and failures
raise `ApiError` or `AuthError` saying what failed. The password and the token are never logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import requests
import urllib3
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from azaion_training.config import ApiSettings, SecuritySettings, how_to_set
from azaion_training.errors import ApiError, AuthError, ConfigError, CryptoError
from azaion_training.fs import check_name
from azaion_training.store import hardware, security

logger = logging.getLogger(__name__)

RETRY_STATUSES = (500, 502, 503, 504)
"""Answers that are retried like connection errors."""

REFUSED_STATUSES = (401, 403)
"""Answers that mean the token expired or the credentials were refused."""

UPLOAD_FIELD = "data"
"""The multipart field that carries an uploaded file."""

_MAX_BACKOFF_S = 30.0
_SNIPPET = 200


class AzaionApi:
    """A logged-in session with the Azaion API. Use it as a context manager or call `close`.

    Example:
        >>> with AzaionApi.from_settings(settings.api, settings.security) as api:  # doctest: +SKIP
        ...     api.upload(folder="models", name="azaion.small", data=small)
        ...     assert api.download(folder="models", name="azaion.small") == small
    """

    def __init__(
        self,
        *,
        url: str,
        email: str,
        password: SecretStr,
        hardware_fingerprint: str,
        ca_bundle: Path | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        allow_http: bool = False,
    ) -> None:
        """Builds the client; nothing is sent until the first call.

        Args:
            url: the API base URL, e.g. ``https://api.azaion.com``.
            email: the API user.
            password: the user's password.
            hardware_fingerprint: this machine's fingerprint (`hardware.fingerprint`).
            ca_bundle: a PEM file of trusted CAs; ``None`` uses the system's (never unverified).
            timeout_s: connect and read timeout of every request.
            retries: how many times a connection error or 5xx answer is retried.
            backoff_s: the first pause between retries; it doubles each time (at most 30 s).
            allow_http: accept a plain ``http://`` URL (loopback tests); else ``https://`` only.

        Raises:
            ConfigError: the URL is not ``https://`` (nor ``http://`` with ``allow_http``).
        """
        schemes = ("https://", "http://") if allow_http else ("https://",)
        if not url.lower().startswith(schemes):
            raise ConfigError(
                f"api.url must start with {' or '.join(schemes)} (credentials and models travel "
                f"over it); plain HTTP only with api.allow_http for a loopback test"
            )
        self.url = url.rstrip("/")
        self.email = email
        self._password = password
        self._fingerprint = hardware_fingerprint
        self._timeout_s = timeout_s
        self._token: SecretStr | None = None
        # Passed on every request: a session-wide ``verify`` loses to $REQUESTS_CA_BUNDLE.
        self._verify: str | bool = str(ca_bundle) if ca_bundle is not None else True
        self._session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=backoff_s,
            backoff_max=_MAX_BACKOFF_S,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    @classmethod
    def from_settings(cls, api: ApiSettings, security_settings: SecuritySettings) -> AzaionApi:
        """A client for ``api.url`` as ``api.email``, bound to this machine's fingerprint.

        Raises:
            ConfigError: the URL, email or password is not set.
        """
        for key, value in (("url", api.url), ("email", api.email), ("password", api.password)):
            if not value or (isinstance(value, SecretStr) and not value.get_secret_value()):
                raise ConfigError(f"missing setting api.{key}: {how_to_set(f'api.{key}')}")
        assert api.url is not None and api.email is not None and api.password is not None
        return cls(
            url=api.url,
            email=api.email,
            password=api.password,
            hardware_fingerprint=hardware.fingerprint(
                override=security_settings.hardware_fingerprint
            ),
            ca_bundle=api.ca_bundle,
            timeout_s=api.timeout_s,
            retries=api.retries,
            backoff_s=api.backoff_s,
            allow_http=api.allow_http,
        )

    def __repr__(self) -> str:
        return f"AzaionApi(url={self.url!r}, email={self.email!r})"

    def __enter__(self) -> AzaionApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections."""
        self._session.close()

    @property
    def resource_key(self) -> str:
        """The key this user's downloads on this machine are encrypted with (SPEC section 9)."""
        return security.api_resource_key(
            email=self.email,
            password=self._password.get_secret_value(),
            hardware=security.hardware_hash(self._fingerprint),
        )

    def login(self) -> None:
        """Logs in and keeps the token for the following calls.

        Raises:
            AuthError: the credentials were refused.
            ApiError: the API cannot be reached or answered something unexpected.
        """
        what = f"login as {self.email}"
        logger.debug("API %s at %s", what, self.url)
        body = {"email": self.email, "password": self._password.get_secret_value()}
        response = self._post("/login", what=what, json=body)
        if response.status_code in (400, *REFUSED_STATUSES):
            raise AuthError(f"{what} refused ({response.status_code}): {self._snippet(response)}")
        self._check(response, what=what)
        self._check_content_type(response, what=what, expected="json")
        try:
            answer = response.json()
        except ValueError as exc:
            raise ApiError(f"{what}: the answer is not valid JSON") from exc
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise ApiError(f"{what}: the answer has no token")
        self._token = SecretStr(token)

    def upload(self, *, folder: str, name: str, data: bytes) -> None:
        """Uploads one file into ``folder`` under ``name`` (replacing a file of that name).

        Raises:
            AuthError: refused even after logging in again.
            ApiError: not reachable, or the upload failed.
        """
        check_name(name, what="resource name")
        what = f"upload of {folder}/{name}"
        files = {UPLOAD_FIELD: (name, data, "application/octet-stream")}
        response = self._authorized(f"/resources/{quote(folder, safe='')}", what=what, files=files)
        self._check(response, what=what)
        logger.debug("API %s: %d bytes", what, len(data))

    def download(self, *, folder: str, name: str) -> bytes:
        """Downloads one file and decrypts it with this user's and machine's resource key.

        Raises:
            AuthError: refused even after logging in again.
            ApiError: not reachable, not found, or the answer is empty or not a file.
            CryptoError: the answer does not decrypt (password or fingerprint not the ones the
                API encrypted for, or damaged data).
        """
        what = f"download of {folder}/{name}"
        body = {
            "fileName": name,
            "password": self._password.get_secret_value(),
            "hardware": self._fingerprint,
        }
        path = f"/resources/get/{quote(folder, safe='')}"
        response = self._authorized(path, what=what, json=body)
        self._check(response, what=what)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type.startswith("text/") or content_type.endswith("json"):
            raise ApiError(
                f"{what}: expected a file, got {content_type}: {self._snippet(response)}"
            )
        if not response.content:
            raise ApiError(f"{what}: the answer is empty")
        try:
            data = security.decrypt(response.content, self.resource_key)
        except CryptoError as exc:
            raise CryptoError(
                f"{what}: the answer does not decrypt with this user's and machine's resource "
                f"key ({exc})"
            ) from exc
        logger.debug("API %s: %d bytes", what, len(data))
        return data

    def _authorized(self, path: str, *, what: str, **kwargs: object) -> requests.Response:
        if self._token is None:
            self.login()
        response = self._post(path, what=what, headers=self._bearer(), **kwargs)
        if response.status_code in REFUSED_STATUSES:
            logger.info(
                "API refused the token for %s (%d); logging in again", what, response.status_code
            )
            self.login()
            response = self._post(path, what=what, headers=self._bearer(), **kwargs)
            if response.status_code in REFUSED_STATUSES:
                raise AuthError(
                    f"{what} refused ({response.status_code}) after logging in again: "
                    f"{self._snippet(response)}"
                )
        return response

    def _bearer(self) -> dict[str, str]:
        assert self._token is not None
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    def _post(self, path: str, *, what: str, **kwargs: object) -> requests.Response:
        try:
            return self._session.post(  # type: ignore[arg-type]
                self.url + path, timeout=self._timeout_s, verify=self._verify, **kwargs
            )
        except requests.exceptions.SSLError as exc:
            raise ApiError(
                f"{what}: TLS verification of {self.url} failed; if the server uses a private CA, "
                f"{how_to_set('api.ca_bundle')} ({_reason(exc)})"
            ) from exc
        except requests.exceptions.RequestException as exc:
            if _timed_out(exc):
                raise ApiError(
                    f"{what}: {self.url} did not answer within {self._timeout_s:g} s"
                ) from exc
            raise ApiError(f"{what}: cannot reach {self.url} ({_reason(exc)})") from exc

    def _check(self, response: requests.Response, *, what: str) -> None:
        if not response.ok:
            raise ApiError(f"{what} failed ({response.status_code}): {self._snippet(response)}")

    def _check_content_type(self, response: requests.Response, *, what: str, expected: str) -> None:
        content_type = response.headers.get("Content-Type", "")
        if expected not in content_type.lower():
            raise ApiError(f"{what}: expected {expected}, got {content_type or 'no content type'}")

    def _snippet(self, response: requests.Response) -> str:
        text = " ".join(response.text[:_SNIPPET].split()) or "(empty answer)"
        for secret in (self._password, self._token):
            if secret is not None and secret.get_secret_value():
                text = text.replace(secret.get_secret_value(), "***")
        return text


def _reason(exc: requests.exceptions.RequestException) -> str:
    """The innermost cause of a requests/urllib3 error, in one line."""
    inner = exc.args[0] if exc.args else exc
    reason = getattr(inner, "reason", None) or inner
    return " ".join(str(reason).split())[:_SNIPPET]


def _timed_out(exc: requests.exceptions.RequestException) -> bool:
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", inner)
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, but it is a refusal.
    slow = isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )
    return slow or isinstance(exc, requests.exceptions.Timeout)


def resource_path(spec: str) -> tuple[str, str]:
    """Splits ``folder/name`` (as in ``api.cdn_config``) into folder and name (folder may be "")."""
    folder, _, name = spec.rpartition("/")
    check_name(name, what="resource name")
    return folder, name
