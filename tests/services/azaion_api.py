"""A real HTTP server on loopback that implements the Azaion API contract (SPEC section 10.1).

It derives the download key with its own code (hashlib + cryptography, not `azaion_training`),
so a mistake in the client's key derivation or encryption shows up as a failed decryption.

    POST /login                    {"email", "password"} -> 200 {"token": JWT (HS256, exp)}
    POST /resources/{folder}       multipart field "data" -> 200 {"stored": name}
    POST /resources/get/{folder}   {"fileName", "password", "hardware"}
                                   -> 200 application/octet-stream, encrypted with
                                   hash(f"{email}-{password}-{hash('Azaion_' + hardware +
                                   '_%$$$)0_')}-#%@AzaionKey@%#---")

A missing, forged or expired token is answered 401. Knobs for tests: `fail_next` (answer 5xx),
`drop_next` (close the connection without answering), `advance_clock` (expire tokens), and TLS
with a throwaway CA made by `make_tls_files`.

Example:
    >>> with AzaionApiServer(users={"a@b.c": "pw"}) as server:  # doctest: +SKIP
    ...     server.url, server.resources
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def platform_hash(text: str) -> str:
    return base64.b64encode(hashlib.sha384(text.encode("utf-8")).digest()).decode("ascii")


def platform_encrypt(data: bytes, key: str) -> bytes:
    iv = os.urandom(16)
    encryptor = Cipher(
        algorithms.AES(hashlib.sha256(key.encode()).digest()), modes.CBC(iv)
    ).encryptor()
    padder = padding.PKCS7(128).padder()
    return iv + encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()


def platform_resource_key(*, email: str, password: str, fingerprint: str) -> str:
    hardware = platform_hash(f"Azaion_{fingerprint}_%$$$)0_")
    return platform_hash(f"{email}-{password}-{hardware}-#%@AzaionKey@%#---")


@dataclass(frozen=True)
class Call:
    """One request the server answered (or dropped: status 0)."""

    method: str
    path: str
    status: int
    authorization: str | None = None


@dataclass
class _State:
    users: dict[str, str]
    token_ttl_s: float
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    clock_offset_s: float = 0.0
    resources: dict[tuple[str, str], bytes] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    drops: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.time() + self.clock_offset_s


class AzaionApiServer:
    """The API on ``127.0.0.1`` in a thread; `start`/`stop` or use it as a context manager.

    Args:
        users: email -> password of the accounts that may log in.
        token_ttl_s: how long an issued token is valid.
        tls: serve HTTPS with a certificate signed by a throwaway CA (see `ca_file`).
        tls_dir: where the CA and server certificate files go (required with ``tls``).
    """

    def __init__(
        self,
        *,
        users: Mapping[str, str],
        token_ttl_s: float = 3600.0,
        tls: bool = False,
        tls_dir: Path | None = None,
    ) -> None:
        self._state = _State(users=dict(users), token_ttl_s=token_ttl_s)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._state))
        self._server.daemon_threads = True
        self.ca_file: Path | None = None
        if tls:
            if tls_dir is None:
                raise ValueError("tls needs tls_dir")
            self.ca_file, cert, key = make_tls_files(tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AzaionApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> AzaionApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def resources(self) -> dict[tuple[str, str], bytes]:
        """(folder, name) -> the stored (unencrypted-in-transit) bytes. Tests may edit it."""
        return self._state.resources

    @property
    def calls(self) -> list[Call]:
        with self._state.lock:
            return list(self._state.calls)

    @property
    def fingerprints(self) -> list[str]:
        """The hardware fingerprints downloads were asked with, in order."""
        with self._state.lock:
            return list(self._state.fingerprints)

    def fail_next(self, status: int = 503, *, times: int = 1) -> None:
        """Answers the next ``times`` requests (any path) with ``status``."""
        with self._state.lock:
            self._state.failures.extend([status] * times)

    def drop_next(self, *, times: int = 1) -> None:
        """Closes the connection of the next ``times`` requests without answering."""
        with self._state.lock:
            self._state.drops += times

    def advance_clock(self, seconds: float) -> None:
        """Moves the server's clock forward: tokens issued earlier may now be expired."""
        with self._state.lock:
            self._state.clock_offset_s += seconds

    def reset(self) -> None:
        """Forgets resources, calls and pending failures (users and tokens stay)."""
        with self._state.lock:
            self._state.resources.clear()
            self._state.calls.clear()
            self._state.fingerprints.clear()
            self._state.failures.clear()
            self._state.drops = 0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _issue_token(state: _State, email: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(state.now())
    claims = {"sub": email, "iat": now, "exp": now + int(state.token_ttl_s)}
    payload = _b64url(json.dumps(claims).encode())
    signature = hmac.new(state.signing_key, f"{header}.{payload}".encode(), "sha256").digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def _verify_token(state: _State, authorization: str | None) -> str | None:
    """The email of a valid, unexpired Bearer token, else ``None``."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    try:
        header, payload, signature = authorization[len("Bearer ") :].split(".")
        expected = hmac.new(state.signing_key, f"{header}.{payload}".encode(), "sha256").digest()
        if not hmac.compare_digest(expected, _unb64url(signature)):
            return None
        claims = json.loads(_unb64url(payload))
    except (ValueError, TypeError):
        return None
    if claims.get("exp", 0) <= state.now() or claims.get("sub") not in state.users:
        return None
    return str(claims["sub"])


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: tests read `calls` instead

        def do_GET(self) -> None:
            self._answer(405, {"error": "use POST"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                failure = state.failures.pop(0) if state.failures else None
                drop = state.drops > 0
                state.drops -= int(drop)
            if drop:
                self._record(0)
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if failure is not None:
                self._answer(failure, {"error": "injected failure"})
            elif self.path == "/login":
                self._login(body)
            elif self.path.startswith("/resources/get/"):
                self._download(unquote(self.path[len("/resources/get/") :]), body)
            elif self.path.startswith("/resources/"):
                self._upload(unquote(self.path[len("/resources/") :]), body)
            else:
                self._answer(404, {"error": f"no route {self.path}"})

        def _login(self, body: bytes) -> None:
            try:
                request = json.loads(body)
                email, password = request["email"], request["password"]
            except (ValueError, KeyError, TypeError):
                self._answer(400, {"error": "expected JSON with email and password"})
                return
            if state.users.get(email) != password:
                self._answer(401, {"error": "wrong email or password"})
                return
            self._answer(200, {"token": _issue_token(state, email)})

        def _upload(self, folder: str, body: bytes) -> None:
            if _verify_token(state, self.headers.get("Authorization")) is None:
                self._answer(401, {"error": "token missing, invalid or expired"})
                return
            head = f"Content-Type: {self.headers.get('Content-Type', '')}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + body)
            for part in message.iter_parts() if message.is_multipart() else []:
                if part.get_param("name", header="content-disposition") == "data":
                    name = part.get_filename()
                    if not name:
                        break
                    with state.lock:
                        state.resources[(folder, name)] = part.get_payload(decode=True) or b""
                    self._answer(200, {"stored": name})
                    return
            self._answer(400, {"error": "expected a multipart field 'data' with a file name"})

        def _download(self, folder: str, body: bytes) -> None:
            email = _verify_token(state, self.headers.get("Authorization"))
            if email is None:
                self._answer(401, {"error": "token missing, invalid or expired"})
                return
            try:
                request = json.loads(body)
                name, password, fingerprint = (
                    request["fileName"],
                    request["password"],
                    request["hardware"],
                )
            except (ValueError, KeyError, TypeError):
                self._answer(400, {"error": "expected JSON with fileName, password, hardware"})
                return
            if state.users.get(email) != password:
                self._answer(403, {"error": "password does not match the token's user"})
                return
            with state.lock:
                state.fingerprints.append(fingerprint)
                data = state.resources.get((folder, name))
            if data is None:
                self._answer(404, {"error": f"no resource {folder}/{name}"})
                return
            key = platform_resource_key(email=email, password=password, fingerprint=fingerprint)
            self._answer(200, platform_encrypt(data, key))

        def _answer(self, status: int, payload: object) -> None:
            if isinstance(payload, bytes):
                data, content_type = payload, "application/octet-stream"
            else:
                data, content_type = json.dumps(payload).encode(), "application/json"
            self._record(status)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, status: int) -> None:
            call = Call(self.command, self.path, status, self.headers.get("Authorization"))
            with state.lock:
                state.calls.append(call)

    return Handler


def make_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it.

    Returns:
        (CA certificate PEM, server certificate PEM, server key PEM), written into ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Azaion test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file
