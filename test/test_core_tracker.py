"""The grasp phase tracker: onset, settle, no part, firmware states, moving flag, re-arm, bad input."""

from __future__ import annotations

import dataclasses
import math

import pytest

from helpers.streams import OPEN, ramp
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.gripper import GraspState, GripperSample
from tactile_grasp_predictor.tracker import (
    ClosingStarted,
    GraspPhaseTracker,
    GripperFault,
    NoPart,
    Opened,
    PhaseEvent,
    Resumed,
    Settled,
    TriggerConfig,
)


def test_default_config_is_valid() -> None:
    assert TriggerConfig().validate() == TriggerConfig()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"closing_threshold_m": 0.0}, "closing_threshold_m"),
        ({"settle_window_s": -1.0}, "settle_window_s"),
        ({"tb_delay_s": math.nan}, "tb_delay_s"),
        ({"frame_buffer_size": 0}, "frame_buffer_size"),
        ({"frame_buffer_size": 2.5}, "frame_buffer_size"),
        ({"open_tolerance_m": 0.003}, "open_tolerance_m"),
        ({"settle_tolerance_m": 0.0}, "settle_tolerance_m"),
        ({"tb_timeout_s": 0.3}, "tb_timeout_s"),
        ({"frame_buffer_age_s": 0.5}, "frame_buffer_age_s"),
        ({"max_stamp_lag_s": math.inf}, "max_stamp_lag_s"),
        ({"gripper_silence_s": True}, "gripper_silence_s"),
    ],
)
def test_config_validation_names_the_field(change: dict[str, object], field: str) -> None:
    cfg = dataclasses.replace(TriggerConfig(), **change)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=field):
        cfg.validate()
    with pytest.raises(ConfigError, match=field):
        GraspPhaseTracker(cfg)


def test_width_only_grasp_lifecycle() -> None:
    tr = GraspPhaseTracker()
    ev = ramp(tr, 0.0, 1.0, OPEN, OPEN)  # open
    assert ev == [] and tr.phase == "waiting"
    ev = ramp(tr, 1.0, 1.5, OPEN, 0.03)  # closing at 0.1 m/s
    assert len(ev) == 1 and isinstance(ev[0], ClosingStarted)
    start = ev[0]
    assert start.grasp_id == 1 and start.t == pytest.approx(1.0) and start.t_detected == pytest.approx(1.03)
    assert tr.phase == "closing" and tr.onset_t == start.t
    ev = ramp(tr, 1.5, 2.5, 0.03, 0.03)  # holding
    assert len(ev) == 1 and isinstance(ev[0], Settled)
    cfg = tr.config  # steady from 1.5 - tol / speed (to a 10 ms sample) for the window
    assert ev[0].t == pytest.approx(1.5 - cfg.settle_tolerance_m / 0.1 + cfg.settle_window_s, abs=0.0101)
    assert ev[0].width_m == pytest.approx(0.03, abs=0.0015)
    assert tr.phase == "closed"
    ev = ramp(tr, 2.5, 3.0, 0.03, OPEN)  # opening
    assert [type(e) for e in ev] == [Opened] and tr.phase == "waiting"
    ev = ramp(tr, 3.0, 4.0, OPEN, OPEN)
    assert ev == []
    ev = ramp(tr, 4.0, 4.5, OPEN, 0.03)
    assert [type(e) for e in ev] == [ClosingStarted] and tr.grasp_id == 2


def test_fully_closed_is_no_part_at_once() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 0.5, OPEN, OPEN)
    ev = ramp(tr, 0.5, 1.3, OPEN, 0.0)
    assert [type(e) for e in ev] == [ClosingStarted, NoPart]
    assert ev[1].t <= 0.5 + (OPEN - 0.0015) / 0.1 + 0.011


def test_width_noise_within_tolerance_does_not_trigger() -> None:
    tr = GraspPhaseTracker()
    ev: list[PhaseEvent] = []
    for i in range(3000):
        ev += tr.update(GripperSample(i * 0.01, OPEN + 0.001 * math.sin(i * 0.37)))
    assert ev == [] and tr.grasp_id == 0


