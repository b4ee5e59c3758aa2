"""Security primitives shared byte for byte with the Azaion platform (SPEC section 9).

- `hash_text`: base64 of SHA-384 of a UTF-8 string (the original calls it ``calc_hash``).
- `encrypt` / `decrypt`: AES-256-CBC; the AES key is SHA-256 of the key string's UTF-8 bytes, a
  fresh random 16-byte IV per message, PKCS7 padding; the message is ``IV ‖ ciphertext``.
- `encrypt_stream` / `decrypt_stream` (and the atomic file forms `encrypt_file` /
  `decrypt_file`): the same format for large files, in bounded memory, equal byte for byte to the
  one-shot form for the same IV.
- Key derivation: `hardware_hash`, `api_resource_key`, `model_key`.

Formats, so other tools can check them (``openssl enc`` reads the same ciphertext):

    message    = IV (16 bytes) ‖ AES-256-CBC(key=SHA-256(utf8(key string)), IV, PKCS7(plaintext))
    length     = 16 + 16 * (len(plaintext) // 16 + 1)

CBC with PKCS7 has no authentication: a wrong key or damaged data is noticed only through the
padding, which a wrong key passes by chance about once in 256 tries, and a changed byte in the
middle is not noticed at all. The model store therefore also checks a SHA-256 of the plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from azaion_training.config import SecuritySettings, how_to_set
from azaion_training.errors import ConfigError, CryptoError
from azaion_training.fs import atomic_writer

logger = logging.getLogger(__name__)

# Public protocol constants, not secrets: the platform's server and model loader derive the same
# keys from the same salts, so they must stay exactly as they are (SPEC section 9).
HARDWARE_SALT_PREFIX = "Azaion_"
HARDWARE_SALT_SUFFIX = "_%$$$)0_"
API_KEY_SALT = "-#%@AzaionKey@%#---"

BLOCK_SIZE = 16
"""AES block size, and the IV size, in bytes."""

CHUNK_SIZE = 1 << 20
"""Bytes read per step by the streaming forms."""


def hash_text(text: str) -> str:
    """Base64 of the SHA-384 digest of ``text`` encoded as UTF-8 (64 characters)."""
    return base64.b64encode(hashlib.sha384(text.encode("utf-8")).digest()).decode("ascii")


def hardware_hash(fingerprint: str) -> str:
    """The hash that identifies a machine: ``hash("Azaion_" + fingerprint + "_%$$$)0_")``."""
    return hash_text(f"{HARDWARE_SALT_PREFIX}{fingerprint}{HARDWARE_SALT_SUFFIX}")


def api_resource_key(*, email: str, password: str, hardware: str) -> str:
    """The key the API encrypts downloads with, bound to a user and a machine.

    Args:
        email: the API user.
        password: the user's password.
        hardware: the machine's `hardware_hash` (not the raw fingerprint).
    """
    return hash_text(f"{email}-{password}-{hardware}{API_KEY_SALT}")


def model_key(secret: str) -> str:
    """The key models are encrypted with: ``hash(secret)``."""
    if not secret:
        raise CryptoError("the model secret is empty")
    return hash_text(secret)


def model_key_from_settings(
    security: SecuritySettings, *, default_file: Path | None = None, create: bool = False
) -> str:
    """The model key from ``security.model_key``, else from the secret in a key file.

    The key file is ``security.model_key_file`` when set: it must exist, and is never created
    here. Otherwise it is ``default_file`` (the local store's own key file), which is created
    with a new random secret only when ``create`` is true (the first publish into an empty
    local store); that is logged once, as a warning.

    Raises:
        ConfigError: no key is configured, or the key file is missing, unreadable or empty
            (one line naming the file).
    """
    if security.model_key is not None and security.model_key.get_secret_value():
        return model_key(security.model_key.get_secret_value())
    if security.model_key_file is not None:
        return model_key(read_secret_file(Path(security.model_key_file)))
    if default_file is not None and Path(default_file).exists():
        return model_key(read_secret_file(Path(default_file)))
    if default_file is not None and create:
        return model_key(create_secret_file(Path(default_file), exist_ok=True))
    where = f", or create {default_file} with `azaion-model init-key`" if default_file else ""
    raise ConfigError(
        f"missing setting security.model_key: {how_to_set('security.model_key')}, "
        f"or {how_to_set('security.model_key_file')}{where}"
    )


def read_secret_file(path: Path) -> str:
    """The secret in a key file (surrounding whitespace stripped).

    Raises:
        ConfigError: the file is missing, unreadable or empty; nothing is created.
    """
    if not Path(path).exists():
        raise ConfigError(
            f"the model key file {path} does not exist; no key was created (fix "
            "security.model_key_file, or make a new key with `azaion-model init-key`)"
        )
    try:
        secret = Path(path).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the model key file {path}: {exc.strerror or exc}") from exc
    if not secret:
        raise ConfigError(f"the model key file {path} is empty")
    if os.name == "posix" and Path(path).stat().st_mode & 0o077:
        logger.warning("model key file %s is readable by others; run chmod 600 on it", path)
    return secret


def create_secret_file(path: Path, *, exist_ok: bool = False) -> str:
    """Creates the key file ``path`` (mode 0600 from the start) with a new random secret.

    The file is written under a temporary name and linked into place, so a reader never sees it
    half-written and two processes racing to create it end up with the same secret. The
    creation is logged as a warning: a new key cannot open models published with another.

    Args:
        path: the key file.
        exist_ok: when the file exists, return its secret instead of failing.

    Raises:
        ConfigError: the file exists (unless ``exist_ok``) or cannot be created.
    """
    path = Path(path)
    if path.exists():
        if exist_ok:
            return read_secret_file(path)
        raise ConfigError(f"the model key file {path} already exists; it was not replaced")
    secret = secrets.token_urlsafe(32)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        if exist_ok:
            return read_secret_file(path)
        raise ConfigError(f"the model key file {path} already exists; not replaced") from None
    except OSError as exc:
        raise ConfigError(f"cannot create the model key file {path}: {exc.strerror}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    logger.warning(
        "created a new model key in %s: back it up (models published with it cannot be read "
        "without it)",
        path,
    )
    return secret


def encrypted_size(plaintext_size: int) -> int:
    """The size of the message that encrypts ``plaintext_size`` bytes (IV and padding included)."""
    return BLOCK_SIZE + BLOCK_SIZE * (plaintext_size // BLOCK_SIZE + 1)


def encrypt(data: bytes, key: str, *, iv: bytes | None = None) -> bytes:
    """Encrypts ``data`` into ``IV ‖ ciphertext``.

    Args:
        data: the plaintext.
        key: the key string (its SHA-256 is the AES key).
        iv: 16 bytes; leave it out (a fresh random IV) except for fixed test vectors.
    """
    iv = _check_iv(iv)
    encryptor = _cipher(key, iv).encryptor()
    padder = padding.PKCS7(BLOCK_SIZE * 8).padder()
    padded = padder.update(data) + padder.finalize()
    return iv + encryptor.update(padded) + encryptor.finalize()


def decrypt(message: bytes, key: str) -> bytes:
    """Decrypts an ``IV ‖ ciphertext`` message and checks its padding.

    Raises:
        CryptoError: the message is too short, not whole blocks (truncated), or its padding is
            wrong (wrong key or damaged data). No partial plaintext is returned.
    """
    _check_length(len(message))
    decryptor = _cipher(key, bytes(message[:BLOCK_SIZE])).decryptor()
    unpadder = padding.PKCS7(BLOCK_SIZE * 8).unpadder()
    try:
        padded = decryptor.update(message[BLOCK_SIZE:]) + decryptor.finalize()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise CryptoError(_BAD_PADDING) from exc


def encrypt_stream(source: BinaryIO, target: BinaryIO, key: str, *, iv: bytes | None = None) -> int:
    """Encrypts ``source`` into ``target`` in chunks; the bytes equal `encrypt` with the same IV.

    Returns:
        The number of bytes written (IV included).
    """
    iv = _check_iv(iv)
    encryptor = _cipher(key, iv).encryptor()
    padder = padding.PKCS7(BLOCK_SIZE * 8).padder()
    target.write(iv)
    written = BLOCK_SIZE
    while chunk := source.read(CHUNK_SIZE):
        written += _write(target, encryptor.update(padder.update(chunk)))
    written += _write(target, encryptor.update(padder.finalize()) + encryptor.finalize())
    return written


def decrypt_stream(source: BinaryIO, target: BinaryIO, key: str) -> int:
    """Decrypts an ``IV ‖ ciphertext`` stream into ``target`` in chunks.

    The padding can only be checked at the end, so ``target`` has already received most of the
    plaintext when a `CryptoError` is raised: discard it then (`decrypt_file` does).

    Returns:
        The number of plaintext bytes written.

    Raises:
        CryptoError: truncated data, or wrong padding (wrong key or damaged data).
    """
    iv = source.read(BLOCK_SIZE)
    if len(iv) < BLOCK_SIZE:
        _check_length(len(iv))
    decryptor = _cipher(key, iv).decryptor()
    unpadder = padding.PKCS7(BLOCK_SIZE * 8).unpadder()
    written = 0
    received = len(iv)
    try:
        while chunk := source.read(CHUNK_SIZE):
            received += len(chunk)
            written += _write(target, unpadder.update(decryptor.update(chunk)))
        _check_length(received)
        tail = decryptor.finalize()
        written += _write(target, unpadder.update(tail) + unpadder.finalize())
    except ValueError as exc:
        raise CryptoError(_BAD_PADDING) from exc
    return written


def encrypt_file(source: Path, target: Path, key: str) -> int:
    """Encrypts the file ``source`` into ``target`` (written atomically). Returns its size."""
    with open(source, "rb") as reader, atomic_writer(target) as writer:
        return encrypt_stream(reader, writer, key)


def decrypt_file(source: Path, target: Path, key: str) -> int:
    """Decrypts the file ``source`` into ``target`` atomically: on an error nothing is left.

    Returns:
        The plaintext size.

    Raises:
        CryptoError: truncated data or wrong padding; ``target`` is not created.
    """
    with open(source, "rb") as reader, atomic_writer(target) as writer:
        return decrypt_stream(reader, writer, key)


_BAD_PADDING = "decryption failed: the key is wrong or the data is damaged (bad padding)"


def _cipher(key: str, iv: bytes) -> Cipher[modes.CBC]:
    aes_key = hashlib.sha256(key.encode("utf-8")).digest()
    return Cipher(algorithms.AES(aes_key), modes.CBC(iv))


def _check_iv(iv: bytes | None) -> bytes:
    if iv is None:
        return os.urandom(BLOCK_SIZE)
    if len(iv) != BLOCK_SIZE:
        raise ValueError(f"the IV must be {BLOCK_SIZE} bytes, got {len(iv)}")
    return bytes(iv)


def _check_length(size: int) -> None:
    if size < 2 * BLOCK_SIZE:
        raise CryptoError(
            f"decryption failed: {size} bytes is shorter than an IV and one block "
            f"({2 * BLOCK_SIZE} bytes); the data is truncated or empty"
        )
    if size % BLOCK_SIZE:
        raise CryptoError(
            f"decryption failed: {size} bytes is not a whole number of {BLOCK_SIZE}-byte "
            "blocks; the data is truncated or damaged"
        )


def _write(target: BinaryIO, data: bytes) -> int:
    if data:
        target.write(data)
    return len(data)
