"""Gripper and frame streams for the trigger core (tracker, gate, time base), and feeding them in.

Widths are finger openings in metres, times seconds. ``width_at`` is the one closing profile
(open, then closing at a constant speed down to where the fingers stop); :class:`Grasp` adds
the hold and the reopening, :class:`Scenario` a series of grasps with noise and faults.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tactile_grasp_predictor.gate import Frame, GateEvent, GraspAborted, GraspGate, SnapshotReady
from tactile_grasp_predictor.gripper import GraspState, GripperSample
from tactile_grasp_predictor.tracker import GraspPhaseTracker, PhaseEvent, TriggerConfig

OPEN = 0.08  # fingers open, m
OPEN_SPEED = 0.1  # m/s, opening after a grasp
IMG = np.zeros((2, 2, 3), np.uint8)  # a gate without a contact judge never looks at the pixels
FREE = np.full((8, 8, 3), 100, np.uint8)  # the gel at rest (no contact)
PRESSED = FREE.copy()  # the gel pressed by a part: a contact patch
PRESSED[2:6, 3:7] = (160, 90, 130)
TICK = "tick"  # a watchdog tick in a stream for :func:`feed_gate`
CLOSED_WIDTH_M = TriggerConfig().closed_width_m  # at or below: nothing grasped


def width_at(t: float, t_close: float, w_end: float, speed: float = 0.1) -> float:
    """Open until t_close, then closing at `speed` m/s down to w_end."""
    if t <= t_close:
        return OPEN
    return max(w_end, OPEN - speed * (t - t_close))


@dataclass(frozen=True)
class Grasp:
    """One grasp: open, close at ``speed`` from ``t_close`` to ``w_end``, hold, reopen at ``OPEN_SPEED``."""

    t_close: float  # fingers start closing
    speed: float  # closing speed, m/s
    w_end: float  # width where the fingers stop (<= closed_width_m: nothing grasped)
    hold: float  # how long they stay closed

    @property
    def t_stop(self) -> float:
        """When the fingers stop closing."""
        return self.t_close + (OPEN - self.w_end) / self.speed

    @property
    def t_open(self) -> float:
        """When they start opening again."""
        return self.t_stop + self.hold

    @property
    def t_reopened(self) -> float:
        """When they are fully open again."""
        return self.t_open + (OPEN - self.w_end) / OPEN_SPEED

    @property
    def no_part(self) -> bool:
        """The fingers closed on nothing."""
        return self.w_end <= CLOSED_WIDTH_M

    def width(self, t: float) -> float:
        """The finger opening at ``t``."""
        if t <= self.t_close or t >= self.t_reopened:
            return OPEN
        if t <= self.t_open:
            return width_at(t, self.t_close, self.w_end, self.speed)
        return self.w_end + OPEN_SPEED * (t - self.t_open)

    def state(self, t: float) -> GraspState:
        """The WSG firmware's grasping state at ``t``."""
        if t <= self.t_close or t >= self.t_reopened:
            return GraspState.IDLE
        if t < self.t_stop:
            return GraspState.GRASPING
        if t <= self.t_open:
            return GraspState.NO_PART_FOUND if self.no_part else GraspState.HOLDING
        return GraspState.RELEASING


@dataclass(frozen=True)
class Scenario:
    """Grasps observed through a jittered width stream, optional status stream, frames and faults."""

    grasps: tuple[Grasp, ...]
    grip_dt: float
    frame_dt: float
    jitter_seed: int
    noise_m: float
    with_moving: bool
    status_dt: float | None  # separate status stream (width None) or none
    frame_gap: tuple[float, float] | None  # [a, b): no frames
    grip_gap: tuple[float, float] | None  # [a, b): no gripper samples
    frames_from: float  # first frame time

    @property
    def end(self) -> float:
        """Half a second after the last grasp (or the gripper silence) is over."""
        last = self.grasps[-1].t_reopened
        return max(last, self.grip_gap[1] if self.grip_gap else last) + 0.5

    def grasp_at(self, t: float) -> Grasp | None:
        """The grasp under way at ``t``, if any."""
        for g in self.grasps:
            if g.t_close < t < g.t_reopened:
                return g
        return None

    @property
    def clean(self) -> bool:
        """No faults: frames from the start, no frame or gripper gap."""
        return self.frame_gap is None and self.grip_gap is None and self.frames_from == 0.0


def times(dt: float, end: float, rng: np.random.Generator) -> list[float]:
    """Sample times every ``dt`` with ±20 % jitter, strictly increasing."""
    n = int(end / dt) + 1
    ts = np.arange(n) * dt + rng.uniform(-0.2, 0.2, n) * dt
    return sorted({round(float(x), 9) for x in ts if 0.0 <= x <= end})


