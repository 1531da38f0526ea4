"""Fuzzing the decision path: gripper programs with injected faults through :class:`GraspSession` (#19).

Each case is a recording of one to three grasps (closing at some speed onto a part or onto
nothing, holding, reopening), observed as JointState widths (through the node's adapter,
``joint_state_width``), optional WSG statuses and moving flags, frames (the gel free before
contact, pressed after), watchdog ticks — with faults injected: the gripper reporting ERROR,
NO_PART_FOUND, PART_LOST or RELEASING or closing fully while the grasp is under way, corrupt
joint positions (NaN, inf, huge), malformed frames, frames that fail to decode when picked
as Ta/Tb, silences of either stream, empty stamps, clock jumps back, a model that answers NaN,
inf, 1.5, -0.1 or raises, no model, thresholds outside [0, 1].

Invariants (only the session's public API; nothing about how it decides): no call raises;
every LIFT has reason ``model``, a model answer that was a probability at or above a
threshold in [0, 1], decodable Ta/Tb, and no gripper report of error, no part, part lost,
release or a fully closed width between the grasp's closing onset and the decision (a state
report that repeats, unchanged, the state reported before the onset is a leftover: firmware
states persist until the next command, and drivers repeat them; ERROR always counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from helpers.fuzz import ACCEPTED, LIFT_ON_ERROR, Tally, fuzz_settings
from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.errors import BundleError, FrameError
from tactile_grasp_predictor.gate import PhaseChanged
from tactile_grasp_predictor.gripper import GraspState, JointWidthConfig, joint_state_width
from tactile_grasp_predictor.session import GraspSession, InferenceJob, SessionConfig
from tactile_grasp_predictor.tracker import TriggerConfig

JOINTS = JointWidthConfig(("left", "right"))
CLOSED = TriggerConfig().closed_width_m
OPEN = 0.08
FAULT_STATES = (GraspState.ERROR, GraspState.NO_PART_FOUND, GraspState.PART_LOST, GraspState.RELEASING)
ANSWERS = ("p", "p", "p", "p0", "nan", "inf", "big", "neg", "raise", "frame_error", "bundle_error")
FREE = np.full((8, 8, 3), 100, np.uint8)  # the gel at rest
PRESSED = FREE.copy()
PRESSED[2:6, 3:7] = (160, 90, 130)  # a contact patch
EMPTY = np.zeros((0, 0, 3), np.uint8)


class BrokenFrame:
    """Pixels that fail to decode when picked (a corrupt compressed frame in a bag)."""

    decoded = False

    def decode(self) -> np.ndarray:
        """Raise, as a corrupt frame does."""
        raise FrameError("fuzz: corrupt frame")


class Model:
    """A model that says 1.0 (always LIFT) unless its next scripted answer is a fault."""

    model_id = "fuzz"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.calls = 0
        self.last = "p"

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        """Answer the next scripted answer."""
        a = self.last = self.answers[self.calls % len(self.answers)]
        self.calls += 1
        value = {"p": 1.0, "p0": 0.0, "nan": math.nan, "inf": math.inf, "big": 1.5, "neg": -0.1}.get(a)
        if value is not None:
            return value
        raise {"raise": RuntimeError("fuzz: model crashed"), "frame_error": FrameError("fuzz: frame"),
               "bundle_error": BundleError("fuzz: bundle")}[a]


@dataclass
class Program:
    """One generated recording: time-ordered inputs, the session set-up, the model's answers."""

    events: list[tuple[Any, ...]]
    time_base: str
    override: float | None
    model_threshold: float | None
    with_model: bool
    answers: list[str]
    monotone: bool  # no clock jump back: the gripper-veto invariant applies
    notes: list[str] = field(default_factory=list)


FAULTS = ("none", "none", "state", "closed", "joints", "bad_frames", "broken", "frame_gap", "grip_gap",
          "jump_back", "dup")


