"""A quiet console: other libraries' chatter goes to a log file, our own lines stay on the terminal.

Inside `quiet_console`, whatever writes to the process's standard output and error (Ultralytics'
model tables, per-epoch lines and export chatter, OpenCV's C++ warnings such as unknown GeoTIFF
tags, Python warnings, ``print``) is appended to the log file instead, while ``sys.stderr`` and our
logging's console handlers point at the real terminal, so our progress bars and summary lines
still show; other libraries' own console handlers (Ultralytics' logger) write to the log. With
``verbose`` nothing is redirected. Nested uses share the outer redirection.

Example:
    >>> with quiet_console(tree.logs / CONSOLE_LOG) as terminal:  # doctest: +SKIP
    ...     train(settings, tree, callbacks={"on_fit_epoch_end": [epoch_line(terminal)]})
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

CONSOLE_LOG = "console.log"
"""The file name, under the tree's ``logs/``, that takes the libraries' console output."""

_active: list[TextIO] = []


@contextlib.contextmanager
def quiet_console(log: Path, *, verbose: bool = False) -> Iterator[TextIO]:
    """Redirects file descriptors 1 and 2 to ``log`` (appended) for the block.

    Yields:
        A text stream on the real terminal (``sys.stderr`` itself when ``verbose``).
    """
    if verbose:
        yield sys.stderr
        return
    if _active:
        yield _active[-1]
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    # Neither stream is closed here: a handler made inside the block (a library imported there)
    # may keep one; the terminal's own descriptor goes when the last reference does.
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1, errors="replace")
    target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    chatter = os.fdopen(1, "w", buffering=1, errors="replace", closefd=False)
    ours = [(handler, handler.stream, terminal) for handler in _console_handlers(logging.root)]
    theirs = [  # every plain stream handler of another library (a FileHandler is not one)
        (handler, handler.stream, chatter)
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler
    ]
    original_stdout, original_stderr = sys.stdout, sys.stderr
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        for handler, _, stream in (*ours, *theirs):
            _point(handler, stream)
        sys.stdout, sys.stderr = chatter, terminal
        _active.append(terminal)
        with warnings.catch_warnings():
            warnings.showwarning = _to_fd(2)
            yield terminal
    finally:
        if _active and _active[-1] is terminal:
            _active.pop()
        sys.stdout, sys.stderr = original_stdout, original_stderr
        for handler, stream, _ in (*ours, *theirs):
            _point(handler, stream)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)
        with contextlib.suppress(ValueError, OSError):
            chatter.flush()
            terminal.flush()


def _point(handler: logging.StreamHandler, stream: Any) -> None:
    """`logging.StreamHandler.setStream` that survives a closed old stream (a handler made while
    ``sys.stdout`` was a stream since closed, e.g. a test's captured output, keeps it)."""
    with contextlib.suppress(ValueError, OSError):
        handler.flush()
    with handler.lock or contextlib.nullcontext():
        handler.stream = stream


def epoch_line(terminal: TextIO) -> Callable[[Any], None]:
    """An Ultralytics ``on_fit_epoch_end`` callback that writes one short line per epoch.

    Ultralytics calls it once more after the last epoch; that call writes nothing.
    """
    done: set[int] = set()

    def report(trainer: Any) -> None:
        epoch = min(int(trainer.epoch) + 1, int(trainer.epochs))
        if epoch in done:
            return
        done.add(epoch)
        metrics = getattr(trainer, "metrics", None) or {}
        map50 = metrics.get("metrics/mAP50(B)")
        score = f", valid mAP50 {map50:.3f}" if isinstance(map50, float) else ""
        print(f"  epoch {epoch}/{trainer.epochs}{score}", file=terminal, flush=True)

    return report


def _console_handlers(logger: logging.Logger) -> list[logging.StreamHandler[Any]]:
    """The logger's own plain stream handlers that write to the standard streams."""
    streams = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    return [
        handler
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler and handler.stream in streams
    ]


def _to_fd(fd: int) -> Callable[..., None]:
    def show(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> None:
        text = warnings.formatwarning(message, category, filename, lineno)
        os.write(fd, text.encode("utf-8", "replace"))

    return show
