"""Browsing by keys (real matplotlib key events on an Agg canvas) and netron's model graph."""

from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from azaion_training.classes import ClassTable
from azaion_training.errors import ConfigError
from azaion_training.fs import AnnotationDir
from azaion_training.labels import Box
from azaion_training.visualise import Browser, browse, list_images, open_model_graph

from .conftest import add_image

TABLE = ClassTable.default()


@pytest.fixture
def items(tmp_path: Path) -> list:
    folder = AnnotationDir(tmp_path / "data")
    for name in ("a", "b", "c"):
        add_image(folder, name, [Box(1, 0.5, 0.5, 0.2, 0.2)], width=64, height=48)
    return list_images(folder)


def _press(browser: Browser, key: str) -> None:
    from matplotlib.backend_bases import KeyEvent

    canvas = browser.figure.canvas
    canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", canvas, key))


@pytest.mark.parametrize(
    ("keys", "index", "closed"),
    [
        ([], 0, False),  # starts at the first image
        (["right"], 1, False),  # next
        (["n", "n", "n", "n"], 2, False),  # stops at the last
        (["right", "left"], 0, False),  # previous
        (["p"], 0, False),  # stops at the first
        (["end", "backspace"], 1, False),  # last, then previous
        (["x"], 0, False),  # other keys do nothing
        (["right", "q"], 1, True),  # quit
        (["escape"], 0, True),  # quit
    ],
)
def test_keys(items: list, keys: list[str], index: int, closed: bool) -> None:
    from matplotlib.figure import Figure

    quits: list[bool] = []
    browser = Browser(Figure(), items, TABLE, on_quit=lambda: quits.append(True), cell_px=200)
    for key in keys:
        _press(browser, key)
    assert browser.index == index
    assert browser.closed is closed and bool(quits) is closed
    title = browser.figure.axes[0].get_title()
    assert title.startswith(f"{items[index].name} · 1 box") and f"({index + 1} / 3)" in title


def test_browse_without_a_display_says_so(items: list) -> None:
    # the test session runs matplotlib on Agg (MPLBACKEND=Agg), as on a server without a display
    with pytest.raises(ConfigError, match="needs a display"):
        browse(items, TABLE)


def test_nothing_to_browse() -> None:
    from matplotlib.figure import Figure

    with pytest.raises(ConfigError, match="no images to browse"):
        Browser(Figure(), [], TABLE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_open_model_graph_serves_the_model(tmp_path: Path) -> None:
    netron = pytest.importorskip("netron", reason="the viz extra (netron) is not installed")
    model = tmp_path / "tiny.onnx"
    model.write_bytes(b"\x08\x07model-bytes")
    address = open_model_graph(model, browse=False, address=("127.0.0.1", _free_port()))
    try:
        base = f"http://{address[0]}:{address[1]}"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        with direct.open(f"{base}/", timeout=10) as response:
            page = response.read().decode()
        assert '<meta name="file" content="/data/tiny.onnx">' in page
        with direct.open(f"{base}/data/tiny.onnx", timeout=10) as response:
            assert response.read() == model.read_bytes()
    finally:
        netron.stop(address)


def test_open_model_graph_without_netron(tmp_path: Path, monkeypatch) -> None:
    model = tmp_path / "tiny.onnx"
    model.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "netron", None)  # import netron -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'azaion-training\[viz\]'"):
        open_model_graph(model, browse=False)


def test_open_model_graph_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_model_graph(tmp_path / "none.onnx", browse=False)
