from __future__ import annotations

import datetime as dt
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from azaion_training.errors import UnsafePathError
from azaion_training.fs import (
    DataTree,
    atomic_move,
    atomic_write_bytes,
    atomic_writer,
    check_name,
    link_or_copy,
)


@pytest.mark.parametrize(
    "name",
    [
        "frame_000123",
        "video.mp4_0042",  # dots inside are fine
        "Кадр-1",  # non-ASCII letters are fine
        "a" * 200,  # the longest allowed
    ],
)
def test_safe_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("../../x", "separator"),
        ("/etc/passwd", "separator"),
        ("a/b", "separator"),
        ("a\\b", "separator"),
        ("..", "'..'"),
        ("x..y", "'..'"),
        (".hidden", "starts with a dot"),
        ("a\x00b", "control"),
        ("line\nbreak", "control"),
        ("a" * 201, "201 bytes long"),
        ("a" * 10_000, "10000 bytes long"),
        ("ж" * 101, "202 bytes long"),  # 101 characters, 202 bytes
        ("日" * 67, "201 bytes long"),  # 67 characters, 201 bytes
        ("\U0001f600" * 51, "204 bytes long"),  # 51 emoji, 4 bytes each
        ("a\u202eb", "control"),  # right-to-left override
        ("a\u200bb", "control"),  # zero-width space
        ("a\u2028b", "control"),  # line separator
        ("a\x85b", "control"),  # C1 next line
        ("a\ud800b", "control"),  # lone surrogate: not encodable as UTF-8
    ],
)
def test_unsafe_names_are_refused(name: str, reason: str) -> None:
    """Lengths count UTF-8 bytes: the file system's limit is in bytes."""
    with pytest.raises(UnsafePathError, match=reason):
        check_name(name)


def test_tree_layout(tmp_path: Path) -> None:
    tree = DataTree(root=tmp_path).create()
    expected = {
        "data", "data-seed", "data_deleted", "data-processed", "data-corrupted",
        "datasets", "models", "queue-rejected", "logs",
    }  # fmt: skip
    assert {p.name for p in tmp_path.iterdir()} == expected
    for folder in tree.annotation_dirs():
        assert folder.images.is_dir() and folder.labels.is_dir()
    assert tree.data.label_path("a") == tmp_path / "data" / "labels" / "a.txt"
    assert tree.data_seed.image_path("a", ".jpg") == tmp_path / "data-seed" / "images" / "a.jpg"
    assert tree.offset_file == tmp_path / "offset.yaml"
    assert tree.current_model_onnx == tmp_path / "models" / "azaion.onnx"


def test_a_relative_root_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tree = DataTree(root=Path("demo-root"))
    assert tree.root == tmp_path / "demo-root"
    assert tree.run_dir(dt.date(2026, 11, 26)).is_absolute()


def test_tree_paths_refuse_unsafe_names(tree: DataTree) -> None:
    with pytest.raises(UnsafePathError):
        tree.data.label_path("../../etc/passwd")
    with pytest.raises(UnsafePathError):
        tree.data.find_image("../x")


def test_find_image_any_extension(tree: DataTree) -> None:
    atomic_write_bytes(tree.data.images / "a.png", b"png")
    atomic_write_bytes(tree.data.images / "a_1.jpg", b"jpg")
    assert tree.data.find_image("a") == tree.data.images / "a.png"
    assert tree.data.find_image("b") is None


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["f.bin"]


@pytest.mark.parametrize(("mode", "expected"), [(None, 0o666), (0o600, 0o600)])
def test_atomic_writer_creates_with_the_mode_from_the_start(
    tmp_path: Path, mode: int | None, expected: int
) -> None:
    umask = os.umask(0)  # so the mode seen is the one the file was created with
    try:
        with atomic_writer(tmp_path / "f", **({} if mode is None else {"mode": mode})) as handle:
            assert stat.S_IMODE(os.fstat(handle.fileno()).st_mode) == expected  # the temporary
            handle.write(b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == expected


def test_atomic_writer_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError), atomic_writer(path) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("writer died")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from azaion_training.fs import atomic_writer
with atomic_writer(Path(sys.argv[1])) as f:
    for _ in range(10_000):
        f.write(b"x" * 1024)
        f.flush()
        print("wrote", flush=True)
        time.sleep(0.001)
