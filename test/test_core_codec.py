"""Image codec: ROS encodings, row padding, compressed images, errors naming the field."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from tactile_grasp_predictor.errors import FrameError
from tactile_grasp_predictor.image_codec import (
    ENCODINGS,
    MAX_DATA_BYTES,
    MAX_SIDE,
    SUPPORTED_ENCODINGS,
    check_compressed,
    check_image,
    compressed_size,
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


# --------------------------------------------------------------------- the table's refusals (#19)
@pytest.mark.parametrize(("encoding", "says"), [
    ("RGB8", "did you mean 'rgb8'"), ("Mono8", "did you mean 'mono8'"), ("8uc3", "did you mean '8UC3'"),
    (" rgb8", "did you mean 'rgb8'"), ("bgra8 ", "did you mean 'bgra8'"), ("MONO16", "did you mean 'mono16'"),
    ("mono16", "16 bits per channel"), ("16UC1", "16 bits per channel"), ("32FC1", "32/64-bit"),
    ("8SC3", "signed 8-bit"), ("bayer_rggb8", "Bayer"), ("yuv422", "YUV"), ("", "not supported"),
    ("jpeg", "not supported"),
])
def test_encodings_outside_the_table_are_refused_by_name(encoding: str, says: str) -> None:
    with pytest.raises(FrameError, match=f"Image.encoding: .*{says}"):
        check_image(encoding, 1, 1, 4, 0, 4)


def test_the_table_is_exact_and_accepted_only_narrows_it() -> None:
    assert set(ENCODINGS) == set(SUPPORTED_ENCODINGS) == {
        "rgb8", "bgr8", "8UC3", "mono8", "8UC1", "rgba8", "bgra8", "8UC4"}
    assert all(e.bit_depth == 8 and e.channels in (1, 3, 4) for e in ENCODINGS.values())
    assert check_image("rgba8", 1, 1, 4, 1, 4).channels == 4  # big-endian flag: 8-bit data has no order
    with pytest.raises(FrameError, match="not accepted"):
        check_image("rgba8", 1, 1, 4, 0, 4, accepted=("rgb8", "bgr8"))
    with pytest.raises(FrameError, match="did you mean"):  # a table refusal stays one with any accepted
        check_image("RGB8", 1, 1, 3, 0, 3, accepted=("RGB8",))


@pytest.mark.parametrize(("args", "field"), [
    ((4096, 4097, 4097 * 3), "height/width"),  # 16.8 M pixels > MAX_PIXELS, never allocated
    ((MAX_SIDE + 1, 1, 3), "height/width"),
    ((1, 1, MAX_DATA_BYTES + 1), "data"),  # a step as large as memory
    ((-1, 4, 12), "height/width"),
])
def test_sizes_are_bounded_before_any_allocation(args: tuple[int, int, int], field: str) -> None:
    h, w, step = args
    with pytest.raises(FrameError, match=f"Image.{field}"):
        check_image("rgb8", h, w, step, 0, step * max(h, 0))


@pytest.mark.parametrize(("data", "big"), [([300, 0, 0], 0), ([-1, 0, 0], 0), ("abc", 0), (b"\0\0\0", None),
                                           (b"\0\0\0", np.array([0, 1])), (b"\0\0\0", 2**70)])
def test_out_of_range_values_are_frame_errors(data: object, big: object) -> None:
    """Regression (#19): out-of-range values raised OverflowError instead of FrameError."""
    with pytest.raises(FrameError, match=r"Image\.(data|is_bigendian)"):
        decode_image("rgb8", 1, 1, 3, data, big)  # type: ignore[arg-type]


def test_view_only_where_asked_and_unpadded() -> None:
    step, data = encode_image(RGB, "bgr8")
    buf = np.frombuffer(bytearray(data), np.uint8)
    view = decode_image("bgr8", 5, 7, step, buf, copy=False)
    assert np.shares_memory(view, buf) and np.array_equal(view, RGB)
    assert not np.shares_memory(decode_image("bgr8", 5, 7, step, buf), buf)
    assert decode_image("mono8", 5, 7, 7, bytes(35), copy=False).flags.owndata  # mono: always converted


def _png(h: int = 48, w: int = 64) -> bytes:
    ok, enc = cv2.imencode(".png", cv2.resize(RGB, (w, h), interpolation=cv2.INTER_NEAREST))
    assert ok
    return enc.tobytes()


def _jpeg() -> bytes:
    ok, enc = cv2.imencode(".jpg", cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_NEAREST))
    assert ok
    return enc.tobytes()


def test_declared_size_is_read_from_png_and_jpeg_headers() -> None:
    assert compressed_size(_png(48, 64)) == ("png", 48, 64)
    assert compressed_size(_jpeg()) == ("jpeg", 48, 64)
    assert check_compressed("rgb8; jpeg compressed bgr8", _jpeg()) == ("jpeg", 48, 64)


def test_decompression_bomb_is_refused_from_its_header() -> None:
    """Regression (#19): a PNG declaring 20000 x 20000 was decoded into 1.2 GB."""
    png = bytearray(_png())
    png[16:24] = struct.pack(">II", 20000, 20000)  # IHDR width, height
    with pytest.raises(FrameError, match=r"declares 20000 x 20000 pixels.*refused before decoding"):
        decode_compressed("png", bytes(png))
    jpeg = bytearray(_jpeg())
    sof = next(i for i in range(2, len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] in (0xC0, 0xC2))
    jpeg[sof + 5: sof + 9] = struct.pack(">HH", 65000, 65000)  # height, width
    with pytest.raises(FrameError, match="declares 65000 x 65000"):
        decode_compressed("jpeg", bytes(jpeg))


@pytest.mark.parametrize("mutate", [
    lambda b: b[:40],  # truncated after the header
    lambda b: b[:8] + b"\0" * 8 + b[16:],  # no IHDR
    lambda b: b[:33] + bytes(x ^ 0x5A for x in b[33:]),  # garbage body
    lambda b: b"BM" + b[2:],  # a BMP signature: OpenCV would decode it, we do not
    lambda b: b"\xff\xd8\xff\xda" + b[4:],  # JPEG scan before any frame header
    lambda b: b"\xff\xd8" + b"\xff\xe0\x00",  # JPEG cut inside a segment length
])
def test_every_decoder_failure_is_a_frame_error(mutate: object) -> None:
    """Regression (#19): corrupt compressed frames raised cv2.error out of the decoder."""
    with pytest.raises(FrameError, match=r"CompressedImage\.data"):
        decode_compressed("png", mutate(_png()))  # type: ignore[operator]


def test_png_chunk_lengths_are_checked_before_decoding() -> None:
    """Found by make fuzz (#19): one flipped bit in an IDAT length made OpenCV allocate 1 GB."""
    png = bytearray(_png())
    assert png[37:41] == b"IDAT"
    length = struct.unpack(">I", png[33:37])[0]
    png[33:37] = struct.pack(">I", length | 1 << 30)
    with pytest.raises(FrameError, match=r"png chunk b'IDAT' at byte 33 declares \d+ bytes"):
        decode_compressed("png", bytes(png))
    png = bytearray(_png())
    png[45] ^= 0x01  # inside IDAT's data: its CRC no longer matches
    with pytest.raises(FrameError, match="png chunk IDAT at byte 33: CRC mismatch"):
        decode_compressed("png", bytes(png))
