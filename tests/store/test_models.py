"""The model store: split, upload order, fetch, integrity, through API + CDN and locally."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from azaion_training.config import Settings, StoreSettings, load_settings
from azaion_training.errors import (
    AzaionError,
    CdnError,
    CdnUnreachableError,
    ConfigError,
    IntegrityError,
    StoreError,
    UnsafePathError,
)
from azaion_training.fs import DataTree
from azaion_training.store import security
from azaion_training.store.models import (
    SMALL_PART_MAX,
    LocalStore,
    RemoteStore,
    open_store,
    small_part_size,
)
from tests.services.azaion_api import AzaionApiServer
from tests.services.s3 import S3Server
from tests.store.conftest import EMAIL, FINGERPRINT, PASSWORD

MODEL_SECRET = "model secret for tests"


def remote_settings(
    tree: DataTree, api: AzaionApiServer, s3: S3Server, bucket: str, **extra: str
) -> Settings:
    environ = {
        "AZAION_ROOT_DIR": str(tree.root),
        "AZAION_API_URL": api.url,
        "AZAION_API_EMAIL": EMAIL,
        "AZAION_API_PASSWORD": PASSWORD,
        "AZAION_CDN_HOST": s3.url,
        "AZAION_CDN_BUCKET": bucket,
        "AZAION_CDN_DOWNLOADER_ACCESS_KEY": "DOWNLOADERKEY",
        "AZAION_CDN_DOWNLOADER_ACCESS_SECRET": "downloader-secret-value",
        "AZAION_CDN_UPLOADER_ACCESS_KEY": "UPLOADERKEY",
        "AZAION_CDN_UPLOADER_ACCESS_SECRET": "uploader-secret-value",
        "AZAION_MODEL_KEY": MODEL_SECRET,
        "AZAION_HARDWARE_FINGERPRINT": FINGERPRINT,
        **extra,
    }
    overrides = {"api.backoff_s": 0.01, "api.retries": 2, "cdn.retries": 0}
    return load_settings(environ=environ, env_file=None, overrides=overrides)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket()


@pytest.fixture
def remote(
    tree: DataTree, api_server: AzaionApiServer, s3_server: S3Server, bucket: str
) -> Settings:
    return remote_settings(tree, api_server, s3_server, bucket)


def model_file(folder: Path, size: int, name: str = "azaion.onnx", seed: int = 0) -> Path:
    path = folder / name
    path.write_bytes(hashlib.shake_256(f"{seed}".encode()).digest(size) if size else b"")
    return path


def flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x10
    return bytes(changed)


@pytest.mark.parametrize(
    ("encrypted", "small"),
    [
        (32, 6),  # the smallest message: 20% rounded down
        (15_359, 3_071),  # just under the 3 KiB cap
        (15_360, 3_072),  # exactly at the cap
        (50_000_016, 3_072),  # a real model: capped at 3 KiB
    ],
)
def test_small_part_size(encrypted: int, small: int) -> None:
    assert small_part_size(encrypted) == small


# --- local store ---------------------------------------------------------------------------


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


def test_open_store_without_api_is_local(settings: Settings, tree: DataTree) -> None:
    store = open_store(settings, tree)
    assert isinstance(store, LocalStore)
    assert store.folder == tree.root / "model-store"


# --- API + CDN -------------------------------------------------------------------------------


def test_remote_round_trip(
    remote: Settings,
    tree: DataTree,
    tmp_path: Path,
    api_server: AzaionApiServer,
    s3_server: S3Server,
    bucket: str,
) -> None:
    path = model_file(tmp_path, 200_000)
    with open_store(remote, tree) as store:
        assert isinstance(store, RemoteStore)
        published = store.publish(path)
    small = api_server.resources[("models", "azaion.onnx.small")]
    assert len(small) == published.small_size == 3072
    head = s3_server.admin().head_object(Bucket=bucket, Key="azaion.onnx.big")
    assert head["ContentLength"] == published.big_size
    assert head["Metadata"] == {
        "sha256": published.sha256,
        "plaintext-size": "200000",
        "version": "1",
    }
    # the original platform's loader: small ‖ big decrypts with hash(secret)
    big = s3_server.admin().get_object(Bucket=bucket, Key="azaion.onnx.big")["Body"].read()
    assert security.decrypt(small + big, security.model_key(MODEL_SECRET)) == path.read_bytes()
    # a fresh client with an empty cache
    fresh = remote_settings(
        tree, api_server, s3_server, bucket, AZAION_CDN_CACHE_DIR=str(tmp_path / "c")
    )
    with open_store(fresh, tree) as store:
        assert store.fetch("azaion.onnx") == path.read_bytes()
        [listed] = store.list()
        assert (listed.name, listed.size, listed.sha256, listed.version) == (
            "azaion.onnx",
            200_000,
            published.sha256,
            1,
        )
        assert [(v.version, v.sha256) for v in listed.versions] == [(1, published.sha256)]


def test_remote_fetch_never_writes_the_plaintext(
    remote: Settings, tree: DataTree, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 100_000)
    with open_store(remote, tree) as store:
        store.publish(path, name="m")
        plaintext = store.fetch("m")
    windows = {plaintext[i : i + 64] for i in range(0, len(plaintext) - 64, 4096)}
    for file in (p for p in tree.root.rglob("*") if p.is_file()):  # store, cache, key
        content = file.read_bytes()
        assert not any(window in content for window in windows), file


def test_remote_cache_is_reused_and_repaired(
    remote: Settings, tree: DataTree, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 50_000)
    with open_store(remote, tree) as store:
        store.publish(path, name="m")
        assert store.fetch("m") == path.read_bytes()
        cached = tree.root / "model-cache" / "m@v1.big"
        inode = cached.stat().st_ino
        assert store.fetch("m") == path.read_bytes()
        assert cached.stat().st_ino == inode  # not downloaded again
        cached.write_bytes(flip(cached.read_bytes(), 30_000))
        assert store.fetch("m") == path.read_bytes()  # damaged cache dropped, fetched again
        assert cached.stat().st_ino != inode


def test_remote_uses_the_cache_when_the_cdn_is_down(
    remote: Settings, tree: DataTree, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = model_file(tmp_path, 20_000)
    with open_store(remote, tree) as store:
        store.publish(path, name="m")
        store.fetch("m")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = Settings.model_validate(
        {
            **remote.model_dump(),
            "cdn": {**remote.cdn.model_dump(), "host": f"http://127.0.0.1:{port}"},
        }
    )
    with open_store(down, tree) as store:
        assert store.fetch("m") == path.read_bytes()
    assert "CDN not reachable" in caplog.text
    assert "using the cached m@v1.big" in caplog.text


@pytest.mark.parametrize(
    "where",
    [
        "api small part",  # the part the API serves
        "cdn big part middle",  # the middle of the big part
        "cdn big part end",  # the padding
    ],
)
def test_remote_flipped_bit_is_an_integrity_error(
    remote: Settings,
    tree: DataTree,
    tmp_path: Path,
    api_server: AzaionApiServer,
    s3_server: S3Server,
    bucket: str,
    where: str,
) -> None:
    with open_store(remote, tree) as store:
        store.publish(model_file(tmp_path, 80_000), name="m")
    if where.startswith("api"):
        key = ("models", "m@v1.small")
        api_server.resources[key] = flip(api_server.resources[key], 100)
    else:
        admin = s3_server.admin()
        stored = admin.get_object(Bucket=bucket, Key="m@v1.big")
        position = 40_000 if "middle" in where else -1
        admin.put_object(
            Bucket=bucket,
            Key="m@v1.big",
            Body=flip(stored["Body"].read(), position),
            Metadata=stored["Metadata"],
        )
    with open_store(remote, tree) as store, pytest.raises(IntegrityError, match="model m"):
        store.fetch("m")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing bucket", "NoSuchBucket"),  # the CDN refuses
        ("cdn down", "Could not connect"),  # the CDN is not there
    ],
)
def test_cdn_failure_uploads_no_small_part(
    tree: DataTree,
    tmp_path: Path,
    api_server: AzaionApiServer,
    s3_server: S3Server,
    bucket: str,
    case: str,
    message: str,
) -> None:
    if case == "missing bucket":
        settings = remote_settings(tree, api_server, s3_server, "no-such-bucket")
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        settings = remote_settings(
            tree, api_server, s3_server, bucket, AZAION_CDN_HOST=f"http://127.0.0.1:{port}"
        )
    with open_store(settings, tree) as store, pytest.raises(CdnError) as caught:
        store.publish(model_file(tmp_path, 10_000), name="m")
    assert message in str(caught.value)
    assert api_server.resources == {}
    assert all(not call.path.startswith("/resources/") for call in api_server.calls)
    cache = tree.root / "model-cache"
    assert not cache.exists() or list(cache.iterdir()) == []  # no temporary big part is left


def test_remote_fetch_of_unknown_model_is_a_store_error(remote: Settings, tree: DataTree) -> None:
    with open_store(remote, tree) as store, pytest.raises(StoreError, match="no model named x"):
        store.fetch("x")


def test_remote_expired_token_and_5xx_during_fetch(
    remote: Settings, tree: DataTree, tmp_path: Path, api_server: AzaionApiServer
) -> None:
    path = model_file(tmp_path, 30_000)
    with open_store(remote, tree) as store:
        store.publish(path, name="m")
        api_server.advance_clock(7200)
        api_server.fail_next(500)
        assert store.fetch("m") == path.read_bytes()
    statuses = [(c.path, c.status) for c in api_server.calls][-4:]
    assert statuses == [
        ("/resources/get/models", 500),
        ("/resources/get/models", 401),
        ("/login", 200),
        ("/resources/get/models", 200),
    ]


def test_cdn_settings_can_come_from_the_api(
    tree: DataTree,
    tmp_path: Path,
    api_server: AzaionApiServer,
    s3_server: S3Server,
    bucket: str,
) -> None:
    cdn_yaml = (
        f"host: {s3_server.url}\nbucket: {bucket}\n"
        "downloader_access_key: R\ndownloader_access_secret: RS\n"
        "uploader_access_key: W\nuploader_access_secret: WS\n"
    )
    api_server.resources[("config", "cdn.yaml")] = cdn_yaml.encode()
    environ: dict[str, Any] = {
        "AZAION_ROOT_DIR": str(tree.root),
        "AZAION_API_URL": api_server.url,
        "AZAION_API_EMAIL": EMAIL,
        "AZAION_API_PASSWORD": PASSWORD,
        "AZAION_API_CDN_CONFIG": "config/cdn.yaml",
        "AZAION_MODEL_KEY": MODEL_SECRET,
        "AZAION_HARDWARE_FINGERPRINT": FINGERPRINT,
    }
    settings = load_settings(environ=environ, env_file=None)
    path = model_file(tmp_path, 40_000)
    with open_store(settings, tree) as store:
        store.publish(path, name="m")
        assert store.fetch("m") == path.read_bytes()
    assert s3_server.admin().head_object(Bucket=bucket, Key="m.big")["ContentLength"] > 0


def test_no_secret_in_logs(
    remote: Settings,
    tree: DataTree,
    tmp_path: Path,
    api_server: AzaionApiServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # An earlier CLI run (even in a module-scoped fixture) may have quietened botocore.
    caplog.set_level(logging.DEBUG, logger="botocore")
    path = model_file(tmp_path, 30_000)
    with open_store(remote, tree) as store:
        store.publish(path, name="m")
        api_server.advance_clock(7200)
        store.fetch("m")
        resource_key = store._api.resource_key  # type: ignore[attr-defined]
    local = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    local.publish(path, name="m")
    local_secret = (tree.root / "model-store" / "model.key").read_text().strip()
    tokens = {c.authorization.split()[1] for c in api_server.calls if c.authorization}
    secrets = {
        PASSWORD,
        MODEL_SECRET,
        security.model_key(MODEL_SECRET),
        local_secret,
        security.model_key(local_secret),
        resource_key,
        "downloader-secret-value",
        "uploader-secret-value",
        *tokens,
    }
    # botocore logs requests at DEBUG with the access key *id* in the signature's credential
    # scope; an id is not a secret (only the secret keys above are) and is not scanned for.
    text = caplog.text + "\n".join(f"{r.msg} {r.args}" for r in caplog.records)
    assert "published model m" in text and "fetched model m" in text
    assert any(r.name.startswith("botocore") for r in caplog.records)  # DEBUG really captured
    for secret in secrets:
        assert secret not in text, "a secret was logged"


def test_remote_without_a_model_key_names_the_setting(
    tree: DataTree, tmp_path: Path, api_server: AzaionApiServer, s3_server: S3Server, bucket: str
) -> None:
    settings = remote_settings(tree, api_server, s3_server, bucket, AZAION_MODEL_KEY="")
    with open_store(settings, tree) as store, pytest.raises(ConfigError, match="AZAION_MODEL_KEY"):
        store.publish(model_file(tmp_path, 100))
    assert api_server.resources == {}


# --- versions: atomic publish, rollback, pruning --------------------------------------------

PAGE = 4096


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own, to fill up (needs root, as the test machines run)."""
    mount_point = tmp_path / "small-fs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


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
    small_fs: Path, tmp_path: Path, step: str, room_pages: Any
) -> None:
    store = LocalStore(folder=small_fs, security_settings=Settings().security)
    v1 = model_file(tmp_path, 40_000, name="v1.onnx", seed=1)
    v2 = model_file(tmp_path, 100_000, name="v2.onnx", seed=2)
    store.publish(v1, name="m")
    big_pages = pages(security.encrypted_size(100_000) - SMALL_PART_MAX)
    filler = fill_leaving(small_fs, room_pages(big_pages) * PAGE)
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


