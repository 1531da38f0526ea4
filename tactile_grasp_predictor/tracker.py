"""The grasp phase tracker: a pure state machine over gripper samples.

It turns a stream of :class:`~tactile_grasp_predictor.gripper.GripperSample` into phase
events: :class:`ClosingStarted` · :class:`Settled` · :class:`NoPart` ·
:class:`GripperFault` · :class:`Opened`. It knows nothing of frames, models or ROS; the
:class:`~tactile_grasp_predictor.gate.GraspGate` puts frames around it.

Phases (``tracker.phase``): ``waiting`` (armed, fingers open) → ``closing`` (width fell
by more than ``closing_threshold_m`` from its open value, or the grasp state turned
GRASPING) → ``closed`` (settled, no part, or fault: one outcome per grasp) → back to
``waiting`` when the fingers open again (re-arm).

Example:
    >>> from tactile_grasp_predictor.gripper import GripperSample
    >>> tr = GraspPhaseTracker(TriggerConfig())
    >>> tr.update(GripperSample(0.0, 0.08))
    []
    >>> [type(e).__name__ for e in tr.update(GripperSample(0.1, 0.07))]
    ['ClosingStarted']

"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.gripper import GraspState, GripperSample, plausible_width

TrackerPhase = Literal["waiting", "closing", "closed"]


def _param(default: float | int | None, doc: str) -> Any:
    """Declare a :class:`TriggerConfig` field: its default and the description its parameter shows."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class TriggerConfig:
    """Every threshold and timing of the trigger (seconds on the core clock, metres).

    Each field's meaning is its ``metadata["doc"]`` (:func:`trigger_doc`): the same text
    ``ros2 param describe`` shows for the node's ``trigger.<field>`` parameter.
    """

    closing_threshold_m: float = _param(
        0.002, "closing starts when the width falls more than this below its open value "
        "(the largest width seen since the tracker was armed)")
    open_tolerance_m: float = _param(
        0.0003, "the band below the open value that still counts as open (sensor noise); "
        "the closing onset is the last sample within it")
    settle_window_s: float = _param(
        0.2, "settled when the width stayed within settle_tolerance_m for this long. Closing speed x "
        "window must exceed the tolerance; a slow creep below tolerance / window (soft objects under "
        "grip force) still counts as settled")
    settle_tolerance_m: float = _param(0.002, "the width band that counts as 'not changing'")
    closed_width_m: float = _param(
        0.0015, "a width at or below this during a grasp means the fingers closed on nothing: "
        "ABORT no_part_found at once, without running the model")
    reopen_threshold_m: float = _param(
        0.01, "after closing started, a width this far above the smallest width of the grasp "
        "means the gripper opened (re-arm)")
    ta_max_age_s: float = _param(
        1.0, "Ta, the newest frame before the closing onset, may be at most this much older than "
        "the onset (else ABORT no_pre_contact_frame)")
    tb_delay_s: float = _param(0.1, "Tb is the first frame received at or after settle time + this delay")
    tb_timeout_s: float = _param(3.0, "no Tb this long after the closing onset: ABORT tb_timeout")
    frame_max_age_s: float = _param(0.5, "once Tb is due, no frame newer than this: ABORT stale_frame")
    max_stamp_lag_s: float | None = _param(
        None, "if set, a Ta/Tb frame whose header stamp lags its receive time by more than this is "
        "stale (None: header stamps are not checked)")
    gripper_silence_s: float = _param(
        1.0, "no gripper sample for this long during a grasp: ABORT gripper_silent")
    frame_buffer_size: int = _param(32, "most frames kept for Ta selection (bounds memory)")
    frame_buffer_age_s: float = _param(
        2.0, "frames older than this (relative to the newest) are dropped")
    clock_reset_s: float = _param(
        5.0, "an input this much older than the newest time seen means the clock went back (a "
        "looping bag, a restarted simulation): the gate starts afresh (an open grasp ends with "
        "ABORT clock_reset); smaller steps back are out-of-order messages and are ignored")

    def validate(self) -> TriggerConfig:
        """Check every field; raise :class:`ConfigError` naming the first bad one; return ``self``."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "max_stamp_lag_s" and v is None:
                continue
            if f.name == "frame_buffer_size":
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ConfigError(f"TriggerConfig.{f.name}: must be an integer >= 1, got {v!r}")
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"TriggerConfig.{f.name}: must be a finite number, got {v!r}")
            if v < 0:
                raise ConfigError(f"TriggerConfig.{f.name}: must be >= 0, got {v!r}")
        positive = ("closing_threshold_m", "settle_window_s", "settle_tolerance_m", "reopen_threshold_m",
                    "ta_max_age_s",
                    "tb_timeout_s", "frame_max_age_s", "gripper_silence_s", "frame_buffer_age_s",
                    "clock_reset_s")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"TriggerConfig.{name}: must be > 0, got {getattr(self, name)!r}")
        if self.open_tolerance_m >= self.closing_threshold_m:
            raise ConfigError(
                f"TriggerConfig.open_tolerance_m: {self.open_tolerance_m} must be below "
                f"closing_threshold_m {self.closing_threshold_m}"
            )
        if self.settle_window_s + self.tb_delay_s >= self.tb_timeout_s:
            raise ConfigError(
                f"TriggerConfig.tb_timeout_s: {self.tb_timeout_s} must exceed settle_window_s + tb_delay_s "
                f"({self.settle_window_s + self.tb_delay_s})"
            )
        if self.frame_buffer_age_s < self.ta_max_age_s:
            raise ConfigError(
                f"TriggerConfig.frame_buffer_age_s: {self.frame_buffer_age_s} must be >= ta_max_age_s "
                f"{self.ta_max_age_s}"
            )
        return self


def trigger_doc(name: str) -> str:
    """Return the description of :class:`TriggerConfig` field ``name`` (its ``metadata["doc"]``)."""
    return str(next(f for f in fields(TriggerConfig) if f.name == name).metadata["doc"])


@dataclass(frozen=True)
class ClosingStarted:
    """The fingers started closing: a new grasp.

    ``t`` is the estimated onset (the last sample still at the open width, or the first
    sign of motion), never later than ``t_detected``, the sample that revealed it.
    """

    t: float
    grasp_id: int
    t_detected: float


@dataclass(frozen=True)
class Settled:
    """The fingers stopped on something (width steady, not fully closed; or HOLDING)."""

    t: float
    grasp_id: int
    width_m: float | None


@dataclass(frozen=True)
class NoPart:
    """The fingers closed on nothing (fully closed, or NO_PART_FOUND)."""

    t: float
    grasp_id: int


@dataclass(frozen=True)
class GripperFault:
    """The gripper reported ERROR during a grasp."""

    t: float
    grasp_id: int


@dataclass(frozen=True)
class Opened:
    """The gripper opened after a grasp: the tracker is armed again."""

    t: float


PhaseEvent = ClosingStarted | Settled | NoPart | GripperFault | Opened


class GraspPhaseTracker:
    """Pure state machine: gripper samples in, phase events out.

    Samples older than the last accepted one are ignored (``out_of_order``), as are exact
    repeats of the last one (``duplicates``); non-finite times are ignored (``invalid``).
    A sample's ``None`` fields mean "not in this message"; grasp states and the moving
    flag act on their transitions only (firmware states persist until the next command).
    """

    def __init__(self, config: TriggerConfig | None = None) -> None:
        self.config = (config or TriggerConfig()).validate()
        self.grasp_id = 0
        self.out_of_order = 0
        self.duplicates = 0
        self.invalid = 0
        self.accepted = 0
        self.reset()

    def reset(self) -> None:
        """Forget the gripper's history (phase ``waiting``); grasp ids and counters continue."""
        self.phase: TrackerPhase = "waiting"
        self.onset_t: float | None = None
        self._last: GripperSample | None = None
        self._width: float | None = None  # last known width
        self._width_prev: float | None = None  # the known width before it
        self._state: GraspState | None = None  # last known grasp state
        self._moving: bool | None = None  # last known moving flag
        self._open_ref: float | None = None  # largest width since armed
        self._last_open_t: float | None = None  # last time the width was at the open value
        self._moving_since: float | None = None  # motion start seen by the flag while waiting
        self._min_width: float | None = None  # smallest width since closing started
        self._moving_seen = False  # flag was True during this grasp
        self._steady: deque[tuple[float, float]] = deque()  # (t, width) within tolerance

    @property
    def last_t(self) -> float | None:
        """Time of the last accepted sample."""
        return None if self._last is None else self._last.t

    @property
    def width_m(self) -> float | None:
        """Last known finger opening."""
        return self._width

    def update(self, sample: GripperSample) -> list[PhaseEvent]:
        """Feed one sample; return the phase events it causes (often none)."""
        if not math.isfinite(sample.t):
            self.invalid += 1
            return []
        if self._last is not None:
            if sample.t < self._last.t:
                self.out_of_order += 1
                return []
            if sample == self._last:
                self.duplicates += 1
                return []
        w = None if sample.width_m is None else plausible_width(sample.width_m)
        if w is None and sample.width_m is not None:
            self.invalid += 1
        prev_t = None if self._last is None else self._last.t
        self._last = sample
        self.accepted += 1
        # a state acts on a change from a known state (the first report may be left over)
        changed = self._state is not None and sample.grasp_state != self._state
        new_state = sample.grasp_state if changed else None
        if sample.grasp_state is not None:
            self._state = sample.grasp_state
        moving_now = sample.moving
        moving_rose = moving_now is True and self._moving is not True
        moving_fell = moving_now is False and self._moving is True
        if moving_now is not None:
            self._moving = moving_now
        if w is not None:
            self._width_prev, self._width = self._width, w

        events: list[PhaseEvent] = []
        if self.phase == "waiting":
            self._waiting(sample.t, prev_t, w, new_state, moving_rose, events)
        if self.phase == "closing" and not events:
            self._closing(sample.t, w, new_state, moving_fell, events)
        elif self.phase == "closing" and events:
            # Same sample that started closing: only firmware verdicts act at once.
            self._closing(sample.t, w, new_state, False, events, first=True)
        elif self.phase == "closed" and not events:
            self._closed(sample.t, w, new_state, moving_now, events)
        return events

    # -- phases -------------------------------------------------------------------------
    def _waiting(
        self,
        t: float,
        prev_t: float | None,
        w: float | None,
        new_state: GraspState | None,
        moving_rose: bool,
        events: list[PhaseEvent],
    ) -> None:
        cfg = self.config
        if moving_rose:
            self._moving_since = t
        if self._moving is False:
            self._moving_since = None
        dropped = (
            w is not None and self._open_ref is not None and w < self._open_ref - cfg.closing_threshold_m
        )
        if new_state == GraspState.GRASPING or dropped:
            # Onset: the last sample still at the open width (motion began after it),
            # or the moving flag's first report, whichever is earlier.
            onset = t
            if self._last_open_t is not None:
                onset = min(onset, self._last_open_t)
            if self._moving is True and self._moving_since is not None:
                onset = min(onset, self._moving_since)
            self._start(onset, t, w, events)
            return
        if new_state in (GraspState.HOLDING, GraspState.NO_PART_FOUND):
            # The GRASPING report was missed: the grasp began after the previous sample.
            onset = prev_t if prev_t is not None else t
            if self._last_open_t is not None:
                onset = min(onset, self._last_open_t)
            self._start(onset, t, w, events)
            return
        if w is not None:
            if self._open_ref is None or w > self._open_ref:
                self._open_ref = w
                if self._moving is True:
                    self._moving_since = t  # still opening: closing motion has not begun
            if w >= self._open_ref - cfg.open_tolerance_m:
                self._last_open_t = t

    def _start(self, onset: float, t: float, w: float | None, events: list[PhaseEvent]) -> None:
        self.grasp_id += 1
        self.phase = "closing"
        self.onset_t = onset
        self._min_width = w if w is not None else self._width
        self._moving_seen = self._moving is True
        self._steady.clear()
        if w is not None:
            self._steady.append((t, w))
        assert onset <= t, "closing onset is never after its detection"
        events.append(ClosingStarted(onset, self.grasp_id, t))

    def _closing(
        self,
        t: float,
        w: float | None,
        new_state: GraspState | None,
        moving_fell: bool,
        events: list[PhaseEvent],
        first: bool = False,
    ) -> None:
        cfg = self.config
        if new_state == GraspState.ERROR:
            self._finish(GripperFault(t, self.grasp_id), events)
            return
        if new_state == GraspState.NO_PART_FOUND:
            self._finish(NoPart(t, self.grasp_id), events)
            return
        if new_state == GraspState.HOLDING:
            self._finish(Settled(t, self.grasp_id, self._width), events)
            return
        if first:
            return
        if new_state == GraspState.RELEASING:
            self._open(t, w, events)
            return
        if self._moving is True:
            self._moving_seen = True
        if w is not None:
            if self._reopened(w):
                self._open(t, w, events)
                return
            self._min_width = w if self._min_width is None else min(self._min_width, w)
            if w <= cfg.closed_width_m:  # nothing can be between the fingers
                self._finish(NoPart(t, self.grasp_id), events)
                return
            self._steady.append((t, w))
            while len(self._steady) > 1 and (
                max(s[1] for s in self._steady) - min(s[1] for s in self._steady) > cfg.settle_tolerance_m
            ):
                self._steady.popleft()
            while len(self._steady) >= 2 and self._steady[1][0] <= t - cfg.settle_window_s:
                self._steady.popleft()  # keep one anchor at or before the window start
            if self._steady[0][0] <= t - cfg.settle_window_s:
                self._settle(t, w, events)
                return
        if moving_fell and self._moving_seen and self._width is not None:
            # trust the flag only if the width agrees (a flag derived from speed can flicker)
            prev = self._width_prev if self._width_prev is not None else self._width
            if abs(self._width - prev) <= cfg.settle_tolerance_m:
                self._settle(t, self._width, events)

    def _settle(self, t: float, w: float, events: list[PhaseEvent]) -> None:
        if w <= self.config.closed_width_m:
            self._finish(NoPart(t, self.grasp_id), events)
        else:
            self._finish(Settled(t, self.grasp_id, w), events)

    def _finish(self, event: PhaseEvent, events: list[PhaseEvent]) -> None:
        self.phase = "closed"
        self._steady.clear()
        events.append(event)

    def _closed(
        self,
        t: float,
        w: float | None,
        new_state: GraspState | None,
        moving: bool | None,
        events: list[PhaseEvent],
    ) -> None:
        if new_state == GraspState.RELEASING:
            self._open(t, w, events)
            return
        if w is not None:
            if self._reopened(w):
                self._open(t, w, events)
                return
            self._min_width = w if self._min_width is None else min(self._min_width, w)

    def _reopened(self, w: float) -> bool:
        """Tell whether the fingers opened again.

        Either well above the narrowest width of this grasp, or back at the open width they
        closed from (a short grasp that reopened while the gripper was silent moves less
        than ``reopen_threshold_m``).
        """
        cfg = self.config
        if self._min_width is not None and w > self._min_width + cfg.reopen_threshold_m:
            return True
        if self._open_ref is None or self._min_width is None:
            return False
        # only once the fingers had really closed (a grasp state can start a grasp early)
        closed_in = self._min_width < self._open_ref - cfg.closing_threshold_m
        return closed_in and w >= self._open_ref - cfg.open_tolerance_m

    def _open(self, t: float, w: float | None, events: list[PhaseEvent]) -> None:
        self.phase = "waiting"
        self.onset_t = None
        self._open_ref = w
        self._last_open_t = t if w is not None else None
        self._moving_since = t if self._moving is True else None
        self._min_width = None
        self._steady.clear()
        events.append(Opened(t))


class GripperOnlyBaseline:
    """What the gripper alone would decide: LIFT whenever it settles not fully closed (or HOLDING).

    ABORT on no part, a fault, or opening before it settled. A tracker of its own, fed every
    gripper sample the gate gets (``GraspSession(on_sample=baseline)``); the replay report
    compares the model against it.
    """

    def __init__(self, config: TriggerConfig | None = None) -> None:
        self.tracker = GraspPhaseTracker(config or TriggerConfig())
        self.verdicts: dict[int, bool] = {}  # grasp id -> LIFT?

    def __call__(self, sample: GripperSample) -> None:
        """Feed one gripper sample."""
        for ev in self.tracker.update(sample):
            if isinstance(ev, Settled):
                self.verdicts.setdefault(ev.grasp_id, True)
            elif isinstance(ev, NoPart | GripperFault):
                self.verdicts.setdefault(ev.grasp_id, False)
            elif isinstance(ev, Opened):  # opened before settling
                self.verdicts.setdefault(self.tracker.grasp_id, False)
