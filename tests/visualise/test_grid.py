"""The grid is drawn headless and its boxes sit exactly where the labels say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from azaion_training.classes import ClassTable
from azaion_training.fs import AnnotationDir
from azaion_training.labels import Box
from azaion_training.visualise import (
    draw_boxes,
    grid_figure,
    grid_layout,
    list_images,
    pick,
    save_figure,
)
from azaion_training.visualise.render import box_rect, fit

from .conftest import add_image, read_png_rgb

TABLE = ClassTable.default()
WHITE = (255, 255, 255)


def test_draw_boxes_puts_the_outline_inside_the_box() -> None:
    image = np.full((100, 200, 3), 255, np.uint8)
    drawn = draw_boxes(image, [Box.from_xyxy(1, 0.1, 0.2, 0.5, 0.6)], TABLE, thickness=2)
    truck = TABLE[1].rgb
    # box pixels: x 20..99, y 20..59; the outline covers the outer two rows/columns
    for y, x in [(20, 50), (21, 50), (59, 50), (58, 50), (40, 20), (40, 21), (40, 99), (40, 98)]:
        assert tuple(drawn[y, x]) == truck, (y, x)
    for y, x in [(19, 50), (22, 50), (60, 50), (57, 50), (40, 19), (40, 22), (40, 100), (40, 97)]:
        assert tuple(drawn[y, x]) == WHITE, (y, x)
    assert tuple(image[20, 50]) == WHITE  # the input is left alone


def _boxes_in_png(png: np.ndarray, rect, box: Box, fitted: tuple[int, int]) -> None:
    """Checks the outline of ``box`` in the saved grid: cell ``rect``, image of size ``fitted``."""
    colour = TABLE[box.class_id].rgb
    inner = box_rect(box, width=fitted[0], height=fitted[1])
    left, top = rect.x1 + inner.x1, rect.y1 + inner.y1
    right, bottom = rect.x1 + inner.x2 - 1, rect.y1 + inner.y2 - 1
    middle_x, middle_y = (left + right) // 2, (top + bottom) // 2
    # the bottom and right edges (the name tag sits at the top left)
    assert tuple(png[bottom, middle_x]) == colour
    assert tuple(png[bottom - 1, middle_x]) == colour
    assert tuple(png[middle_y, right]) == colour
    assert tuple(png[middle_y, left]) == colour
    # just outside and just inside the outline, and the centre, stay white
    assert tuple(png[bottom + 1, middle_x]) == WHITE
    assert tuple(png[bottom - 2, middle_x]) == WHITE
    assert tuple(png[middle_y, right + 1]) == WHITE
    assert tuple(png[middle_y, left - 1]) == WHITE
    assert tuple(png[middle_y, middle_x]) == WHITE


def test_saved_grid_has_the_boxes_where_the_labels_say(tmp_path: Path) -> None:
    folder = AnnotationDir(tmp_path / "data")
    truck = Box.from_xyxy(1, 0.25, 0.25, 0.75, 0.75)
    armour_winter = Box.from_xyxy(20, 0.1, 0.3, 0.4, 0.9)
    building_night = Box.from_xyxy(55, 0.55, 0.2, 0.95, 0.8)
    add_image(folder, "a", [truck], width=160, height=80)  # scaled up x2 into a 320 cell
    add_image(folder, "b", [armour_winter, building_night], width=640, height=640)  # scaled /2
    add_image(folder, "c", [], width=100, height=300)  # a tall background image
    items = list_images(folder)
    out = save_figure(grid_figure(items, TABLE, cell_px=320, columns=2), tmp_path / "g.png")

    png = read_png_rgb(out)
    fitted = [(320, 160), (320, 320), (107, 320)]
    assert [
        fit(np.zeros((h, w, 3), np.uint8), max_width=320, max_height=320).shape[1::-1]
        for w, h in [(160, 80), (640, 640), (100, 300)]
    ] == fitted
    rects, (width, height) = grid_layout(fitted, cell_px=320, columns=2)
    assert png.shape == (height, width, 3)
    _boxes_in_png(png, rects[0], truck, fitted[0])
    _boxes_in_png(png, rects[1], armour_winter, fitted[1])
    _boxes_in_png(png, rects[1], building_night, fitted[1])
    # the background image is white all over its cell
    third = rects[2]
    assert (png[third.y1 + 2 : third.y2 - 2, third.x1 + 2 : third.x2 - 2] == 255).all()


def test_grid_layout() -> None:
    rects, size = grid_layout([(320, 160), (100, 320), (320, 320)], cell_px=320, columns=2)
    # gap 10, title band 22, header 44; row 1 is 320 tall (its tallest image), row 2 is 320
    assert size == (2 * 320 + 3 * 10, 44 + (22 + 320 + 10) * 2)
    assert [(r.x1, r.y1, r.x2, r.y2) for r in rects] == [
        (10, 66, 330, 226),
        (340 + 110, 66, 340 + 210, 386),  # centred in its cell
        (10, 66 + 352, 330, 66 + 352 + 320),
    ]


def test_unreadable_images_and_labels_do_not_stop_the_grid(tmp_path: Path) -> None:
    folder = AnnotationDir(tmp_path / "data")
    add_image(folder, "good", [Box(1, 0.5, 0.5, 0.2, 0.2)])
    (folder.images / "broken.jpg").write_bytes(b"not a jpeg")
    add_image(folder, "badlabel", None)
    (folder.labels / "badlabel.txt").write_text("1 2 3\n")
    figure = grid_figure(list_images(folder), TABLE)
    captions = [ax.get_title() for ax in figure.axes]
    assert captions == [
        "badlabel · label invalid",
        "broken · image does not decode",
        "good · 1 box",
    ]


def test_short_names_show_the_weather_mode(tmp_path: Path) -> None:
    folder = AnnotationDir(tmp_path / "data")
    add_image(folder, "a", [Box(21, 0.5, 0.5, 0.4, 0.4), Box(2, 0.2, 0.2, 0.2, 0.2)])
    figure = grid_figure(list_images(folder), TABLE, title="my grid")
    (ax,) = figure.axes
    assert sorted(text.get_text() for text in ax.texts) == ["Truck(W)", "Vehicle"]
    assert "my grid" in [text.get_text() for text in figure.texts]


def test_pick_is_reproducible(tmp_path: Path) -> None:
    folder = AnnotationDir(tmp_path / "data")
    for index in range(30):
        add_image(folder, f"img_{index:02d}", [], width=8, height=8)
    items = list_images(folder)
    first = pick(items, n=5, seed=7)
    assert first == pick(items, n=5, seed=7)
    assert first != pick(items, n=5, seed=8)
    assert [i.name for i in first] == sorted(i.name for i in first)
    assert pick(items, n=100, seed=0) == items  # more than there are: all of them
    assert pick(items, n=0, seed=0) == [] and pick([], n=3, seed=0) == []


@pytest.mark.parametrize("n", [1, 4, 7])
def test_grid_of_any_count_renders(n: int, tmp_path: Path) -> None:
    folder = AnnotationDir(tmp_path / "data")
    for index in range(n):
        add_image(folder, f"i{index}", [Box(index % 17, 0.5, 0.5, 0.5, 0.5)], width=64, height=48)
    out = save_figure(grid_figure(list_images(folder), TABLE, cell_px=128), tmp_path / "g.png")
    assert read_png_rgb(out).shape[1] > 128