"""


def test_atomic_write_killed_mid_write_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "image.jpg"
    atomic_write_bytes(path, b"complete old image")
    writer = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    for _ in range(50):  # let it write about 50 KiB into its temporary file
        writer.stdout.readline()
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert path.read_bytes() == b"complete old image"
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert leftovers and all(p.name.startswith(".image.jpg.") for p in leftovers)


def test_atomic_move(tmp_path: Path) -> None:
    source = tmp_path / "a" / "x.txt"
    atomic_write_bytes(source, b"x")
    target = tmp_path / "b" / "x.txt"
    atomic_move(source, target)
    assert not source.exists() and target.read_bytes() == b"x"


def test_link_or_copy_links_on_one_filesystem(tmp_path: Path) -> None:
    source = tmp_path / "s.txt"
    source.write_bytes(b"s")
    target = tmp_path / "d" / "s.txt"
    assert link_or_copy(source, target) is True
    assert target.stat().st_ino == source.stat().st_ino


@pytest.mark.parametrize(
    ("names", "newest"),
    [
        (
            ["azaion-2026-12-02", "azaion-2026-12-02.9", "azaion-2026-12-02.10"],
            "azaion-2026-12-02.10",
        ),
        (["azaion-2026-12-02.3", "azaion-2026-12-01.12"], "azaion-2026-12-02.3"),  # date first
        (["azaion-2026-12-02", "azaion-2026-12-02.2"], "azaion-2026-12-02.2"),
        (["azaion-2026-12-02", "azaion-notes", "azaion-2026-13-01", "other"], "azaion-2026-12-02"),
        (["azaion-notes"], None),
        ([], None),
    ],
)
def test_newest_dataset_and_run_sort_by_date_then_number(
    tmp_path: Path, names: list[str], newest: str | None
) -> None:
    tree = DataTree(tmp_path / "root").create()
    for name in names:
        (tree.datasets / name).mkdir()
        (tree.models / name).mkdir()
    (tree.datasets / "azaion-2027-01-01").write_text("a file, not a dataset")
    expected = (None, None) if newest is None else (tree.datasets / newest, tree.models / newest)
    assert (tree.newest_dataset(), tree.latest_run()) == expected


def test_list_images_skips_temporary_and_other_files(tmp_path: Path) -> None:
    from azaion_training.fs import list_images

    for name in ("b.JPG", "a.png", ".a.png.1234.tmp", ".hidden.jpg", "a.txt", "sub/c.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()
    assert list_images(tmp_path) == [tmp_path / "a.png", tmp_path / "b.JPG"]
    assert list_images(tmp_path, recursive=True) == [
        tmp_path / "a.png",
        tmp_path / "b.JPG",
        tmp_path / "sub" / "c.jpg",
    ]
    assert list_images(tmp_path / "missing") == []


def test_atomic_writer_creates_the_file_with_its_mode_from_the_start(tmp_path: Path) -> None:
    import stat

    target = tmp_path / "secret.bin"
    previous = os.umask(0)
    try:
        with atomic_writer(target, mode=0o600) as handle:
            (temporary,) = tmp_path.iterdir()  # still the dot-named temporary file
            assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
            handle.write(b"plaintext")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b"plaintext"


@pytest.mark.parametrize(("link", "linked"), [(True, True), (False, False)])
def test_link_or_copy_by_names_in_open_folders(tmp_path: Path, link: bool, linked: bool) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "s.txt").write_bytes(b"s")
    source = os.open(tmp_path / "a", os.O_RDONLY | os.O_DIRECTORY)
    target = os.open(tmp_path / "b", os.O_RDONLY | os.O_DIRECTORY)
    try:
        made = link_or_copy("s.txt", "s.txt", src_dir_fd=source, dst_dir_fd=target, link=link)
    finally:
        os.close(source)
        os.close(target)
    assert made is linked and (tmp_path / "b" / "s.txt").read_bytes() == b"s"
    same = (tmp_path / "a" / "s.txt").stat().st_ino == (tmp_path / "b" / "s.txt").stat().st_ino
    assert same is linked


def test_sync_filesystems_syncs_each_filesystem_once(tmp_path: Path) -> None:
    from azaion_training.fs import sync_filesystems, sync_folders

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"x")
    folders = [tmp_path / "a", tmp_path, tmp_path / "missing"]  # one filesystem; one is gone
    assert sync_filesystems(folders) is (sys.platform == "linux")
    sync_folders(folders)  # syncfs here, os.sync() elsewhere; raises only when a flush fails
