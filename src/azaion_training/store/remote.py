"""The Azaion platform as a model store (SPEC 10.3): small parts on the API, big on the CDN."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from azaion_training.config import SecuritySettings, StoreSettings
from azaion_training.errors import AzaionError, CdnUnreachableError, IntegrityError, StoreError
from azaion_training.fs import atomic_write_text, atomic_writer
from azaion_training.store.api import AzaionApi
from azaion_training.store.cdn import Cdn, CdnObject
from azaion_training.store.versions import (
    BIG_SUFFIX,
    DIGEST_FIELD,
    META_SUFFIX,
    PREVIOUS_FIELD,
    SIZE_FIELD,
    SMALL_SUFFIX,
    VERSION_FIELD,
    ModelVersion,
    Parts,
    PublishedModel,
    StoredModel,
    VersionedStore,
    check_model_name,
    checked_metadata,
    kept_version,
    version_stem,
)

logger = logging.getLogger(__name__)


class RemoteStore(VersionedStore):
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
        meta = checked_metadata(metadata)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._writing():
            return self._publish(Path(path), name, meta)

    @property
    def _lock_file(self) -> Path:
        """One writer per host (the cache folder); writers on other hosts are not seen."""
        return self.cache_dir / ".azaion-publish.lock"

    def _publish(self, path: Path, name: str, meta: dict[str, Any]) -> PublishedModel:
        number = self._next_version(name)
        with tempfile.NamedTemporaryFile(dir=self.cache_dir, prefix=".publish-") as big:
            split = self._encrypt_split(path, big)
            big.flush()
            record = self._new_version(name, number, meta, split)
            try:
                self._upload_version(record, split.small, Path(big.name))
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

    def _upload_version(self, record: ModelVersion, small: bytes, big: Path) -> None:
        """Uploads a version under its own names and reads it back whole."""
        stem = version_stem(record.name, record.version)
        self._step(record.label, "big part")
        with open(big, "rb") as part:  # the upload closes what it is given
            self._cdn.upload(f"{stem}{BIG_SUFFIX}", part, metadata=_tags(record))
        self._step(record.label, "small part")
        self._api.upload(folder=self.folder, name=f"{stem}{SMALL_SUFFIX}", data=small)
        self._step(record.label, "record")
        self._cdn.upload(f"{stem}{META_SUFFIX}", io.BytesIO(record.to_json().encode()))
        self._step(record.label, "read-back")
        with self._open_version(record) as parts:
            if parts.small != small:
                raise StoreError(f"{record.label}: the small part read back differs")
            self._decrypt_verified(record.label, parts.small, parts.big, record.sha256)

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
            kept_version(self._records(name), name, version)
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
    def _open_version(self, record: ModelVersion) -> Iterator[Parts]:
        stem = version_stem(record.name, record.version)
        small = self._api.download(folder=self.folder, name=f"{stem}{SMALL_SUFFIX}")
        cached, _ = self._big_part(f"{stem}{BIG_SUFFIX}", fallback=False)
        with open(cached, "rb") as big:
            yield Parts(small, big)

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
