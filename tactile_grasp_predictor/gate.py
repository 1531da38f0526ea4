"""The grasp gate: frame buffer + phase tracker + Ta/Tb snapshot selection.

Feed it frames (:meth:`GraspGate.on_frame`), gripper samples (:meth:`GraspGate.on_gripper`)
and clock ticks (:meth:`GraspGate.on_tick`), all on one clock (header stamps or receive
time: :mod:`tactile_grasp_predictor.timebase`); it answers with events. For every grasp
exactly one of :class:`SnapshotReady` (Ta, Tb: run the model)
or :class:`GraspAborted` (with a reason: decide ABORT without the model) is emitted.

- Ta = the newest frame received strictly before the closing onset, not older than
  ``ta_max_age_s`` (else ``no_pre_contact_frame``).
- Tb = the first frame received at or after settle time + ``tb_delay_s``.
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

from tactile_grasp_predictor.gripper import GripperSample
from tactile_grasp_predictor.tracker import (
    ClosingStarted,
    GraspPhaseTracker,
    GripperFault,
    NoPart,
    Opened,
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
    """Ta and Tb of a grasp are known: run the model. ``t_trigger``: when Tb became known."""

    grasp_id: int
    ta: Frame
    tb: Frame
    t_trigger: float


@dataclass(frozen=True)
class GraspAborted:
    """The grasp ends in ABORT without the model; ``t`` is when the condition arose."""

    grasp_id: int
    t: float
    reason: str
    ta: Frame | None
    tb: Frame | None


GateEvent = PhaseChanged | SnapshotReady | GraspAborted


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
    clock_resets: int = 0
    last_frame_t: float | None = None
    last_gripper_t: float | None = None


@dataclass
class _Grasp:
    grasp_id: int
    onset_t: float
    ta: Frame | None = None
    tb_due: float | None = None


class GraspGate:
    """Frames + gripper samples + ticks → one snapshot or abort per grasp.

    Phases: ``waiting`` → ``closing`` → ``settling`` (waiting for Tb) → ``predicting``
    (snapshot emitted; :meth:`mark_decided` moves on) or ``decided`` (aborted) → back to
    ``waiting`` when the gripper opens.

    Not thread-safe: call it from one thread or under one lock. Each call costs a few
    microseconds and never blocks; the model runs elsewhere, on the ``SnapshotReady``.
    """

    def __init__(self, config: TriggerConfig | None = None) -> None:
        self.config = (config or TriggerConfig()).validate()
        self._tracker = GraspPhaseTracker(self.config)
        self._buffer = FrameBuffer(self.config.frame_buffer_size, self.config.frame_buffer_age_s)
        self._phase: GatePhase = "waiting"
        self._grasp: _Grasp | None = None  # the grasp awaiting its outcome
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
            elif isinstance(pe, NoPart):
                self._abort(pe.t, Reason.NO_PART_FOUND, events)
            elif isinstance(pe, GripperFault):
                self._abort(pe.t, Reason.GRIPPER_ERROR, events)
            elif isinstance(pe, Opened):
                self._abort(pe.t, Reason.GRIPPER_OPENED, events)
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
        """Record that grasp ``grasp_id`` was decided: phase ``predicting`` → ``decided``."""
        events: list[GateEvent] = []
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
        self._tracker.reset()
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

    def _take_tb(self, tb: Frame, events: list[GateEvent]) -> None:
        g = self._grasp
        assert g is not None and g.ta is not None and g.tb_due is not None and tb.t >= g.tb_due
        if self._stamp_lags(tb):
            self._abort(self._now if self._now is not None else tb.t, Reason.STALE_FRAME, events, tb=tb)
            return
        t_trigger = max(tb.t, self._now if self._now is not None else tb.t)
        events.append(SnapshotReady(g.grasp_id, g.ta, tb, t_trigger))
        self._counts.snapshots += 1
        self._grasp = None
        self._set_phase(t_trigger, "predicting", events)

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
        deadlines: list[tuple[float, str]] = [(g.onset_t + cfg.tb_timeout_s, Reason.TB_TIMEOUT)]
        if self._last_gripper_t is not None:
            deadlines.append((self._last_gripper_t + cfg.gripper_silence_s, Reason.GRIPPER_SILENT))
        if g.tb_due is not None:
            last_frame = self._buffer.last_t
            fresh_until = g.tb_due if last_frame is None else last_frame + cfg.frame_max_age_s
            deadlines.append((max(g.tb_due, fresh_until), Reason.STALE_FRAME))
        expired = [d for d in deadlines if now > d[0]]
        if expired:
            t_dead, reason = min(expired)
            self._abort(t_dead, reason, events)
        return events
