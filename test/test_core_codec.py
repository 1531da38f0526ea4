"""Image codec: ROS encodings, row padding, compressed images, errors naming the field."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tactile_grasp_predictor.errors import FrameError
from tactile_grasp_predictor.image_codec import (
    SUPPORTED_ENCODINGS,
    decode_compressed,
    decode_image,
    encode_image,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "8UC3", "rgba8", "bgra8", "8UC4"])
def test_colour_round_trip(encoding: str) -> None:
    step, data = encode_image(RGB, encoding)
    out = decode_image(encoding, 5, 7, step, data)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, RGB)


def test_channel_orders_are_what_ros_says() -> None:
    px = np.array([[[10, 20, 30]]], np.uint8)  # R=10 G=20 B=30
    assert encode_image(px, "rgb8")[1] == bytes([10, 20, 30])
    assert encode_image(px, "bgr8")[1] == bytes([30, 20, 10])
    assert encode_image(px, "8UC3")[1] == bytes([30, 20, 10])  # OpenCV passthrough is BGR
    assert encode_image(px, "bgra8")[1] == bytes([30, 20, 10, 255])
    assert decode_image("bgr8", 1, 1, 3, bytes([30, 20, 10])).tolist() == [[[10, 20, 30]]]
    assert decode_image("8UC3", 1, 1, 3, bytes([30, 20, 10])).tolist() == [[[10, 20, 30]]]


def test_mono_is_replicated() -> None:
    step, data = encode_image(RGB, "mono8")
    assert step == 7 and len(data) == 35
    out = decode_image("mono8", 5, 7, step, data)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    luma = RGB.astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(out[..., 0].astype(float) - luma).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "bgra8"])
def test_row_padding_is_skipped(encoding: str) -> None:
    step, data = encode_image(RGB, encoding)
    rows = np.frombuffer(data, np.uint8).reshape(5, step)
    padded = np.concatenate([rows, np.full((5, 11), 77, np.uint8)], axis=1)
    out = decode_image(encoding, 5, 7, step + 11, padded.tobytes())
    np.testing.assert_array_equal(out, decode_image(encoding, 5, 7, step, data))
    if encoding != "mono8":
        np.testing.assert_array_equal(out, RGB)


def test_accepts_arrays_and_copies() -> None:
    step, data = encode_image(RGB, "rgb8")
    buf = np.frombuffer(bytearray(data), np.uint8)
    out = decode_image("rgb8", 5, 7, step, buf)
    buf[:] = 0  # the decoded image must not alias the message buffer
    np.testing.assert_array_equal(out, RGB)
    out2 = decode_image("rgb8", 5, 7, step, list(data))  # array.array / list of ints from rclpy
    np.testing.assert_array_equal(out2, RGB)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("yuv422", 5, 7, 14, b"\0" * 70), "encoding"),
        (("16UC1", 5, 7, 14, b"\0" * 70), "encoding"),
        (("rgb8", 0, 7, 21, b""), "height"),
        (("rgb8", 5, 7, 20, b"\0" * 100), "step"),
        (("rgb8", 5, 7, 21, b"\0" * 104), "data"),
        (("rgb8", 5, 7, 21, b"\0" * 106), "data"),
        (("rgb8", 5, 7.0, 21, b"\0" * 105), "width"),
        (("rgb8", 100000, 7, 21, b"\0" * 21), "height"),
    ],
)
def test_bad_images_raise_frame_error_naming_the_field(args: tuple, field: str) -> None:
    with pytest.raises(FrameError, match=field):
        decode_image(*args)


def test_bad_endianness_flag() -> None:
    with pytest.raises(FrameError, match="is_bigendian"):
        decode_image("rgb8", 1, 1, 3, b"\0\0\0", is_bigendian=7)


@pytest.mark.parametrize(("ext", "fmt"), [(".png", "png"), (".png", "bgr8; png compressed bgr8"),
                                          (".jpg", "jpeg"), (".jpg", "rgb8; jpeg compressed bgr8")])
def test_compressed(ext: str, fmt: str) -> None:
    big = cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_NEAREST)
    ok, enc = cv2.imencode(ext, big[:, :, ::-1])  # OpenCV encodes BGR
    assert ok
    out = decode_compressed(fmt, enc.tobytes())
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    if ext == ".png":
        np.testing.assert_array_equal(out, big)
    else:
        assert np.abs(out.astype(int) - big.astype(int)).mean() < 25


def test_compressed_errors() -> None:
    with pytest.raises(FrameError, match="format"):
        decode_compressed("tiff", b"xx")
    with pytest.raises(FrameError, match="data"):
        decode_compressed("jpeg", b"")
    with pytest.raises(FrameError, match="data"):
        decode_compressed("jpeg", b"not a jpeg at all")


def test_encode_rejects_non_rgb() -> None:
    with pytest.raises(FrameError, match="image"):
        encode_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(FrameError, match="image"):
        encode_image(np.zeros((4, 4, 3), np.float32), "rgb8")
    with pytest.raises(FrameError, match="encoding"):
        encode_image(RGB, "jpeg")


def test_supported_list_is_accurate() -> None:
    for enc in SUPPORTED_ENCODINGS:
        step, data = encode_image(RGB, enc)
        assert decode_image(enc, 5, 7, step, data).shape == (5, 7, 3)
