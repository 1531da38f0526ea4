"""The grasp gate: frame buffer + phase tracker + Ta/Tb snapshot selection.

Feed it frames (:meth:`GraspGate.on_frame`), gripper samples (:meth:`GraspGate.on_gripper`)
and clock ticks (:meth:`GraspGate.on_tick`), all on one clock (header stamps or receive
time: :mod:`tactile_grasp_predictor.timebase`); it answers with events. For every closing
exactly one of :class:`SnapshotReady` (Ta, Tb: run the model), :class:`GraspAborted` (with a
reason: decide ABORT without the model) or, with a contact judge, :class:`GraspDismissed`
(it touched nothing: no grasp, no decision) is emitted.

- Ta = the newest frame received strictly before the closing onset, not older than
  ``ta_max_age_s`` (else ``no_pre_contact_frame``).
- Tb = the first frame received at or after settle time + ``tb_delay_s``.
- Contact (:class:`~tactile_grasp_predictor.contact.ContactJudge`, when given): at Tb, when
  the gripper opens before Tb, and when Tb times out, a closing without contact evidence is
  dismissed and the tracker re-armed from the present width.
- The gripper's word: NO_PART_FOUND / PART_LOST or a fully closed width, ERROR, RELEASING or
  an opening, from the onset until the decision (:meth:`GraspGate.mark_decided`), ends the grasp
  in ABORT (``no_part_found``, ``gripper_error``, ``gripper_opened``), even while the model runs
  on its snapshot (a veto: the model's answer is then void).
- Timeouts fire at their deadline time, whichever input reveals them first, so the same
  sequence of ``(t, input)`` gives the same events live or from a bag, with or without ticks.

Example:
    >>> import numpy as np
    >>> from tactile_grasp_predictor.gripper import GripperSample
    >>> gate = GraspGate()
    >>> img = np.zeros((4, 4, 3), np.uint8)
    >>> _ = gate.on_frame(Frame(0.0, None, img)) + gate.on_gripper(GripperSample(0.05, 0.08))
    >>> [type(e).__name__ for e in gate.on_gripper(GripperSample(0.1, 0.07))]
    ['PhaseChanged']
    >>> gate.phase
    'closing'

"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from tactile_grasp_predictor.contact import ContactEvidence, ContactJudge
from tactile_grasp_predictor.gripper import GripperSample
from tactile_grasp_predictor.tracker import (
    ClosingStarted,
    GraspPhaseTracker,
    GripperFault,
    NoPart,
    Opened,
    Resumed,
    Settled,
    TriggerConfig,
)

GatePhase = Literal["waiting", "closing", "settling", "predicting", "decided"]


class Reason:
    """The ``reason`` strings of a decision (``GraspDecision.reason``)."""

    MODEL = "model"  #: the model ran; verdict by threshold
    NO_PART_FOUND = "no_part_found"  #: fingers closed on nothing (width or firmware)
    NO_PRE_CONTACT_FRAME = "no_pre_contact_frame"  #: no Ta frame young enough before the onset
    STALE_FRAME = "stale_frame"  #: frames stopped (or stamps lag) when Tb was due
    TB_TIMEOUT = "tb_timeout"  #: no Tb within tb_timeout_s of the closing onset
    GRIPPER_SILENT = "gripper_silent"  #: no gripper sample for gripper_silence_s during a grasp
    GRIPPER_OPENED = "gripper_opened"  #: the gripper opened before Tb
    GRIPPER_ERROR = "gripper_error"  #: the gripper reported ERROR during the grasp
    BAD_FRAME = "bad_frame"  #: Ta/Tb could not be preprocessed
    MODEL_UNAVAILABLE = "model_unavailable"  #: no model loaded
    MODEL_ERROR = "model_error"  #: the model raised or gave no probability in [0, 1]
    BAD_THRESHOLD = "bad_threshold"  #: the decision threshold is not in [0, 1]
    CLOCK_RESET = "clock_reset"  #: time jumped back (looping bag, restarted simulation)
    OVERLOADED = "overloaded"  #: the node's inference queue was full
    CANCELLED = "cancelled"  #: (action only) the goal was cancelled before a decision


class PixelSource(Protocol):
    """Pixels kept undecoded until needed (a bag's raw message): :meth:`decode` gives RGB."""

    @property
    def decoded(self) -> bool:
        """Whether :meth:`decode` has run already."""
        ...

    def decode(self) -> np.ndarray:
        """RGB uint8 ``H x W x 3``; raises :class:`~tactile_grasp_predictor.errors.FrameError`."""
        ...


@dataclass(frozen=True, eq=False)
class Frame:
    """One tactile frame: time ``t`` (the time base's clock), header ``stamp`` (``None`` if empty), RGB.

    ``source``: where the pixels come from when they are decoded only if the frame becomes Ta
    or Tb (the bag replay); ``image`` is then a placeholder and :meth:`pixels` decodes.
    """

    t: float
    stamp: float | None
    image: np.ndarray  # H x W x 3 uint8 RGB
    source: PixelSource | None = None

    def pixels(self) -> np.ndarray:
        """Return the RGB image, decoding it from ``source`` now if needed (:class:`FrameError`)."""
        return self.source.decode() if self.source is not None else self.image


@dataclass(frozen=True)
class PhaseChanged:
    """The gate's phase changed (action feedback).

    ``t`` is when the new phase began: for ``closing`` the estimated closing onset (which
    Ta precedes), for ``settling`` the settle time, else the time of the input that caused it.
    """

    t: float
    grasp_id: int
    phase: str


@dataclass(frozen=True)
class SnapshotReady:
    """Ta and Tb of a grasp are known: run the model. ``t_trigger``: when Tb became known.

    ``contact``: the judge's evidence (``None`` without a judge).
    """

    grasp_id: int
    ta: Frame
    tb: Frame
    t_trigger: float
    contact: ContactEvidence | None = None


@dataclass(frozen=True)
class GraspAborted:
    """The grasp ends in ABORT without the model; ``t`` is when the condition arose."""

    grasp_id: int
    t: float
    reason: str
    ta: Frame | None
    tb: Frame | None


@dataclass(frozen=True)
class GraspDismissed:
    """The closing touched nothing (a pre-shaping move, a pause): no grasp, no decision; re-armed.

    ``grasp_id`` is given back: the next closing gets it. ``ta`` and ``later``: the frames compared.
    """

    grasp_id: int
    t: float
    contact: ContactEvidence
    ta: Frame | None = None
    later: Frame | None = None


GateEvent = PhaseChanged | SnapshotReady | GraspAborted | GraspDismissed


class FrameBuffer:
    """The recent frames, bounded by count and by age relative to the newest frame.

    Frames must arrive in time order (``t``): an older frame is ignored
    (``out_of_order``), one with the same time and stamp as the last is ignored
    (``duplicates``).
    """

    def __init__(self, max_count: int, max_age_s: float) -> None:
        assert max_count >= 1 and max_age_s > 0
        self.max_age_s = max_age_s
        self._frames: deque[Frame] = deque(maxlen=max_count)
        self.out_of_order = 0
        self.duplicates = 0
        self.accepted = 0
        self.last_t: float | None = None  # newest accepted frame time (kept after pruning)
        self._last_stamp: float | None = None

    def __len__(self) -> int:
        return len(self._frames)

    def clear(self) -> None:
        """Drop every frame and the time order (counters continue)."""
        self._frames.clear()
        self.last_t = self._last_stamp = None

    def push(self, frame: Frame) -> bool:
        """Add a frame; return ``False`` if it was ignored (out of order or duplicate)."""
        if self.last_t is not None:
            if frame.t < self.last_t:
                self.out_of_order += 1
                return False
            if frame.t == self.last_t and frame.stamp == self._last_stamp:
                self.duplicates += 1
                return False
        self._frames.append(frame)
        self.last_t, self._last_stamp = frame.t, frame.stamp
        self.accepted += 1
        while self._frames and self._frames[0].t < frame.t - self.max_age_s:
            self._frames.popleft()
        return True

    def newest_before(self, t: float) -> Frame | None:
        """Return the newest frame received strictly before ``t``."""
        for f in reversed(self._frames):
            if f.t < t:
                return f
        return None

    def newest(self) -> Frame | None:
        """Return the newest buffered frame."""
        return self._frames[-1] if self._frames else None

    def first_at_or_after(self, t: float) -> Frame | None:
        """Return the oldest buffered frame received at or after ``t``."""
        for f in self._frames:
            if f.t >= t:
                return f
        return None


@dataclass
class GateStats:
    """Counters for diagnostics."""

    frames: int = 0
    frames_out_of_order: int = 0
    frames_duplicate: int = 0
    frames_invalid: int = 0
    gripper_samples: int = 0
    gripper_out_of_order: int = 0
    gripper_duplicate: int = 0
    gripper_invalid: int = 0
    grasps: int = 0
    snapshots: int = 0
    aborts: int = 0
    dismissed: int = 0  # closings without contact (no decision)
    vetoes: int = 0  # grasps the gripper ended while the model ran
    clock_resets: int = 0
    last_frame_t: float | None = None
    last_gripper_t: float | None = None


@dataclass
class _Grasp:
    grasp_id: int
    onset_t: float
    ta: Frame | None = None
    before_ta: Frame | None = None  # the frame before Ta: a no-contact noise sample
    tb_due: float | None = None
    grace_s: float = 0.0  # added to tb_timeout_s once: contact came too late to settle in time
    free: ContactEvidence | None = None  # the judgement that moved the onset up (Ta free of contact)


class GraspGate:
    """Frames + gripper samples + ticks → one snapshot or abort per grasp.

    Phases: ``waiting`` → ``closing`` → ``settling`` (waiting for Tb) → ``predicting``
    (snapshot emitted; :meth:`mark_decided` moves on) or ``decided`` (aborted) → back to
    ``waiting`` when the gripper opens, or at once when a closing is dismissed.

    ``contact``: the judge of contact evidence (``None``: every closing that settles is a grasp).
    Not thread-safe: call it from one thread or under one lock. Each call costs a few
    microseconds and never blocks (the contact check about a millisecond, once per closing);
    the model runs elsewhere, on the ``SnapshotReady``.
    """

    def __init__(self, config: TriggerConfig | None = None, contact: ContactJudge | None = None) -> None:
        self.config = (config or TriggerConfig()).validate()
        self.contact = contact
        self._tracker = GraspPhaseTracker(self.config)
        self._buffer = FrameBuffer(self.config.frame_buffer_size, self.config.frame_buffer_age_s)
        self._phase: GatePhase = "waiting"
        self._grasp: _Grasp | None = None  # the grasp awaiting its outcome
        self._predicting: SnapshotReady | None = None  # the snapshot whose decision is pending
        self._armed_t = -math.inf  # when the fingers last opened (or a closing was dismissed)
        self._now: float | None = None
        self._last_gripper_t: float | None = None
        self._counts = GateStats()

    @property
    def phase(self) -> GatePhase:
        """The current phase (``waiting`` · ``closing`` · ``settling`` · ``predicting`` · ``decided``)."""
        return self._phase

    @property
    def grasp_id(self) -> int:
        """Id of the current or last grasp (0 before the first; grasps count from 1)."""
        return self._tracker.grasp_id

    @property
    def now(self) -> float | None:
        """The latest time seen on any input."""
        return self._now

    @property
    def stats(self) -> GateStats:
        """A copy of the counters."""
        c = self._counts
        tr, buf = self._tracker, self._buffer
        return GateStats(
            frames=buf.accepted,
            frames_out_of_order=buf.out_of_order,
            frames_duplicate=buf.duplicates,
            frames_invalid=c.frames_invalid,
            gripper_samples=tr.accepted,
            gripper_out_of_order=tr.out_of_order,
            gripper_duplicate=tr.duplicates,
            gripper_invalid=tr.invalid,
            grasps=tr.grasp_id,
            snapshots=c.snapshots,
            aborts=c.aborts,
            dismissed=c.dismissed,
            vetoes=c.vetoes,
            clock_resets=c.clock_resets,
            last_frame_t=buf.last_t,
            last_gripper_t=self._last_gripper_t,
        )

    @property
    def buffered_frames(self) -> int:
        """Frames held in the buffer now (bounded by ``frame_buffer_size``)."""
        return len(self._buffer)

    # -- inputs -------------------------------------------------------------------------
    def on_frame(self, frame: Frame) -> list[GateEvent]:
        """Take a frame (``frame.t`` on the time base's clock); return the events it causes."""
        if not (isinstance(frame.t, (int, float)) and math.isfinite(frame.t)) or not isinstance(
            frame.image, np.ndarray
        ):
            self._counts.frames_invalid += 1
            return []
        events = self._clock_check(frame.t) + self._advance(frame.t)
        if not self._buffer.push(frame):
            return events
        g = self._grasp
        if g is not None and g.tb_due is not None and frame.t >= g.tb_due:
            self._take_tb(frame, events)
        return events

    def on_gripper(self, sample: GripperSample) -> list[GateEvent]:
        """Take a gripper sample (``sample.t`` on the time base's clock); return the events it causes."""
        events = self._clock_check(sample.t) + self._advance(sample.t) if math.isfinite(sample.t) else []
        before = self._tracker.accepted
        phase_events = self._tracker.update(sample)
        if self._tracker.accepted != before:
            self._last_gripper_t = sample.t
        for pe in phase_events:
            if isinstance(pe, ClosingStarted):
                self._on_closing(pe, events)
            elif isinstance(pe, Settled):
                self._on_settled(pe, events)
            elif isinstance(pe, Resumed):
                self._on_resumed(pe, events)
            elif isinstance(pe, NoPart):
                self._gripper_says(pe.t, Reason.NO_PART_FOUND, events)
            elif isinstance(pe, GripperFault):
                self._gripper_says(pe.t, Reason.GRIPPER_ERROR, events)
            elif isinstance(pe, Opened):
                self._armed_t = pe.t
                newest = self._newest_after_onset()
                g = self._grasp
                # no frame since an onset moved up: nothing seen since its Ta, judged free of contact
                contact = g.free if g is not None and newest is None else self._judge(newest)
                if contact is not None:  # opened before Tb without touching anything: no grasp
                    self._dismiss(pe.t, contact, events, newest)
                    continue
                self._gripper_says(pe.t, Reason.GRIPPER_OPENED, events)
                self._set_phase(pe.t, "waiting", events)
        if phase_events:
            events.extend(self._advance(sample.t) if math.isfinite(sample.t) else [])
        return events

    def on_tick(self, t: float) -> list[GateEvent]:
        """Advance the clock to ``t``: fire expired timeouts (no effect if ``t`` is not newer)."""
        if not math.isfinite(t):
            return []
        return self._clock_check(t) + self._advance(t)

    def mark_decided(self, grasp_id: int, t: float) -> list[GateEvent]:
        """Record that grasp ``grasp_id`` was decided: phase ``predicting`` → ``decided``.

        From then on the gripper's reports no longer concern it (no veto).
        """
        events: list[GateEvent] = []
        if self._predicting is not None and self._predicting.grasp_id == grasp_id:
            self._predicting = None
        if self._phase == "predicting" and grasp_id == self.grasp_id:
            self._set_phase(t, "decided", events)
        return events

    # -- internals ----------------------------------------------------------------------
    def _set_phase(self, t: float, phase: GatePhase, events: list[GateEvent]) -> None:
        if phase != self._phase:
            self._phase = phase
            events.append(PhaseChanged(t, self.grasp_id, phase))

    def _clock_check(self, t: float) -> list[GateEvent]:
        """Start afresh if ``t`` lies more than ``clock_reset_s`` before the newest time seen."""
        events: list[GateEvent] = []
        if self._now is None or t >= self._now - self.config.clock_reset_s:
            return events
        self._abort(self._now, Reason.CLOCK_RESET, events)
        self._predicting = None  # its decision still comes; the new timeline no longer concerns it
        self._tracker.reset()
        self._armed_t = t
        self._buffer.clear()
        self._now = t
        self._last_gripper_t = None
        self._counts.clock_resets += 1
        self._set_phase(t, "waiting", events)
        return events

    def _on_closing(self, ev: ClosingStarted, events: list[GateEvent]) -> None:
        # The tracker only starts a grasp after the last one ended (Opened aborts it).
        self._abort(ev.t_detected, Reason.GRIPPER_OPENED, events)
        cfg = self.config
        g = _Grasp(ev.grasp_id, ev.t)
        self._grasp = g
        self._set_phase(ev.t, "closing", events)  # t: the closing onset
        ta = self._buffer.newest_before(ev.t)
        if ta is None or ev.t - ta.t > cfg.ta_max_age_s:
            self._abort(ev.t_detected, Reason.NO_PRE_CONTACT_FRAME, events)
            return
        g.ta = ta
        g.before_ta = self._noise_partner(ta)
        if self._stamp_lags(ta):
            self._abort(ev.t_detected, Reason.STALE_FRAME, events)

    def _on_settled(self, ev: Settled, events: list[GateEvent]) -> None:
        g = self._grasp
        if g is None:
            return
        g.tb_due = ev.t + self.config.tb_delay_s
        self._set_phase(ev.t, "settling", events)
        tb = self._buffer.first_at_or_after(g.tb_due)
        if tb is not None:
            self._take_tb(tb, events)

    def _on_resumed(self, ev: Resumed, events: list[GateEvent]) -> None:
        """Go back to closing: the fingers close on before Tb (the grasp's onset and Ta stay)."""
        g = self._grasp
        if g is None or g.tb_due is None:
            return
        g.tb_due = None
        self._set_phase(g.onset_t, "closing", events)

    def _take_tb(self, tb: Frame, events: list[GateEvent]) -> None:
        g = self._grasp
        assert g is not None and g.ta is not None and g.tb_due is not None and tb.t >= g.tb_due
        t_now = self._now if self._now is not None else tb.t
        if self._stamp_lags(tb):
            self._abort(t_now, Reason.STALE_FRAME, events, tb=tb)
            return
        t_trigger = max(tb.t, t_now)
        contact = self._judge(tb)
        if contact is not None:  # no contact: a stop short of the part, or a closing slowed down
            if not (self._tracker.still_closing() and self._follow_on(g, t_trigger, contact, events)):
                self._dismiss(t_trigger, contact, events, tb)
            return
        snapshot = SnapshotReady(g.grasp_id, g.ta, tb, t_trigger,
                                 None if self.contact is None else self.contact.last)
        events.append(snapshot)
        self._counts.snapshots += 1
        self._grasp = None
        self._predicting = snapshot
        self._set_phase(t_trigger, "predicting", events)

    def _follow_on(self, g: _Grasp, t: float, free: ContactEvidence, events: list[GateEvent]) -> bool:
        """Move the grasp's onset up to ``t``, its Ta to the newest frame before (judged free of contact).

        The closing goes on (a slow closing, or one that slowed down): a ``closing`` phase event
        with the new onset. ``False`` (nothing changed) without a frame since the old onset.
        """
        ta = self._buffer.newest_before(t)
        if ta is None or ta.t <= g.onset_t:
            return False
        g.onset_t, g.ta, g.grace_s, g.tb_due, g.free = t, ta, 0.0, None, free
        g.before_ta = self._noise_partner(ta)
        self._tracker.follow_on()
        if self._phase == "closing":
            events.append(PhaseChanged(t, g.grasp_id, "closing"))
        self._set_phase(t, "closing", events)
        return True

    def _noise_partner(self, ta: Frame) -> Frame | None:
        """Return the frame before ``ta`` if the two show the gel at rest (a noise sample), else ``None``.

        Both must come after the fingers last opened, at most ``frame_max_age_s`` apart (a pair
        spanning a gap in the frames may straddle the last grasp's contact).
        """
        before = self._buffer.newest_before(ta.t)
        if before is None or before.t < self._armed_t or ta.t - before.t > self.config.frame_max_age_s:
            return None
        return before

    def _newest_after_onset(self) -> Frame | None:
        g, newest = self._grasp, self._buffer.newest()
        return newest if g is not None and newest is not None and newest.t >= g.onset_t else None

    def _judge(self, later: Frame | None) -> ContactEvidence | None:
        """Ask the contact judge about the open grasp; return its evidence only if it says *no contact*."""
        g = self._grasp
        if self.contact is None or g is None or g.ta is None:
            return None
        ev = self.contact.judge(g.ta, later, g.before_ta, self._tracker.holding, self._tracker.effort)
        return ev if ev.contact is False else None

    def _dismiss(self, t: float, contact: ContactEvidence, events: list[GateEvent],
                 later: Frame | None) -> None:
        """End the open grasp without a decision: it touched nothing. Re-arm from the present width."""
        g = self._grasp
        assert g is not None
        self._grasp = None
        self._counts.dismissed += 1
        self._tracker.dismiss(t)
        events.append(GraspDismissed(g.grasp_id, t, contact, g.ta, later))
        self._set_phase(t, "waiting", events)

    def _gripper_says(self, t: float, reason: str, events: list[GateEvent]) -> None:
        """ABORT the open or the predicting grasp: the gripper ended it (no part, error, opened)."""
        if self._grasp is not None:
            self._abort(t, reason, events)
            return
        s = self._predicting
        if s is not None and s.grasp_id == self.grasp_id:  # the model is running: its answer is void
            self._predicting = None
            events.append(GraspAborted(s.grasp_id, t, reason, s.ta, s.tb))
            self._counts.aborts += 1
            self._counts.vetoes += 1
            self._set_phase(t, "decided", events)

    def _abort(self, t: float, reason: str, events: list[GateEvent], tb: Frame | None = None) -> None:
        g = self._grasp
        if g is None:
            return  # the grasp already has its outcome
        events.append(GraspAborted(g.grasp_id, t, reason, g.ta, tb))
        self._counts.aborts += 1
        self._grasp = None
        self._set_phase(t, "decided", events)

    def _stamp_lags(self, frame: Frame) -> bool:
        lag = self.config.max_stamp_lag_s
        return lag is not None and frame.stamp is not None and frame.t - frame.stamp > lag

    def _advance(self, t: float) -> list[GateEvent]:
        """Move the clock to ``t`` and fire the earliest expired deadline of the open grasp."""
        if self._now is None or t > self._now:
            self._now = t
        events: list[GateEvent] = []
        g = self._grasp
        if g is None:
            return events
        cfg, now = self.config, self._now
        deadlines: list[tuple[float, str]] = []
        if g.tb_due is None:  # settled: Tb is the next frame (else stale_frame)
            deadlines.append((g.onset_t + cfg.tb_timeout_s + g.grace_s, Reason.TB_TIMEOUT))
        if self._last_gripper_t is not None:
            deadlines.append((self._last_gripper_t + cfg.gripper_silence_s, Reason.GRIPPER_SILENT))
        if g.tb_due is not None:
            last_frame = self._buffer.last_t
            fresh_until = g.tb_due if last_frame is None else last_frame + cfg.frame_max_age_s
            deadlines.append((max(g.tb_due, fresh_until), Reason.STALE_FRAME))
        expired = [d for d in deadlines if now > d[0]]
        if expired:
            t_dead, reason = min(expired)
            if reason == Reason.TB_TIMEOUT and self._slow_closing(g, t_dead, events):
                return events
            self._abort(t_dead, reason, events)
        return events

    def _slow_closing(self, g: _Grasp, t_dead: float, events: list[GateEvent]) -> bool:
        """Tb timed out: tell whether that is a slow closing to follow on rather than ``tb_timeout``.

        No contact yet (the newest frame before the deadline shows none): the grasp's onset moves
        up to the deadline and that frame becomes its Ta (a ``closing`` phase event with the new
        onset). Contact: once per onset, the grasp gets ``settle_window_s + frame_max_age_s``
        more (the contact may have come just before the deadline).
        """
        if self.contact is None or g.ta is None:
            return False
        newest = self._buffer.newest_before(t_dead)
        free = self._judge(newest) if newest is not None and newest.t > g.onset_t else None
        if free is not None:
            return self._follow_on(g, t_dead, free, events)
        if g.grace_s == 0.0:
            g.grace_s = self.config.settle_window_s + self.config.frame_max_age_s
            return True
        return False
