"""The model store: publish an encrypted, split model and fetch it back (SPEC 10.3 and 10.4).

A model is encrypted whole with the model key (`security.encrypt`, ``IV ‖ ciphertext``) and split:
the first ``min(3 KiB, 20% of the encrypted size)`` bytes are the *small* part, the rest the *big*
part. Two stores hold the parts under the same names:

- `RemoteStore` (the Azaion platform): the big part goes to the CDN as ``{name}.big`` first, and
  only when that succeeded the small part goes to the API as ``{name}.small`` in folder
  ``models``. Fetching downloads the small part from the API (decrypted there with the API
  resource key) and the big part from the CDN, keeping a local cache of big parts.
- `LocalStore` (the default when no API URL is set): the same parts and encryption in
  ``{root}/model-store/models/``; its model key comes from a key file that is created with a
  random secret (mode 0600) on first use, ``{root}/model-store/model.key`` unless
  ``security.model_key`` or ``security.model_key_file`` is set.

CBC with PKCS7 cannot notice a changed byte in the middle, so each store keeps a SHA-256 of the
plaintext beside the parts (S3 metadata ``sha256`` on the big part; the ``sha256`` field of
``{name}.json`` in the local store) and `fetch` checks it, raising `IntegrityError` on any
mismatch. A fetched model is decrypted in memory and never written to disk.

Note: with CBC, the big part and the key decrypt everything after the first blocks, so the split
protects a model only as well as the model key is kept.

Example:
    >>> store = open_store(settings, tree)  # doctest: +SKIP
    >>> store.publish(Path("models/azaion.onnx"))  # doctest: +SKIP
    >>> onnx_bytes = store.fetch("azaion.onnx")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol

from azaion_training.config import SecuritySettings, Settings
from azaion_training.errors import CdnError, CryptoError, IntegrityError, StoreError
from azaion_training.fs import DataTree, atomic_write_text, atomic_writer, check_name
from azaion_training.store import security
from azaion_training.store.api import AzaionApi, resource_path
from azaion_training.store.cdn import Cdn, CdnObject, parse_cdn_yaml

logger = logging.getLogger(__name__)

SMALL_PART_MAX = 3 * 1024
"""The small part is at most this many bytes ..."""

SMALL_PART_PERCENT = 20
"""... and at most this share of the encrypted model."""

SMALL_SUFFIX, BIG_SUFFIX, META_SUFFIX = ".small", ".big", ".json"
DIGEST_FIELD = "sha256"
"""S3 metadata key and local-store field of the plaintext's SHA-256 (hex)."""

SIZE_FIELD = "plaintext-size"
"""S3 metadata key of the plaintext's size in bytes."""


@dataclass(frozen=True)
class PublishedModel:
    """What `ModelStore.publish` stored.

    Attributes:
        name: the model's name in the store.
        size: plaintext size in bytes.
        sha256: hex SHA-256 of the plaintext.
        small_size: bytes in the small part.
        big_size: bytes in the big part.
        location: where the parts went, for humans.
    """

    name: str
    size: int
    sha256: str
    small_size: int
    big_size: int
    location: str


@dataclass(frozen=True)
class StoredModel:
    """One model a store holds; ``size`` and ``sha256`` are ``None`` when not recorded."""

    name: str
    size: int | None
    sha256: str | None