def test_grasp_state_sharpens_the_trigger() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 1.0, OPEN, OPEN, grasp_state=GraspState.IDLE)
    ev = tr.update(GripperSample(1.0, None, None, GraspState.GRASPING))
    assert [type(e) for e in ev] == [ClosingStarted] and ev[0].t <= 1.0
    ev = tr.update(GripperSample(1.05, OPEN - 0.005))
    assert ev == []
    ev = tr.update(GripperSample(1.1, None, None, GraspState.HOLDING))
    assert [type(e) for e in ev] == [Settled] and ev[0].t == 1.1 and ev[0].width_m == OPEN - 0.005
    # a repeated HOLDING report is not a new event; RELEASING re-arms
    assert tr.update(GripperSample(1.2, None, None, GraspState.HOLDING)) == []
    assert [type(e) for e in tr.update(GripperSample(1.3, None, None, GraspState.RELEASING))] == [Opened]


def test_missed_grasping_report_still_counts() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 1.0, OPEN, OPEN, grasp_state=GraspState.IDLE)
    ev = tr.update(GripperSample(1.0, None, None, GraspState.NO_PART_FOUND))
    assert [type(e) for e in ev] == [ClosingStarted, NoPart]
    assert ev[0].t < 1.0


def test_error_state_during_grasp() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 0.5, OPEN, OPEN, grasp_state=GraspState.IDLE)
    ramp(tr, 0.5, 0.6, OPEN, 0.07)
    assert tr.phase == "closing"
    ev = tr.update(GripperSample(0.61, None, None, GraspState.ERROR))
    assert [type(e) for e in ev] == [GripperFault]


def test_persisting_firmware_state_does_not_retrigger() -> None:
    # a state reported from the start (left over from before) is no transition
    tr = GraspPhaseTracker()
    tr.update(GripperSample(0.0, OPEN, None, GraspState.NO_PART_FOUND))  # left over from before
    ev = []
    for i in range(1, 100):
        ev += tr.update(GripperSample(i * 0.01, OPEN, None, GraspState.NO_PART_FOUND))
    assert ev == [] and tr.grasp_id == 0


def test_moving_flag_gives_earlier_onset_and_settle() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 1.0, OPEN, OPEN, moving=False)
    # the flag rises at 1.0 but the width only drops from 1.2 on
    ramp(tr, 1.0, 1.2, OPEN, OPEN, moving=True)
    ev = ramp(tr, 1.2, 1.5, OPEN, 0.05, moving=True)
    assert [type(e) for e in ev] == [ClosingStarted] and ev[0].t == pytest.approx(1.0)
    ev = tr.update(GripperSample(1.5, 0.05, False))
    assert [type(e) for e in ev] == [Settled] and ev[0].t == 1.5  # no need to wait the window


def test_out_of_order_duplicate_and_invalid_samples_are_ignored_and_counted() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 1.0, OPEN, OPEN, grasp_state=GraspState.IDLE)
    last = GripperSample(0.99, OPEN, None, GraspState.IDLE)
    assert tr.update(last) == []  # exact repeat of the last sample
    assert tr.duplicates == 1
    assert tr.update(GripperSample(0.5, 0.01)) == []  # older than the last: ignored
    assert tr.out_of_order == 1 and tr.phase == "waiting"
    assert tr.update(GripperSample(math.nan, 0.01)) == []
    assert tr.invalid == 1
    # a bad width is dropped but the sample's time counts
    assert tr.update(GripperSample(1.0, math.inf)) == [] and tr.invalid == 2 and tr.last_t == 1.0
    assert tr.update(GripperSample(1.0, -0.5)) == [] and tr.invalid == 3
    # same time, different content (e.g. a status next to a JointState) is processed
    ev = tr.update(GripperSample(1.0, None, None, GraspState.GRASPING))
    assert [type(e) for e in ev] == [ClosingStarted]


