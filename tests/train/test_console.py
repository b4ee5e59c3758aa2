"""The quiet console: file-descriptor output goes to the log, our own lines to the terminal."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import cv2

from azaion_training.train.console import epoch_line, quiet_console


def test_other_libraries_output_goes_to_the_log(tmp_path: Path, capfd) -> None:
    log = tmp_path / "logs" / "console.log"
    with quiet_console(log) as terminal:
        os.write(1, b"ultralytics model table\n")  # what C and Python libraries write to fd 1
        print("per-epoch line", flush=True)  # sys.stdout stays on fd 1
        cv2.imread(str(tmp_path / "missing.tif"))  # OpenCV warns on fd 2 from C++
        warnings.warn("a library warning", UserWarning, stacklevel=1)
        print("our progress", file=sys.stderr, flush=True)
        print("our summary", file=terminal, flush=True)
    out, err = capfd.readouterr()
    written = log.read_text()
    assert "ultralytics model table" in written and "per-epoch line" in written
    assert "missing.tif" in written and "a library warning" in written
    assert "our progress" in err and "our summary" in err
    assert "ultralytics" not in out + err and "missing.tif" not in out + err
    os.write(2, b"after the block\n")
    assert "after the block" in capfd.readouterr().err


def test_our_log_lines_stay_on_the_terminal(tmp_path: Path, capfd) -> None:
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with quiet_console(tmp_path / "console.log"):
            logging.getLogger("azaion_training.test").warning("ours")
        assert handler.stream is sys.stderr
    finally:
        root.removeHandler(handler)
    assert "ours" in capfd.readouterr().err
    assert "ours" not in (tmp_path / "console.log").read_text()


def test_a_library_loggers_own_handler_writes_to_the_log(tmp_path: Path, capfd) -> None:
    library = logging.getLogger("some_library")
    handler = logging.StreamHandler(sys.stdout)
    library.addHandler(handler)
    library.propagate = False
    try:
        with quiet_console(tmp_path / "console.log"):
            library.warning("a model table")
    finally:
        library.removeHandler(handler)
    assert "a model table" in (tmp_path / "console.log").read_text()
    assert "a model table" not in capfd.readouterr().out


def test_a_library_handler_on_a_closed_stream_is_no_error(tmp_path: Path, capfd) -> None:
    """A handler made while ``sys.stdout`` was a stream since closed (a test's captured output, a
    notebook's cell) keeps it; the block still starts, writes that library to the log, and puts
    the closed stream back (before: ValueError from `logging.StreamHandler.setStream`)."""
    closed = (tmp_path / "cell.txt").open("w")
    closed.close()
    library = logging.getLogger("closed_library")
    handler = logging.StreamHandler(closed)
    library.addHandler(handler)
    library.propagate = False
    try:
        with quiet_console(tmp_path / "console.log"):
            library.warning("still logged")
        assert handler.stream is closed
    finally:
        library.removeHandler(handler)
    assert "still logged" in (tmp_path / "console.log").read_text()


def test_verbose_redirects_nothing_and_nesting_shares_the_log(tmp_path: Path, capfd) -> None:
    log = tmp_path / "console.log"
    with quiet_console(log, verbose=True):
        os.write(1, b"shown\n")
    assert "shown" in capfd.readouterr().out and not log.exists()
    with quiet_console(log), quiet_console(tmp_path / "other.log") as terminal:
        os.write(1, b"inner chatter\n")
        print("inner ours", file=terminal, flush=True)
    assert "inner chatter" in log.read_text() and not (tmp_path / "other.log").exists()
    assert "inner ours" in capfd.readouterr().err


def test_epoch_line(capsys) -> None:
    report = epoch_line(sys.stdout)
    report(SimpleNamespace(epoch=2, epochs=10, metrics={"metrics/mAP50(B)": 0.5}))
    report(SimpleNamespace(epoch=3, epochs=10, metrics=None))
    report(SimpleNamespace(epoch=3, epochs=10, metrics=None))  # the call after the last epoch
    assert capsys.readouterr().out == "  epoch 3/10, valid mAP50 0.500\n  epoch 4/10\n"
