"""The embedded local model store (SPEC 10.4): the platform's split and names, in a folder."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

from azaion_training.config import SecuritySettings, StoreSettings
from azaion_training.errors import StoreError
from azaion_training.fs import (
    TEMPORARY_SUFFIX,
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    glob_escape,
    is_temporary,
)
from azaion_training.store import security
from azaion_training.store.versions import (
    BIG_SUFFIX,
    DIGEST_FIELD,
    META_SUFFIX,
    PREVIOUS_FIELD,
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

KEY_FILE_NAME = "model.key"
"""The local store's own key file, in its folder, when no key is configured."""


class LocalStore(VersionedStore):
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
        self.key_file = self.folder / KEY_FILE_NAME
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
            BusyError: another publish or rollback is running on this store (its PID named).
        """
        name = check_model_name(name or Path(path).name)
        meta = checked_metadata(metadata)
        with self._writing():
            self._remove_leftovers()
            return self._publish(Path(path), name, meta)

    @property
    def _lock_file(self) -> Path:
        return self.folder / ".azaion-publish.lock"

    def _publish(self, path: Path, name: str, meta: dict[str, Any]) -> PublishedModel:
        self._may_create_key = not self._names()
        number = self._next_version(name)
        label = f"{name} v{number}"
        small_path, big_path, record_path = self._paths(name, number)
        try:
            self._step(label, "big part")
            with atomic_writer(big_path, exclusive=True) as big:  # the claim of the number
                split = self._encrypt_split(path, big)
            record = self._new_version(name, number, meta, split)
            self._step(label, "small part")
            atomic_write_bytes(small_path, split.small, exclusive=True)
            self._step(label, "record")
            atomic_write_text(record_path, record.to_json(), exclusive=True)
            self._step(label, "read-back")
            with self._open_version(record) as parts:
                self._decrypt_verified(label, parts.small, parts.big, record.sha256)
                self._step(label, "switch")
                self._switch(record, parts.small, parts.big, publish=True)
        except BaseException as exc:
            if not isinstance(exc, FileExistsError):  # never remove what another wrote
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
            if "@" not in meta.name and not is_temporary(meta)
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
    def _open_version(self, record: ModelVersion) -> Iterator[Parts]:
        small_path, big_path, _ = self._paths(record.name, record.version)
        try:
            small = small_path.read_bytes()
            big = open(big_path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StoreError(f"model {record.label}: a part is missing ({exc})") from exc
        with big:
            yield Parts(small, big)

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
            return kept_version(self._records(name), name, version)  # raises, listing the kept ones
        return ModelVersion.from_json(_read_text(path), where=str(path))

    def _discard(self, name: str, version: int) -> None:
        """Removes the files of a version that did not become current (best effort)."""
        with contextlib.suppress(StoreError):
            if self._current(name).version == version:
                return
        for path in self._paths(name, version):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def _remove_leftovers(self) -> None:
        """Removes what killed publishes left (under the writer lock, so none is running):
        temporary files, and the parts of versions that have no record."""
        if not self.models.is_dir():
            return
        recorded = {
            path.name[: -len(META_SUFFIX)] for path in self.models.glob(f"*@v*{META_SUFFIX}")
        }
        for path in self.models.iterdir():
            stem = path.name.rsplit(".", 1)[0]
            orphan = "@v" in stem and not is_temporary(path) and stem not in recorded
            if (is_temporary(path) and path.name.endswith(TEMPORARY_SUFFIX)) or orphan:
                logger.info("removing %s, left by a publish that did not finish", path.name)
                with contextlib.suppress(OSError):
                    path.unlink()

    def _unchanged(self, name: str) -> str:
        try:
            return f"the current version is still v{self._current(name).version}"
        except StoreError:
            return "nothing was published"


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
