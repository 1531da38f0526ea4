"""The debug view of a decision (no ROS): panels, the amplified difference, missing frames, the caption."""

from __future__ import annotations

import math

import numpy as np

from tactile_grasp_predictor.debug_view import (
    GAIN,
    PANEL_H,
    TEXT_H,
    RecentFrames,
    difference,
    render_decision,
)


def test_panels_difference_and_caption() -> None:
    ta = np.full((60, 80, 3), 100, np.uint8)
    tb = ta.copy()
    tb[:, 40:] = 110  # a faint contact on the right half
    img = render_decision(ta, tb, grasp_id=7, lift=False, p=0.2, threshold=0.5, reason="model")
    w = PANEL_H * 80 // 60
    assert img.shape == (PANEL_H + TEXT_H, 3 * w, 3) and img.dtype == np.uint8
    diff = img[:PANEL_H, 2 * w:]
    assert diff[PANEL_H // 2, w // 4].tolist() == [0, 0, 0]
    assert diff[PANEL_H // 2, 3 * w // 4].tolist() == [int(10 * GAIN)] * 3  # amplified, visible
    caption = img[PANEL_H + 2, 2]
    assert caption[0] > caption[1], "an ABORT caption is red"


def test_missing_frames_and_the_right_finger_row() -> None:
    tb = np.full((48, 64, 3), 200, np.uint8)
    img = render_decision(None, None, grasp_id=1, lift=False, p=math.nan, threshold=math.nan,
                          reason="no_pre_contact_frame", right=(None, tb[:, :, ::-1]))
    assert img.shape[0] == 2 * PANEL_H + TEXT_H
    assert img[PANEL_H // 2, 2].tolist() == img[PANEL_H // 2, img.shape[1] // 2].tolist()  # grey panels
    assert img[PANEL_H + PANEL_H // 2, img.shape[1] // 2].tolist() == [200] * 3  # the right Tb (a BGR view)


def test_difference_clips_and_recent_frames_find_the_nearest() -> None:
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.full((2, 2, 3), 200, np.uint8)
    assert difference(a, b).max() == 255
    frames = RecentFrames(size=3)
    for t in (1.0, 2.0, 3.0, 4.0):
        frames.add(t, np.full((1, 1, 3), int(t), np.uint8))
    assert frames.nearest(2.2) is not None and frames.nearest(2.2)[0, 0, 0] == 2  # type: ignore[index]
    assert frames.nearest(1.0) is None, "the oldest fell out (size 3) and 2.0 is too far"
    assert frames.nearest(None) is None
