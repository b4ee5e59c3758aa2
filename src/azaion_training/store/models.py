"""The model store: publish encrypted, split, versioned models; fetch them (SPEC 10.3, 10.4).

A model is encrypted whole with the model key (`security.encrypt`, ``IV ‖ ciphertext``) and split:
the first ``min(3 KiB, 20% of the encrypted size)`` bytes are the *small* part, the rest the *big*
part. Every publish makes a new numbered version, written in full under its own names
(``{name}@v{N}.small``, ``{name}@v{N}.big``, and a record ``{name}@v{N}.json`` with the date,
sizes, SHA-256 and the caller's metadata such as training scores), read back and verified, and
only then made current. A failure at any step leaves the current version whole and current. The
last ``store.keep_versions`` versions are kept; `ModelStore.rollback` makes an older one current.

- `RemoteStore` (the Azaion platform): versioned big parts and records on the CDN, versioned
  small parts on the API (folder ``models``). Making a version current writes the canonical
  ``{name}.small`` (API) and then ``{name}.big`` (CDN, metadata ``sha256``, ``plaintext-size``
  and ``version``) that the platform's loaders read. The canonical big part is the pointer: this
  store fetches the version it names, from the versioned parts, so a failure between the two
  writes leaves the previous version current (and the canonical small part is put back).
- `LocalStore` (the default when no API URL is set): the same parts in
  ``{root}/model-store/models/``; ``{name}.json`` (a copy of the current version's record,
  replaced atomically) is the pointer.

CBC with PKCS7 cannot notice a changed byte in the middle, so every version records a SHA-256 of
the plaintext and `fetch` checks it. A model without a recorded digest is refused unless
``store.allow_unverified`` (``--allow-unverified``) is set, which is logged as a warning on
every use. A fetched model is decrypted in memory and never written to disk, except by
`save_plaintext` (mode 0600 from the start).

The CDN client keeps downloaded big parts in a cache. Only a failure to connect to the CDN
falls back to the cache (logged); a refusal (401/403/404) is an error.

Note: with CBC, the big part and the key decrypt everything after the first blocks, so the split
protects a model only as well as the model key is kept.

Example:
    >>> store = open_store(settings, tree)  # doctest: +SKIP
    >>> scores = {"scores": {"mAP50": 0.8}}
    >>> store.publish(Path("models/azaion.onnx"), metadata=scores)  # doctest: +SKIP
    >>> onnx_bytes = store.fetch("azaion.onnx")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from azaion_training.config import Settings
from azaion_training.fs import DataTree, atomic_writer
from azaion_training.store import security
from azaion_training.store.api import AzaionApi, resource_path
from azaion_training.store.cdn import Cdn, parse_cdn_yaml
from azaion_training.store.local import KEY_FILE_NAME, LocalStore
from azaion_training.store.remote import RemoteStore
from azaion_training.store.versions import (
    SMALL_PART_MAX,
    ModelVersion,
    PublishedModel,
    StoredModel,
    check_model_name,
    small_part_size,
    version_stem,
)

__all__ = [
    "SMALL_PART_MAX",
    "LocalStore",
    "ModelStore",
    "ModelVersion",
    "PublishedModel",
    "RemoteStore",
    "StoredModel",
    "check_model_name",
    "fetch_model",
    "init_key",
    "open_store",
    "publish_file",
    "save_plaintext",
    "small_part_size",
    "version_stem",
]

logger = logging.getLogger(__name__)


class ModelStore(Protocol):
    """Where encrypted models are published to and fetched from."""

    def publish(
        self, path: Path, name: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> PublishedModel:
        """Stores the file at ``path`` as a new version of ``name`` and makes it current."""
        ...

    def fetch(self, name: str, version: int | None = None) -> bytes:
        """The decrypted, verified model ``name`` (its current version by default), in memory."""
        ...

    def list(self) -> list[StoredModel]:
        """Every model the store holds with its versions, sorted by name."""
        ...

    def rollback(self, name: str, version: int | None = None) -> ModelVersion:
        """Makes ``version`` current again (default: the one the last publish replaced)."""
        ...

    def close(self) -> None:
        """Releases connections."""
        ...

    def __enter__(self) -> ModelStore: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def open_store(settings: Settings, tree: DataTree) -> ModelStore:
    """The store the settings name: `RemoteStore` when ``api.url`` is set, else `LocalStore`.

    With ``api.cdn_config`` set, the CDN settings are fetched from the API (an encrypted
    ``cdn.yaml``) and laid over ``settings.cdn``.

    Raises:
        ConfigError: a setting the remote store needs is missing.
        ApiError: the ``cdn.yaml`` cannot be fetched.
    """
    if not settings.api.url:
        return LocalStore(
            folder=tree.model_store,
            security_settings=settings.security,
            store_settings=settings.store,
        )
    api = AzaionApi.from_settings(settings.api, settings.security)
    cdn_settings = settings.cdn
    if settings.api.cdn_config:
        folder, name = resource_path(settings.api.cdn_config)
        cdn_settings = parse_cdn_yaml(api.download(folder=folder, name=name), base=settings.cdn)
    return RemoteStore(
        api=api,
        cdn=Cdn.from_settings(cdn_settings),
        security_settings=settings.security,
        store_settings=settings.store,
        folder=settings.api.models_folder,
        cache_dir=settings.cdn.cache_dir or tree.model_cache,
    )


def publish_file(
    settings: Settings,
    tree: DataTree,
    path: Path,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> PublishedModel:
    """Publishes one model file, with its metadata (scores, dataset), to the settings' store."""
    with open_store(settings, tree) as store:
        return store.publish(path, name, metadata)


def fetch_model(settings: Settings, tree: DataTree, name: str, version: int | None = None) -> bytes:
    """Fetches, decrypts in memory and verifies one model from the store the settings name."""
    with open_store(settings, tree) as store:
        return store.fetch(name, version)


def init_key(settings: Settings, tree: DataTree) -> Path:
    """Creates a new model key file (mode 0600) where the settings look for one.

    That is ``security.model_key_file``, else the local store's ``model-store/model.key``.

    Raises:
        ConfigError: the file already exists (it is never replaced) or cannot be created.
    """
    path = Path(settings.security.model_key_file or tree.model_store / KEY_FILE_NAME)
    security.create_secret_file(path)
    if settings.security.model_key is not None:
        logger.warning("security.model_key is set and takes precedence over the new key file")
    return path


def save_plaintext(data: bytes, path: Path) -> None:
    """Writes a decrypted model to ``path`` atomically, mode 0600 from its creation."""
    logger.warning("writing a decrypted model to %s: the plaintext is now on disk", path)
    with atomic_writer(path, mode=0o600) as handle:
        handle.write(data)