def test_opening_during_closing_rearms() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 0.5, OPEN, OPEN)
    ramp(tr, 0.5, 0.8, OPEN, 0.05)
    ev = ramp(tr, 0.8, 1.0, 0.05, 0.07)
    assert [type(e) for e in ev] == [Opened] and tr.phase == "waiting"


def test_creeping_soft_object_still_settles() -> None:
    # under grip force a soft object keeps yielding at a few mm/s (seen in the simulator)
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 0.5, OPEN, OPEN, dt=0.02)
    ev = ramp(tr, 0.5, 0.9, OPEN, 0.04, dt=0.02)  # 100 mm/s
    creep = 0.008  # m/s, below settle_tolerance_m / settle_window_s = 10 mm/s
    ev += ramp(tr, 0.9, 2.0, 0.04, 0.04 - creep * 1.1, dt=0.02)
    assert [type(e) for e in ev] == [ClosingStarted, Settled]
    assert ev[1].t < 0.9 + tr.config.settle_window_s + 0.03


def test_contact_bounce_is_not_an_opening() -> None:
    # fingers hit the part, spring back 5 mm, then hold (seen in the simulator)
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 0.5, OPEN, OPEN, dt=0.02)
    ev = ramp(tr, 0.5, 1.0, OPEN, 0.02, dt=0.02)
    ev += ramp(tr, 1.0, 1.1, 0.02, 0.025, dt=0.02)
    ev += ramp(tr, 1.1, 1.6, 0.025, 0.025, dt=0.02)
    assert [type(e) for e in ev] == [ClosingStarted, Settled]


def test_moving_flag_flicker_during_fast_closing_does_not_settle() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 0.5, OPEN, OPEN, dt=0.02, moving=False)
    ev = ramp(tr, 0.5, 0.7, OPEN, 0.056, dt=0.02, moving=True)  # 120 mm/s: 2.4 mm per sample
    ev += tr.update(GripperSample(0.7, 0.056, False))  # flicker while the width still runs
    ev += tr.update(GripperSample(0.72, 0.0536, True))
    assert [type(e) for e in ev] == [ClosingStarted] and tr.phase == "closing"


# -- issue #15: following what the gripper does ------------------------------------------------
def test_a_dismissed_pre_shape_gives_its_id_back_and_the_next_closing_starts_from_the_rest() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 1.0, 0.085, 0.085)
    ev = ramp(tr, 1.0, 1.2, 0.085, 0.075)  # pre-shape at 50 mm/s
    ev += ramp(tr, 1.2, 1.8, 0.075, 0.075)
    assert [type(e) for e in ev] == [ClosingStarted, Settled] and tr.grasp_id == 1
    tr.dismiss(1.6)  # the gate: no contact at Tb
    assert tr.phase == "waiting" and tr.grasp_id == 0
    ev = ramp(tr, 1.8, 2.2, 0.075, 0.035)  # the real closing, from 75 mm
    assert [type(e) for e in ev] == [ClosingStarted]
    assert ev[0].grasp_id == 1 and ev[0].t == pytest.approx(1.8)  # onset: the last sample at rest


def test_a_small_move_then_a_rest_moves_the_open_value() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 1.0, 0.0527, 0.0527)
    ramp(tr, 1.0, 1.05, 0.0527, 0.0508)  # 1.9 mm: less than closing_threshold_m, no grasp
    assert ramp(tr, 1.05, 3.0, 0.0508, 0.0508) == [] and tr.grasp_id == 0
    ev = ramp(tr, 3.0, 3.3, 0.0508, 0.03)
    assert [type(e) for e in ev] == [ClosingStarted] and ev[0].t == pytest.approx(3.0)  # not 1.0