class ModelStore(Protocol):
    """Where encrypted models are published to and fetched from."""

    def publish(
        self, path: Path, name: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> PublishedModel:
        """Encrypts, splits and stores the file at ``path`` as ``name`` (default: its file name)."""
        ...

    def fetch(self, name: str) -> bytes:
        """The decrypted, verified model ``name``, in memory."""
        ...

    def list(self) -> list[StoredModel]:
        """Every model the store holds, sorted by name."""
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


def small_part_size(encrypted_size: int) -> int:
    """``min(3 KiB, 20% of the encrypted size)``, in whole bytes (rounded down)."""
    return min(SMALL_PART_MAX, encrypted_size * SMALL_PART_PERCENT // 100)


def open_store(settings: Settings, tree: DataTree) -> ModelStore:
    """The store the settings name: `RemoteStore` when ``api.url`` is set, else `LocalStore`.

    With ``api.cdn_config`` set, the CDN settings are fetched from the API (an encrypted
    ``cdn.yaml``) and laid over ``settings.cdn``.

    Raises:
        ConfigError: a setting the remote store needs is missing.
        ApiError: the ``cdn.yaml`` cannot be fetched.
    """
    if not settings.api.url:
        return LocalStore(folder=tree.model_store, security_settings=settings.security)
    api = AzaionApi.from_settings(settings.api, settings.security)
    cdn_settings = settings.cdn
    if settings.api.cdn_config:
        folder, name = resource_path(settings.api.cdn_config)
        cdn_settings = parse_cdn_yaml(api.download(folder=folder, name=name), base=settings.cdn)
    return RemoteStore(
        api=api,
        cdn=Cdn.from_settings(cdn_settings),
        security_settings=settings.security,
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
    """Publishes one model file to the store the settings name (what train and export call).

    ``metadata`` (scores, the dataset trained on) is kept in the store's record of the model.
    """
    with open_store(settings, tree) as store:
        return store.publish(path, name, metadata=metadata)


def fetch_model(settings: Settings, tree: DataTree, name: str) -> bytes:
    """Fetches, decrypts in memory and verifies one model from the store the settings name."""
    with open_store(settings, tree) as store:
        return store.fetch(name)


class _StoreBase:
    """What both stores share: the model key, naming, splitting and checked decryption."""

    _security: SecuritySettings

    def __enter__(self) -> _StoreBase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        return None

    @cached_property
    def _model_key(self) -> str:
        return security.model_key_from_settings(self._security)

    def _encrypt_split(self, path: Path, big: BinaryIO) -> tuple[bytes, str, int]:
        """Encrypts ``path`` streaming, the big part into ``big``; returns (small, sha256, size)."""
        try:
            size = Path(path).stat().st_size
            with open(path, "rb") as source:
                reader = _HashingReader(source)
                splitter = _SplitWriter(small_part_size(security.encrypted_size(size)), big)
                written = security.encrypt_stream(reader, splitter, self._model_key)
        except OSError as exc:
            raise StoreError(f"cannot read the model {path}: {exc.strerror or exc}") from exc
        if written != security.encrypted_size(size):
            raise StoreError(f"the model {path} changed while it was being published")
        return splitter.small, reader.hexdigest(), size

    def _decrypt_verified(
        self, name: str, small: bytes, big: BinaryIO, sha256: str | None
    ) -> bytes:
        plaintext = io.BytesIO()
        try:
            security.decrypt_stream(_Concat(small, big), plaintext, self._model_key)
        except CryptoError as exc:
            raise IntegrityError(
                f"model {name} does not decrypt: the model key is wrong or a part is "
                f"damaged ({exc})"
            ) from exc
        data = plaintext.getvalue()
        if sha256 is None:
            logger.warning("model %s has no recorded SHA-256; its integrity is not checked", name)
        elif hashlib.sha256(data).hexdigest() != sha256.lower():
            raise IntegrityError(
                f"model {name} is damaged: its SHA-256 does not match the one recorded when it "
                "was published"
            )
        return data


class LocalStore(_StoreBase):
    """The embedded store: the parts and a ``{name}.json`` per model in a local folder.

    Layout:
        ``{folder}/models/{name}.small``, ``{name}.big``, ``{name}.json`` (fields ``name``,
        ``size``, ``sha256``, ``small_size``, ``big_size``, ``published``), and
        ``{folder}/model.key`` unless a key is configured.
    """

    def __init__(self, *, folder: Path, security_settings: SecuritySettings) -> None:
        self.folder = Path(folder)
        self.models = self.folder / "models"
        self._security = security_settings

    def __repr__(self) -> str:
        return f"LocalStore(folder={str(self.folder)!r})"

    @cached_property
    def _model_key(self) -> str:
        return security.model_key_from_settings(self._security, create_at=self.folder / "model.key")

    def publish(
        self, path: Path, name: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> PublishedModel:
        """Encrypts, splits and stores ``path`` as ``name`` (default: its file name).

        An earlier model of that name is unlisted first; then the big part, the small part and
        ``{name}.json`` are each written atomically. A model is listed and fetched only once its
        ``.json`` exists, so an interrupted publish leaves no half-model behind.
        """
        name = check_name(name or Path(path).name, what="model name")
        (self.models / f"{name}{META_SUFFIX}").unlink(missing_ok=True)
        with atomic_writer(self.models / f"{name}{BIG_SUFFIX}") as big:
            small, digest, size = self._encrypt_split(Path(path), big)
            big_size = big.tell()
        with atomic_writer(self.models / f"{name}{SMALL_SUFFIX}") as handle:
            handle.write(small)
        published = PublishedModel(
            name=name,
            size=size,
            sha256=digest,
            small_size=len(small),
            big_size=big_size,
            location=str(self.models),
        )
        record = {**asdict(published), "published": dt.datetime.now(dt.timezone.utc).isoformat()}
        del record["location"]
        if metadata:
            record["metadata"] = dict(metadata)
        atomic_write_text(self.models / f"{name}{META_SUFFIX}", json.dumps(record, indent=2))
        logger.info("published model %s (%d bytes) to the local store %s", name, size, self.models)
        return published

    def fetch(self, name: str) -> bytes:
        """The decrypted model ``name``.

        Raises:
            StoreError: no such model.
            IntegrityError: a part is damaged or the key is wrong.
        """
        record = self._record(check_name(name, what="model name"))
        try:
            small = (self.models / f"{name}{SMALL_SUFFIX}").read_bytes()
            with open(self.models / f"{name}{BIG_SUFFIX}", "rb") as big:
                data = self._decrypt_verified(name, small, big, record.get(DIGEST_FIELD))
        except OSError as exc:
            raise StoreError(f"model {name}: a part is missing in {self.models} ({exc})") from exc
        logger.info("fetched model %s (%d bytes) from the local store", name, len(data))
        return data

    def list(self) -> list[StoredModel]:
        """Every published model, sorted by name."""
        found = []
        for meta in sorted(self.models.glob(f"*{META_SUFFIX}")):
            if meta.name.startswith("."):
                continue
            record = self._record(meta.name[: -len(META_SUFFIX)])
            found.append(
                StoredModel(
                    name=record["name"], size=record.get("size"), sha256=record.get("sha256")
                )
            )
        return found

    def _record(self, name: str) -> dict:
        path = self.models / f"{name}{META_SUFFIX}"
        try:
            record = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise StoreError(f"no model named {name} in the local store {self.models}") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"model {name}: cannot read {path}: {exc}") from exc
        if not isinstance(record, dict) or record.get("name") != name:
            raise StoreError(f"model {name}: {path} is not a model record")
        return record


class RemoteStore(_StoreBase):
    """The Azaion platform: small parts on the API, big parts on the CDN (cached locally)."""

    def __init__(
        self,
        *,
        api: AzaionApi,
        cdn: Cdn,
        security_settings: SecuritySettings,
        folder: str = "models",
        cache_dir: Path,
    ) -> None:
        """Wraps the two clients.

        Args:
            api: the API client (small parts).
            cdn: the CDN client (big parts).
            security_settings: where the model key comes from.
            folder: the API folder of small parts.
            cache_dir: where downloaded big parts are kept.
        """
        self._api = api
        self._cdn = cdn
        self._security = security_settings
        self.folder = folder
        self.cache_dir = Path(cache_dir)

    def __repr__(self) -> str:
        return f"RemoteStore(api={self._api.url!r}, bucket={self._cdn.bucket!r})"

    def close(self) -> None:
        self._api.close()

    def publish(
        self, path: Path, name: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> PublishedModel:
        """Encrypts and splits ``path``; uploads the big part, then (only then) the small part.

        ``metadata`` is not stored by this store yet (only the local store keeps it).

        Raises:
            CdnError: the big part could not be uploaded; the small part was not uploaded.
            ApiError: the small part could not be uploaded (the big part is on the CDN).
        """
        name = check_name(name or Path(path).name, what="model name")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.cache_dir) as big:
            small, digest, size = self._encrypt_split(Path(path), big)
            big_size = big.tell()
            big.seek(0)
            metadata = {DIGEST_FIELD: digest, SIZE_FIELD: str(size)}
            try:
                self._cdn.upload(f"{name}{BIG_SUFFIX}", big, metadata=metadata)
            except CdnError as exc:
                raise CdnError(f"{exc}; the small part of {name} was not uploaded") from exc
        self._api.upload(folder=self.folder, name=f"{name}{SMALL_SUFFIX}", data=small)
        logger.info("published model %s (%d bytes) to %s and the CDN", name, size, self._api.url)
        return PublishedModel(
            name=name,
            size=size,
            sha256=digest,
            small_size=len(small),
            big_size=big_size,
            location=f"{self._api.url} folder {self.folder} + CDN bucket {self._cdn.bucket}",
        )

    def fetch(self, name: str) -> bytes:
        """The decrypted model ``name``: small part from the API, big part from the CDN or cache.

        A cached big part that fails the check is dropped and downloaded again once.

        Raises:
            StoreError: the CDN has no big part of that name.
            ApiError, CdnError: a part cannot be downloaded.
            IntegrityError: a part is damaged or the model key is wrong.
        """
        check_name(name, what="model name")
        cached, digest = self._big_part(name)
        small = self._api.download(folder=self.folder, name=f"{name}{SMALL_SUFFIX}")
        try:
            with open(cached, "rb") as big:
                data = self._decrypt_verified(name, small, big, digest)
        except IntegrityError:
            if not self._drop_cache(name):
                raise
            logger.warning("cached big part of %s failed the check; downloading it again", name)
            cached, digest = self._big_part(name)
            with open(cached, "rb") as big:
                data = self._decrypt_verified(name, small, big, digest)
        logger.info("fetched model %s (%d bytes) from %s", name, len(data), self._api.url)
        return data

    def list(self) -> list[StoredModel]:
        """Every model with a big part on the CDN (size and digest from its metadata)."""
        found = []
        for item in self._cdn.list(suffix=BIG_SUFFIX):
            name = item.key[: -len(BIG_SUFFIX)]
            head = self._cdn.head(item.key) or item
            size = head.metadata.get(SIZE_FIELD)
            found.append(
                StoredModel(
                    name=name,
                    size=int(size) if size and size.isdigit() else None,
                    sha256=head.metadata.get(DIGEST_FIELD),
                )
            )
        return found

    def _big_part(self, name: str) -> tuple[Path, str | None]:
        """The cached big part of ``name`` (downloaded when missing or stale) and its digest."""
        cached = self.cache_dir / f"{name}{BIG_SUFFIX}"
        sidecar = self.cache_dir / f"{name}{BIG_SUFFIX}{META_SUFFIX}"
        recorded = _read_json(sidecar)
        try:
            head = self._cdn.head(f"{name}{BIG_SUFFIX}")
        except CdnError as exc:
            if recorded is None or not cached.is_file():
                raise
            logger.warning("CDN not reachable (%s); using the cached big part of %s", exc, name)
            return cached, recorded.get(DIGEST_FIELD)
        if head is None:
            raise StoreError(f"no model named {name}: the CDN has no {name}{BIG_SUFFIX}")
        if recorded != _cache_record(head) or not cached.is_file():
            with atomic_writer(cached) as target:
                self._cdn.download(head.key, target)
            atomic_write_text(sidecar, json.dumps(_cache_record(head)))
        return cached, head.metadata.get(DIGEST_FIELD)

    def _drop_cache(self, name: str) -> bool:
        sidecar = self.cache_dir / f"{name}{BIG_SUFFIX}{META_SUFFIX}"
        existed = sidecar.exists()
        with contextlib.suppress(FileNotFoundError):
            sidecar.unlink()
        return existed


def _cache_record(head: CdnObject) -> dict[str, object]:
    return {"etag": head.etag, "size": head.size, DIGEST_FIELD: head.metadata.get(DIGEST_FIELD)}


def _read_json(path: Path) -> dict | None:
    try:
        loaded = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


class _HashingReader:
    """A file reader that hashes what passes through it."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._hash.update(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _SplitWriter:
    """Keeps the first ``small_size`` bytes written in memory and passes the rest to ``big``."""

    def __init__(self, small_size: int, big: BinaryIO) -> None:
        self._small = bytearray()
        self._small_size = small_size
        self._big = big

    @property
    def small(self) -> bytes:
        return bytes(self._small)

    def write(self, data: bytes) -> int:
        room = self._small_size - len(self._small)
        if room > 0:
            self._small += data[:room]
        if len(data) > room:
            self._big.write(data[max(room, 0) :])
        return len(data)


class _Concat:
    """Reads ``head`` (bytes) and then the file ``tail`` as one stream."""

    def __init__(self, head: bytes, tail: BinaryIO) -> None:
        self._head = io.BytesIO(head)
        self._tail = tail

    def read(self, size: int = -1) -> bytes:
        data = self._head.read(size)
        if size < 0:
            return data + self._tail.read()
        if len(data) < size:
            data += self._tail.read(size - len(data))
        return data