class BreakAt(logging.Handler):
    """Calls ``action`` once, when the store starts publish step ``step``."""

    def __init__(self, step: str, action: Any) -> None:
        super().__init__(logging.DEBUG)
        self.step, self.action, self.fired = step, action, False

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "publish_step", None) == self.step and not self.fired:
            self.fired = True
            self.action()


def old_loader_view(api: AzaionApiServer, s3: S3Server, bucket: str, name: str) -> bytes:
    """What the platform's loader gets: canonical small ‖ canonical big, decrypted."""
    small = api.resources[("models", f"{name}.small")]
    big = s3.admin().get_object(Bucket=bucket, Key=f"{name}.big")["Body"].read()
    return security.decrypt(small + big, security.model_key(MODEL_SECRET))


@pytest.mark.parametrize(
    ("step", "service"),
    [
        ("big part", "s3"),  # the CDN stops before the versioned big part
        ("small part", "api"),  # the API refuses the versioned small part
        ("record", "s3"),  # the CDN stops before the version's record
        ("read-back", "api"),  # the API refuses to give the small part back
        ("read-back", "s3"),  # the CDN stops before the big part is read back
        ("canonical small", "api"),  # the API refuses the canonical small part
        ("canonical big", "s3"),  # the CDN stops before the canonical big part (the commit)
    ],
)
def test_remote_publish_interrupted_keeps_v1(
    tree: DataTree,
    tmp_path: Path,
    api_server: AzaionApiServer,
    s3_server: S3Server,
    bucket: str,
    caplog: pytest.LogCaptureFixture,
    step: str,
    service: str,
) -> None:
    v1 = model_file(tmp_path, 40_000, name="v1.onnx", seed=1)
    v2 = model_file(tmp_path, 60_000, name="v2.onnx", seed=2)
    good = remote_settings(tree, api_server, s3_server, bucket)
    with open_store(good, tree) as store:
        store.publish(v1, name="m")
    # A second S3 endpoint over the same moto backend, to stop mid-way.
    with S3Server() as flaky:
        flaky_settings = remote_settings(
            tree, api_server, s3_server, bucket, AZAION_CDN_HOST=flaky.url
        )
        refusals = flaky_settings.api.retries + 1  # every attempt of one call answered 503
        breaker = BreakAt(
            step,
            flaky.stop if service == "s3" else lambda: api_server.fail_next(503, times=refusals),
        )
        caplog.set_level(logging.DEBUG, logger="azaion_training.store")
        logging.getLogger("azaion_training.store").addHandler(breaker)
        try:
            with open_store(flaky_settings, tree) as store, pytest.raises(AzaionError) as caught:
                store.publish(v2, name="m")
        finally:
            logging.getLogger("azaion_training.store").removeHandler(breaker)
    assert breaker.fired
    assert f"publishing m v2 stopped at the {step}" in str(caught.value)
    with open_store(good, tree) as store:
        assert store.fetch("m") == v1.read_bytes()  # whole and verified
        assert [m.version for m in store.list()] == [1]
    assert old_loader_view(api_server, s3_server, bucket, "m") == v1.read_bytes()
    with open_store(good, tree) as store:
        store.publish(v2, name="m")
        assert store.fetch("m") == v2.read_bytes()
        assert old_loader_view(api_server, s3_server, bucket, "m") == v2.read_bytes()
        assert store.rollback("m").version == 1
        assert store.fetch("m") == v1.read_bytes()
    assert old_loader_view(api_server, s3_server, bucket, "m") == v1.read_bytes()


