import cv2
import numpy as np
import pytest

from edgecnn.common.errors import InputError
from edgecnn.runtime.preprocess import AREA_STEP_MARGIN, Preprocessing, area_step, resized

GRAY = Preprocessing(height=28, width=28, channels=1)


def test_gray_image_becomes_a_normalized_batch_of_one():
    img = np.zeros((8, 8), np.uint8)
    img[:, 4:] = 255
    batch, single = GRAY.batch(img)
    assert single
    assert batch.shape == (1, 28, 28, 1) and batch.dtype == np.float32
    assert batch.min() == 0.0 and batch.max() == 1.0
    assert batch[0, :, :10].max() == 0.0 and batch[0, :, -10:].min() == 1.0


def test_bgr_frame_is_read_in_opencv_order():
    blue = np.zeros((40, 40, 3), np.uint8)
    blue[..., 0] = 255  # B in OpenCV's BGR order
    value = GRAY(blue)[0, 0, 0, 0]
    assert value == pytest.approx(29 / 255, abs=1 / 255)  # 0.114 * 255, not 0.299 * 255 (RGB order)


def test_rgb_model_gets_rgb_channels():
    pre = Preprocessing(height=4, width=4, channels=3)
    blue = np.zeros((4, 4, 3), np.uint8)
    blue[..., 0] = 255
    out = pre(blue)[0, 0, 0]
    assert out.tolist() == [0.0, 0.0, 1.0]
    assert pre(np.full((4, 4), 255, np.uint8)).shape == (1, 4, 4, 3)


def test_batches_of_images_and_preprocessed_arrays():
    batch, single = GRAY.batch(np.zeros((5, 8, 8), np.uint8))
    assert batch.shape == (5, 28, 28, 1) and not single
    ready = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    out, single = GRAY.batch(ready)
    assert not single and np.array_equal(out, ready)
    out, single = GRAY.batch(ready[0])
    assert single and out.shape == (1, 28, 28, 1)


def test_a_list_of_images_of_different_sizes_and_colours_is_a_batch():
    bright_gray, dark_bgr = np.full((8, 8), 255, np.uint8), np.zeros((40, 30, 3), np.uint8)
    batch, single = GRAY.batch([bright_gray, dark_bgr])
    assert not single and batch.shape == (2, 28, 28, 1)
    assert batch[0].min() == 1.0 and batch[1].max() == 0.0
    with pytest.raises(InputError, match="expected a gray, BGR or BGRA image"):
        GRAY.batch([bright_gray, np.zeros((4, 4, 2), np.uint8)])


def test_inversion_and_normalization():
    pre = Preprocessing(height=2, width=2, channels=1, mean=0.5, std=0.5, invert=True)
    out = pre(np.array([[0, 255], [0, 255]], np.uint8))
    assert out[0, :, 0, 0].tolist() == [1.0, 1.0] and out[0, :, 1, 0].tolist() == [-1.0, -1.0]


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 8, 8), np.uint8), "empty"),
        (np.full((28, 28, 1), np.nan, np.float32), "NaN"),
        (np.zeros((5, 5), np.float32), "float array shaped (28, 28, 1)"),
        (np.zeros((8, 8), np.int16), "int16"),
        (np.zeros((2, 2, 8, 8, 1), np.uint8), "shape"),
    ],
)
def test_bad_input_names_what_was_expected(bad, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GRAY(bad)


def test_record_round_trip_and_incomplete_record():
    pre = Preprocessing(height=32, width=16, channels=3, mean=0.1, std=0.2, invert=True)
    record = pre.to_dict()
    assert record["layout"] == "NHWC" and record["color"] == "rgb"
    assert Preprocessing.from_dict(record) == pre
    with pytest.raises(TypeError, match="lacks width, channels"):
        Preprocessing.from_dict({"height": 28})


@pytest.mark.parametrize("depth, read", [(np.uint8, True), (np.uint16, True), (np.float32, False)])
def test_image_files_of_each_sample_depth(tmp_path, depth, read):
    """8- and 16-bit images are read as 8-bit frames; a float image, which OpenCV decodes only unconverted, is
    refused with the reason rather than as "not an image"."""
    import cv2

    from edgecnn.common.errors import ImageReadError
    from edgecnn.runtime.preprocess import read_image

    path = tmp_path / "image.tiff"
    gray = np.linspace(0, 1, 28 * 28).reshape(28, 28)
    scale = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[depth]
    assert cv2.imwrite(str(path), (gray * scale).astype(depth))
    if read:
        frame = read_image(path)
        assert frame.shape == (28, 28, 3) and frame.dtype == np.uint8
        assert abs(int(frame[-1, -1, 0]) - 255) <= 1 and frame[0, 0, 0] == 0
    else:
        with pytest.raises(ImageReadError, match="its samples are float32, which have no fixed range to scale"):
            read_image(path)


@pytest.mark.parametrize("rows, cols, height, width, step", [
    (480, 640, 28, 28, 2),  # gcd 160, but 640x480 / 4 = 160x120 would leave less than 8 x 28 rows
    (1080, 1920, 28, 28, 4),
    (1080, 1920, 8, 8, 15),
    (479, 640, 28, 28, 1),  # no common factor: one step
    (96, 96, 28, 28, 1),  # less than 8x the model's size: one step
])
def test_area_step_is_the_largest_whole_factor_that_keeps_the_margin(rows, cols, height, width, step):
    assert area_step(rows, cols, height, width) == step
    bigger = range(step + 1, min(rows, cols) + 1)
    assert not any(rows % k == 0 and cols % k == 0 and rows // k >= AREA_STEP_MARGIN * height
                   and cols // k >= AREA_STEP_MARGIN * width for k in bigger)


def test_a_large_shrink_takes_two_steps_within_a_grey_level_of_one():
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (480, 640), dtype=np.uint8), (0, 0), 1.5)
    one = cv2.resize(frame, (28, 28), interpolation=cv2.INTER_AREA)
    two = resized(frame, 28, 28)
    first = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)  # area_step 2
    assert np.array_equal(two, cv2.resize(first, (28, 28), interpolation=cv2.INTER_AREA))
    assert np.abs(two.astype(int) - one).max() <= 1 and not np.array_equal(two, one)
    odd = frame[:479]  # no whole factor divides 479 and 640: the one step, exactly
    assert np.array_equal(resized(odd, 28, 28), cv2.resize(odd, (28, 28), interpolation=cv2.INTER_AREA))
    assert resized(frame[:20, :20], 28, 28).shape == (28, 28)  # enlarging: bilinear


@pytest.mark.parametrize("shape", [(480, 640, 3), (480, 640, 4), (480, 640), (481, 641, 3)])
def test_colour_models_resize_before_converting_with_the_same_result(shape):
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    pre = Preprocessing(height=32, width=32, channels=3)
    converted_first = resized(pre._color(frame), 32, 32)
    assert np.array_equal(pre.image(frame), converted_first)
    if frame.ndim == 3:  # BGR(A): its first three channels, resized, in reverse order
        assert np.array_equal(pre.image(frame), resized(frame[..., :3], 32, 32)[..., ::-1])
