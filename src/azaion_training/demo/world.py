"""Synthetic aerial-like scenes with exact YOLO labels, for the demo, the tests and benchmarks.

Nothing is downloaded: scenes are drawn with OpenCV from a seeded generator. Two worlds:

- the **hard** world (the default): varied grounds (grass, dirt, sand, fields, asphalt) under
  weather that changes lighting, contrast, tint and noise (snow cover for Wint, a dark noisy
  image for Night); objects at any rotation over a 4x scale range (down to ~6-10 px at 160 px),
  with partial overlaps, drawn from one shared colour palette with jitter, so that look-alike
  classes (car, truck, armour, building) differ in proportion and details, not colour; and
  distractors (trees, rocks, road marks, shadows of nothing);
- the **plain** world (``hard=False``): one fixed colour and shape per class, axis-aligned, no
  overlaps. A few epochs learn it, which is what the tests' small cached detectors need.

Example:
    >>> scene = make_scene(np.random.default_rng(0), width=128, height=96)
    >>> scene.image.shape
    (96, 128, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from azaion_training.classes import WeatherMode
from azaion_training.errors import MediaError
from azaion_training.fs import AnnotationDir, atomic_write_bytes
from azaion_training.labels import Box, write_label

DEFAULT_CLASSES: tuple[int, ...] = (0, 1, 2, 15)
"""Base classes drawn by default: ArmorVehicle, Truck, Vehicle, Building."""

# Plain world, per base class: (colour BGR, relative length, relative width, shape). Sizes are
# fractions of the shorter image side.
_LOOKS: dict[int, tuple[tuple[int, int, int], float, float, str]] = {
    0: ((40, 80, 40), 0.16, 0.10, "tank"),  # ArmorVehicle: dark green hull with a turret
    1: ((30, 90, 150), 0.22, 0.08, "truck"),  # Truck: long, brown, with a cab
    2: ((200, 60, 50), 0.11, 0.06, "car"),  # Vehicle: small, blue
    3: ((60, 60, 60), 0.20, 0.05, "gun"),  # Artillery: long thin barrel
    15: ((150, 150, 150), 0.24, 0.20, "building"),  # Building: large grey block with a roof
}
_GROUND = {
    WeatherMode.NORM: ((60, 110, 90), (40, 80, 120)),
    WeatherMode.WINT: ((225, 225, 230), (190, 195, 200)),
    WeatherMode.NIGHT: ((40, 35, 30), (20, 20, 25)),
}

# Hard world, per base class: (shape, length relative to a car, length / width).
_FORMS: dict[int, tuple[str, float, float]] = {
    0: ("tank", 1.15, 1.6),
    1: ("truck", 1.6, 3.0),
    2: ("car", 1.0, 2.0),
    3: ("gun", 1.5, 4.5),
    15: ("building", 2.2, 1.25),
}
_PALETTE = np.array(  # BGR, shared by every class: colour alone does not tell them apart
    [
        (60, 95, 80),  # olive
        (45, 75, 110),  # brown
        (125, 125, 125),  # grey
        (135, 170, 195),  # sand
        (45, 45, 50),  # near black
        (205, 205, 200),  # white
        (115, 70, 45),  # dark blue
        (70, 120, 150),  # tan
    ],
    np.float32,
)
_GROUNDS = np.array(  # BGR pairs that a smooth noise mixes
    [
        [(55, 115, 85), (40, 85, 120)],  # grass and dirt
        [(50, 95, 70), (35, 70, 50)],  # dark grass
        [(120, 165, 190), (95, 135, 160)],  # sand
        [(60, 90, 115), (45, 65, 85)],  # ploughed field
        [(105, 105, 100), (80, 80, 78)],  # asphalt and concrete
    ],
    np.float32,
)
_CAR_LENGTH = (0.05, 0.2)
"""A car's length as a fraction of the shorter image side: a 4x range (8-32 px at 160 px)."""


@dataclass(frozen=True)
class Scene:
    """One synthetic image (BGR, ``(h, w, 3)`` uint8) and its boxes."""

    image: np.ndarray
    boxes: list[Box]
    mode: WeatherMode


