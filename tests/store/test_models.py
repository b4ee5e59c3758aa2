"""The store interface: which store opens, pruning in both, no secret in any log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from azaion_training.config import Settings, load_settings
from azaion_training.errors import (
    StoreError,
)
from azaion_training.fs import DataTree
from azaion_training.store import security
from azaion_training.store.models import (
    LocalStore,
    open_store,
)
from tests.services.azaion_api import AzaionApiServer
from tests.services.s3 import S3Server
from tests.store.conftest import (
    EMAIL,
    FINGERPRINT,
    MODEL_SECRET,
    PASSWORD,
    model_file,
    remote_settings,
)


def test_open_store_without_api_is_local(settings: Settings, tree: DataTree) -> None:
    store = open_store(settings, tree)
    assert isinstance(store, LocalStore)
    assert store.folder == tree.root / "model-store"


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
        "AZAION_API_ALLOW_HTTP": "true",
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
