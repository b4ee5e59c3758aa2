"""The embedded local store: round trips, integrity, keys, a publish interrupted by a full disk."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from azaion_training.config import Settings, StoreSettings
from azaion_training.errors import (
    ConfigError,
    IntegrityError,
    StoreError,
)
from azaion_training.fs import DataTree
from azaion_training.store import security
from azaion_training.store.models import (
    SMALL_PART_MAX,
    LocalStore,
    small_part_size,
)
from tests.store.conftest import (
    flip,
    model_file,
)


@pytest.mark.parametrize(
    "size",
    [
        0,  # an empty file still round-trips
        100,  # smaller than the 3 KiB cap: 20% split
        20_000,  # above the cap
        (3 << 20) + 5,  # several streaming chunks
    ],
)
def test_local_round_trip(tree: DataTree, tmp_path: Path, size: int) -> None:
    path = model_file(tmp_path, size)
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    published = store.publish(path)
    assert store.fetch("azaion.onnx") == path.read_bytes()
    encrypted = security.encrypted_size(size)
    assert (published.size, published.small_size + published.big_size) == (size, encrypted)
    assert published.small_size == small_part_size(encrypted)
    assert published.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    record = json.loads((store.models / "azaion.onnx.json").read_text())
    assert record["sha256"] == published.sha256
    [listed] = store.list()
    assert (listed.name, listed.size, listed.sha256, listed.version) == (
        "azaion.onnx",
        size,
        published.sha256,
        1,
    )
    assert [v.version for v in listed.versions] == [1]


def test_local_parts_are_the_wire_format(tree: DataTree, tmp_path: Path) -> None:
    # small ‖ big is one AES-256-CBC message under hash(secret): openssl decrypts it.
    path = model_file(tmp_path, 50_000)
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    store.publish(path, name="m")
    message = (store.models / "m@v1.small").read_bytes() + (store.models / "m@v1.big").read_bytes()
    secret = (tree.root / "model-store" / "model.key").read_text().strip()
    key_hex = hashlib.sha256(security.model_key(secret).encode()).hexdigest()
    plain = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-K", key_hex, "-iv", message[:16].hex()],
        input=message[16:],
        capture_output=True,
        check=True,
    ).stdout
    assert plain == path.read_bytes()
    assert len((store.models / "m@v1.small").read_bytes()) == 3072


def test_local_key_file_is_created_0600_once(tree: DataTree, tmp_path: Path) -> None:
    folder = tree.root / "model-store"
    store = LocalStore(folder=folder, security_settings=Settings().security)
    assert store.list() == []
    assert not (folder / "model.key").exists()  # listing needs no key
    store.publish(model_file(tmp_path, 10))
    assert stat.S_IMODE((folder / "model.key").stat().st_mode) == 0o600
    again = LocalStore(folder=folder, security_settings=Settings().security)
    assert again.fetch("azaion.onnx") == (tmp_path / "azaion.onnx").read_bytes()


@pytest.mark.parametrize(
    ("part", "position"),
    [
        ("small", 0),  # the IV
        ("small", 40),  # inside the first blocks
        ("small", -1),  # the last byte of the small part
        ("big", 0),  # the first byte of the big part
        ("big", 25_000),  # the middle: CBC alone would not notice
        ("big", -17),  # the second-to-last block
        ("big", -1),  # the padding block
    ],
)
def test_local_flipped_bit_is_an_integrity_error(
    tree: DataTree, tmp_path: Path, part: str, position: int
) -> None:
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    store.publish(model_file(tmp_path, 50_000), name="m")
    target = store.models / f"m@v1.{part}"
    target.write_bytes(flip(target.read_bytes(), position))
    with pytest.raises(IntegrityError, match="model m"):
        store.fetch("m")


def test_local_wrong_key_is_an_integrity_error(tree: DataTree, tmp_path: Path) -> None:
    folder = tree.root / "model-store"
    LocalStore(folder=folder, security_settings=Settings().security).publish(
        model_file(tmp_path, 1000), name="m"
    )
    other = Settings.model_validate({"security": {"model_key": "another secret"}}).security
    with pytest.raises(IntegrityError, match="model m"):
        LocalStore(folder=folder, security_settings=other).fetch("m")


def test_local_missing_model_is_a_store_error(tree: DataTree) -> None:
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    with pytest.raises(StoreError, match="no model named ghost"):
        store.fetch("ghost")


def test_local_republish_replaces(tree: DataTree, tmp_path: Path) -> None:
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    store.publish(model_file(tmp_path, 5000, seed=1), name="m")
    second = model_file(tmp_path, 7000, name="other.onnx", seed=2)
    store.publish(second, name="m")
    assert store.fetch("m") == second.read_bytes()
    assert [m.size for m in store.list()] == [7000]


PAGE = 4096


def pages(size: int) -> int:
    return -(-size // PAGE)


def fill_leaving(folder: Path, free_bytes: int) -> Path:
    """Allocates a filler file so that exactly ``free_bytes`` (whole pages) stay free."""
    stats = os.statvfs(folder)
    available = stats.f_bavail * stats.f_frsize
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, available - free_bytes)
    return filler


@pytest.mark.parametrize(
    ("step", "room_pages"),
    [
        ("big part", lambda big: 0),  # not even the versioned big part fits
        ("small part", lambda big: big),  # the big part fits, the small part does not
        ("record", lambda big: big + 1),  # both parts fit, the version's record does not
        ("switch", lambda big: big + 2),  # all of the version fits, the new pointer does not
    ],
)
def test_local_publish_interrupted_by_a_full_disk_keeps_v1(
    small_tmpfs: Path, tmp_path: Path, step: str, room_pages: Any
) -> None:
    store = LocalStore(folder=small_tmpfs, security_settings=Settings().security)
    v1 = model_file(tmp_path, 40_000, name="v1.onnx", seed=1)
    v2 = model_file(tmp_path, 100_000, name="v2.onnx", seed=2)
    store.publish(v1, name="m")
    big_pages = pages(security.encrypted_size(100_000) - SMALL_PART_MAX)
    filler = fill_leaving(small_tmpfs, room_pages(big_pages) * PAGE)
    with pytest.raises(StoreError) as caught:
        store.publish(v2, name="m")
    message = str(caught.value)
    assert f"publishing m v2 failed at the {step}: No space left on device" in message
    assert "the current version is still v1" in message
    filler.unlink()
    assert store.fetch("m") == v1.read_bytes()  # whole and verified
    assert sorted(p.name for p in store.models.iterdir()) == [
        "m.json",
        "m@v1.big",
        "m@v1.json",
        "m@v1.small",
    ]  # nothing of v2 is left, not even a temporary file
    store.publish(v2, name="m")
    assert store.fetch("m") == v2.read_bytes()
    assert [(m.version, [v.version for v in m.versions]) for m in store.list()] == [(2, [1, 2])]
    assert store.rollback("m").version == 1
    assert store.fetch("m") == v1.read_bytes()
    assert store.fetch("m", version=2) == v2.read_bytes()


def test_local_model_without_digest_is_refused_unless_allowed(
    tree: DataTree, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = model_file(tmp_path, 9_000)
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    store.publish(path, name="m")
    for record in (store.models / "m.json", store.models / "m@v1.json"):
        data = json.loads(record.read_text())
        data["sha256"] = None
        record.write_text(json.dumps(data))
    with pytest.raises(StoreError):  # a version record without a digest is not a record
        store.fetch("m")
    pointer = json.loads((store.models / "m.json").read_text())
    del pointer["version"]  # as published before versions: parts under the plain name
    (store.models / "m.json").write_text(json.dumps(pointer))
    for part in ("small", "big"):
        (store.models / f"m.{part}").write_bytes((store.models / f"m@v1.{part}").read_bytes())
    with pytest.raises(IntegrityError, match=r"no recorded SHA-256.*--allow-unverified"):
        store.fetch("m")
    allowing = LocalStore(
        folder=tree.root / "model-store",
        security_settings=Settings().security,
        store_settings=StoreSettings(allow_unverified=True),
    )
    for _ in range(2):
        assert allowing.fetch("m") == path.read_bytes()
    assert caplog.text.count("accepted UNVERIFIED") == 2  # a warning on every use


def test_local_store_with_models_but_no_key_creates_none(tree: DataTree, tmp_path: Path) -> None:
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    store.publish(model_file(tmp_path, 1_000), name="m")
    store.key_file.unlink()  # an unmounted volume, a deleted file
    fresh = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    with pytest.raises(ConfigError, match="azaion-model init-key"):
        fresh.publish(model_file(tmp_path, 1_000, name="other.onnx"), name="other")
    assert not store.key_file.exists()
    assert not list(store.models.glob("other*"))
