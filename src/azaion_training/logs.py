"""Logging, configured once by the console scripts; every other module only calls
``logging.getLogger(__name__)``.

Console records go to stderr, human-readable or as JSON lines; an optional rotating file keeps
DEBUG and up. A filter on every handler replaces any registered secret (passwords, tokens, keys)
with ``***`` before a record is written, as a second line of defence behind `SecretStr`. A secret
is also found in the forms a server or a library may echo it in (`encoded_forms`): JSON-escaped
(``\u041f...``), URL-encoded (``%D0%9F...``, ``+`` for spaces), Python ``repr`` of the text or
of its UTF-8 bytes (``\xd0\x9f...``), hex digits in either case.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

_HANDLER_MARK = "_azaion_handler"
_REDACTED = "***"
_CONSOLE_FORMAT = "%(message)s"
_CONSOLE_DEBUG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_FILE_FORMAT = (
    "%(asctime)s %(levelname)-7s %(process)d %(name)s %(funcName)s:%(lineno)d: %(message)s"
)


def encoded_forms(secret: str) -> set[str]:
    """``secret`` as a log can carry it: raw, JSON-escaped (ASCII or not), URL-encoded (path or
    form), and as Python writes it (``repr``/``ascii`` of the text, ``repr`` of its UTF-8); and
    each of those once more JSON-escaped or repr'd (an error message that quotes an answer)."""
    once = _encodings(secret)
    return {form for first in once for form in _encodings(first)} | once


def _encodings(text: str) -> set[str]:
    forms = {
        text,
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        urllib.parse.quote(text, safe=""),
        urllib.parse.quote(text),
        urllib.parse.quote_plus(text),
        repr(text)[1:-1],
        ascii(text)[1:-1],
        repr(text.encode("utf-8"))[2:-1],
    }
    return {form for form in forms if form}


class SecretFilter(logging.Filter):
    """Replaces every known secret in a record's rendered message (and traceback) with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Registers more secrets; values shorter than 4 characters are ignored (too common)."""
        for secret in secrets:
            if secret and len(secret) >= 4:
                self._secrets.update(encoded_forms(secret))
        forms = sorted(self._secrets, key=len, reverse=True)  # the longest form first
        self._pattern = (
            re.compile("|".join(map(re.escape, forms)), re.IGNORECASE) if forms else None
        )

    def scrub(self, text: str) -> str:
        """``text`` with every form of every secret replaced (hex escapes in either case)."""
        return text if self._pattern is None else self._pattern.sub(_REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.scrub(record.exc_text)
        return True


class ConsoleFormatter(logging.Formatter):
    """Short console lines: the message alone for INFO, ``warning: ...`` / ``error: ...`` above
    it; with ``debug`` (``-v``) the time, level and module as well. The log file keeps all."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__(_CONSOLE_DEBUG_FORMAT if debug else _CONSOLE_FORMAT)
        self._debug = debug

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self._debug or record.levelno < logging.WARNING:
            return text
        return f"{record.levelname.lower()}: {text}"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and exception, extra fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(
    *,
    level: str = "INFO",
    json_lines: bool = False,
    file: Path | None = None,
    file_max_bytes: int = 20 * 1024 * 1024,
    file_backups: int = 5,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> SecretFilter:
    """Configures the root logger; replaces handlers from an earlier call.

    Args:
        level: console level name (``DEBUG``, ``INFO``, ...).
        json_lines: write the console as JSON lines instead of text.
        file: a rotating log file (DEBUG and up); its folder is created.
        secrets: values never to be written; more can be added to the returned filter.
        stream: console stream, stderr by default.

    Returns:
        The secret filter shared by every handler.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    secret_filter = SecretFilter(secrets)
    console = logging.StreamHandler(stream or sys.stderr)
    console.setLevel(level.upper())
    debug = level.upper() == "DEBUG"
    console.setFormatter(JsonLinesFormatter() if json_lines else ConsoleFormatter(debug=debug))
    handlers: list[logging.Handler] = [console]
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            file, maxBytes=file_max_bytes, backupCount=file_backups, encoding="utf-8"
        )
        rotating.setLevel(logging.DEBUG)
        rotating.setFormatter(
            JsonLinesFormatter() if json_lines else logging.Formatter(_FILE_FORMAT)
        )
        handlers.append(rotating)
    for handler in handlers:
        handler.addFilter(secret_filter)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if file is not None else level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return secret_filter