@pytest.mark.parametrize("where", ["local", "remote"])
def test_only_the_last_versions_are_kept(
    tree: DataTree,
    tmp_path: Path,
    api_server: AzaionApiServer,
    s3_server: S3Server,
    bucket: str,
    where: str,
) -> None:
    overrides = {"AZAION_STORE_KEEP_VERSIONS": "2"}
    if where == "local":
        environ = {"AZAION_ROOT_DIR": str(tree.root), **overrides}
        settings = load_settings(environ=environ, env_file=None)
    else:
        settings = remote_settings(tree, api_server, s3_server, bucket, **overrides)
    files = [model_file(tmp_path, 5_000 + n, name=f"m{n}.onnx", seed=n) for n in range(4)]
    with open_store(settings, tree) as store:
        for number, path in enumerate(files):
            store.publish(path, name="m", metadata={"scores": {"mAP50": number / 10}})
        [listed] = store.list()
        assert listed.version == 4
        assert [(v.version, v.metadata["scores"]["mAP50"]) for v in listed.versions] == [
            (3, 0.2),
            (4, 0.3),
        ]
        assert store.fetch("m", version=3) == files[2].read_bytes()
        with pytest.raises(StoreError, match=r"model m has no version 1 \(kept: v3, v4\)"):
            store.fetch("m", version=1)
    if where == "local":
        left = sorted(p.name for p in (tree.root / "model-store" / "models").iterdir())
        assert left == [
            "m.json",
            *[f"m@v{n}{s}" for n in (3, 4) for s in (".big", ".json", ".small")],
        ]
    else:
        keys = [o["Key"] for o in s3_server.admin().list_objects_v2(Bucket=bucket)["Contents"]]
        assert sorted(keys) == ["m.big", "m@v3.big", "m@v3.json", "m@v4.big", "m@v4.json"]


