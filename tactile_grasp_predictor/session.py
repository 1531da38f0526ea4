"""The grasp session: the one path from gripper and frame inputs to LIFT / ABORT, without ROS.

``predictor_node`` and ``tgp bag eval`` both drive a :class:`GraspSession`; that is why a bag
replayed offline gets exactly the decisions the live node gives. The session owns every
rule between a message and a decision:

- the time base (:class:`~tactile_grasp_predictor.timebase.TimeBase`: header stamps or
  receive times, stamp fallback, the watchdog clock of ticks);
- the gripper-input combiner: a JointState width is one sample, carrying the latest moving
  flag and grasp state; a moving flag only updates the latest flag; a WSG status updates the
  latest grasp state and, when it names one, is a width-less sample (without a JointState
  topic, an offline-only case, the status width is the sample's width);
- the gate (:class:`~tactile_grasp_predictor.gate.GraspGate`: Ta/Tb selection, timeouts) and
  its contact rule (:class:`~tactile_grasp_predictor.contact.ContactJudge`: a closing that
  touched nothing, such as a pre-shaping move, is dismissed without a decision);
- the gripper's veto until the decision: a report of no part, error or release (or a fully
  closed width, an opening) between the closing onset and the decision ends the grasp in
  ABORT with the gripper's reason, also while the model runs. The decision is the moment the
  model's answer is handed in (:meth:`GraspSession.complete`) at its receive time: every input
  received before it is handled first. Live, the worker hands it in when it finishes (inputs
  received meanwhile were handled already); offline, the replay hands it in at once, dated
  Tb's receive time plus the measured compute time, with ``wait_for_inputs``: the session holds
  it until an input at or after that time arrives (or :meth:`flush`): one rule;
- the reason rules (a frame-starved ABORT after malformed frames is ``bad_frame``; a full
  inference queue is ``overloaded``; an action goal without a decision gets its own ABORT);
- the threshold (the override, else the model's, else NaN: no model, no LIFT);
- the decision time and latency (Tb trigger → decision, on the receive clock);
- the counters diagnostics report (:meth:`GraspSession.health`), and the gripper-only
  baseline of each decided grasp (:attr:`GraspSession.gripper_only`).

The caller converts messages into plain values, calls ``on_…``, and acts on what comes back:
:class:`~tactile_grasp_predictor.gate.PhaseChanged` (action feedback), a :class:`InferenceJob`
(run :meth:`GraspSession.decide` — on any thread, it touches no session state — then hand the
result to :meth:`GraspSession.complete`), or a stamped
:class:`~tactile_grasp_predictor.decision.Decision` (publish it). Not thread-safe otherwise:
one thread or one lock, as for the gate.

Example:
    >>> import numpy as np
    >>> class Half:
    ...     model_id, threshold = "half", 0.4
    ...     def predict(self, ta, tb):
    ...         return 0.5
    >>> s = GraspSession(SessionConfig(time_base="receive"))
    >>> s.set_model("half", 0.4)
    >>> rest, pressed = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 60, np.uint8)
    >>> out = s.on_frame(None, 0.0, rest) + s.on_gripper_width(None, 0.01, 0.08)
    >>> out += s.on_gripper_width(None, 0.05, 0.04)  # closing starts
    >>> [o.phase for o in s.on_gripper_width(None, 0.30, 0.04)]  # steady for settle_window_s
    ['settling']
    >>> job = next(o for o in s.on_frame(None, 0.42, pressed) if isinstance(o, InferenceJob))  # Tb: contact
    >>> d = [o for o in s.complete(job, s.decide(job, Half()), 0.422) if isinstance(o, Decision)][0]
    >>> (d.verdict.name, d.reason, d.p_success, round(d.latency_ms, 3))
    ('LIFT', 'model', 0.5, 2.0)

"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tactile_grasp_predictor.contact import ContactJudge
from tactile_grasp_predictor.decision import Decision, Predicting, Verdict, abort_decision, decide
from tactile_grasp_predictor.gate import (
    Frame,
    GateEvent,
    GraspAborted,
    GraspDismissed,
    GraspGate,
    PhaseChanged,
    PixelSource,
    Reason,
    SnapshotReady,
)
from tactile_grasp_predictor.gripper import GraspState, GripperSample
from tactile_grasp_predictor.timebase import TimeBase
from tactile_grasp_predictor.tracker import TriggerConfig

#: Gate ABORTs caused by the image stream failing; ``bad_frame`` when frames were malformed meanwhile.
FRAME_STARVED = (Reason.NO_PRE_CONTACT_FRAME, Reason.STALE_FRAME, Reason.TB_TIMEOUT)
#: ABORTs by the gripper's own word: the gripper-only baseline does not LIFT them either.
GRIPPER_SAYS = (Reason.NO_PART_FOUND, Reason.GRIPPER_ERROR, Reason.GRIPPER_OPENED)
#: Gate phases as the action's feedback names them (a decided grasp waits for the next one).
_FEEDBACK_PHASE = {"decided": "waiting"}


@dataclass(frozen=True)
class SessionConfig:
    """What a session needs of the node's parameters (:meth:`from_node_config`).

    Attributes:
        trigger: the gate's thresholds and timings.
        time_base: ``header`` or ``receive`` (the node's ``time_base``).
        time_offset_warn_s, time_watchdog_slack_s: the :class:`TimeBase` settings.
        threshold: LIFT iff p >= this; ``None``: the model's own threshold.
        joint_states: whether a JointState topic gives the width (``False``: the status
            width does; only a replay of a status-only recording).

    """

    trigger: TriggerConfig = field(default_factory=TriggerConfig)
    time_base: str = "header"
    time_offset_warn_s: float = 1.0
    time_watchdog_slack_s: float = 0.1
    threshold: float | None = None
    joint_states: bool = True

    @staticmethod
    def from_node_config(cfg: Any, joint_states: bool = True) -> SessionConfig:
        """From a :class:`~tactile_grasp_predictor.node_config.NodeConfig`."""
        return SessionConfig(
            trigger=cfg.trigger,
            time_base=str(cfg["time_base"]),
            time_offset_warn_s=float(cfg["time_offset_warn_s"]),
            time_watchdog_slack_s=float(cfg["time_watchdog_slack_s"]),
            threshold=cfg.threshold,
            joint_states=joint_states,
        )


@dataclass(frozen=True)
class InferenceJob:
    """Ta and Tb are known: run the model (:meth:`GraspSession.decide`), then :meth:`GraspSession.complete`.

    ``receive_t``: the receive-clock time of the input that made Tb known (latency starts here).
    """

    snapshot: SnapshotReady
    receive_t: float


SessionOutput = PhaseChanged | InferenceJob | Decision


class RateMeter:
    """Message count, rate and age from the last receive times (bounded)."""

    def __init__(self, window: int = 120) -> None:
        self.times: deque[float] = deque(maxlen=window)
        self.count = 0

    def tick(self, t: float) -> None:
        """Count a message received at ``t``."""
        self.times.append(t)
        self.count += 1

    def rate_hz(self, now: float, horizon_s: float = 2.0) -> float:
        """Messages per second over the last ``horizon_s`` before ``now``."""
        recent = [t for t in self.times if now - t <= horizon_s]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def age_s(self, now: float) -> float:
        """Seconds since the last message (inf before any)."""
        return now - self.times[-1] if self.times else math.inf


@dataclass
class SessionCounts:
    """What the session has seen and decided (diagnostics, replay summaries)."""

    bad_frames: int = 0
    last_bad_frame: str = ""
    bad_since_good: bool = False  # malformed frames since the last good one
    ignored_gripper: int = 0  # JointStates without our joints, undecodable statuses
    last_ignored_gripper: str = ""
    lift: int = 0
    abort: int = 0
    last_decision: Decision | None = None
    void_results: int = 0  # model answers that came after the gripper had ended their grasp


@dataclass(frozen=True)
class ModelStatus:
    """The model as the inference worker reports it (:meth:`GraspSession.health`)."""

    loading: bool = False
    available: bool = False  # a model is loaded and serving
    model_id: str = ""
    backend: str = ""
    error: str = ""
    pending: int = 0
    pinning: str = "off"
    scheduling: str = "normal"


@dataclass(frozen=True)
class Health:
    """One diagnostic status: ``level`` ``ok`` / ``warn`` / ``error``, a message, key-value details."""

    level: str
    message: str
    values: dict[str, str]
    clock_problem: tuple[str, str] = ("", "")


class GraspSession:
    """Inputs → gate → decisions, with every rule of the module docstring; one per node or replay."""

    def __init__(self, config: SessionConfig | None = None,
                 on_sample: Callable[[GripperSample], None] | None = None) -> None:
        self.config = config or SessionConfig()
        self.gate = GraspGate(self.config.trigger, ContactJudge(self.config.trigger))
        self.timebase = TimeBase(self.config.time_base, warn_offset_s=self.config.time_offset_warn_s,
                                 watchdog_slack_s=self.config.time_watchdog_slack_s)
        self.counts = SessionCounts()
        self.frames = RateMeter()  # good frames by receive time
        self.gripper = RateMeter()  # gripper widths by receive time
        self._on_sample = on_sample  # sees every sample fed to the gate (the replay's gripper-only baseline)
        self._moving: bool | None = None
        self._state: GraspState | None = None
        self._model_id = ""
        self._model_threshold: float | None = None
        self._last_t = -math.inf  # the newest core time of any input
        self._last_receive = -math.inf  # the newest receive time of any input
        self._pending: set[int] = set()  # grasps whose model answer is awaited
        self._held: list[tuple[float, InferenceJob, Decision]] = []  # answers due later (replay)
        self._settled: set[int] = set()  # grasps that settled (the gripper alone would LIFT)
        #: grasp id → the gripper-only baseline's verdict (LIFT: it settled, and the gripper never
        #: said no part, error or opened), for every decided grasp
        self.gripper_only: dict[int, bool] = {}

    # ------------------------------------------------------------------ model and settings
    def set_model(self, model_id: str, threshold: float | None) -> None:
        """Record the loaded model: its id goes into each decision; its threshold, unless overridden."""
        self._model_id = model_id
        self._model_threshold = threshold

    @property
    def model_id(self) -> str:
        """The loaded model's id ('' without a model)."""
        return self._model_id

    @property
    def threshold(self) -> float:
        """LIFT iff p >= this: the override, else the model's threshold, else NaN (no model: never LIFT)."""
        if self.config.threshold is not None:
            return float(self.config.threshold)
        th = self._model_threshold
        return float(th) if isinstance(th, int | float) else math.nan

    def reconfigure(self, config: SessionConfig) -> None:
        """Take new settings; a changed trigger re-arms the gate (a grasp in progress is dropped)."""
        assert config.time_base == self.config.time_base, "time_base is fixed at start-up"
        if config.trigger != self.config.trigger:
            self.gate = GraspGate(config.trigger, ContactJudge(config.trigger))
            self._pending.clear()
            self._held.clear()
        self.config = config

    # ------------------------------------------------------------------ state
    @property
    def phase(self) -> str:
        """The grasp's phase for feedback: waiting · closing · settling · predicting."""
        return _FEEDBACK_PHASE.get(self.gate.phase, self.gate.phase)

    @property
    def grasp_id(self) -> int:
        """Id of the current or last grasp (0 before the first)."""
        return self.gate.grasp_id

    @property
    def last_t(self) -> float:
        """The core time of the newest input (``-inf`` before any)."""
        return self._last_t

    # ------------------------------------------------------------------ inputs
    def on_frame(self, stamp: float | None, receive_t: float, image: np.ndarray,
                 source: PixelSource | None = None) -> list[SessionOutput]:
        """Take a frame stamped ``stamp``, received at ``receive_t`` (with ``source``: still undecoded)."""
        t = self._time(stamp, receive_t, "image")
        self.frames.tick(receive_t)
        out = self._release(receive_t)
        self.counts.bad_since_good = False
        return out + self._handle(self.gate.on_frame(Frame(t, stamp, image, source)), receive_t)

    def on_bad_frame(self, receive_t: float, reason: str) -> None:
        """Count a frame that could not be decoded (it never reaches the gate; the reason names the field)."""
        del receive_t  # counted, not timed: a malformed message's stamp cannot be trusted
        c = self.counts
        c.bad_frames += 1
        c.bad_since_good = True
        c.last_bad_frame = reason

    def on_gripper_width(self, stamp: float | None, receive_t: float, width_m: float,
                         effort: float | None = None) -> list[SessionOutput]:
        """Take a finger opening from a JointState (see :func:`~.gripper.joint_state_width`).

        ``effort``: the fingers' effort from the same message (:func:`~.gripper.joint_state_effort`),
        contact evidence where ``trigger.contact_effort`` is set.
        """
        t = self._time(stamp, receive_t, "joint_states")
        self.gripper.tick(receive_t)
        return self._feed(GripperSample(t, width_m, self._moving, self._state, effort), receive_t)

    def on_ignored_gripper(self, reason: str) -> None:
        """Count a gripper message that gives no sample (other joints on a shared topic, a bad status)."""
        self.counts.ignored_gripper += 1
        self.counts.last_ignored_gripper = reason

    def on_moving(self, moving: bool) -> None:
        """Take the driver's moving flag (``std_msgs/Bool``): the next samples carry it."""
        self._moving = bool(moving)

    def on_status(self, stamp: float | None, receive_t: float, state: GraspState | None,
                  width_m: float | None = None, moving: bool | None = None,
                  has_header: bool = True) -> list[SessionOutput]:
        """Take a WSG status (decoded by :func:`~tactile_grasp_predictor.wsg.decode_status`).

        With a JointState topic the status only updates the grasp state (a width-less sample
        when it names one); without one (offline only) its width and moving flag make the sample.
        """
        t = self._time(stamp, receive_t, "status", has_header)
        self._state = state
        if self.config.joint_states:
            if state is None:
                return self._release(receive_t)
            return self._feed(GripperSample(t, None, self._moving, state), receive_t)
        if width_m is None:
            self.on_ignored_gripper(f"status at t={receive_t:.3f}: no plausible width")
            return self._release(receive_t)
        return self._feed(GripperSample(t, width_m, self._moving if moving is None else moving, state),
                          receive_t)

    def on_tick(self, receive_now: float) -> list[SessionOutput]:
        """Tick the clock at receive-clock time ``receive_now``: fire the timeouts due by then.

        Under ``header`` the tick's core time is the watchdog clock
        (:meth:`TimeBase.watchdog_time`), and it only moves forward: a tick never resets the clock.
        """
        out = self._release(receive_now)
        t = self.timebase.watchdog_time(receive_now)
        if self.timebase.mode == "header" and (self.gate.now is None or t <= self.gate.now):
            return out
        return out + self._handle(self.gate.on_tick(t), receive_now)

    def flush(self) -> list[SessionOutput]:
        """End of the recording: hand in held answers, fire every pending timeout at its deadline."""
        out = self._release(math.inf)
        if not math.isfinite(self._last_t):
            return out
        cfg = self.config.trigger
        horizon = self._last_t + cfg.tb_timeout_s + cfg.gripper_silence_s + cfg.frame_max_age_s + 1.0
        return out + self._handle(self.gate.on_tick(horizon), None)

    # ------------------------------------------------------------------ the model
    def decide(self, job: InferenceJob, predictor: Predicting | None) -> Decision:
        """Run the model on the job's Ta/Tb (any thread: no session state changes); not yet stamped."""
        return decide(job.snapshot, predictor, self.threshold)

    def complete(self, job: InferenceJob, decision: Decision, receive_t: float, *,
                 wait_for_inputs: bool = False) -> list[SessionOutput]:
        """Hand in the job's decision, made at receive-clock ``receive_t``: stamp, count, move the gate on.

        Void (nothing returned, counted in ``void_results``) if the gripper ended the grasp first.
        ``wait_for_inputs``: the caller's inputs have not reached ``receive_t`` yet (a replay,
        which computes at once and dates the answer Tb + the compute time): the answer is held
        until an input at or after ``receive_t`` arrives (or :meth:`flush`), so that what a live
        node receives while its model runs comes before the answer, offline as live.
        """
        if job.snapshot.grasp_id not in self._pending:
            self.counts.void_results += 1
            return []
        if wait_for_inputs and receive_t > self._last_receive:
            self._held.append((receive_t, job, decision))
            return []
        return self._finish(job, decision, receive_t)

    def _finish(self, job: InferenceJob, decision: Decision, receive_t: float) -> list[SessionOutput]:
        """Stamp and publish a model decision (see :meth:`complete`)."""
        self._pending.discard(job.snapshot.grasp_id)
        t = max(job.snapshot.t_trigger, self.timebase.from_receive(receive_t))
        stamped = dataclasses.replace(decision, t_decision=t,
                                      latency_ms=max(0.0, receive_t - job.receive_t) * 1000.0)
        out: list[SessionOutput] = [
            e for e in self.gate.mark_decided(job.snapshot.grasp_id, t) if isinstance(e, PhaseChanged)]
        out.append(self._count(stamped))
        return out

    def _release(self, receive_t: float) -> list[SessionOutput]:
        """Note an input received at ``receive_t``; hand in the held answers due by then, in order."""
        self._last_receive = max(self._last_receive, receive_t)
        out: list[SessionOutput] = []
        while self._held and self._held[0][0] <= receive_t:
            due, job, decision = self._held.pop(0)
            if job.snapshot.grasp_id in self._pending:
                out += self._finish(job, decision, due)
            else:
                self.counts.void_results += 1
        return out

    def reject(self, job: InferenceJob, reason: str, receive_t: float) -> list[SessionOutput]:
        """End a job without running the model (e.g. ``overloaded``): ABORT with ``reason``."""
        s = job.snapshot
        aborted = GraspAborted(s.grasp_id, s.t_trigger, reason, s.ta, s.tb)
        decision = abort_decision(aborted, self.threshold, self._model_id)
        if s.grasp_id not in self._pending:
            self.counts.void_results += 1
            return []
        return self._finish(job, decision, receive_t)

    def no_decision(self, reason: str, receive_t: float) -> Decision:
        """Build the ABORT an action goal ends with when no grasp was decided in time (not counted)."""
        return Decision(grasp_id=self.gate.grasp_id, verdict=Verdict.ABORT, p_success=math.nan,
                        threshold=self.threshold, ta_stamp=None, tb_stamp=None, latency_ms=math.nan,
                        reason=reason, model_id=self._model_id,
                        t_decision=self.timebase.from_receive(receive_t))

    # ------------------------------------------------------------------ diagnostics
    def health(self, receive_now: float, model: ModelStatus) -> Health:
        """Report the node's diagnostic status: level, message and the values of docs/node.md."""
        c, frame_age = self.counts, self.frames.age_s(receive_now)
        last = c.last_decision
        gate_stats = self.gate.stats
        contact = self.gate.contact
        assert contact is not None
        clock = self.timebase.problem()
        values = {
            "model_loaded": str(model.available),
            "model_id": model.model_id,
            "backend": model.backend,
            "inference_cpus": model.pinning,
            "inference_priority": model.scheduling,
            "model_error": model.error,
            "frames_received": str(self.frames.count),
            "frame_rate_hz": f"{self.frames.rate_hz(receive_now):.1f}",
            "last_frame_age_s": f"{frame_age:.3f}",
            "bad_frames": str(c.bad_frames),
            "last_bad_frame": c.last_bad_frame,
            "gripper_samples": str(self.gripper.count),
            "gripper_rate_hz": f"{self.gripper.rate_hz(receive_now):.1f}",
            "last_gripper_age_s": f"{self.gripper.age_s(receive_now):.3f}",
            "ignored_joint_states": str(c.ignored_gripper),
            "phase": self.phase,
            "grasps": str(self.gate.grasp_id),
            "closings_without_contact": str(gate_stats.dismissed),
            "contact_threshold": f"{contact.threshold:.2f}",
            "contact_noise": f"{contact.noise:.2f}",
            "last_contact": contact.last.summary() if contact.last else "",
            "gripper_vetoes": str(gate_stats.vetoes),
            "lift": str(c.lift),
            "abort": str(c.abort),
            "last_reason": last.reason if last else "",
            "last_decision_latency_ms": f"{last.latency_ms:.2f}" if last else "",
            "pending_inference": str(model.pending),
            "time_base": self.timebase.mode,
            "stamp_fallbacks": str(self.timebase.fallbacks),
            "stamp_offsets_s": " ".join(f"{k}={v:+.4f}" for k, v in self.timebase.offsets().items()),
            "clock_problem": clock[1],
        }
        if model.loading:
            level, message = "warn", "loading model"
        elif not model.available:
            level, message = "error", f"model unavailable: {model.error}"
        elif self.frames.count == 0:
            level, message = "warn", "no frames received"
        elif c.bad_since_good:
            level, message = "warn", "malformed frames"
        elif frame_age > self.config.trigger.frame_max_age_s:
            level, message = "warn", f"frames stale ({frame_age:.2f} s)"
        elif clock[0] == "warn":
            level, message = "warn", "header stamps on different clocks"
        elif self.gripper.count == 0:
            level, message = "warn", "no gripper state received"
        else:
            level, message = "ok", "ok"
        return Health(level, message, values, clock)

    # ------------------------------------------------------------------ internals
    def _time(self, stamp: float | None, receive_t: float, stream: str, has_header: bool = True) -> float:
        """Return the core time of an input (a type without a header: its receive time, mapped)."""
        tb = self.timebase
        t = tb.resolve(stamp, receive_t, stream) if has_header else tb.from_receive(receive_t)
        self._last_t = max(self._last_t, t)
        return t

    def _feed(self, sample: GripperSample, receive_t: float) -> list[SessionOutput]:
        if self._on_sample is not None:
            self._on_sample(sample)
        out = self._release(receive_t)
        return out + self._handle(self.gate.on_gripper(sample), receive_t)

    def _handle(self, events: Sequence[GateEvent], receive_t: float | None) -> list[SessionOutput]:
        """Gate events → outputs; ABORTs stamped at ``receive_t`` (``None``: at their own time)."""
        out: list[SessionOutput] = []
        for ev in events:
            if isinstance(ev, PhaseChanged):
                if ev.phase == "settling":
                    self._settled.add(ev.grasp_id)
                out.append(ev)
            elif isinstance(ev, SnapshotReady):
                self._pending.add(ev.grasp_id)
                out.append(InferenceJob(ev, ev.t_trigger if receive_t is None else receive_t))
            elif isinstance(ev, GraspDismissed):
                self._settled.discard(ev.grasp_id)  # the id goes to the next closing
            else:
                self._pending.discard(ev.grasp_id)  # the gripper's veto: the model's answer is void
                if ev.reason in FRAME_STARVED and self.counts.bad_since_good:
                    ev = dataclasses.replace(ev, reason=Reason.BAD_FRAME)
                t = ev.t if receive_t is None else max(ev.t, self.timebase.from_receive(receive_t))
                d = abort_decision(ev, self.threshold, self._model_id)
                out.append(self._count(dataclasses.replace(d, t_decision=t, latency_ms=(t - ev.t) * 1000.0)))
        return out

    def _count(self, decision: Decision) -> Decision:
        assert decision.verdict == Verdict.ABORT or decision.reason == Reason.MODEL, decision
        gid = decision.grasp_id
        self.gripper_only[gid] = gid in self._settled and decision.reason not in GRIPPER_SAYS
        self._settled.discard(gid)
        if decision.verdict == Verdict.LIFT:
            self.counts.lift += 1
        else:
            self.counts.abort += 1
        self.counts.last_decision = decision
        return decision
