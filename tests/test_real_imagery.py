"""Real aerial imagery end to end: the NEON files of the ``deepforest`` wheel (an LZW GeoTIFF and
PNG crops with Pascal VOC boxes, nobody here wrote them) and a generated 16-bit GeoTIFF, through
convert, augment, formation and the visualiser; every real box is kept."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import pytest
import yaml

from azaion_training.augment import augment_tree
from azaion_training.cli import convert as convert_cli
from azaion_training.config import AugmentSettings, Settings
from azaion_training.dataset.formation import form_dataset
from azaion_training.fs import DataTree
from azaion_training.labels import read_label
from tests.imagery import (
    NEON_CLASSES,
    NEON_VOC,
    OTHER_AERIAL,
    aerial_scene,
    deepforest_files,
    geotiff,
    neon_files,
)

TOTAL_BOXES = sum(boxes for _, boxes in NEON_VOC.values())


@pytest.fixture(scope="module")
def neon(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = request.config.cache.mkdir("deepforest-wheel")
    return neon_files(cache, tmp_path_factory.mktemp("neon"))


def _labels(folder: Path) -> dict[str, int]:
    return {p.stem: len(read_label(p)) for p in sorted(folder.glob("*.txt"))}


def test_unknown_neon_classes_give_exit_1_with_the_remedy(
    neon: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = convert_cli.main(["voc", str(neon), str(tmp_path / "out"), "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "no box kept: map the class names with --map NAME=ID or --map NAME=CLASSNAME" in err


def test_neon_boxes_survive_convert_augment_and_formation(
    neon: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = DataTree(root=tmp_path / "root").create()
    mapping = ",".join(f"{name}=Tree" for name in NEON_CLASSES)
    args = ["voc", str(neon), str(tree.data.path), "--map", mapping, "--root", str(tree.root)]
    assert convert_cli.main(args) == 0
    out = capsys.readouterr().out
    assert f"converted {len(NEON_VOC)} images, {TOTAL_BOXES} boxes" in out
    assert f"boxes per class: Tree (17) x{TOTAL_BOXES}" in out
    assert "1 TIFF images kept as TIFF" in out
    assert _labels(tree.data.labels) == {stem: n for stem, (_, n) in NEON_VOC.items()}
    table = tree.data.path / "classes.json"
    assert '"Name": "Tree"' in table.read_text()

    settings = Settings(root_dir=tree.root, classes=table)
    summary = augment_tree(
        tree, AugmentSettings(variants=1, workers=1), once=True, stop=threading.Event()
    )
    assert summary is not None and (summary.corrupted, summary.failed) == (0, 0)
    originals = {stem: n for stem, n in _labels(tree.data_processed.labels).items()}
    assert {s: originals[s] for s in NEON_VOC} == {s: n for s, (_, n) in NEON_VOC.items()}
    sample = cv2.imread(str(tree.data_processed.images / "OSBS_029.png"))
    assert sample.shape == (400, 400, 3), "the GeoTIFF's original sample is the model's input"

    settings = settings.model_copy(
        update={"augment": settings.augment.model_copy(update={"variants": 1})}
    )
    formed = form_dataset(settings, tree, progress=False)
    kept = 0
    for split in ("train", "valid", "test"):
        for stem, count in _labels(formed.path / split / "labels").items():
            kept += count if stem in NEON_VOC else 0
    assert kept == TOTAL_BOXES
    names = yaml.safe_load(formed.data_yaml.read_text())["names"]
    assert names[17] == "Tree" and names[37] == "Tree(Wint)"


def test_a_16_bit_geotiff_is_drawn_visibly(tmp_path: Path) -> None:
    from azaion_training.classes import ClassTable
    from azaion_training.cli import visualise
    from azaion_training.fs import AnnotationDir
    from azaion_training.visualise.grid import load_cell
    from azaion_training.visualise.render import read_rgb
    from azaion_training.visualise.source import list_images

    folder = AnnotationDir(tmp_path / "pan")
    folder.create()
    scene, boxes = aerial_scene(192, 256, seed=3)
    (folder.images / "pan.tif").write_bytes(geotiff(scene))
    lines = "".join(f"0 {cx} {cy} {w} {h}\n" for cx, cy, w, h in boxes)
    (folder.labels / "pan.txt").write_text(lines)
    cell = load_cell(list_images(folder)[0], ClassTable.default(), cell_px=256)
    assert cell.caption == "pan · 4 boxes" and cell.image.shape == (192, 256, 3)
    # Stretched: the dark left edge near black, the objects white (a 12-bit image read by its top
    # byte, as OpenCV's IMREAD_COLOR does, is black everywhere: every value under 16).
    assert cell.image[:, :8].mean() < 40
    drawn = read_rgb(folder.images / "pan.tif")  # what the cell was drawn from, before the boxes
    cx, cy, _, _ = boxes[0]
    assert drawn[int(cy * 192), int(cx * 256)].min() >= 230
    out = tmp_path / "grid.png"
    args = ["dataset", str(folder.path), "--out", str(out), "--n", "1", "--root", str(tmp_path)]
    assert visualise.main(args) == 0 and cv2.imread(str(out)) is not None


@pytest.mark.slow
def test_the_demo_on_neon_files_keeps_the_users_class_names(neon: Path, tmp_path: Path) -> None:
    """The short form of ``azaion-demo --data NEON --format voc --map ...=Tree --chips 96``: the
    demo's one run on its user's data (convert, chips, then the same pipeline through a private
    stream; one epoch: the pipeline and the names, not the score; a longer run by hand gives
    held-out mAP50 > 0, see docs/operations.md). Each format's reading is the converters' own
    tests' (tests/convert), and the demo's --format choices come from their table
    (tests/convert/test_formats.py)."""
    from azaion_training.config import load_settings
    from azaion_training.demo.run import DemoPlan, run_demo
    from azaion_training.demo.userdata import UserData
    from tests.helpers import require
    from tests.services.rabbitmq import available

    require(available())
    mapping = ",".join(f"{name}=Tree" for name in NEON_CLASSES)
    data = UserData(neon, "voc", maps=(mapping,), chips=96)
    tree = DataTree(root=tmp_path / "root")
    settings = load_settings(environ={"AZAION_ROOT_DIR": str(tree.root)}, env_file=None)
    plan = DemoPlan(epochs=1, imgsz=96)
    report = run_demo(settings, tree, plan=plan, data=data, progress=False)
    assert "private node" in report.transport
    assert report.annotations_sent == report.annotations_in_data > 0  # every chip arrived
    assert set(report.test_classes) == {"Tree"}
    assert report.held_out_line.startswith("test split, ") and "(Tree " in report.held_out_line
    assert report.annotated_video is None and "no video" in report.video_line
    assert "converted 3 images, 377 boxes" in " ".join(report.notes)
    assert report.model_onnx.is_file() and report.report_html.is_file()
    html = report.report_html.read_text()
    assert "Tree" in html and "Class-17" not in html and "<section id='classes'>" in html
    names = yaml.safe_load((tree.root / "datasets").glob("*/data.yaml").__next__().read_text())
    assert names["names"][17] == "Tree"


def test_other_real_aerial_images_read_as_ultralytics_reads_them(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from azaion_training.imageheader import image_size
    from azaion_training.images import read_image

    cache = request.config.cache.mkdir("deepforest-wheel")
    for path in deepforest_files(cache, tmp_path, sorted(OTHER_AERIAL)):
        assert image_size(path) == OTHER_AERIAL[path.name]
        rgb = read_image(path)
        ultralytics = cv2.imread(str(path))  # what its data loader does (EXIF turned)
        assert rgb.shape == ultralytics.shape
        assert (rgb[..., ::-1] == ultralytics).all(), path.name