@st.composite
def programs(draw: st.DrawFn) -> Program:
    """Draw a recording of 1-3 grasps with faults (see the module docstring).

    Hypothesis draws the structure (grasps, each one's fault); a drawn seed the numbers (times,
    speeds, widths, rates): few draws per case keep generation cheap at 10,000 cases.
    """
    faults = draw(st.lists(st.sampled_from(FAULTS), min_size=1, max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def pick(options: Any) -> Any:
        return options[int(rng.integers(len(options)))]

    grip_dt, frame_dt = pick([0.01, 0.02, 0.02, 0.05]), pick([1 / 30, 1 / 15, 1 / 15, 0.1])
    status, latency = bool(rng.integers(2)), pick([0.0, 0.002, 0.03])
    empty_stamps = pick(["none", "none", "frames", "gripper", "all"])
    events: list[tuple[Any, ...]] = []
    notes: list[str] = []
    t = 0.0
    monotone = True
    for g, fault in enumerate(faults):
        t_close = t + rng.uniform(0.3, 1.0)
        speed = rng.uniform(0.05, 0.2)
        part = g == 0 or bool(rng.integers(2))
        w_end = rng.uniform(0.01, 0.06) if part else rng.uniform(0.0, CLOSED)
        t_stop = t_close + (OPEN - w_end) / speed
        t_open = t_stop + rng.uniform(0.1, 1.2)
        t_end = t_open + (OPEN - w_end) / 0.1 + 0.3
        t_fault = rng.uniform(t_close + 0.02, t_open)
        notes.append(f"grasp {g + 1}: close {t_close:.2f} w_end {w_end:.3f} open {t_open:.2f} fault {fault}"
                     f"@{t_fault:.2f}")

        def width(tt: float, t_close: float = t_close, speed: float = speed, w_end: float = w_end,
                  t_open: float = t_open) -> float:
            if tt <= t_close:
                return OPEN
            if tt <= t_open:
                return max(w_end, OPEN - speed * (tt - t_close))
            return min(OPEN, w_end + 0.1 * (tt - t_open))

        tt = t
        while tt < t_end:
            gap = fault == "grip_gap" and t_fault <= tt < t_fault + 1.0
            if not gap:
                events.append(("width", tt, width(tt)))
                if status and round(tt / grip_dt) % 5 == 0:
                    state = (GraspState.IDLE if tt < t_close or tt > t_open + 0.2 else
                             GraspState.RELEASING if tt > t_open else
                             GraspState.GRASPING if tt < t_stop else
                             GraspState.HOLDING if part else GraspState.NO_PART_FOUND)
                    events.append(("status", tt, state))
            tt += grip_dt
        tt = t
        while tt < t_end:
            if not (fault == "frame_gap" and t_fault <= tt < t_fault + 1.0):
                contact = t_close < tt and width(tt) <= w_end + 0.002 and part
                events.append(("frame", tt, "pressed" if contact else "free"))
            tt += frame_dt
        if fault == "state":
            events.append(("status", t_fault, pick(FAULT_STATES)))
        elif fault == "closed":
            events.append(("width", t_fault, rng.uniform(0.0, CLOSED / 2)))
        elif fault == "joints":
            events.append(("joints", t_fault, pick([math.nan, math.inf, -1e9, 1e9, 0.5])))
        elif fault == "bad_frames":
            events += [("bad_frame", t_fault + 0.01 * i) for i in range(int(rng.integers(1, 21)))]
        elif fault == "broken":
            events += [("broken", t_fault + frame_dt * (i + 0.5)) for i in range(int(rng.integers(1, 31)))]
        elif fault == "jump_back":
            events.append(("jump", t_fault, rng.uniform(0.5, 30.0)))
            monotone = False
        elif fault == "dup":
            events.append(("width", t_fault - rng.uniform(0.0, 0.5), rng.uniform(0.0, OPEN)))
            monotone = False
        t = t_end
    events.sort(key=lambda e: e[1])
    ticks = pick([0.0, 0.05, 0.2])
    if ticks:
        events = sorted(events + [("tick", k * ticks) for k in range(int(t / ticks))], key=lambda e: e[1])
    return Program(
        events=[(*e, latency, empty_stamps) for e in events],
        time_base=pick(["header", "receive"]),
        override=pick([None, None, 0.3, -0.5, 1.5, math.nan]),
        model_threshold=pick([0.5, 0.5, 0.0, None, math.nan, 2.0]),
        with_model=bool(rng.integers(8)),  # one in eight without a model
        answers=[pick(ANSWERS) for _ in range(int(rng.integers(1, 5)))],
        monotone=monotone,
        notes=notes,
    )


def run_program(p: Program) -> str:
    """Drive a session through the program; return ACCEPTED, or LIFT_ON_ERROR naming nothing (see notes)."""
    override = p.override if p.override is None or 0.0 <= p.override <= 1.0 else None
    session = GraspSession(SessionConfig(time_base=p.time_base, threshold=override))
    model = Model(p.answers) if p.with_model else None
    if model is not None:
        session.set_model(model.model_id, p.model_threshold)
    onset: dict[int, int] = {}
    onset_state: dict[int, Any] = {}  # the grasp state reported last before each onset
    faults: list[tuple[int, Any]] = []  # (call index, state or "closed") of reports ending a grasp
    state: list[Any] = [None]  # the grasp state reported last before the current call
    job_faults: set[int] = set()  # grasps whose model call or frames failed
    offset = 0.0  # clock jump
    bad: list[str] = []

    def check(d: Decision, k: int) -> None:
        if d.verdict != Verdict.LIFT:
            return
        thr = session.threshold
        why = []
        if model is None or d.reason != "model" or not (0.0 <= d.p_success <= 1.0):
            why.append(f"reason {d.reason} p {d.p_success}")
        if not (0.0 <= thr <= 1.0) or not d.p_success >= thr:
            why.append(f"threshold {thr}")
        if d.grasp_id in job_faults:
            why.append("model or frames failed")
        start = onset.get(d.grasp_id)
        # A report ends the grasp unless it repeats, unchanged, the state reported before the onset (a
        # firmware state persists until the next command: a driver repeats it); ERROR always counts.
        ended = [j for j, s in faults if start is not None and start < j < k
                 and (s in ("closed", GraspState.ERROR) or s != onset_state.get(d.grasp_id))]
        if p.monotone and ended:
            why.append(f"the gripper reported a fault (call {ended[0]}) before the decision")
        if why:
            bad.append(f"grasp {d.grasp_id} LIFT at call {k}: {', '.join(why)}")

    def handle(outputs: list[Any], k: int, now: float) -> None:
        for out in outputs:
            if isinstance(out, PhaseChanged):
                if out.phase == "closing":
                    onset[out.grasp_id] = k  # the latest: a dismissed closing gives its id back
                    onset_state[out.grasp_id] = state[0]
            elif isinstance(out, InferenceJob):
                s = out.snapshot
                if isinstance(s.ta.source, BrokenFrame) or isinstance(s.tb.source, BrokenFrame):
                    job_faults.add(s.grasp_id)
                decision = session.decide(out, model)
                if model is not None and model.last not in ("p", "p0"):  # no probability
                    job_faults.add(s.grasp_id)
                handle(session.complete(out, decision, now + 0.005), k, now)
            elif isinstance(out, Decision):
                check(out, k)

    for k, (kind, t, *rest) in enumerate(p.events):
        *args, latency, empty = rest
        recv = t + offset + latency
        frame_stamp = None if empty in ("frames", "all") else t + offset
        grip_stamp = None if empty in ("gripper", "all") else t + offset
        out: list[Any] = []
        if kind == "width":
            w, _ = joint_state_width(["left", "right"], [-args[0] / 2, args[0] / 2], JOINTS)
            if w is None:
                session.on_ignored_gripper("fuzz")
            else:
                if w <= CLOSED / 2:
                    faults.append((k, "closed"))
                out = session.on_gripper_width(grip_stamp, recv, w)
        elif kind == "joints":
            w, why = joint_state_width(["left", "right"], [args[0], 0.0], JOINTS)
            if w is None:
                session.on_ignored_gripper(why)
            else:
                out = session.on_gripper_width(grip_stamp, recv, w)
        elif kind == "status":
            if args[0] in FAULT_STATES:
                faults.append((k, args[0]))
            out = session.on_status(grip_stamp, recv, args[0])
        elif kind == "frame":
            out = session.on_frame(frame_stamp, recv, PRESSED if args[0] == "pressed" else FREE)
        elif kind == "broken":
            out = session.on_frame(frame_stamp, recv, EMPTY, BrokenFrame())
        elif kind == "bad_frame":
            session.on_bad_frame(recv, "fuzz: malformed")
        elif kind == "tick":
            out = session.on_tick(recv)
        elif kind == "jump":
            offset -= args[0]
        handle(out, k, recv)
        if kind == "status":
            state[0] = args[0]
    handle(session.flush(), len(p.events), math.inf)
    if bad:
        p.notes += bad
        return LIFT_ON_ERROR
    return ACCEPTED


TALLY = Tally("session", expected=())


@fuzz_settings(default_cases=60)
@given(programs())
def _case(p: Program) -> None:
    kinds = sorted({n.split("fault ")[1].split("@")[0] for n in p.notes if "fault " in n})
    TALLY.run(lambda: run_program(p), lambda: "\n".join(p.notes), kind="+".join(kinds))


def test_fuzz_gripper_programs_never_lift_on_an_error() -> None:
    _case()
    TALLY.finish(min_cases=50)
