from __future__ import annotations

import numpy as np
import pytest

from azaion_training.infer.preprocess import Letterbox, to_input


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


SHAPES = [
    ((240, 320), (128, 128)),  # landscape, bars top and bottom
    ((320, 240), (128, 128)),  # portrait, bars left and right
    ((720, 1280), (640, 640)),  # HD into the training size
    ((720, 1280), (1280, 1280)),  # HD into the export size: no resize, bars only
    ((100, 100), (128, 128)),  # smaller than the input: scaled up
    ((101, 333), (128, 160)),  # odd sizes, non-square input: uneven bars
    ((3, 3000), (64, 64)),  # extremely thin: each side at least 1 pixel
]


@pytest.mark.parametrize(("source_hw", "target_hw"), SHAPES)
def test_letterbox_is_pixel_identical_to_ultralytics(
    source_hw: tuple[int, int], target_hw: tuple[int, int]
) -> None:
    from ultralytics.data.augment import LetterBox

    image = _image(*source_hw)
    theirs = LetterBox(target_hw, auto=False, scaleup=True, center=True)(image=image)
    ours = Letterbox.fit(source_hw=source_hw, target_hw=target_hw).apply(image)
    assert ours.shape == (*target_hw, 3)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(("source_hw", "target_hw"), SHAPES)
def test_boxes_to_source_inverts_like_ultralytics_scale_boxes(
    source_hw: tuple[int, int], target_hw: tuple[int, int]
) -> None:
    from ultralytics.utils.ops import scale_boxes

    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 1, (20, 2, 2)) * np.array(target_hw[::-1])
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)
    theirs = scale_boxes(target_hw, boxes.copy(), source_hw)
    ours = Letterbox.fit(source_hw=source_hw, target_hw=target_hw).boxes_to_source(boxes)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_a_box_round_trips_through_the_letterbox() -> None:
    letterbox = Letterbox.fit(source_hw=(240, 320), target_hw=(128, 128))
    assert (letterbox.resized_hw, letterbox.top, letterbox.bottom) == ((96, 128), 16, 16)
    in_input = np.array([[40 * 0.4, 60 * 0.4 + 16, 200 * 0.4, 180 * 0.4 + 16]], np.float32)
    np.testing.assert_allclose(letterbox.boxes_to_source(in_input), [[40, 60, 200, 180]], atol=1e-4)


def test_boxes_to_source_clips_to_the_frame() -> None:
    letterbox = Letterbox.fit(source_hw=(240, 320), target_hw=(128, 128))
    in_the_bars = np.array([[-5, 0, 140, 128]], np.float32)
    np.testing.assert_allclose(letterbox.boxes_to_source(in_the_bars), [[0, 0, 320, 240]])


def test_apply_refuses_an_image_of_another_size() -> None:
    letterbox = Letterbox.fit(source_hw=(240, 320), target_hw=(128, 128))
    with pytest.raises(ValueError, match="fitted to"):
        letterbox.apply(_image(100, 100))


def test_to_input_is_rgb_chw_scaled_like_ultralytics_predictor() -> None:
    images = [_image(64, 64, seed) for seed in range(3)]
    batch = to_input(images)
    expected = (
        np.stack([img[..., ::-1].transpose(2, 0, 1) for img in images]).astype(np.float32) / 255
    )
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, expected, atol=1e-7)


def test_to_input_pads_a_short_batch_with_zero_images() -> None:
    batch = to_input([_image(32, 32)], batch_size=4)
    assert batch.shape == (4, 3, 32, 32)
    assert batch[0].any() and not batch[1:].any()


def test_to_input_refuses_more_images_than_the_batch() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        to_input([_image(8, 8)] * 3, batch_size=2)
