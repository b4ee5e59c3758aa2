from __future__ import annotations

import http.server
import io
import json
import logging
import threading
import urllib.parse
from pathlib import Path

import pytest
from pydantic import SecretStr

from azaion_training.errors import AzaionError
from azaion_training.logs import setup_logging
from azaion_training.store.api import AzaionApi

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


NON_ASCII = "Пароль-ü 1&2/3\"'"


def test_every_encoded_form_of_a_secret_is_scrubbed() -> None:
    stream = io.StringIO()
    setup_logging(level="INFO", secrets=[NON_ASCII], stream=stream)
    log = logging.getLogger("azaion_training.test")
    echoes = {
        "raw": NON_ASCII,
        "json": json.dumps({"password": NON_ASCII}),
        "json upper-case hex": json.dumps(NON_ASCII)[1:-1].replace("\\u041f", "\\u041F"),
        "json unicode": json.dumps(NON_ASCII, ensure_ascii=False),
        "url": urllib.parse.quote(NON_ASCII, safe=""),
        "url lower-case": urllib.parse.quote(NON_ASCII, safe="").lower(),
        "form": urllib.parse.urlencode({"password": NON_ASCII}),
        "repr": repr(NON_ASCII),
        "ascii": ascii(NON_ASCII),
        "bytes repr": repr(NON_ASCII.encode()),
    }
    for kind, echo in echoes.items():
        log.warning("%s: server said %s", kind, echo)
    out = stream.getvalue()
    for kind in echoes:
        line = next(line for line in out.splitlines() if f"warning: {kind}:" in line)
        assert "Пароль" not in line and "1&2" not in line and "%D0%9F" not in line.upper(), line
        assert "\\u041f" not in line.lower() and "\\xd0\\x9f" not in line, line
        assert "***" in line, line


def test_a_non_ascii_password_echoed_by_a_real_server_is_scrubbed(tmp_path: Path) -> None:
    """The API on loopback refuses the login and echoes the body back JSON-escaped."""
    body = json.dumps({"error": "bad credentials", "echo": {"password": NON_ASCII}})

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            payload = body.encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stream = io.StringIO()
    try:
        setup_logging(level="DEBUG", secrets=[NON_ASCII], stream=stream)
        api = AzaionApi(
            url=f"http://127.0.0.1:{server.server_address[1]}",
            email="a@b.c",
            password=SecretStr(NON_ASCII),
            hardware_fingerprint="test",
            retries=0,
            allow_http=True,
        )
        with api, pytest.raises(AzaionError) as caught:
            api.login()
        logging.getLogger("azaion_training.test").error("login failed: %s", caught.value)
        logging.getLogger("azaion_training.test").error("as repr: %r", str(caught.value))
    finally:
        server.shutdown()
        server.server_close()
    out = stream.getvalue()
    assert "bad credentials" in out  # the server's answer did reach the log ...
    assert "Пароль" not in out and "\\u041f" not in out.lower()  # ... without the password


def test_console_lines_are_short_and_the_file_keeps_everything(tmp_path: Path) -> None:
    stream = io.StringIO()
    setup_logging(level="INFO", stream=stream, file=tmp_path / "azaion.log")
    log = logging.getLogger("azaion_training.some.module")
    log.info("augment pass: 3 sources")
    log.warning("the median box is small")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert stream.getvalue().splitlines() == [
        "augment pass: 3 sources",
        "warning: the median box is small",
    ]
    written = (tmp_path / "azaion.log").read_text()
    assert "INFO" in written and "azaion_training.some.module" in written
