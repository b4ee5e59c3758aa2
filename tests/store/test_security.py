"""Security primitives: known answers, the wire format against openssl, and failure cases."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from azaion_training.config import SecuritySettings
from azaion_training.errors import ConfigError, CryptoError
from azaion_training.store import security

FIXED_IV = bytes(range(16))


def independent_hash(text: str) -> str:
    return base64.b64encode(hashlib.sha384(text.encode("utf-8")).digest()).decode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # FIPS 180-2 SHA-384 test vector "abc", base64 of the published digest
        (
            "abc",
            base64.b64encode(
                bytes.fromhex(
                    "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8"
                    "086072ba1e7cc2358baeca134c825a7"
                )
            ).decode(),
        ),
        # the empty string
        ("", independent_hash("")),
        # non-ASCII text is hashed as UTF-8
        ("Азіон ✓", independent_hash("Азіон ✓")),
    ],
)
def test_hash_text_is_base64_sha384_of_utf8(text: str, expected: str) -> None:
    assert security.hash_text(text) == expected


def test_key_derivation_known_answers() -> None:
    # Vectors computed with `openssl dgst -sha384 -binary | base64` on the salted strings.
    fingerprint = "CPU: X. GPU: Y. Memory: 16. DriveSerial: Z"
    hardware = security.hardware_hash(fingerprint)
    assert hardware == "WrBramktQvqE9u851JdKuZiJE39CDTESTDoawwKeYdXD2m1EJoSUKMOm4RxyNMB1"
    assert hardware == independent_hash(f"Azaion_{fingerprint}_%$$$)0_")
    key = security.api_resource_key(email="user@azaion.com", password="pa$$word", hardware=hardware)
    assert key == "YlSICMvbBVm0hmXNmIfN4HdtFSjnUbYqcBNdS6HQnNjZtAvi+GiIG4QUEvqXodP2"
    assert key == independent_hash(f"user@azaion.com-pa$$word-{hardware}-#%@AzaionKey@%#---")
    assert security.model_key("model-secret") == (
        "D5qDh5zcNY6NhnzwJEmnh3bFfaoIu1/Hr/poIuLMi1aKHB43Wo3bfFlvL/FQaMq9"
    )


def test_encrypt_known_answer() -> None:
    # openssl enc -aes-256-cbc -K $(printf test-key | openssl dgst -sha256) -iv 0001..0f
    message = security.encrypt(b"Azaion model bytes", "test-key", iv=FIXED_IV)
    assert message.hex() == FIXED_IV.hex() + (
        "c6861301eeb78a8810592856dd334499aa5cad051a91aef825a9109510f929cc"
    )


@pytest.mark.parametrize(
    "size",
    [
        0,  # empty plaintext: one block of padding
        1,  # shorter than a block
        15,  # one byte short of a block
        16,  # exactly one block: a whole extra block of padding
        (1 << 20) - 1,  # one byte short of a streaming chunk
        (1 << 20) + 17,  # a chunk and a bit
        3 * (1 << 20),  # several whole chunks
    ],
)
def test_round_trip_and_streaming_equal_one_shot(size: int) -> None:
    plaintext = os.urandom(size)
    one_shot = security.encrypt(plaintext, "key", iv=FIXED_IV)
    assert len(one_shot) == security.encrypted_size(size)
    streamed = io.BytesIO()
    written = security.encrypt_stream(io.BytesIO(plaintext), streamed, "key", iv=FIXED_IV)
    assert streamed.getvalue() == one_shot
    assert written == len(one_shot)
    assert security.decrypt(one_shot, "key") == plaintext
    recovered = io.BytesIO()
    assert security.decrypt_stream(io.BytesIO(one_shot), recovered, "key") == size
    assert recovered.getvalue() == plaintext


def test_independent_decryption_with_cryptography() -> None:
    # The format written out by hand: IV, then CBC over PKCS7 with key SHA-256(key string).
    message = security.encrypt(b"hello azaion", "k")
    iv, body = message[:16], message[16:]
    aes_key = hashlib.sha256(b"k").digest()
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = decryptor.update(body) + decryptor.finalize()
    assert unpadder.update(padded) + unpadder.finalize() == b"hello azaion"


def test_fresh_iv_each_time() -> None:
    assert security.encrypt(b"same", "k")[:16] != security.encrypt(b"same", "k")[:16]


def openssl(*args: str, data: bytes) -> bytes:
    return subprocess.run(
        ["openssl", "enc", "-aes-256-cbc", *args], input=data, capture_output=True, check=True
    ).stdout


@pytest.mark.parametrize("size", [0, 5, 16, 100_003])
def test_openssl_decrypts_ours_and_we_decrypt_openssl(size: int) -> None:
    plaintext = os.urandom(size)
    key_hex = hashlib.sha256(b"shared key").hexdigest()
    message = security.encrypt(plaintext, "shared key")
    ours = openssl("-d", "-K", key_hex, "-iv", message[:16].hex(), data=message[16:])
    assert ours == plaintext
    iv = os.urandom(16)
    theirs = openssl("-K", key_hex, "-iv", iv.hex(), data=plaintext)
    assert security.decrypt(iv + theirs, "shared key") == plaintext


def test_openssl_decrypts_our_streamed_file(tmp_path: Path) -> None:
    plain, sealed = tmp_path / "model.onnx", tmp_path / "model.enc"
    plain.write_bytes(os.urandom(2_500_000))
    security.encrypt_file(plain, sealed, "file key")
    message = sealed.read_bytes()
    key_hex = hashlib.sha256(b"file key").hexdigest()
    assert openssl("-d", "-K", key_hex, "-iv", message[:16].hex(), data=message[16:]) == (
        plain.read_bytes()
    )


# A fixed message so that the wrong key below fails deterministically: with CBC and PKCS7 a wrong
# key passes the padding check by chance about once in 256 keys (see the module docstring).
MESSAGE = security.encrypt(b"x" * 100, "right key", iv=FIXED_IV)


@pytest.mark.parametrize(
    ("message", "key", "reason"),
    [
        (MESSAGE, "wrong key", "bad padding"),  # wrong key
        (MESSAGE[:-1], "right key", "whole number"),  # one byte cut off the end
        (MESSAGE[:-16], "right key", "bad padding"),  # one whole block cut off the end
        (MESSAGE[:31], "right key", "shorter than"),  # less than an IV and a block
        (b"", "right key", "shorter than"),  # nothing
        (MESSAGE[:-1] + bytes([MESSAGE[-1] ^ 1]), "right key", "bad padding"),  # last byte changed
    ],
)
def test_bad_input_raises_crypto_error(message: bytes, key: str, reason: str) -> None:
    with pytest.raises(CryptoError, match=reason):
        security.decrypt(message, key)
    sink = io.BytesIO()
    with pytest.raises(CryptoError, match=reason):
        security.decrypt_stream(io.BytesIO(message), sink, key)


def test_decrypt_file_leaves_nothing_on_error(tmp_path: Path) -> None:
    sealed, target = tmp_path / "m.enc", tmp_path / "m.onnx"
    sealed.write_bytes(MESSAGE)
    with pytest.raises(CryptoError):
        security.decrypt_file(sealed, target, "wrong key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.enc"]


def test_wrong_keys_are_refused_almost_always() -> None:
    # Without a MAC the padding is the only check: count it over many keys instead of trusting one.
    message = security.encrypt(os.urandom(1000), "right")
    refused = 0
    for n in range(400):
        try:
            security.decrypt(message, f"wrong {n}")
        except CryptoError:
            refused += 1
    assert refused >= 380


def test_model_key_from_settings_prefers_the_setting(tmp_path: Path) -> None:
    key_file = tmp_path / "model.key"
    key_file.write_text("from-file\n")
    both = SecuritySettings(model_key="from-setting", model_key_file=key_file)
    assert security.model_key_from_settings(both) == security.hash_text("from-setting")
    only_file = SecuritySettings(model_key_file=key_file)
    assert security.model_key_from_settings(only_file) == security.hash_text("from-file")


def test_model_key_missing_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AZAION_MODEL_KEY"):
        security.model_key_from_settings(SecuritySettings())
    # a default file that is absent is not created unless asked
    with pytest.raises(ConfigError, match="azaion-model init-key"):
        security.model_key_from_settings(SecuritySettings(), default_file=tmp_path / "k")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("create", [False, True])
def test_configured_key_file_must_exist(tmp_path: Path, create: bool) -> None:
    missing = tmp_path / "typo" / "model.key"
    configured = SecuritySettings(model_key_file=missing)
    with pytest.raises(ConfigError) as caught:
        security.model_key_from_settings(
            configured, default_file=tmp_path / "model.key", create=create
        )
    message = str(caught.value)
    assert f"the model key file {missing} does not exist" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # nothing created, not even the default file


def test_key_file_is_created_once_with_mode_0600(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store" / "model.key"
    first = security.model_key_from_settings(SecuritySettings(), default_file=path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 40
    second = security.model_key_from_settings(SecuritySettings(), default_file=path, create=True)
    assert first == second
    assert [p.name for p in path.parent.iterdir()] == ["model.key"]
    created = [r for r in caplog.records if "created a new model key" in r.getMessage()]
    assert len(created) == 1 and created[0].levelname == "WARNING"


def test_create_secret_file_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "model.key"
    path.write_text("kept\n")
    with pytest.raises(ConfigError, match="already exists"):
        security.create_secret_file(path)
    assert path.read_text() == "kept\n"


def test_group_readable_key_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "model.key"
    path.write_text("secret-value\n")
    path.chmod(0o644)
    security.model_key_from_settings(SecuritySettings(model_key_file=path))
    assert "chmod 600" in caplog.text
    assert "secret-value" not in caplog.text
