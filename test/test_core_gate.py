"""Unit tests of the grasp gate: one scenario per outcome, each ABORT reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tactile_grasp_predictor.gate import Frame, GraspAborted, GraspGate, PhaseChanged, Reason, SnapshotReady
from tactile_grasp_predictor.gripper import GraspState, GripperSample
from tactile_grasp_predictor.tracker import TriggerConfig

IMG = np.zeros((4, 4, 3), np.uint8)
OPEN, HELD = 0.08, 0.03


def width_at(t: float, t_close: float, w_end: float, speed: float = 0.1) -> float:
    """Open until t_close, then closing at `speed` m/s down to w_end."""
    if t <= t_close:
        return OPEN
    return max(w_end, OPEN - speed * (t - t_close))


def run(gate: GraspGate, inputs: list[tuple[float, object]]) -> list[object]:
    events: list[object] = []
    for t, item in sorted(inputs, key=lambda x: x[0]):
        if isinstance(item, Frame):
            events += gate.on_frame(item)
        elif isinstance(item, GripperSample):
            events += gate.on_gripper(item)
        else:
            events += gate.on_tick(t)
    return events


def stream(t_end: float, t_close: float, w_end: float, *, frame_dt: float = 1 / 30, grip_dt: float = 0.02,
           frames_until: float = math.inf, grip_until: float = math.inf,
           state: GraspState | None = None) -> list[tuple[float, object]]:
    inputs: list[tuple[float, object]] = []
    n = int(t_end / frame_dt)
    for i in range(n):
        t = i * frame_dt + 0.001
        if t < frames_until:
            inputs.append((t, Frame(t, None, IMG)))
    for i in range(int(t_end / grip_dt)):
        t = i * grip_dt
        if t < grip_until:
            inputs.append((t, GripperSample(t, width_at(t, t_close, w_end), None, state)))
    return inputs


def outcomes(events: list[object]) -> list[SnapshotReady | GraspAborted]:
    return [e for e in events if isinstance(e, (SnapshotReady, GraspAborted))]


def test_snapshot_happy_path() -> None:
    gate = GraspGate(TriggerConfig())
    ev = run(gate, stream(3.0, 1.0, HELD))
    out = outcomes(ev)
    assert len(out) == 1 and isinstance(out[0], SnapshotReady)
    snap = out[0]
    assert snap.grasp_id == 1
    assert snap.ta.t < 1.0  # strictly before the closing onset
    assert 1.0 - snap.ta.t <= 1 / 30 + 0.021
    # fingers stop at t = 1.5 (within the settle tolerance from 1.5 - tol / speed on),
    # settled after the window, Tb the first frame after the delay
    cfg = gate.config
    settle_earliest = 1.5 - cfg.settle_tolerance_m / 0.1 + cfg.settle_window_s
    assert snap.tb.t >= settle_earliest + cfg.tb_delay_s - 1e-9
    assert snap.tb.t < 1.5 + cfg.settle_window_s + cfg.tb_delay_s + 0.02 + 1 / 30 + 1e-9
    assert snap.t_trigger == snap.tb.t
    phases = [e.phase for e in ev if isinstance(e, PhaseChanged)]
    assert phases == ["closing", "settling", "predicting"]
    assert gate.phase == "predicting"
    assert gate.mark_decided(1, 2.5)[0].phase == "decided"


def test_no_part_found_by_width() -> None:
    gate = GraspGate()
    out = outcomes(run(gate, stream(3.0, 1.0, 0.0005)))
    assert len(out) == 1 and isinstance(out[0], GraspAborted)
    assert out[0].reason == Reason.NO_PART_FOUND and out[0].ta is not None and out[0].tb is None


def test_no_pre_contact_frame_when_frames_start_late() -> None:
    inputs = [x for x in stream(3.0, 1.0, HELD) if not (isinstance(x[1], Frame) and x[0] < 1.0)]
    out = outcomes(run(GraspGate(), inputs))
    assert [type(o) for o in out] == [GraspAborted] and out[0].reason == Reason.NO_PRE_CONTACT_FRAME


def test_no_pre_contact_frame_when_ta_too_old() -> None:
    inputs = [x for x in stream(3.0, 1.8, HELD) if not (isinstance(x[1], Frame) and 0.5 < x[0] < 2.0)]
    out = outcomes(run(GraspGate(), inputs))
    assert [o.reason for o in out if isinstance(o, GraspAborted)] == [Reason.NO_PRE_CONTACT_FRAME]


def test_stale_frame_when_frames_stop() -> None:
    gate = GraspGate()
    ev = run(gate, stream(4.0, 1.0, HELD, frames_until=1.2))
    out = outcomes(ev)
    assert len(out) == 1 and isinstance(out[0], GraspAborted) and out[0].reason == Reason.STALE_FRAME
    # deadline = max(Tb due, last frame + frame_max_age) = max(~1.79, ~1.67): Tb due
    settled = next(e.t for e in ev if isinstance(e, PhaseChanged) and e.phase == "settling")
    assert 1.6 < settled < 1.75
    assert out[0].t == pytest.approx(settled + gate.config.tb_delay_s)


def test_tb_timeout_when_never_settling() -> None:
    # very slow closing: never settles within 3 s
    inputs = stream(5.0, 1.0, 0.0, grip_dt=0.02)
    inputs = [(t, GripperSample(t, width_at(t, 1.0, 0.0, speed=0.02)) if isinstance(x, GripperSample) else x)
              for t, x in inputs]
    out = outcomes(run(GraspGate(), inputs))
    assert [type(o) for o in out] == [GraspAborted] and out[0].reason == Reason.TB_TIMEOUT
    assert out[0].t == pytest.approx(1.0 + 3.0, abs=0.021)


def test_gripper_silent_fires_on_tick() -> None:
    inputs = stream(4.0, 1.0, HELD, grip_until=1.2)
    inputs += [(1.0 + 0.05 * i, "tick") for i in range(60)]
    out = outcomes(run(GraspGate(), inputs))
    assert [type(o) for o in out] == [GraspAborted] and out[0].reason == Reason.GRIPPER_SILENT


def test_ticks_do_not_change_outcomes() -> None:
    base = stream(4.0, 1.0, HELD, frames_until=1.2)
    ticked = base + [(0.013 * i, "tick") for i in range(300)]
    a = [(type(o).__name__, o.grasp_id, getattr(o, "reason", None), getattr(o, "t", None))
         for o in outcomes(run(GraspGate(), base))]
    b = [(type(o).__name__, o.grasp_id, getattr(o, "reason", None), getattr(o, "t", None))
         for o in outcomes(run(GraspGate(), ticked))]
    assert a == b and len(a) == 1


def test_grasp_state_no_part_found_aborts() -> None:
    inputs = stream(1.2, 1.0, HELD)
    inputs += [(1.05, GripperSample(1.05, None, None, GraspState.GRASPING)),
               (1.15, GripperSample(1.15, None, None, GraspState.NO_PART_FOUND))]
    out = outcomes(run(GraspGate(), inputs))
    assert [o.reason for o in out if isinstance(o, GraspAborted)] == [Reason.NO_PART_FOUND]


def test_gripper_opened_before_tb() -> None:
    inputs = stream(1.6, 1.0, HELD)
    inputs += [(1.6 + 0.02 * i, GripperSample(1.6 + 0.02 * i, HELD + 0.005 * (i + 1))) for i in range(10)]
    out = outcomes(run(GraspGate(), inputs))
    assert [o.reason for o in out if isinstance(o, GraspAborted)] == [Reason.GRIPPER_OPENED]


def test_rearm_and_second_grasp() -> None:
    gate = GraspGate()
    run(gate, stream(3.0, 1.0, HELD))
    assert gate.phase == "predicting"
    # open again, then a second grasp
    ev: list[object] = []
    for i in range(200):
        t = 3.0 + 0.02 * i
        w = min(OPEN, HELD + 0.1 * (t - 3.0)) if t < 4.5 else max(HELD, OPEN - 0.1 * (t - 4.5))
        ev += gate.on_gripper(GripperSample(t, w))
        ev += gate.on_frame(Frame(t + 0.001, None, IMG))
    out = outcomes(ev)
    assert len(out) == 1 and isinstance(out[0], SnapshotReady) and out[0].grasp_id == 2
    assert out[0].ta.t < 4.5


def test_clock_jump_back_starts_afresh() -> None:
    gate = GraspGate()
    # a grasp in progress when the bag loops back to t = 0
    ev = run(gate, stream(6.3, 6.0, HELD))
    assert gate.phase == "closing" and outcomes(ev) == []
    ev = gate.on_frame(Frame(0.001, None, IMG))
    assert [(type(e).__name__, getattr(e, "reason", getattr(e, "phase", None))) for e in ev] == [
        ("GraspAborted", Reason.CLOCK_RESET), ("PhaseChanged", "decided"), ("PhaseChanged", "waiting")]
    assert gate.stats.clock_resets == 1 and gate.stats.frames_out_of_order == 0
    # the replayed recording works again, with grasp ids continuing
    out = outcomes(run(gate, [x for x in stream(3.0, 1.0, HELD) if x[0] > 0.001]))
    assert len(out) == 1 and isinstance(out[0], SnapshotReady) and out[0].grasp_id == 2


def test_small_step_back_is_out_of_order_not_a_reset() -> None:
    gate = GraspGate()
    run(gate, stream(2.0, 10.0, HELD))
    assert gate.on_frame(Frame(1.0, None, IMG)) == [] and gate.on_gripper(GripperSample(1.0, OPEN)) == []
    assert gate.stats.clock_resets == 0 and gate.stats.frames_out_of_order == 1
    assert gate.stats.gripper_out_of_order == 1


def test_stale_frame_by_header_stamp_lag() -> None:
    cfg = TriggerConfig(max_stamp_lag_s=0.2)
    # the driver delivers frames 0.3 s after capture once the grasp is under way
    inputs = [(t, Frame(t, t - (0.3 if t > 1.2 else 0.01), IMG) if isinstance(x, Frame) else x)
              for t, x in stream(3.0, 1.0, HELD)]
    out = outcomes(run(GraspGate(cfg), inputs))
    assert len(out) == 1 and isinstance(out[0], GraspAborted) and out[0].reason == Reason.STALE_FRAME
    assert out[0].ta is not None and out[0].tb is not None and out[0].tb.t - out[0].tb.stamp > 0.2
    # without the check (default), the same recording gives a snapshot
    assert [type(o) for o in outcomes(run(GraspGate(), inputs))] == [SnapshotReady]


def test_stale_ta_by_header_stamp_lag() -> None:
    inputs = [(t, Frame(t, t - 0.5, IMG) if isinstance(x, Frame) else x) for t, x in stream(3.0, 1.0, HELD)]
    out = outcomes(run(GraspGate(TriggerConfig(max_stamp_lag_s=0.2)), inputs))
    assert [o.reason for o in out if isinstance(o, GraspAborted)] == [Reason.STALE_FRAME]
    assert out[0].tb is None


def test_gripper_error_aborts() -> None:
    inputs = stream(1.2, 1.0, HELD, state=GraspState.IDLE)
    inputs += [(1.21, GripperSample(1.21, None, None, GraspState.ERROR))]
    inputs += [(t, x) for t, x in stream(3.0, 1.0, HELD) if t > 1.21]
    gate = GraspGate()
    out = outcomes(run(gate, inputs))
    assert [o.reason for o in out if isinstance(o, GraspAborted)] == [Reason.GRIPPER_ERROR]
    assert gate.phase == "decided"
