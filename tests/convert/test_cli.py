"""`azaion-convert` in-process: exit codes, options and the printed summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from azaion_training.cli.convert import main

from .conftest import label_lines, voc_xml, write_image


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "voc"
    write_image(src / "a.jpg", 200, 100)
    (src / "a.xml").write_text(
        voc_xml(
            "a.jpg", [("Truck", 20, 10, 60, 50), ("Bus", 0, 0, 10, 10), ("Motorcycle", 1, 1, 2, 2)]
        )
    )
    return src


def test_convert_prints_a_summary(source: Path, tmp_path: Path, capsys) -> None:
    assert main(["voc", str(source), str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "converted 1 images, 1 boxes (0 images linked)" in out
    assert "skipped 0 images, 2 boxes:" in out
    assert "'Bus' x1" in out
    assert label_lines(tmp_path / "out" / "labels" / "a.txt") == [
        "1 0.200000 0.300000 0.200000 0.400000"
    ]


def test_map_skip_and_link(source: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "out"
    code = main(
        [
            "voc",
            str(source),
            str(dest),
            "--map",
            "Bus=2",
            "--map",
            "Motorcycle=11",
            "--skip",
            "Truck",
            "--link",
        ]
    )
    assert code == 0
    assert label_lines(dest / "labels" / "a.txt") == [
        "2 0.025000 0.050000 0.050000 0.100000",
        "11 0.007500 0.015000 0.005000 0.010000",
    ]
    assert os.path.samefile(dest / "images" / "a.jpg", source / "a.jpg")
    assert "(1 images linked)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "environ", "message"),
    [
        (["--unknown", "error"], {}, "unknown class names: 'Bus' x1"),  # flag
        ([], {"AZAION_CONVERT_UNKNOWN": "error"}, "unknown class names: 'Bus' x1"),  # env
        (["--map", "Bus"], {}, "--map entry 'Bus' is not NAME=ID"),  # bad map
        (["--map", "Bus=2", "--skip", "bus"], {}, "both mapped and skipped"),  # conflict
        (["--map", "Bus=99"], {}, "is not a slot 0..79"),  # slot out of range
    ],
)
def test_errors_exit_1_and_write_nothing(
    source: Path, tmp_path: Path, capsys, monkeypatch, extra, environ, message
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(["voc", str(source), str(tmp_path / "out"), *extra]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_nothing_converted_exits_1(tmp_path: Path, capsys) -> None:
    src = tmp_path / "voc"
    src.mkdir()
    (src / "a.xml").write_text(voc_xml("a.jpg", [("Truck", 1, 1, 5, 5)]))  # no image
    assert main(["voc", str(src), str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "image missing" in captured.out
    assert "nothing was converted" in captured.err


def test_runs_as_a_module(source: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "azaion_training.cli.convert",
            "voc",
            str(source),
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "converted 1 images" in result.stdout
