"""The error types of `azaion_training`.

Every error the library raises on purpose is an `AzaionError`; the console scripts turn it into
one line on stderr and exit code 1. Foreign errors (boto3, requests, rstream, OpenCV, ...) are
translated at the module that talks to them and chained with ``raise ... from exc``.

    AzaionError
    ├── ConfigError            a setting is missing or invalid
    ├── UnsafePathError        a name or path would escape the data root or is not a plain name
    ├── LabelError             a YOLO label line does not parse or is out of range
    ├── MediaError             an image or video does not decode
    ├── QueueError             the annotation stream cannot be used
    │   └── MessageError       one message cannot be decoded or applied (it is rejected)
    ├── DatasetError           a dataset cannot be formed or read
    ├── TrainingError          training failed or its outputs are missing
    ├── ExportError            a model cannot be exported to the asked format
    ├── CryptoError            decryption failed: wrong key or damaged data
    │   └── IntegrityError     decrypted data does not match its recorded digest
    ├── ApiError               the Azaion API answered with an error or not at all
    │   └── AuthError          login failed or the credentials were refused
    ├── CdnError               the S3-compatible CDN refused or failed a call
    │   └── CdnUnreachableError  the CDN could not be connected to at all
    ├── StoreError             the model store does not hold what was asked
    ├── BusyError              another process holds the lock of this role on this root
    ├── StorageError           the data tree or a state file cannot be written (disk full, EIO)
    └── EngineError            an inference engine cannot load or run a model
"""

from __future__ import annotations


class AzaionError(Exception):
    """Base of every error raised on purpose by `azaion_training`."""


class ConfigError(AzaionError, ValueError):
    """A setting is missing or invalid."""


class UnsafePathError(AzaionError, ValueError):
    """A name or path would escape the data root, or is not a plain file name."""


class LabelError(AzaionError, ValueError):
    """A YOLO label does not parse or holds a value out of range.

    Attributes:
        source: the file (or other origin) of the label text.
        line: 1-based line number, or ``None`` when the error is not about one line.
        reason: what is wrong, without the location.
    """

    def __init__(self, reason: str, *, source: str = "<label>", line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


class MediaError(AzaionError):
    """An image or video does not decode or cannot be written."""


class QueueError(AzaionError):
    """The annotation stream cannot be reached or used."""


class MessageError(QueueError):
    """One queue message cannot be decoded or applied; it is rejected, the consumer goes on."""


class DatasetError(AzaionError):
    """A dataset cannot be formed or read."""


class TrainingError(AzaionError):
    """Training failed or did not leave the outputs it should."""


class ExportError(AzaionError):
    """A model cannot be exported to the asked format here."""


class CryptoError(AzaionError):
    """Decryption failed: the key is wrong or the data is damaged."""


class IntegrityError(CryptoError):
    """Decrypted data does not match the digest recorded when it was stored."""


class ApiError(AzaionError):
    """The Azaion API answered with an error, an unexpected body, or not at all."""


class AuthError(ApiError):
    """Login failed or the API refused the credentials."""


class CdnError(AzaionError):
    """The S3-compatible CDN refused or failed a call."""


class CdnUnreachableError(CdnError):
    """The CDN could not be connected to (as opposed to answering with a refusal)."""


class StoreError(AzaionError):
    """The model store does not hold what was asked for, or cannot be written."""


class BusyError(AzaionError):
    """Another live process holds the lock of this role (one writer per role per root)."""


class StorageError(AzaionError):
    """The data tree or a state file in it cannot be read or written (disk full, I/O error, a
    full or locked SQLite file, a damaged state file); the message names the file."""


class EngineError(AzaionError):
    """An inference engine cannot load or run a model."""