def feed(sc: Scenario) -> list[tuple[float, int, object]]:
    """The messages of a scenario as (receive time, stream rank, message), time-sorted."""
    rng = np.random.default_rng(sc.jitter_seed)
    out: list[tuple[float, int, object]] = []

    def silent(t: float, gap: tuple[float, float] | None) -> bool:
        return gap is not None and gap[0] <= t < gap[1]

    for t in times(sc.grip_dt, sc.end, rng):
        if silent(t, sc.grip_gap):
            continue
        g = sc.grasp_at(t)
        w = g.width(t) if g else OPEN
        w = max(0.0, w + float(rng.uniform(-sc.noise_m, sc.noise_m)))
        moving = None
        if sc.with_moving:
            moving = g is not None and (g.t_close < t < g.t_stop or g.t_open < t < g.t_reopened)
        out.append((t, 0, GripperSample(t, w, moving)))
    if sc.status_dt is not None:
        for t in times(sc.status_dt, sc.end, rng):
            if silent(t, sc.grip_gap):
                continue
            g = sc.grasp_at(t)
            out.append((t, 1, GripperSample(t, None, None, g.state(t) if g else GraspState.IDLE)))
    for t in times(sc.frame_dt, sc.end, rng):
        if t < sc.frames_from or silent(t, sc.frame_gap):
            continue
        out.append((t, 2, Frame(t, None if rng.random() < 0.5 else t - 0.01, IMG)))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def stream(t_end: float, t_close: float, w_end: float, *, frame_dt: float = 1 / 30, grip_dt: float = 0.02,
           frames_until: float = math.inf, grip_until: float = math.inf,
           state: GraspState | None = None) -> list[tuple[float, object]]:
    """Frames (1 ms after the samples) and gripper samples of one :func:`width_at` closing, unsorted."""
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


def stamped_stream(rng: np.random.Generator, jitter_s: float) -> list[tuple[str, float | None, float, float]]:
    """A grasp: JointState 50 Hz, frames 15 Hz; receive = stamp + 2 ms + |N(0, jitter)|, arrival order.

    Messages are (kind, header stamp, receive time, width); the fingers close from t = 0.5 to 0.03 m.
    """
    msgs = []
    for t in np.arange(0.0, 2.0, 0.02):
        w = width_at(t, 0.5, 0.03)
        msgs.append(("joints", 100.0 + t, 100.0 + t + 0.002 + abs(rng.normal(0, jitter_s)), w))
    for t in np.arange(0.013, 2.0, 1 / 15):
        msgs.append(("image", 100.0 + t, 100.0 + t + 0.002 + abs(rng.normal(0, jitter_s)), 0.0))
    return sorted(msgs, key=lambda m: m[2])


def ramp(tr: GraspPhaseTracker, t0: float, t1: float, w0: float, w1: float, dt: float = 0.01,
         **kw: object) -> list[PhaseEvent]:
    """Feed a linear width ramp from (t0, w0) to (t1, w1), t1 excluded."""
    events: list[PhaseEvent] = []
    n = round((t1 - t0) / dt)
    for i in range(n):
        t = t0 + i * dt
        w = w0 + (w1 - w0) * (t - t0) / (t1 - t0)
        events += tr.update(GripperSample(t, w, **kw))  # type: ignore[arg-type]
    return events


def feed_gate(gate: GraspGate, inputs: Iterable[Sequence[Any]], final_tick: float | None = None, *,
              sort: bool = True, check_buffer: bool = False, decide: bool = False) -> list[GateEvent]:
    """Feed ``(t, ..., message)`` tuples to ``gate``; return its events.

    A :class:`Frame` goes to ``on_frame``, a :class:`GripperSample` to ``on_gripper``; a tick
    (:data:`TICK` or a float) is ``on_tick(t)``. ``sort``: in time order first (stable);
    ``False`` delivers them as given (late and repeated copies stay where they are).
    ``check_buffer``: assert the frame buffer's bound after every frame. ``final_tick``: one
    more tick at the end. ``decide``: mark every snapshot decided at once (a model that takes
    no time), as a session does when the answer comes; else the grasp stays ``predicting``.
    """
    events: list[GateEvent] = []

    def take(new: list[GateEvent]) -> None:
        events.extend(new)
        for e in new:
            if decide and isinstance(e, SnapshotReady):
                events.extend(gate.mark_decided(e.grasp_id, e.t_trigger))

    for t, *_, item in (sorted(inputs, key=lambda x: x[0]) if sort else inputs):
        if isinstance(item, Frame):
            take(gate.on_frame(item))
            if check_buffer:
                assert gate.buffered_frames <= gate.config.frame_buffer_size
        elif isinstance(item, GripperSample):
            take(gate.on_gripper(item))
        else:
            assert item == TICK or isinstance(item, float), f"not a frame, gripper sample or tick: {item!r}"
            take(gate.on_tick(t))
    if final_tick is not None:
        take(gate.on_tick(final_tick))
    return events


def outcomes(events: Iterable[object]) -> list[SnapshotReady | GraspAborted]:
    """The grasps' outcomes among ``events``: snapshots and aborts, in order."""
    return [e for e in events if isinstance(e, (SnapshotReady, GraspAborted))]
