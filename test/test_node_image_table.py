"""Live and offline refuse exactly the same frames: one image table, two paths (#19).

Every message below goes through the node's decoder (``ros.conversions.image_to_rgb`` on a
real ``sensor_msgs/Image``) and through the replay's (the same message serialised to CDR as a
bag stores it, then ``bag_source.check_image_meta`` and ``LazyImage.decode``). Both must
accept it or both refuse it (naming the same field), and when accepted give the same pixels.
The messages cover the whole encoding table, its near misses (case, spaces, bit depth,
channels), both endianness flags and invalid ones, padded, short and long rows and data, with
the node's default ``image_encodings`` and with the whole table accepted.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image

from tactile_grasp_predictor.errors import FrameError
from tactile_grasp_predictor.image_codec import ENCODINGS, SUPPORTED_ENCODINGS
from tactile_grasp_predictor.replay.bag_source import (
    LazyImage,
    check_image_meta,
    default_encodings,
    parse_image_meta,
)
from tactile_grasp_predictor.ros.conversions import image_to_rgb

NEAR_MISSES = ["RGB8", "Rgb8", " rgb8", "rgb8 ", "Mono8", "8uc3", "8uc1", "BGRA8", "rgba 8", "mono16",
               "rgb16", "16UC1", "16UC3", "32FC1", "8SC3", "8UC2", "bayer_rggb8", "yuv422", "uyvy", "jpeg",
               "", "rgb"]
H, W = 3, 5


def _field(message: str) -> str:
    found = re.search(r"Image\.(\w+)", message)
    assert found, message
    return found.group(1)


def _messages() -> list[tuple[Image, str]]:
    rng = np.random.default_rng(7)
    out = []
    for enc in list(ENCODINGS) + NEAR_MISSES:
        c = ENCODINGS[enc].channels if enc in ENCODINGS else 3
        for step, extra, big in itertools.product((W * c, W * c + 3, W * c - 1), (0, -1, 2), (0, 1, 2, 255)):
            if big > 1 and (step != W * c or extra):  # one fault at a time is enough for the flag
                continue
            msg = Image(height=H, width=W, encoding=enc, is_bigendian=big, step=max(step, 0))
            msg.data = rng.integers(0, 256, max(step * H + extra, 0), dtype=np.uint8).tobytes()
            out.append((msg, f"{enc!r} step={step} extra={extra} big={big}"))
    return out


def _offline(msg: Image, accepted: tuple[str, ...]) -> np.ndarray | str:
    raw = serialize_message(msg)
    meta = parse_image_meta(raw, compressed=False)
    bad = check_image_meta(meta, raw, accepted)
    if bad is not None:
        return bad
    try:
        return LazyImage(raw, meta, "bag:/cam#1").decode()
    except FrameError as exc:  # must not happen: the metadata check is the whole check
        return f"decode: {exc}"


def _live(msg: Image, accepted: tuple[str, ...]) -> np.ndarray | str:
    try:
        return image_to_rgb(msg, accepted, "/cam")
    except FrameError as exc:
        return str(exc)


@pytest.mark.parametrize("accepted", [default_encodings(), SUPPORTED_ENCODINGS],
                         ids=["node_default", "table"])
def test_live_and_offline_accept_and_refuse_the_same_frames(accepted: tuple[str, ...]) -> None:
    cases = _messages()
    assert len(cases) > 300
    n_ok = 0
    for msg, what in cases:
        live, offline = _live(msg, accepted), _offline(msg, accepted)
        if isinstance(live, str) or isinstance(offline, str):
            assert isinstance(live, str) and isinstance(offline, str), f"{what}: {live!r} / {offline!r}"
            assert not offline.startswith("decode:"), f"{what}: refused only when decoded: {offline}"
            assert _field(live) == _field(offline), f"{what}: {live} / {offline}"
        else:
            assert np.array_equal(live, offline), what
            assert live.shape == (H, W, 3) and live.dtype == np.uint8
            n_ok += 1
    expected_ok = 2 * len(accepted) * 2  # step exact or padded, is_bigendian 0 or 1, per accepted encoding
    assert n_ok == expected_ok


def test_replay_takes_the_nodes_image_encodings() -> None:
    msg = Image(height=1, width=1, encoding="rgba8", step=4, data=bytes(4))
    raw = serialize_message(msg)
    meta = parse_image_meta(raw, compressed=False)
    assert "rgba8" not in default_encodings()
    assert "not accepted" in str(check_image_meta(meta, raw, default_encodings()))
    assert check_image_meta(meta, raw, SUPPORTED_ENCODINGS) is None