def test_a_pause_mid_closing_settles_then_resumes_the_same_grasp() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 0.5, OPEN, OPEN)
    ev = ramp(tr, 0.5, 0.7, OPEN, 0.06)
    ev += ramp(tr, 0.7, 1.0, 0.06, 0.06)  # pause
    ev += ramp(tr, 1.0, 1.2, 0.06, 0.04)  # on again at 100 mm/s
    ev += ramp(tr, 1.2, 1.6, 0.04, 0.04)
    assert [type(e) for e in ev] == [ClosingStarted, Settled, Resumed, Settled]
    assert {e.grasp_id for e in ev if not isinstance(e, Opened)} == {1}  # type: ignore[union-attr]
    assert ev[-1].width_m == pytest.approx(0.04, abs=0.001)  # type: ignore[union-attr]


@pytest.mark.parametrize(("speed", "rate_hz"), [(0.005, 200.0), (0.005, 10.0), (0.4, 10.0), (0.4, 200.0)])
def test_closing_speeds_5_to_400_mm_s_settle_only_when_stopped(speed: float, rate_hz: float) -> None:
    tr = GraspPhaseTracker()
    dt = 1.0 / rate_hz
    ramp(tr, 0.0, 1.0, OPEN, OPEN, dt=dt)
    t_stop = 1.0 + (OPEN - 0.05) / speed
    ev = ramp(tr, 1.0, t_stop, OPEN, 0.05, dt=dt)
    assert Settled not in [type(e) for e in ev], "no settle while the fingers still close"
    ev += ramp(tr, t_stop, t_stop + 1.0, 0.05, 0.05, dt=dt)
    assert [type(e) for e in ev] == [ClosingStarted, Settled]
    assert t_stop <= ev[1].t <= t_stop + tr.config.settle_window_s + 2 * dt + 1e-9


def test_firmware_reports_after_settling_end_the_grasp_once() -> None:
    def settled(state: GraspState | None = GraspState.IDLE) -> GraspPhaseTracker:
        tr = GraspPhaseTracker()
        ramp(tr, 0.0, 0.5, OPEN, OPEN, grasp_state=state)
        ramp(tr, 0.5, 0.9, OPEN, 0.04)
        assert [type(e) for e in ramp(tr, 0.9, 1.3, 0.04, 0.04)] == [Settled]
        return tr

    tr = settled()
    assert [type(e) for e in tr.update(GripperSample(1.31, None, None, GraspState.NO_PART_FOUND))] == [NoPart]
    assert tr.update(GripperSample(1.32, None, None, GraspState.ERROR)) == []  # once per grasp
    tr = settled()
    assert [type(e) for e in tr.update(GripperSample(1.31, None, None, GraspState.ERROR))] == [GripperFault]
    tr = settled()
    assert [type(e) for e in tr.update(GripperSample(1.31, None, None, GraspState.PART_LOST))] == [NoPart]
    tr = settled()
    assert [type(e) for e in tr.update(GripperSample(1.31, None, None, GraspState.RELEASING))] == [Opened]
    tr = settled()
    assert [type(e) for e in ramp(tr, 1.3, 1.6, 0.04, 0.0)] == [Resumed, NoPart]  # the part slipped out
    # a state left over from before the onset and never changed is no report about this grasp
    tr = settled(GraspState.NO_PART_FOUND)
    assert tr.update(GripperSample(1.31, None, None, GraspState.NO_PART_FOUND)) == []
    # the first state ever reported, during the grasp, is one
    tr = settled(None)
    assert [type(e) for e in tr.update(GripperSample(1.31, None, None, GraspState.NO_PART_FOUND))] == [NoPart]


def test_holding_and_effort_are_kept_as_contact_evidence() -> None:
    tr = GraspPhaseTracker()
    ramp(tr, 0.0, 0.5, OPEN, OPEN, grasp_state=GraspState.IDLE)
    ramp(tr, 0.5, 0.9, OPEN, 0.04)
    ramp(tr, 0.9, 1.3, 0.04, 0.04)
    assert not tr.holding
    tr.update(GripperSample(1.31, 0.04, None, GraspState.HOLDING, effort=12.0))
    assert tr.holding and tr.effort == 12.0
    tr.update(GripperSample(1.32, 0.04, None, None, effort=math.nan))  # a NaN effort is no reading
    assert tr.effort == 12.0
