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

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol

from azaion_training.config import SecuritySettings, Settings, StoreSettings
from azaion_training.errors import (
    AzaionError,
    CdnUnreachableError,
    CryptoError,
    IntegrityError,
    StoreError,
    UnsafePathError,
)
from azaion_training.fs import (
    DataTree,
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    check_name,
    glob_escape,
)
from azaion_training.store import security
from azaion_training.store.api import AzaionApi, resource_path
from azaion_training.store.cdn import Cdn, CdnObject, parse_cdn_yaml

logger = logging.getLogger(__name__)

SMALL_PART_MAX = 3 * 1024
"""The small part is at most this many bytes ..."""

SMALL_PART_PERCENT = 20
"""... and at most this share of the encrypted model."""

SMALL_SUFFIX, BIG_SUFFIX, META_SUFFIX = ".small", ".big", ".json"
VERSION_MARK = "@v"
"""``{name}@v{N}`` names version N of a model; model names may not contain ``@``."""

DIGEST_FIELD = "sha256"
"""S3 metadata key and record field of the plaintext's SHA-256 (hex)."""

SIZE_FIELD = "plaintext-size"
"""S3 metadata key of the plaintext's size in bytes."""

VERSION_FIELD = "version"
"""S3 metadata key (canonical big part) and record field of the version number."""

PREVIOUS_FIELD = "previous"
"""S3 metadata key (canonical big part) and pointer field of the version a publish replaced."""


@dataclass(frozen=True)
class ModelVersion:
    """One published version of a model (its record).

    Attributes:
        name: the model's name in the store.
        version: the version number (1, 2, ...).
        size: plaintext size in bytes.
        sha256: hex SHA-256 of the plaintext.
        small_size: bytes in the small part.
        big_size: bytes in the big part.
        published: when it was published (ISO 8601, UTC).
        metadata: what the publisher recorded with it (training scores, dataset identity).
    """

    name: str
    version: int
    size: int
    sha256: str
    small_size: int
    big_size: int
    published: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "metadata": dict(self.metadata)}, indent=2)

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str) -> ModelVersion:
        """Parses a record; raises `StoreError` naming ``where`` when it is not one."""
        try:
            raw = json.loads(text)
            if not re.fullmatch(r"[0-9a-f]{64}", str(raw["sha256"])):
                raise ValueError("sha256 is not a hex SHA-256")
            return cls(
                name=str(raw["name"]),
                version=int(raw["version"]),
                size=int(raw["size"]),
                sha256=str(raw["sha256"]),
                small_size=int(raw["small_size"]),
                big_size=int(raw["big_size"]),
                published=str(raw["published"]),
                metadata=dict(raw.get("metadata") or {}),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{where} is not a model version record ({exc})") from exc

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class PublishedModel:
    """What `ModelStore.publish` stored: the new current version, and where."""

    name: str
    size: int
    sha256: str
    small_size: int
    big_size: int
    location: str
    version: int
    published: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, record: ModelVersion, location: str) -> PublishedModel:
        return cls(**{**asdict(record), "metadata": dict(record.metadata)}, location=location)


@dataclass(frozen=True)
class StoredModel:
    """One model a store holds: its current version and every version kept.

    ``size`` and ``sha256`` are the current version's (``None`` when not recorded); ``version``
    is ``None`` for a model published before versions existed. ``previous`` is the version the
    last publish replaced (where a plain rollback returns to).
    """

    name: str
    size: int | None
    sha256: str | None
    version: int | None = None
    versions: tuple[ModelVersion, ...] = ()
    previous: int | None = None


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
        """Makes ``version`` (default: the newest one older than the current) current."""
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


def version_stem(name: str, version: int) -> str:
    """``{name}@v{version}``: the stem of a version's parts and record."""
    return f"{name}{VERSION_MARK}{version}"


def check_model_name(name: str) -> str:
    """A plain file name (`fs.check_name`) without ``@``, which marks versions."""
    check_name(name, what="model name")
    if "@" in name:
        raise UnsafePathError(f"model name {name[:60]!r} contains '@' (it marks versions)")
    return name


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
    path = Path(settings.security.model_key_file or tree.model_store / "model.key")
    security.create_secret_file(path)
    if settings.security.model_key is not None:
        logger.warning("security.model_key is set and takes precedence over the new key file")
    return path


