from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from azaion_training.logs import setup_logging

SECRET = "hunter2-very-secret"


def test_text_console_and_secret_scrubbing() -> None:
    stream = io.StringIO()
    setup_logging(level="INFO", secrets=[SECRET], stream=stream)
    log = logging.getLogger("azaion_training.test")
    log.info("connecting with password %s", SECRET)
    log.debug("not shown at INFO")
    try:
        raise RuntimeError(f"server said {SECRET}")
    except RuntimeError:
        log.exception("failed")
    out = stream.getvalue()
    assert SECRET not in out
    assert "connecting with password ***" in out
    assert "server said ***" in out
    assert "not shown" not in out


def test_json_lines_and_rotating_file(tmp_path: Path) -> None:
    stream = io.StringIO()
    log_file = tmp_path / "logs" / "azaion.log"
    setup_logging(level="WARNING", json_lines=True, file=log_file, secrets=[SECRET], stream=stream)
    log = logging.getLogger("azaion_training.test")
    log.warning("token=%s", SECRET)
    log.debug("details")
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["message"] for e in entries] == ["token=***"]
    assert entries[0]["level"] == "WARNING" and entries[0]["logger"] == "azaion_training.test"
    file_lines = [json.loads(line)["message"] for line in log_file.read_text().splitlines()]
    assert file_lines == ["token=***", "details"]  # the file keeps DEBUG


def test_repeated_setup_does_not_stack_handlers() -> None:
    stream = io.StringIO()
    setup_logging(stream=stream)
    setup_logging(stream=stream)
    logging.getLogger("x").warning("once")
    assert stream.getvalue().count("once") == 1
