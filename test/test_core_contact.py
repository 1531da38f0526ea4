"""Contact evidence: the gel's deformation (on real GelSight frames), its calibration, HOLDING, effort."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from helpers.streams import FREE, PRESSED
from tactile_grasp_predictor.contact import ContactJudge, deformation
from tactile_grasp_predictor.errors import FrameError
from tactile_grasp_predictor.gate import Frame
from tactile_grasp_predictor.tracker import TriggerConfig

CFG = TriggerConfig()


def _taxim_pack() -> dict[str, np.ndarray]:
    taxim = pytest.importorskip("taxim")
    path = Path(taxim.__file__).parent / "calib" / "gelsight" / "dataPack.npz"
    with np.load(path) as pack:
        return {"f0": pack["f0"], "imgs": pack["imgs"]}


def frame(t: float, img: np.ndarray) -> Frame:
    return Frame(t, None, img)


class Broken:
    """Pixels that cannot be decoded (a corrupt bag message)."""

    decoded = False

    def decode(self) -> np.ndarray:
        raise FrameError("bag:/gelsight#3: Image.data: truncated")


def test_real_gelsight_presses_stand_out_from_sensor_noise() -> None:
    """The calibration data of a real GelSight (480 x 640): a no-contact frame and 48 ball presses."""
    pack = _taxim_pack()
    f0 = pack["f0"]
    rng = np.random.default_rng(0)
    judge = ContactJudge(CFG)
    noisy = [np.clip(f0 + rng.normal(0.0, 2.0, f0.shape), 0, 255).astype(np.uint8) for _ in range(3)]
    for a, b in itertools.pairwise(noisy):  # no contact: noise only
        ev = judge.judge(frame(1.0, a), frame(2.0, b), before_ta=frame(0.5, f0))
        assert ev.contact is False and ev.source == "none"
    presses = [deformation(f0, img) for img in pack["imgs"]]
    noise = max(deformation(a, b) for a, b in itertools.pairwise(noisy))
    assert min(presses) > 5 * max(judge.threshold, noise)  # every press, by a wide margin
    ev = judge.judge(frame(1.0, noisy[0]), frame(2.0, pack["imgs"][0]), before_ta=frame(0.5, f0))
    assert ev.contact is True and ev.source == "frames" and ev.deformation > ev.threshold
    assert ev.summary().startswith("frames ") and ">=" in ev.summary()


def test_deformation_is_symmetric_local_and_size_free() -> None:
    assert deformation(FREE, PRESSED) == deformation(PRESSED, FREE) > 20.0
    assert deformation(FREE, FREE) == 0.0
    big_free = np.full((480, 640, 3), 100, np.uint8)
    big_pressed = big_free.copy()
    big_pressed[200:260, 300:380] = (160, 90, 130)  # a patch of 1.6 % of the area
    assert deformation(big_free, big_pressed) > 20.0
    # a frame of another size is compared at Ta's thumbnail size
    assert deformation(big_free, np.full((240, 320, 3), 100, np.uint8)) == 0.0


def test_threshold_is_calibrated_on_the_frames_before_the_onset() -> None:
    judge = ContactJudge(CFG)
    assert judge.threshold == CFG.contact_min_deformation and math.isnan(judge.noise)
    rng = np.random.default_rng(1)

    def noisy(sigma: float) -> np.ndarray:
        return np.clip(FREE + rng.normal(0.0, sigma, FREE.shape), 0, 255).astype(np.uint8)

    for _ in range(5):  # a noisy sensor: the threshold rises with its noise
        judge.judge(frame(1.0, noisy(4.0)), frame(2.0, noisy(4.0)), before_ta=frame(0.5, noisy(4.0)))
    assert judge.threshold == pytest.approx(CFG.contact_noise_factor * judge.noise)
    assert judge.threshold > 2 * CFG.contact_min_deformation
    # one odd pair (the gel still relaxing from the last grasp) does not move the median much
    before = judge.threshold
    judge.judge(frame(1.0, noisy(4.0)), frame(2.0, noisy(4.0)), before_ta=frame(0.5, PRESSED))
    assert judge.threshold < 1.3 * before
    assert judge.judged == 6 and judge.without_contact == 6


def test_holding_effort_and_the_switch() -> None:
    judge = ContactJudge(dataclasses.replace(CFG, contact_effort=5.0))
    still = (frame(1.0, FREE), frame(2.0, FREE))
    assert judge.judge(*still, holding=True).source == "holding"
    assert judge.judge(*still, effort=7.5).source == "effort"
    assert judge.judge(*still, effort=2.0).contact is False
    assert ContactJudge(CFG).judge(*still, effort=1e6).contact is False  # effort unused unless configured
    off = ContactJudge(dataclasses.replace(CFG, contact_required=False))
    assert off.judge(*still).contact is True and off.last is not None and off.last.source == "not_required"


def test_unknown_contact_when_a_frame_is_missing_or_undecodable() -> None:
    judge = ContactJudge(CFG)
    ta = frame(1.0, FREE)
    assert judge.judge(ta, None).contact is None
    assert judge.last is not None and judge.last.source == "no_frame"
    bad = Frame(2.0, None, np.zeros((0, 0, 3), np.uint8), Broken())
    ev = judge.judge(ta, bad)
    assert (ev.contact, ev.source, ev.summary()) == (None, "undecodable", "undecodable")
    # a bad frame before Ta only costs its noise sample
    assert judge.judge(ta, frame(2.0, PRESSED), before_ta=bad).contact is True and math.isnan(judge.noise)


@pytest.mark.parametrize(("change", "field"), [({"contact_required": 1}, "contact_required"),
                                               ({"contact_noise_factor": -1.0}, "contact_noise_factor"),
                                               ({"contact_effort": math.nan}, "contact_effort"),
                                               ({"settle_speed_ratio": 1.0}, "settle_speed_ratio")])
def test_contact_settings_are_validated(change: dict[str, object], field: str) -> None:
    from tactile_grasp_predictor.errors import ConfigError

    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(CFG, **change).validate()  # type: ignore[arg-type]


def test_effort_from_joint_states_is_contact_evidence_in_the_session() -> None:
    from tactile_grasp_predictor.gripper import JointWidthConfig, joint_state_effort
    from tactile_grasp_predictor.session import GraspSession, InferenceJob, SessionConfig

    two = JointWidthConfig(("l", "r"))
    assert joint_state_effort(["r", "l"], [-3.0, 4.5], two) == 7.5
    assert joint_state_effort(["l", "r"], [1.0], two) is None  # does not match the names
    assert joint_state_effort(["l", "x"], [1.0, 2.0], two) is None  # a finger joint missing
    assert joint_state_effort(["l", "r"], [1.0, math.inf], two) is None
    assert joint_state_effort(["w"], [-2.0], JointWidthConfig(("w",), mode="single")) == 2.0

    def run(effort_when_held: float | None, contact_effort: float | None) -> int:
        cfg = dataclasses.replace(CFG, contact_effort=contact_effort)
        s = GraspSession(SessionConfig(trigger=cfg, time_base="receive"))
        n = 0
        for i in range(30):  # the gel shows nothing (a soft finger, a numb sensor): only effort tells
            t = i * 0.05
            n += sum(isinstance(o, InferenceJob) for o in s.on_frame(None, t, FREE))
            held = t >= 0.1
            s.on_gripper_width(None, t + 0.001, 0.04 if held else 0.08,
                               effort_when_held if held else 0.3)
        return n

    assert run(20.0, 5.0) == 1  # gripping at 20 N: a grasp
    assert run(20.0, None) == 0  # effort not configured: no evidence, no decision
    assert run(None, 5.0) == 0  # a driver without efforts