def save_plaintext(data: bytes, path: Path) -> None:
    """Writes a decrypted model to ``path`` atomically, mode 0600 from its creation."""
    logger.warning("writing a decrypted model to %s: the plaintext is now on disk", path)
    with atomic_writer(path, mode=0o600) as handle:
        handle.write(data)


class _StoreBase:
    """What both stores share: keys, splitting, checked decryption, versions, rollback, list."""

    _security: SecuritySettings
    _options: StoreSettings
    _last_step = ""

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

    # --- what each store provides -----------------------------------------------------------

    def _names(self) -> list[str]:
        raise NotImplementedError

    def _records(self, name: str) -> list[ModelVersion]:
        """Every version record of ``name``, oldest first."""
        raise NotImplementedError

    def _current(self, name: str) -> StoredModel:
        """The current version (no ``versions``); `StoreError` when there is no such model."""
        raise NotImplementedError

    def _open_version(self, record: ModelVersion) -> contextlib.AbstractContextManager[_Parts]:
        raise NotImplementedError

    def _switch(self, record: ModelVersion, small: bytes, big: BinaryIO, *, publish: bool) -> None:
        """Makes ``record`` current, its parts already stored and verified; after a publish the
        pointer remembers the version it replaced."""
        raise NotImplementedError

    def _delete_version(self, record: ModelVersion) -> None:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------

    def list(self) -> list[StoredModel]:
        """Every model with its current version and the versions kept, sorted by name."""
        found = []
        for name in sorted(self._names()):
            current = self._current(name)
            found.append(
                StoredModel(
                    name=name,
                    size=current.size,
                    sha256=current.sha256,
                    version=current.version,
                    versions=tuple(self._records(name)),
                    previous=current.previous,
                )
            )
        return found

    def rollback(self, name: str, version: int | None = None) -> ModelVersion:
        """Makes ``version`` of ``name`` current again, after reading it back and verifying it.

        Args:
            name: the model.
            version: the version to return to; default the one the last publish replaced, else
                the newest one older than the current.

        Raises:
            StoreError: no such model or version (the message lists the versions kept).
            IntegrityError: that version no longer decrypts to its recorded digest.
        """
        check_model_name(name)
        current = self._current(name)
        target = _rollback_target(self._records(name), current, version)
        with self._open_version(target) as parts:
            self._decrypt_verified(target.label, parts.small, parts.big, target.sha256)
            parts.big.seek(0)
            self._switch(target, parts.small, parts.big, publish=False)
        logger.warning(
            "rolled model %s back to v%d (was v%s)", name, target.version, current.version
        )
        return target

    def _next_version(self, name: str) -> int:
        numbers = [record.version for record in self._records(name)]
        return max([*numbers, self._current_version(name) or 0]) + 1

    def _current_version(self, name: str) -> int | None:
        """The current version of ``name``; ``None`` when there is none (or no model)."""
        try:
            return self._current(name).version
        except StoreError:
            return None

    def _prune(self, name: str) -> None:
        """Deletes the versions beyond ``store.keep_versions`` (never the current one)."""
        current = self._current(name).version
        records = sorted(self._records(name), key=lambda r: r.version, reverse=True)
        for old in records[self._options.keep_versions :]:
            if old.version == current:
                continue
            try:
                self._delete_version(old)
            except (AzaionError, OSError) as exc:
                logger.warning("could not delete the old version %s: %s", old.label, exc)
            else:
                logger.info("deleted the old version %s", old.label)

    def _new_version(
        self, name: str, number: int, metadata: dict[str, Any], split: _Split
    ) -> ModelVersion:
        return ModelVersion(
            name=name,
            version=number,
            size=split.size,
            sha256=split.sha256,
            small_size=len(split.small),
            big_size=split.big_size,
            published=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            metadata=metadata,
        )

    def _encrypt_split(self, path: Path, big: BinaryIO) -> _Split:
        """Encrypts ``path`` streaming, the big part into ``big``."""
        try:
            source = open(path, "rb")  # noqa: SIM115 - closed below
            size = os.fstat(source.fileno()).st_size
        except OSError as exc:
            raise StoreError(f"cannot read the model {path}: {exc.strerror or exc}") from exc
        with source:
            reader = _HashingReader(source)
            splitter = _SplitWriter(small_part_size(security.encrypted_size(size)), big)
            start = big.tell()
            written = security.encrypt_stream(reader, splitter, self._model_key)
        if written != security.encrypted_size(size):
            raise StoreError(f"the model {path} changed while it was being published")
        return _Split(splitter.small, reader.hexdigest(), size, big.tell() - start)

    def _decrypt_verified(
        self, label: str, small: bytes, big: BinaryIO, sha256: str | None
    ) -> bytes:
        if sha256 is None:
            if not self._options.allow_unverified:
                raise IntegrityError(
                    f"model {label} has no recorded SHA-256, so it cannot be verified: refused "
                    "(to accept it anyway pass --allow-unverified or set "
                    "AZAION_STORE_ALLOW_UNVERIFIED)"
                )
            logger.warning("model %s has no recorded SHA-256; accepted UNVERIFIED (allowed)", label)
        plaintext = io.BytesIO()
        try:
            security.decrypt_stream(_Concat(small, big), plaintext, self._model_key)
        except CryptoError as exc:
            raise IntegrityError(
                f"model {label} does not decrypt: the model key is wrong or a part is "
                f"damaged ({exc})"
            ) from exc
        data = plaintext.getvalue()
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
            raise IntegrityError(
                f"model {label} is damaged: its SHA-256 does not match the one recorded when it "
                "was published"
            )
        return data

    def _step(self, label: str, step: str) -> None:
        """Logs the step a publish or rollback starts (``publish_step`` on the log record)."""
        self._last_step = step
        logger.debug("publishing %s: %s", label, step, extra={"publish_step": step})


