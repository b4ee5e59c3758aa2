"""The platform store through the real API and S3 servers: wire format, cache, interruptions."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from azaion_training.config import Settings
from azaion_training.errors import (
    AzaionError,
    CdnError,
    CdnUnreachableError,
    ConfigError,
    IntegrityError,
    StoreError,
)
from azaion_training.fs import DataTree
from azaion_training.store import security
from azaion_training.store.models import (
    RemoteStore,
    open_store,
)
from tests.services.azaion_api import AzaionApiServer
from tests.services.s3 import S3Server
from tests.store.conftest import (
    MODEL_SECRET,
    flip,
    model_file,
    remote_settings,
)


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
    left = [] if not cache.exists() else list(cache.iterdir())
    assert left in ([], [cache / ".azaion-publish.lock"])  # no temporary big part is left


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


def test_remote_without_a_model_key_names_the_setting(
    tree: DataTree, tmp_path: Path, api_server: AzaionApiServer, s3_server: S3Server, bucket: str
) -> None:
    settings = remote_settings(tree, api_server, s3_server, bucket, AZAION_MODEL_KEY="")
    with open_store(settings, tree) as store, pytest.raises(ConfigError, match="AZAION_MODEL_KEY"):
        store.publish(model_file(tmp_path, 100))
    assert api_server.resources == {}


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
