"""Gripper programs: what a pick pipeline makes the gripper do, rendered as a driver's messages.

A :class:`Program` is a list of steps on one gripper, each followed by a rest:

- :class:`Move`: the open gripper moves to a width (pre-shaping, narrower or wider) and touches nothing;
- :class:`Close`: close on a part of width ``part`` (``None``: nothing, fully closed), optionally
  pausing on the way, then hold;
- :class:`Open`: open to a width (a partial reopen before a regrasp, or a full one).

:meth:`Program.render` samples it as a driver pair publishes it: JointStates (one or two finger
joints, metres or millimetres, 10–200 Hz with jitter) and GelSight frames (the gel at rest, or
pressed while the fingers hold a part, with pixel noise). :attr:`Program.truth` lists what must
be decided: every closing on a part (a grasp with contact) and every closing on nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helpers.streams import FREE, PRESSED
from tactile_grasp_predictor.gripper import JointWidthConfig

START_WIDTH = 0.085  # the gripper starts open here, m


@dataclass(frozen=True)
class Move:
    """The open gripper moves to ``width`` at ``speed`` (m/s): no contact."""

    width: float
    speed: float
    rest: float


@dataclass(frozen=True)
class Close:
    """Close at ``speed`` onto a part ``part`` m wide (``None``: nothing) and hold ``hold`` s.

    ``pause``: stop at ``(width, seconds)`` on the way (above the part).
    """

    part: float | None
    speed: float
    hold: float
    pause: tuple[float, float] | None = None


@dataclass(frozen=True)
class Open:
    """Open to ``width`` at ``speed``, then rest."""

    width: float
    speed: float
    rest: float


Step = Move | Close | Open


@dataclass(frozen=True)
class Truth:
    """A closing that must be decided: on a part (``part``) or on nothing.

    ``t_start``: the closing motion begins; ``t_contact``: the fingers reach the part (or close
    fully); ``t_end``: the next motion begins (the hold is over).
    """

    t_start: float
    t_contact: float
    t_end: float
    part: float | None


@dataclass(frozen=True)
class Segment:
    """The width goes linearly from ``w0`` at ``t0`` to ``w1`` at ``t1``; ``part`` is held meanwhile."""

    t0: float
    t1: float
    w0: float
    w1: float
    part: float | None = None  # a part between the fingers (contact where the width equals it)


@dataclass(frozen=True)
class Program:
    """A gripper program starting open at :data:`START_WIDTH` after ``lead`` seconds."""

    steps: tuple[Step, ...]
    lead: float = 1.0

    def plan(self) -> tuple[list[Segment], list[Truth]]:
        """The width trajectory as segments, and the closings that must be decided."""
        segs: list[Segment] = []
        truth: list[Truth] = []
        t, w = self.lead, START_WIDTH
        segs.append(Segment(0.0, t, w, w))

        def go(to: float, speed: float, part: float | None = None) -> None:
            nonlocal t, w
            dt = abs(to - w) / speed
            segs.append(Segment(t, t + dt, w, to, part))
            t, w = t + dt, to

        def rest(dt: float, part: float | None = None) -> None:
            nonlocal t
            segs.append(Segment(t, t + dt, w, w, part))
            t += dt

        for step in self.steps:
            if isinstance(step, Move):
                go(step.width, step.speed)
                rest(step.rest)
            elif isinstance(step, Close):
                t_start = t
                if step.pause is not None:
                    go(step.pause[0], step.speed)
                    rest(step.pause[1])
                go(step.part if step.part is not None else 0.0, step.speed)
                t_contact = t
                rest(step.hold, step.part)
                truth.append(Truth(t_start, t_contact, t, step.part))
            else:
                go(step.width, step.speed)
                rest(step.rest)
        rest(1.5)
        return segs, truth

    @property
    def truth(self) -> list[Truth]:
        """The closings that must be decided, in time order."""
        return self.plan()[1]

    @property
    def end(self) -> float:
        """When the program is over."""
        return self.plan()[0][-1].t1

    def render(self, driver_hz: float, frame_hz: float, seed: int, joints: JointWidthConfig,
               noise: float = 2.0) -> list[tuple[float, str, object]]:
        """The messages, time-ordered: ``(t, "joints", (names, positions))`` and ``(t, "frame", rgb)``.

        Positions follow ``joints``: two finger joints at ∓width/2, or one width joint, divided by
        ``joints.scale`` (millimetres when it is 0.001). Receive times jitter by ±20 % of a period.
        """
        segs, _ = self.plan()
        rng = np.random.default_rng(seed)
        end = segs[-1].t1
        out: list[tuple[float, str, object]] = []

        def times(hz: float) -> np.ndarray:
            n = int(end * hz)
            return np.unique(np.round(np.arange(n) / hz + rng.uniform(-0.2, 0.2, n) / hz, 9))

        def state(t: float) -> tuple[float, bool]:
            for s in segs:
                if s.t0 <= t <= s.t1:
                    w = s.w0 + (s.w1 - s.w0) * ((t - s.t0) / (s.t1 - s.t0) if s.t1 > s.t0 else 1.0)
                    return w, s.part is not None and w <= s.part + 1e-9
            return segs[-1].w1, False

        for t in times(driver_hz):
            if t < 0:
                continue
            w = state(float(t))[0] / joints.scale
            names = list(joints.joint_names)
            pos = [-w / 2, w / 2] if joints.mode == "sum_abs" else [w]
            out.append((float(t), "joints", (names, pos)))
        for t in times(frame_hz):
            if t < 0:
                continue
            img = (PRESSED if state(float(t))[1] else FREE).astype(np.float32)
            img += rng.normal(0.0, noise, img.shape).astype(np.float32)
            out.append((float(t), "frame", np.clip(img, 0, 255).astype(np.uint8)))
        out.sort(key=lambda m: m[0])
        return out