@dataclass(frozen=True)
class _Split:
    small: bytes
    sha256: str
    size: int
    big_size: int


@dataclass(frozen=True)
class _Parts:
    small: bytes
    big: BinaryIO


class LocalStore(_StoreBase):
    """The embedded store: versions and a pointer per model in a local folder.

    Layout:
        ``{folder}/models/{name}@v{N}.small``, ``.big``, ``.json`` (the version's record),
        ``{folder}/models/{name}.json`` (the current version's record: the pointer), and
        ``{folder}/model.key`` unless a key is configured (made on the first publish into an
        empty store, or by `init_key`).
    """

    def __init__(
        self,
        *,
        folder: Path,
        security_settings: SecuritySettings,
        store_settings: StoreSettings | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.models = self.folder / "models"
        self.key_file = self.folder / "model.key"
        self._security = security_settings
        self._options = store_settings or StoreSettings()

    def __repr__(self) -> str:
        return f"LocalStore(folder={str(self.folder)!r})"

    _may_create_key = False
    """Set by `publish` when the store is empty: the first publish may make the key file."""

    @cached_property
    def _model_key(self) -> str:
        return security.model_key_from_settings(
            self._security, default_file=self.key_file, create=self._may_create_key
        )

    def publish(
        self, path: Path, name: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> PublishedModel:
        """Writes ``path`` as a new version of ``name``, verifies it, then makes it current.

        Raises:
            StoreError: the model cannot be read, or a step failed (the message says which);
                the current version is unchanged and the new version's files are removed.
            ConfigError: no model key, and this store already holds models.
        """
        name = check_model_name(name or Path(path).name)
        meta = _checked_metadata(metadata)
        self._may_create_key = not self._names()
        number = self._next_version(name)
        label = f"{name} v{number}"
        small_path, big_path, record_path = self._paths(name, number)
        try:
            self._step(label, "big part")
            with atomic_writer(big_path) as big:
                split = self._encrypt_split(Path(path), big)
            record = self._new_version(name, number, meta, split)
            self._step(label, "small part")
            atomic_write_bytes(small_path, split.small)
            self._step(label, "record")
            atomic_write_text(record_path, record.to_json())
            self._step(label, "read-back")
            with self._open_version(record) as parts:
                self._decrypt_verified(label, parts.small, parts.big, record.sha256)
                self._step(label, "switch")
                self._switch(record, parts.small, parts.big, publish=True)
        except BaseException as exc:
            self._discard(name, number)
            if isinstance(exc, OSError):
                raise StoreError(
                    f"publishing {label} failed at the {self._last_step}: "
                    f"{exc.strerror or exc} ({exc.filename}); {self._unchanged(name)}"
                ) from exc
            raise
        logger.info("published model %s (%d bytes) to %s", label, split.size, self.models)
        self._prune(name)
        return PublishedModel.of(record, str(self.models))

    def fetch(self, name: str, version: int | None = None) -> bytes:
        """The decrypted, verified model ``name`` (its current version by default).

        Raises:
            StoreError: no such model or version.
            IntegrityError: a part is damaged, the key is wrong, or there is no digest (and
                unverified models are not allowed).
        """
        pointer = self._pointer_data(check_model_name(name))
        version = version if version is not None else pointer.get(VERSION_FIELD)
        if version is None:  # published before versions existed: parts under the plain name
            label, stem, digest = name, name, pointer.get(DIGEST_FIELD)
        else:
            record = self._record(name, int(version))
            label, stem, digest = record.label, version_stem(name, record.version), record.sha256
        try:
            small = (self.models / f"{stem}{SMALL_SUFFIX}").read_bytes()
            with open(self.models / f"{stem}{BIG_SUFFIX}", "rb") as big:
                data = self._decrypt_verified(label, small, big, digest)
        except OSError as exc:
            raise StoreError(f"model {label}: a part is missing in {self.models} ({exc})") from exc
        logger.info("fetched model %s (%d bytes) from the local store", label, len(data))
        return data

    def _names(self) -> list[str]:
        return [
            meta.name[: -len(META_SUFFIX)]
            for meta in self.models.glob(f"*{META_SUFFIX}")
            if "@" not in meta.name and not meta.name.startswith(".")
        ]

    def _records(self, name: str) -> list[ModelVersion]:
        pattern = re.compile(rf"{re.escape(name)}@v(\d+){re.escape(META_SUFFIX)}")
        records = []
        for path in self.models.glob(f"{glob_escape(name)}@v*{META_SUFFIX}"):
            if pattern.fullmatch(path.name):
                records.append(ModelVersion.from_json(_read_text(path), where=str(path)))
        return sorted(records, key=lambda record: record.version)

    def _current(self, name: str) -> StoredModel:
        pointer = self._pointer_data(name)
        version, previous = pointer.get(VERSION_FIELD), pointer.get(PREVIOUS_FIELD)
        return StoredModel(
            name=name,
            size=pointer.get("size"),
            sha256=pointer.get(DIGEST_FIELD),
            version=int(version) if version is not None else None,
            previous=int(previous) if previous is not None else None,
        )

    @contextlib.contextmanager
    def _open_version(self, record: ModelVersion) -> Iterator[_Parts]:
        small_path, big_path, _ = self._paths(record.name, record.version)
        try:
            small = small_path.read_bytes()
            big = open(big_path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StoreError(f"model {record.label}: a part is missing ({exc})") from exc
        with big:
            yield _Parts(small, big)

    def _switch(self, record: ModelVersion, small: bytes, big: BinaryIO, *, publish: bool) -> None:
        previous = self._current_version(record.name) if publish else None
        pointer = {**json.loads(record.to_json()), PREVIOUS_FIELD: previous}
        atomic_write_text(self._pointer(record.name), json.dumps(pointer, indent=2))

    def _delete_version(self, record: ModelVersion) -> None:
        for path in reversed(self._paths(record.name, record.version)):  # the record first
            path.unlink(missing_ok=True)

    def _paths(self, name: str, version: int) -> tuple[Path, Path, Path]:
        """The small part, big part and record of one version."""
        stem = str(self.models / version_stem(name, version))
        return Path(stem + SMALL_SUFFIX), Path(stem + BIG_SUFFIX), Path(stem + META_SUFFIX)

    def _pointer(self, name: str) -> Path:
        return self.models / f"{name}{META_SUFFIX}"

    def _pointer_data(self, name: str) -> dict[str, Any]:
        path = self._pointer(name)
        try:
            pointer = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise StoreError(f"no model named {name} in the local store {self.models}") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"model {name}: cannot read {path}: {exc}") from exc
        if not isinstance(pointer, dict) or pointer.get("name") != name:
            raise StoreError(f"model {name}: {path} is not a model record")
        return pointer

    def _record(self, name: str, version: int) -> ModelVersion:
        path = self._paths(name, version)[2]
        if not path.is_file():
            return _kept(self._records(name), name, version)  # raises, listing the kept ones
        return ModelVersion.from_json(_read_text(path), where=str(path))

    def _discard(self, name: str, version: int) -> None:
        """Removes the files of a version that did not become current (best effort)."""
        with contextlib.suppress(StoreError):
            if self._current(name).version == version:
                return
        for path in self._paths(name, version):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def _unchanged(self, name: str) -> str:
        try:
            return f"the current version is still v{self._current(name).version}"
        except StoreError:
            return "nothing was published"


class RemoteStore(_StoreBase):
    """The Azaion platform: small parts on the API, big parts and records on the CDN."""

    def __init__(
        self,
        *,
        api: AzaionApi,
        cdn: Cdn,
        security_settings: SecuritySettings,
        store_settings: StoreSettings | None = None,
        folder: str = "models",
        cache_dir: Path,
    ) -> None:
        """Wraps the two clients.

        Args:
            api: the API client (small parts).
            cdn: the CDN client (big parts and version records).
            security_settings: where the model key comes from.
            store_settings: versions kept, and whether unverified models are accepted.
            folder: the API folder of small parts.
            cache_dir: where downloaded big parts are kept.
        """
        self._api = api
        self._cdn = cdn
        self._security = security_settings
        self._options = store_settings or StoreSettings()
        self.folder = folder
        self.cache_dir = Path(cache_dir)

    def __repr__(self) -> str:
        return f"RemoteStore(api={self._api.url!r}, bucket={self._cdn.bucket!r})"

    def close(self) -> None:
        self._api.close()

    def publish(
        self, path: Path, name: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> PublishedModel:
        """Uploads ``path`` as a new version of ``name``, verifies it, then makes it current.

        Order: versioned big part (CDN), versioned small part (API), record (CDN), read-back of
        both parts, canonical small part (API), canonical big part (CDN; the commit).

        Raises:
            CdnError, ApiError: a step failed (the message says which); the current version
                is still current and the uploaded parts of the new one are removed from the CDN.
        """
        name = check_model_name(name or Path(path).name)
        meta = _checked_metadata(metadata)
        number = self._next_version(name)
        stem = version_stem(name, number)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.cache_dir, prefix=".publish-") as big:
            split = self._encrypt_split(Path(path), big)
            big.flush()
            record = self._new_version(name, number, meta, split)
            try:
                self._step(record.label, "big part")
                with open(big.name, "rb") as part:  # the upload closes what it is given
                    self._cdn.upload(f"{stem}{BIG_SUFFIX}", part, metadata=_tags(record))
                self._step(record.label, "small part")
                self._api.upload(folder=self.folder, name=f"{stem}{SMALL_SUFFIX}", data=split.small)
                self._step(record.label, "record")
                self._cdn.upload(f"{stem}{META_SUFFIX}", io.BytesIO(record.to_json().encode()))
                self._step(record.label, "read-back")
                with self._open_version(record) as parts:
                    if parts.small != split.small:
                        raise StoreError(f"{record.label}: the small part read back differs")
                    self._decrypt_verified(record.label, parts.small, parts.big, record.sha256)
                with open(big.name, "rb") as part:
                    self._switch(record, split.small, part, publish=True)
            except AzaionError as exc:
                step, outcome = self._last_step, self._abandon(record)
                raise type(exc)(
                    f"{exc}; publishing {record.label} stopped at the {step}: {outcome}"
                ) from exc
        logger.info(
            "published model %s (%d bytes) to %s and the CDN",
            record.label,
            split.size,
            self._api.url,
        )
        self._prune(name)
        location = f"{self._api.url} folder {self.folder} + CDN bucket {self._cdn.bucket}"
        return PublishedModel.of(record, location)

    def fetch(self, name: str, version: int | None = None) -> bytes:
        """The decrypted model ``name``: the version the canonical big part names, by default.

        A cached big part that fails the check is dropped and downloaded again once. When the
        CDN cannot be connected to, the cached pointer and big part are used (logged).

        Raises:
            StoreError: no such model or version.
            ApiError, CdnError: a part cannot be downloaded, or the CDN refused.
            IntegrityError: a part is damaged, the key is wrong, or there is no digest.
        """
        check_model_name(name)
        if version is None:
            version = _version_of(self._resolve(name))
        else:
            _kept(self._records(name), name, version)
        label = name if version is None else f"{name} v{version}"
        stem = name if version is None else version_stem(name, version)
        small = self._api.download(folder=self.folder, name=f"{stem}{SMALL_SUFFIX}")
        key = f"{stem}{BIG_SUFFIX}"
        try:
            data = self._decrypt_cached(label, small, key)
        except IntegrityError:
            if not self._drop_cache(key):
                raise
            logger.warning("cached big part %s failed the check; downloading it again", key)
            data = self._decrypt_cached(label, small, key)
        logger.info("fetched model %s (%d bytes) from %s", label, len(data), self._api.url)
        return data

    def _decrypt_cached(self, label: str, small: bytes, key: str) -> bytes:
        cached, digest = self._big_part(key)
        with open(cached, "rb") as big:
            return self._decrypt_verified(label, small, big, digest)

    def _names(self) -> list[str]:
        return [
            item.key[: -len(BIG_SUFFIX)]
            for item in self._cdn.list(suffix=BIG_SUFFIX)
            if "@" not in item.key and "/" not in item.key
        ]

    def _records(self, name: str) -> list[ModelVersion]:
        pattern = re.compile(rf"{re.escape(name)}@v(\d+){re.escape(META_SUFFIX)}")
        records = []
        for item in self._cdn.list(prefix=f"{name}@v", suffix=META_SUFFIX):
            if pattern.fullmatch(item.key):
                text = io.BytesIO()
                self._cdn.download(item.key, text)
                records.append(ModelVersion.from_json(text.getvalue(), where=f"CDN {item.key}"))
        return sorted(records, key=lambda record: record.version)

    def _current(self, name: str) -> StoredModel:
        head = self._cdn.head(f"{name}{BIG_SUFFIX}")
        if head is None:
            raise StoreError(f"no model named {name}: the CDN has no {name}{BIG_SUFFIX}")
        size = head.metadata.get(SIZE_FIELD)
        return StoredModel(
            name=name,
            size=int(size) if size and size.isdigit() else None,
            sha256=head.metadata.get(DIGEST_FIELD),
            version=_version_of(head),
            previous=_version_of(head, PREVIOUS_FIELD),
        )

    @contextlib.contextmanager
    def _open_version(self, record: ModelVersion) -> Iterator[_Parts]:
        stem = version_stem(record.name, record.version)
        small = self._api.download(folder=self.folder, name=f"{stem}{SMALL_SUFFIX}")
        cached, _ = self._big_part(f"{stem}{BIG_SUFFIX}", fallback=False)
        with open(cached, "rb") as big:
            yield _Parts(small, big)

    def _switch(self, record: ModelVersion, small: bytes, big: BinaryIO, *, publish: bool) -> None:
        """Canonical small part first, then the canonical big part, which names the version.

        When the big part cannot be written, the small part of the version that is still
        current is put back, so loaders that read the canonical names get it whole again.
        """
        current = self._current_version(record.name)
        self._step(record.label, "canonical small")
        self._api.upload(folder=self.folder, name=f"{record.name}{SMALL_SUFFIX}", data=small)
        self._step(record.label, "canonical big")
        tags = _tags(record, previous=current if publish else None)
        try:
            self._cdn.upload(f"{record.name}{BIG_SUFFIX}", big, metadata=tags)
        except AzaionError:
            if current is not None and current != record.version:
                self._restore_canonical_small(record.name, current)
            raise

    def _delete_version(self, record: ModelVersion) -> None:
        """Deletes the record and big part (the API has no deletion: the small part stays)."""
        stem = version_stem(record.name, record.version)
        for key in (f"{stem}{META_SUFFIX}", f"{stem}{BIG_SUFFIX}"):
            self._cdn.delete(key)
            self._drop_cache(key)
            (self.cache_dir / key).unlink(missing_ok=True)

    def _abandon(self, record: ModelVersion) -> str:
        """After a failed publish: removes the new version's CDN objects unless it became
        current; returns what the store now serves."""
        try:
            current = self._current(record.name).version
        except StoreError:
            current = None
        except AzaionError as exc:
            logger.warning("cannot ask which version of %s is current: %s", record.name, exc)
            return "the CDN could not be asked which version is current; nothing was removed"
        if current == record.version:
            return f"{record.label} is current nevertheless"
        try:
            self._delete_version(record)
        except AzaionError as exc:
            logger.warning("could not remove the parts of %s: %s", record.label, exc)
        return f"v{current} is still current" if current else "nothing was published"

    def _restore_canonical_small(self, name: str, version: int) -> None:
        stem = version_stem(name, version)
        try:
            small = self._api.download(folder=self.folder, name=f"{stem}{SMALL_SUFFIX}")
            self._api.upload(folder=self.folder, name=f"{name}{SMALL_SUFFIX}", data=small)
        except AzaionError as exc:
            logger.warning(
                "could not put back the canonical small part of %s v%d (%s): loaders that read "
                "%s%s directly fail until the next publish",
                name,
                version,
                exc,
                name,
                SMALL_SUFFIX,
            )

    def _resolve(self, name: str) -> CdnObject:
        """The canonical big part's head (the pointer); the cached one if the CDN is down."""
        pointer = self.cache_dir / f"{name}.current{META_SUFFIX}"
        try:
            head = self._cdn.head(f"{name}{BIG_SUFFIX}")
        except CdnUnreachableError as exc:
            recorded = _read_json(pointer)
            if recorded is None:
                raise
            logger.warning("CDN not reachable (%s); using the version of %s cached", exc, name)
            return _object_of(f"{name}{BIG_SUFFIX}", recorded)
        if head is None:
            raise StoreError(f"no model named {name}: the CDN has no {name}{BIG_SUFFIX}")
        atomic_write_text(pointer, json.dumps(_cache_record(head)), durable=False)
        return head

    def _big_part(self, key: str, *, fallback: bool = True) -> tuple[Path, str | None]:
        """The cached object ``key`` (downloaded when missing or stale) and its digest.

        Only a failure to connect falls back to the cache (with ``fallback``); a refusal raises.
        """
        cached = self.cache_dir / key
        sidecar = self.cache_dir / f"{key}{META_SUFFIX}"
        recorded = _read_json(sidecar)
        try:
            head = self._cdn.head(key)
        except CdnUnreachableError as exc:
            if not fallback or recorded is None or not cached.is_file():
                raise
            logger.warning("CDN not reachable (%s); using the cached %s", exc, key)
            return cached, _object_of(key, recorded).metadata.get(DIGEST_FIELD)
        if head is None:
            raise StoreError(f"the CDN has no {key}")
        if recorded != _cache_record(head) or not cached.is_file():
            with atomic_writer(cached) as target:
                self._cdn.download(head.key, target)
            atomic_write_text(sidecar, json.dumps(_cache_record(head)))
        return cached, head.metadata.get(DIGEST_FIELD)

    def _drop_cache(self, key: str) -> bool:
        sidecar = self.cache_dir / f"{key}{META_SUFFIX}"
        existed = sidecar.exists()
        with contextlib.suppress(FileNotFoundError):
            sidecar.unlink()
        return existed


def _rollback_target(
    records: list[ModelVersion], current: StoredModel, version: int | None
) -> ModelVersion:
    """``version``; else the one the last publish replaced; else the newest older one."""
    if version is not None:
        return _kept(records, current.name, version)
    kept = {record.version: record for record in records}
    if current.previous in kept and current.previous != current.version:
        return kept[current.previous]
    older = [r for r in records if current.version is None or r.version < current.version]
    if not older:
        listed = ", ".join(f"v{number}" for number in kept) or "none"
        raise StoreError(
            f"model {current.name} has no version older than v{current.version} (kept: {listed})"
        )
    return older[-1]


def _kept(records: list[ModelVersion], name: str, version: int) -> ModelVersion:
    """The record of ``version``; `StoreError` listing the versions kept when there is none."""
    for record in records:
        if record.version == version:
            return record
    listed = ", ".join(f"v{record.version}" for record in records) or "none"
    raise StoreError(f"model {name} has no version {version} (kept: {listed})")


def _checked_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(dict(metadata or {}))))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"the model's metadata cannot be stored as JSON: {exc}") from exc


def _tags(record: ModelVersion, previous: int | None = None) -> dict[str, str]:
    """The S3 metadata of a big part: digest, plaintext size, version (and the one replaced)."""
    tags = {
        DIGEST_FIELD: record.sha256,
        SIZE_FIELD: str(record.size),
        VERSION_FIELD: str(record.version),
    }
    return tags if previous is None else {**tags, PREVIOUS_FIELD: str(previous)}


def _version_of(head: CdnObject, key: str = VERSION_FIELD) -> int | None:
    value = head.metadata.get(key, "")
    return int(value) if value.isdigit() else None


def _cache_record(head: CdnObject) -> dict[str, object]:
    return {"etag": head.etag, "size": head.size, "metadata": dict(head.metadata)}


def _object_of(key: str, recorded: dict[str, Any]) -> CdnObject:
    return CdnObject(
        key=key,
        size=int(recorded.get("size", 0)),
        etag=str(recorded.get("etag", "")),
        metadata=dict(recorded.get("metadata") or {}),
    )


def _read_json(path: Path) -> dict | None:
    try:
        loaded = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc


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
