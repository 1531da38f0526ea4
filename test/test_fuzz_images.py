"""Fuzzing the image decoders: raw and compressed messages through the node's path and the replay's (#19).

``image``: generated ``sensor_msgs/Image`` messages (encodings from the table, near misses and
random text; sizes, steps, endianness flags and data lengths from plausible to absurd) go
through the node's decoder (``image_to_rgb`` with a random ``image_encodings``) and, serialised
to CDR as a bag stores them, through the replay's (``check_image_meta`` + ``LazyImage.decode``);
plus ``decode_image`` called with out-of-range values. ``compressed``: PNG and JPEG files
mutated (bit flips, truncation, declared sizes up to 2³¹, inserted and replaced bytes, odd
format fields) through ``decode_compressed`` and the replay's path.

A refusal is a :class:`FrameError`; anything else raised, or the two paths disagreeing (one
accepts what the other refuses, or their pixels differ), is a crash.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image

from helpers.fuzz import ACCEPTED, SEEDS, Tally, fuzz_settings, pick, rng_number, rng_text
from tactile_grasp_predictor.errors import FrameError
from tactile_grasp_predictor.image_codec import (
    ENCODINGS,
    MAX_SIDE,
    SUPPORTED_ENCODINGS,
    decode_compressed,
    decode_image,
)
from tactile_grasp_predictor.replay.bag_source import (
    LazyImage,
    check_image_meta,
    default_encodings,
    parse_image_meta,
)
from tactile_grasp_predictor.ros.conversions import image_to_rgb

NEAR = [
    "RGB8",
    "Bgr8",
    " rgb8",
    "mono8 ",
    "8uc3",
    "mono16",
    "16UC1",
    "32FC1",
    "bayer_rggb8",
    "yuv422",
    "",
    "jpeg",
]
SIDES = [MAX_SIDE, MAX_SIDE + 1, 4097, 2**31, 2**32 - 1]


def _agree(live: Any, offline: Any, what: str) -> str:
    """Return ACCEPTED when both accepted the same pixels; raise FrameError when both refused."""
    if isinstance(live, FrameError) and isinstance(offline, FrameError):
        raise live
    if isinstance(live, FrameError) or isinstance(offline, FrameError):
        raise AssertionError(f"{what}: the paths disagree: live {live!r}, offline {offline!r}")
    assert live.dtype == np.uint8 and live.ndim == 3 and live.shape[2] == 3, live.shape
    assert np.array_equal(live, offline), f"{what}: the paths decode different pixels"
    return ACCEPTED


def _offline(raw: bytes, compressed: bool, accepted: tuple[str, ...]) -> np.ndarray | FrameError:
    meta = parse_image_meta(raw, compressed=compressed)
    bad = check_image_meta(meta, raw, accepted)
    if bad is not None:
        return FrameError(bad)
    try:
        return LazyImage(raw, meta, "fuzz.bag:/img#1").decode()
    except FrameError as exc:
        return exc


# ------------------------------------------------------------------------------ raw
NODE_DEFAULT = default_encodings()
FIELD_FAULTS = ("encoding", "size", "step", "data", "endian")


@st.composite
def raw_messages(draw: st.DrawFn) -> tuple[Image, tuple[str, ...]]:
    """A message, valid but for the fields a drawn set of faults spoils (none: about one in four).

    Hypothesis draws which fields are spoiled; a drawn seed the values (cheap at 10,000 cases).
    """
    faults = draw(st.sets(st.sampled_from(FIELD_FAULTS), max_size=2))
    rng = np.random.default_rng(draw(SEEDS))

    enc = pick(rng, SUPPORTED_ENCODINGS)
    if "encoding" in faults:
        enc = pick(rng, NEAR) if rng.integers(2) else rng_text(rng, 10)
    c = ENCODINGS[enc].channels if enc in ENCODINGS else pick(rng, [1, 3, 4])
    h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
    if "size" in faults:
        h = int(rng.integers(0, 10)) if rng.integers(2) else pick(rng, SIDES)
        w = pick(rng, [0, *SIDES])
    step = w * c + pick(rng, [0, 0, 1, 5])
    if "step" in faults:
        step = int(rng.integers(0, w * c + 1)) if rng.integers(2) else int(rng.integers(0, 2**32))
    step %= 2**32
    n = step * h if step * h <= 4096 else int(rng.integers(0, 4097))
    if "data" in faults:
        n = max(0, n + pick(rng, [-1, 1, -3, 7]))
    big = int(rng.integers(2, 256)) if "endian" in faults else int(rng.integers(0, 2))
    msg = Image(height=h % 2**32, width=w % 2**32, encoding=enc, step=step, is_bigendian=big)
    msg.data = rng.bytes(n)
    choice = int(rng.integers(3))
    accepted = (
        NODE_DEFAULT
        if choice == 0
        else SUPPORTED_ENCODINGS
        if choice == 1
        else tuple(e for e in SUPPORTED_ENCODINGS if rng.integers(2)) or ("rgb8",)
    )
    return msg, accepted


def _raw_case(msg: Image, accepted: tuple[str, ...]) -> str:
    try:
        live: Any = image_to_rgb(msg, accepted, "/img")
    except FrameError as exc:
        live = exc
    return _agree(live, _offline(serialize_message(msg), False, accepted), "raw")


def _weird(rng: np.random.Generator) -> Any:
    """A value no message field could hold: huge ints, floats, None, text, bools, lists of ints."""
    return pick(rng, [rng_number(rng), None, rng_text(rng, 3), [int(v) for v in rng.integers(-300, 300, 3)]])


@st.composite
def api_calls(draw: st.DrawFn) -> tuple[Any, ...]:
    """``decode_image`` called directly with values no message could hold (which ones: a drawn seed)."""
    rng = np.random.default_rng(draw(SEEDS))

    def field(good: Any) -> Any:
        return good if rng.integers(3) else _weird(rng)

    data = pick(
        rng,
        [
            rng.bytes(int(rng.integers(0, 13))),
            [int(v) for v in rng.integers(-(2**40), 2**40, 3)],
            rng_text(rng, 5),
            None,
            np.arange(3, dtype=np.float32),
            bytes(3),
        ],
    )
    return (
        field(pick(rng, SUPPORTED_ENCODINGS)),
        field(int(rng.integers(0, 4))),
        field(int(rng.integers(0, 4))),
        field(int(rng.integers(0, 13))),
        data,
        field(int(rng.integers(0, 2))),
    )


def _api_case(args: tuple[Any, ...]) -> str:
    out = decode_image(*args)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    return ACCEPTED


RAW = Tally("image", expected=(FrameError,))


@fuzz_settings(default_cases=300)
@given(
    st.sampled_from(["message", "message", "message", "api"]).flatmap(
        lambda kind: (raw_messages() if kind == "message" else api_calls()).map(lambda v: (kind, v))
    )
)
def _raw(case: tuple[str, Any]) -> None:
    kind, value = case
    if kind == "message":
        msg, accepted = value
        RAW.run(lambda: _raw_case(msg, accepted), lambda: f"{msg!r} accepted={accepted}"[:600], kind)
    else:
        RAW.run(lambda: _api_case(value), lambda: repr(value)[:600], kind)


def test_fuzz_raw_images_both_paths_agree_and_refuse_by_name() -> None:
    _raw()
    RAW.finish(min_cases=200)


# ------------------------------------------------------------------------------ compressed
def _bases() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    out = []
    sources: tuple[tuple[str, np.ndarray, list[int]], ...] = (
        (".png", img, []),
        (".png", img[:, :, 0], []),
        (".png", img.astype(np.uint16) * 257, []),
        (".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80]),
        (".jpg", img[:, :, 0], []),
        (".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    )
    for ext, src, params in sources:
        ok, enc = cv2.imencode(ext, src, params)
        assert ok
        out.append(("png" if ext == ".png" else "jpeg", enc.tobytes()))
    return out


BASES = _bases()


def _declare(data: bytearray, h: int, w: int) -> None:
    """Patch the declared size of a PNG (IHDR) or JPEG (first SOFn) in place."""
    if data[:4] == b"\x89PNG" and len(data) >= 24:
        data[16:24] = struct.pack(">II", w % 2**32, h % 2**32)
        return
    for i in range(2, len(data) - 8):
        if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", h % 2**16, w % 2**16)
            return


COMPRESSED_MUTATIONS = ("flip", "truncate", "declare", "insert", "replace", "garbage", "none")


@st.composite
def compressed_messages(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """A PNG/JPEG spoiled one way (hypothesis draws the way; a drawn seed where and how much)."""
    how = draw(st.sampled_from(COMPRESSED_MUTATIONS))
    rng = np.random.default_rng(draw(SEEDS))
    kind, base = pick(rng, BASES)
    data = bytearray(base)
    if how == "flip":
        for _ in range(int(rng.integers(1, 17))):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    elif how == "truncate":
        data = data[: int(rng.integers(0, len(data) + 1))]
    elif how == "declare":
        h, w = (int(rng.integers(0, 70001)) if rng.integers(2) else int(rng.integers(0, 2**32)) for _ in "hw")
        _declare(data, h, w)
    elif how == "insert":
        i = int(rng.integers(0, len(data) + 1))
        data[i:i] = rng.bytes(int(rng.integers(1, 65)))
    elif how == "replace":
        i = int(rng.integers(len(data)))
        chunk = rng.bytes(int(rng.integers(1, 65)))
        data[i : i + len(chunk)] = chunk
    elif how == "garbage":
        data = bytearray(
            pick(rng, [b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"BM", b"GIF89a", b""])
            + rng.bytes(int(rng.integers(0, 201)))
        )
    fmt = pick(
        rng,
        [
            kind,
            kind,
            "jpeg",
            "png",
            "bgr8; jpeg compressed bgr8",
            "rgb8; png compressed rgb8",
            "tiff",
            "",
            rng_text(rng, 12),
        ],
    )
    return fmt, bytes(data), how


def _compressed_case(fmt: str, data: bytes) -> str:
    try:
        live: Any = decode_compressed(fmt, data)
    except FrameError as exc:
        live = exc
    msg = CompressedImage(format=fmt, data=data)
    return _agree(live, _offline(serialize_message(msg), True, SUPPORTED_ENCODINGS), "compressed")


COMPRESSED = Tally("compressed", expected=(FrameError,))


@fuzz_settings(default_cases=200)
@given(compressed_messages())
def _compressed(case: tuple[str, bytes, str]) -> None:
    fmt, data, how = case
    COMPRESSED.run(
        lambda: _compressed_case(fmt, data),
        lambda: f"format={fmt!r} {len(data)} bytes {data[:48].hex()}",
        how,
    )


def test_fuzz_compressed_images_are_bounded_and_refused_by_name() -> None:
    _compressed()
    COMPRESSED.finish(min_cases=150)