def make_ground(rng: np.random.Generator, width: int, height: int, mode: WeatherMode) -> np.ndarray:
    """A smooth, textured ground in the palette of ``mode``."""
    low = rng.random((max(height // 32, 2), max(width // 32, 2)), dtype=np.float32)
    smooth = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 0.06, (height, width)).astype(np.float32)
    mix = np.clip(smooth + grain, 0, 1)[..., None]
    first, second = (np.array(c, np.float32) for c in _GROUND[mode])
    return (first * mix + second * (1 - mix)).astype(np.uint8)


def make_scene(
    rng: np.random.Generator,
    *,
    width: int = 256,
    height: int = 256,
    objects: tuple[int, int] = (3, 8),
    classes: Sequence[int] = DEFAULT_CLASSES,
    mode: WeatherMode | None = None,
    hard: bool = True,
    object_side: tuple[int, int] | None = None,
) -> Scene:
    """Draws a scene with between ``objects[0]`` and ``objects[1]`` objects of ``classes``.

    Args:
        rng: the generator; the same seed gives the same scene.
        mode: the weather mode (its offset is added to the class ids); random when ``None``.
        hard: the hard world (default) or the plain one (see the module's docstring).
        object_side: draw objects as in an image whose shorter side is drawn from this range
            (per object in the plain world, per scene in the hard one), so that a large frame
            holds small objects at native resolution (plain ``(40, 180)``: 6-30 px armour; hard
            ``(160, 160)``: cars of 8-32 px); ``None``: the image's own shorter side.
    """
    mode = mode if mode is not None else WeatherMode(rng.choice([0, 0, 20, 40]))
    if hard:
        return _hard_scene(rng, width, height, objects, classes, mode, object_side)
    image = make_ground(rng, width, height, mode)
    count = int(rng.integers(objects[0], objects[1] + 1))
    boxes: list[Box] = []
    occupied: list[tuple[int, int, int, int]] = []
    for _ in range(count):
        base = int(rng.choice(list(classes)))
        side = None if object_side is None else int(rng.integers(*object_side, endpoint=True))
        placed = _place_object(rng, image, base, occupied, side=side)
        if placed is not None:
            x1, y1, x2, y2 = placed
            occupied.append(placed)
            boxes.append(
                Box.from_xyxy(base + mode.value, x1 / width, y1 / height, x2 / width, y2 / height)
            )
    if mode is WeatherMode.NIGHT:
        image = cv2.convertScaleAbs(image, alpha=0.6, beta=0)
    return Scene(image=image, boxes=boxes, mode=mode)


def write_annotations(
    folder: AnnotationDir,
    count: int,
    *,
    seed: int = 0,
    width: int = 256,
    height: int = 256,
    prefix: str = "synthetic",
    quality: int = 90,
    **scene_options: object,
) -> list[str]:
    """Writes ``count`` scenes as ``images/{prefix}_{i:06d}.jpg`` + ``labels/...txt``.

    Returns:
        The annotation names, in order.
    """
    rng = np.random.default_rng(seed)
    names = []
    for index in range(count):
        scene = make_scene(rng, width=width, height=height, **scene_options)  # type: ignore[arg-type]
        name = f"{prefix}_{index:06d}"
        atomic_write_bytes(folder.image_path(name, ".jpg"), encode_jpeg(scene.image, quality))
        write_label(folder.label_path(name), scene.boxes)
        names.append(name)
    return names


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MediaError("OpenCV could not encode a JPEG")
    return encoded.tobytes()


def write_video(
    path: Path,
    *,
    frames: int,
    width: int = 320,
    height: int = 240,
    fps: float = 25.0,
    seed: int = 0,
    classes: Sequence[int] = DEFAULT_CLASSES,
    mode: WeatherMode = WeatherMode.NORM,
    hard: bool = True,
    objects: tuple[int, int] | None = None,
    object_side: tuple[int, int] | None = None,
) -> list[list[Box]]:
    """Writes an MP4 filmed by a camera over a larger scene; returns each frame's boxes.

    The plain world pans sideways at a fixed height (frames at the scene's own scale); the hard
    world pans along a curve and zooms in and out (the view's height goes between 45% and 90% of
    the scene's). A frame lists the boxes that are whole in its view. ``objects`` (on the whole
    scene) and ``object_side`` are those of `make_scene` (defaults: 18-30 hard, 6-12 plain).
    """
    rng = np.random.default_rng(seed)
    canvas_size = (width * 3, height * 2) if hard else (width * 2, height)
    canvas = make_scene(
        rng,
        width=canvas_size[0],
        height=canvas_size[1],
        classes=classes,
        mode=mode,
        objects=objects or ((18, 30) if hard else (6, 12)),
        hard=hard,
        object_side=object_side,
    )
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise MediaError(f"OpenCV cannot write video {path}")
    truths = []
    phase = float(rng.uniform(0, 2 * np.pi))
    try:
        for index in range(frames):
            view = _camera(index / max(frames - 1, 1), canvas_size, (width, height), hard, phase)
            x1, y1, x2, y2 = view
            crop = canvas.image[y1:y2, x1:x2]
            frame = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(np.ascontiguousarray(frame))
            truths.append(_visible_boxes(canvas.boxes, view, canvas_size))
    finally:
        writer.release()
    return truths


def _camera(
    t: float, canvas: tuple[int, int], frame: tuple[int, int], hard: bool, phase: float
) -> tuple[int, int, int, int]:
    """The view ``(x1, y1, x2, y2)`` on the canvas at time ``t`` in [0, 1]."""
    if not hard:
        shift = round(t * (canvas[0] - frame[0]))
        return shift, 0, shift + frame[0], frame[1]
    view_h = int(canvas[1] * (0.675 + 0.225 * np.sin(2 * np.pi * t + phase)))
    view_w = min(int(view_h * frame[0] / frame[1]), canvas[0])
    cx = view_w / 2 + t * (canvas[0] - view_w)
    cy = canvas[1] / 2 + 0.5 * (canvas[1] - view_h) * np.sin(3 * np.pi * t + phase)
    x1 = int(np.clip(cx - view_w / 2, 0, canvas[0] - view_w))
    y1 = int(np.clip(cy - view_h / 2, 0, canvas[1] - view_h))
    return x1, y1, x1 + view_w, y1 + view_h


def _visible_boxes(
    boxes: list[Box], view: tuple[int, int, int, int], canvas: tuple[int, int]
) -> list[Box]:
    vx1, vy1, vx2, vy2 = view
    visible = []
    for box in boxes:
        x1, y1, x2, y2 = box.xyxy
        x1, x2 = (x1 * canvas[0] - vx1) / (vx2 - vx1), (x2 * canvas[0] - vx1) / (vx2 - vx1)
        y1, y2 = (y1 * canvas[1] - vy1) / (vy2 - vy1), (y2 * canvas[1] - vy1) / (vy2 - vy1)
        if x1 >= 0 and y1 >= 0 and x2 <= 1 and y2 <= 1:
            visible.append(Box.from_xyxy(box.class_id, x1, y1, x2, y2))
    return visible


def _place_object(
    rng: np.random.Generator,
    image: np.ndarray,
    base: int,
    occupied: list[tuple[int, int, int, int]],
    *,
    side: int | None = None,
) -> tuple[int, int, int, int] | None:
    height, width = image.shape[:2]
    colour, length, thickness, shape = _LOOKS.get(base, _LOOKS[2])
    side = min(width, height) if side is None else side
    scale = rng.uniform(0.8, 1.25)
    long_side, short_side = (
        max(int(length * side * scale), 4),
        max(int(thickness * side * scale), 3),
    )
    horizontal = bool(rng.integers(0, 2))
    w, h = (long_side, short_side) if horizontal else (short_side, long_side)
    for _ in range(20):
        x1 = int(rng.integers(2, max(width - w - 2, 3)))
        y1 = int(rng.integers(2, max(height - h - 2, 3)))
        candidate = (x1, y1, x1 + w, y1 + h)
        if all(not _overlaps(candidate, other) for other in occupied):
            _draw(image, candidate, colour, shape, horizontal, rng)
            return candidate
    return None


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    margin = 4
    return not (
        a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1]
    )


def _draw(
    image: np.ndarray,
    box: tuple[int, int, int, int],
    colour: tuple[int, int, int],
    shape: str,
    horizontal: bool,
    rng: np.random.Generator,
) -> None:
    x1, y1, x2, y2 = box
    shade = rng.integers(-20, 21)
    body = tuple(int(np.clip(c + shade, 0, 255)) for c in colour)
    dark = tuple(int(c * 0.55) for c in body)
    light = tuple(int(min(c * 1.4 + 30, 255)) for c in body)
    offset = max((x2 - x1) // 8, 2)
    overlay = image.copy()
    cv2.rectangle(overlay, (x1 + offset, y1 + offset), (x2 + offset, y2 + offset), (15, 15, 15), -1)
    cv2.addWeighted(overlay, 0.45, image, 0.55, 0, dst=image)  # the shadow
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), body, -1)
    cx, cy, w, h = (x1 + x2) // 2, (y1 + y2) // 2, x2 - x1, y2 - y1
    if shape == "tank":
        cv2.circle(image, (cx, cy), max(min(w, h) // 3, 2), dark, -1)
        end = (x2 - 1, cy) if horizontal else (cx, y1)
        cv2.line(image, (cx, cy), end, dark, max(min(w, h) // 8, 1))
    elif shape == "truck":
        cab = (x1, y1, x1 + w // 4, y2) if horizontal else (x1, y1, x2, y1 + h // 4)
        cv2.rectangle(image, cab[:2], (cab[2] - 1, cab[3] - 1), light, -1)
    elif shape == "car":
        inset = max(min(w, h) // 4, 1)
        cv2.rectangle(image, (x1 + inset, y1 + inset), (x2 - inset - 1, y2 - inset - 1), light, -1)
    elif shape == "gun":
        cv2.line(image, (x1, y1), (x2 - 1, y2 - 1), dark, max(min(w, h) // 3, 1))
    elif shape == "building":
        if horizontal:
            cv2.line(image, (x1, cy), (x2 - 1, cy), dark, max(h // 10, 1))
        else:
            cv2.line(image, (cx, y1), (cx, y2 - 1), dark, max(w // 10, 1))
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), dark, max(min(w, h) // 20, 1))


def _hard_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    objects: tuple[int, int],
    classes: Sequence[int],
    mode: WeatherMode,
    object_side: tuple[int, int] | None = None,
) -> Scene:
    """The hard world's scene: ground, distractors, objects, then the weather over everything."""
    count = int(rng.integers(objects[0], objects[1] + 1))
    side = min(width, height)
    if object_side is not None:
        side = int(rng.integers(*object_side, endpoint=True))
    image = _varied_ground(rng, width, height)
    sun = float(rng.uniform(0, 2 * np.pi))
    _distractors(
        rng, image, side, sun, count=int(rng.integers(2, 6) * max(width * height, 1) / side**2)
    )
    if mode is WeatherMode.WINT:
        image = _snow(rng, image)
    boxes: list[Box] = []
    placed: list[np.ndarray] = []
    for _ in range(count):
        base = int(rng.choice(list(classes)))
        xyxy = _hard_object(rng, image, base, side, sun, placed)
        if xyxy is not None:
            placed.append(xyxy)
            x1, y1, x2, y2 = (float(v) for v in xyxy)
            boxes.append(
                Box.from_xyxy(base + mode.value, x1 / width, y1 / height, x2 / width, y2 / height)
            )
    return Scene(image=_weather(rng, image, mode), boxes=boxes, mode=mode)


def _varied_ground(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Two ground colours of a random kind mixed by smooth noise, with grain and field rows."""
    first, second = _GROUNDS[rng.integers(len(_GROUNDS))] + rng.normal(0, 10, (2, 3))
    cell = int(rng.integers(12, 48))
    low = rng.random((max(height // cell, 2), max(width // cell, 2)), dtype=np.float32)
    mix = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.3:  # ploughed rows
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        rows = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * rng.uniform(0.4, 1.2))
        mix = mix * 0.7 + 0.15 * (rows + 1)
    mix = np.clip(mix + rng.normal(0, 0.08, (height, width)), 0, 1)[..., None]
    return np.clip(first * mix + second * (1 - mix), 0, 255).astype(np.uint8)


def _distractors(
    rng: np.random.Generator, image: np.ndarray, side: int, sun: float, *, count: int
) -> None:
    """Trees, rocks, road marks and shadows of nothing: things that are not objects."""
    height, width = image.shape[:2]
    for _ in range(count):
        kind = rng.choice(["tree", "rock", "road", "shadow"])
        centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        size = side * float(np.exp(rng.uniform(np.log(0.03), np.log(0.12))))
        if kind == "tree":
            green = np.array((30, 70, 35)) + rng.normal(0, 12, 3)
            for _ in range(int(rng.integers(2, 6))):
                spot = centre + rng.normal(0, size / 3, 2)
                radius = max(int(size * rng.uniform(0.2, 0.45)), 1)
                shade = spot + size * 0.25 * np.array([np.cos(sun), np.sin(sun)])
                _shade_circle(image, shade, radius)
                cv2.circle(image, _pt(spot), radius, _bgr(green), -1, cv2.LINE_AA)
        elif kind == "rock":
            grey = rng.uniform(80, 170) + rng.normal(0, 8, 3)
            axes = (max(int(size / 2), 1), max(int(size * rng.uniform(0.2, 0.45)), 1))
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(image, _pt(centre), axes, angle, 0, 360, _bgr(grey), -1, cv2.LINE_AA)
        elif kind == "road":
            angle = rng.uniform(0, np.pi)
            step = np.array([np.cos(angle), np.sin(angle)]) * side * 2
            road = np.array((90, 95, 100)) + rng.normal(0, 10, 3)
            thickness = max(int(size * 0.5), 2)
            cv2.line(image, _pt(centre - step), _pt(centre + step), _bgr(road), thickness)
            mark = max(thickness // 6, 1)
            for t in np.arange(-1.0, 1.0, 0.04):  # a dashed centre line
                start, stop = centre + step * t, centre + step * (t + 0.015)
                cv2.line(image, _pt(start), _pt(stop), (215, 220, 220), mark)
        else:
            length = size * rng.uniform(1, 2)
            polygon = _rectangle(centre, length, length / rng.uniform(1.3, 3), rng.uniform(0, 180))
            _shade_polygon(image, polygon, 0.5)


def _snow(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Patchy snow: the ground blended towards white under a smooth mask."""
    height, width = image.shape[:2]
    low = rng.random((max(height // 24, 2), max(width // 24, 2)), dtype=np.float32)
    cover = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    cover = np.clip(cover * rng.uniform(0.6, 1.2) + rng.uniform(0.2, 0.5), 0, 1)[..., None]
    white = np.array((235, 232, 228), np.float32)
    return (image * (1 - cover) + white * cover).astype(np.uint8)


def _weather(rng: np.random.Generator, image: np.ndarray, mode: WeatherMode) -> np.ndarray:
    """Lighting, contrast, tint and sensor noise of the weather mode, over the finished scene."""
    pixels = image.astype(np.float32)
    if mode is WeatherMode.NIGHT:
        gain, contrast, noise = rng.uniform(0.3, 0.55), rng.uniform(0.6, 0.9), rng.uniform(5, 12)
        tint = np.array((1.15, 1.0, 0.8)) if rng.random() < 0.5 else np.array((0.8, 1.2, 0.8))
    elif mode is WeatherMode.WINT:
        gain, contrast, noise = rng.uniform(0.9, 1.1), rng.uniform(0.55, 0.9), rng.uniform(2, 6)
        tint = np.array((1.08, 1.0, 0.95))
    else:
        gain, contrast, noise = rng.uniform(0.75, 1.25), rng.uniform(0.75, 1.2), rng.uniform(1, 6)
        tint = 1 + rng.normal(0, 0.05, 3)
    mean = pixels.mean()
    pixels = ((pixels - mean) * contrast + mean) * gain * tint
    pixels += rng.normal(0, noise, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _hard_object(
    rng: np.random.Generator,
    image: np.ndarray,
    base: int,
    side: int,
    sun: float,
    placed: list[np.ndarray],
) -> np.ndarray | None:
    """Draws one object at a free-enough spot; returns its box ``[x1, y1, x2, y2]`` or ``None``.

    A new object may cover up to 35% of an earlier one (and be covered so), never more.
    """
    height, width = image.shape[:2]
    shape, relative, aspect = _FORMS.get(base, _FORMS[2])
    length = side * float(np.exp(rng.uniform(*np.log(_CAR_LENGTH)))) * relative
    breadth = max(length / (aspect * rng.uniform(0.9, 1.1)), 2.0)
    angle = float(rng.uniform(0, 180))
    for _ in range(20):
        centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        polygon = _rectangle(centre, length, breadth, angle)
        extent = _extent(polygon, shape, centre, length, angle)
        xyxy = np.array([*extent.min(axis=0), *extent.max(axis=0)])
        if xyxy[0] < 0 or xyxy[1] < 0 or xyxy[2] > width or xyxy[3] > height:
            continue
        if all(_covered(xyxy, other) <= 0.35 and _covered(other, xyxy) <= 0.35 for other in placed):
            colour = _PALETTE[rng.integers(len(_PALETTE))] + rng.normal(0, 14, 3)
            shadow = polygon + length * 0.12 * np.array([np.cos(sun), np.sin(sun)])
            _shade_polygon(image, shadow, 0.45)
            _draw_form(image, shape, polygon, centre, length, breadth, angle, colour)
            return xyxy
    return None


def _draw_form(
    image: np.ndarray,
    shape: str,
    polygon: np.ndarray,
    centre: np.ndarray,
    length: float,
    breadth: float,
    angle: float,
    colour: np.ndarray,
) -> None:
    """The top-down look of a class: proportions and details, in the object's own colour."""
    dark, light = colour * 0.55, np.minimum(colour * 1.3 + 25, 255)
    cv2.fillPoly(image, [_int(polygon)], _bgr(colour), cv2.LINE_AA)
    along = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    across = np.array([-along[1], along[0]])
    if shape == "tank":
        cv2.circle(image, _pt(centre), max(int(breadth * 0.3), 1), _bgr(dark), -1, cv2.LINE_AA)
        cv2.line(
            image, _pt(centre), _pt(centre + along * length * 0.8), _bgr(dark), _w(breadth / 8)
        )
    elif shape == "truck":
        cab = _rectangle(centre + along * length * 0.4, length * 0.2, breadth, angle)
        cv2.fillPoly(image, [_int(cab)], _bgr(light), cv2.LINE_AA)
        gap = centre + along * length * 0.28
        cv2.line(
            image,
            _pt(gap - across * breadth / 2),
            _pt(gap + across * breadth / 2),
            _bgr(dark),
            _w(length / 30),
        )
    elif shape == "car":
        glass = _rectangle(centre + along * length * 0.12, length * 0.18, breadth * 0.8, angle)
        cv2.fillPoly(image, [_int(glass)], _bgr(dark), cv2.LINE_AA)
    elif shape == "gun":
        start, stop = centre - along * length * 0.5, centre + along * length * 0.9
        cv2.line(image, _pt(start), _pt(stop), _bgr(dark), _w(breadth / 3))
    else:  # building: two roof halves in sun and shade, a ridge
        half = _rectangle(centre + across * breadth / 4, length, breadth / 2, angle)
        cv2.fillPoly(image, [_int(half)], _bgr(light), cv2.LINE_AA)
        cv2.line(
            image,
            _pt(centre - along * length / 2),
            _pt(centre + along * length / 2),
            _bgr(dark),
            _w(breadth / 12),
        )


def _extent(
    polygon: np.ndarray, shape: str, centre: np.ndarray, length: float, angle: float
) -> np.ndarray:
    """The points an object covers: its body, and the barrel that sticks out of a tank or gun."""
    reach = {"tank": 0.8, "gun": 0.9}.get(shape)
    if reach is None:
        return polygon
    along = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    return np.vstack([polygon, centre + along * length * reach])


def _rectangle(centre: np.ndarray, length: float, breadth: float, angle: float) -> np.ndarray:
    return cv2.boxPoints(((float(centre[0]), float(centre[1])), (length, breadth), angle))


def _covered(a: np.ndarray, b: np.ndarray) -> float:
    """The share of box ``a`` that box ``b`` covers."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    area = (a[2] - a[0]) * (a[3] - a[1])
    return float(max(w, 0) * max(h, 0) / area) if area > 0 else 1.0


def _shade_polygon(image: np.ndarray, polygon: np.ndarray, strength: float) -> None:
    overlay = image.copy()
    cv2.fillPoly(overlay, [_int(polygon)], (10, 10, 10), cv2.LINE_AA)
    cv2.addWeighted(overlay, strength, image, 1 - strength, 0, dst=image)


def _shade_circle(image: np.ndarray, centre: np.ndarray, radius: int) -> None:
    overlay = image.copy()
    cv2.circle(overlay, _pt(centre), radius, (10, 10, 10), -1, cv2.LINE_AA)
    cv2.addWeighted(overlay, 0.4, image, 0.6, 0, dst=image)


def _int(points: np.ndarray) -> np.ndarray:
    return np.round(points).astype(np.int32)


def _pt(point: np.ndarray) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))


def _bgr(colour: np.ndarray) -> tuple[int, int, int]:
    b, g, r = np.clip(colour, 0, 255)
    return int(b), int(g), int(r)


def _w(thickness: float) -> int:
    return max(round(thickness), 1)