def test_cdn_refusal_with_a_warm_cache_is_an_error(
    remote: Settings, tree: DataTree, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from moto.core import set_initial_no_auth_action_count

    path = model_file(tmp_path, 20_000)
    with open_store(remote, tree) as store:
        store.publish(path, name="m")
        assert store.fetch("m") == path.read_bytes()  # the cache is warm now
    assert (tree.root / "model-cache" / "m@v1.big").is_file()

    @set_initial_no_auth_action_count(0)  # moto checks keys now: ours are unknown -> 403
    def fetch_refused() -> None:
        with open_store(remote, tree) as store:
            store.fetch("m")

    with pytest.raises(CdnError, match="403") as caught:
        fetch_refused()
    assert not isinstance(caught.value, CdnUnreachableError)
    assert "cache" not in caplog.text


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


def test_publish_metadata_must_be_json(tree: DataTree, tmp_path: Path) -> None:
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    with pytest.raises(StoreError, match="metadata cannot be stored as JSON"):
        store.publish(model_file(tmp_path, 100), name="m", metadata={"when": object()})
    assert not store.models.exists() or not list(store.models.iterdir())


def test_model_names_with_the_version_mark_are_refused(tree: DataTree, tmp_path: Path) -> None:
    store = LocalStore(folder=tree.root / "model-store", security_settings=Settings().security)
    with pytest.raises(UnsafePathError, match="'@'"):
        store.publish(model_file(tmp_path, 100), name="m@v1")
