"""What both model stores share: version records, names, splitting, checked decryption.

`VersionedStore` holds the parts of publishing that do not depend on where the parts go: the
model key, encrypting and splitting a file (`small_part_size`), decrypting and verifying against
the recorded SHA-256 (refusing a model without one unless ``store.allow_unverified``), version
numbers, rollback targets and pruning. `store.local.LocalStore` and `store.remote.RemoteStore`
add where the parts live; `store.models` describes the whole and opens the right store.
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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from azaion_training.config import SecuritySettings, StoreSettings
from azaion_training.errors import (
    AzaionError,
    CryptoError,
    IntegrityError,
    StoreError,
    UnsafePathError,
)
from azaion_training.fs import check_name
from azaion_training.locks import hold
from azaion_training.store import security

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


class VersionedStore:
    """What both stores share: keys, splitting, checked decryption, versions, rollback, list."""

    _security: SecuritySettings
    _options: StoreSettings
    _last_step = ""

    def __enter__(self) -> VersionedStore:
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

    def _open_version(self, record: ModelVersion) -> contextlib.AbstractContextManager[Parts]:
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
            BusyError: another publish or rollback is running on this store.
        """
        check_model_name(name)
        with self._writing():
            return self._rollback(name, version)

    def _rollback(self, name: str, version: int | None) -> ModelVersion:
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

    @property
    def _lock_file(self) -> Path:
        """The lock of this store's one writer (publish, rollback)."""
        raise NotImplementedError

    def _writing(self) -> contextlib.AbstractContextManager[object]:
        """Holds the store's writer lock: a second publish or rollback fails at once, naming
        the holder's PID (`locks`); fetch, list and info take no lock."""
        return hold(self._lock_file, role="azaion-model publish or rollback")

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
        self, name: str, number: int, metadata: dict[str, Any], split: Split
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

    def _encrypt_split(self, path: Path, big: BinaryIO) -> Split:
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
        return Split(splitter.small, reader.hexdigest(), size, big.tell() - start)

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
class Split:
    small: bytes
    sha256: str
    size: int
    big_size: int


@dataclass(frozen=True)
class Parts:
    small: bytes
    big: BinaryIO


def _rollback_target(
    records: list[ModelVersion], current: StoredModel, version: int | None
) -> ModelVersion:
    """``version``; else the one the last publish replaced; else the newest older one."""
    if version is not None:
        return kept_version(records, current.name, version)
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


def kept_version(records: list[ModelVersion], name: str, version: int) -> ModelVersion:
    """The record of ``version``; `StoreError` listing the versions kept when there is none."""
    for record in records:
        if record.version == version:
            return record
    listed = ", ".join(f"v{record.version}" for record in records) or "none"
    raise StoreError(f"model {name} has no version {version} (kept: {listed})")


def checked_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(dict(metadata or {}))))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"the model's metadata cannot be stored as JSON: {exc}") from exc


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
