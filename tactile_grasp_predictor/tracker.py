"""The grasp phase tracker: a pure state machine over gripper samples.

It turns a stream of :class:`~tactile_grasp_predictor.gripper.GripperSample` into phase
events: :class:`ClosingStarted` · :class:`Settled` · :class:`Resumed` · :class:`NoPart` ·
:class:`GripperFault` · :class:`Opened`. It knows nothing of frames, models or ROS; the
:class:`~tactile_grasp_predictor.gate.GraspGate` puts frames around it and decides, with the
contact evidence, whether a closing was a grasp.

It follows what the gripper does, not one fixed open width: a closing starts whenever the
width falls more than ``closing_threshold_m`` below the largest width since the last stop
(or the grasp state turns GRASPING), from whatever width the fingers rest at. Phases
(``tracker.phase``): ``waiting`` (armed) → ``closing`` → ``closed`` (settled, no part, or
fault) → back to ``waiting`` when the fingers open again, or at once when the gate
dismisses a closing that touched nothing (:meth:`GraspPhaseTracker.dismiss`: a pre-shaping
move, a pause mid-closing), so the next closing from that width can be the grasp.

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


def _param(default: float | int | bool | None, doc: str) -> Any:
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
        "(the largest width since the fingers last stopped or opened)")
    open_tolerance_m: float = _param(
        0.0003, "the band below the open value that still counts as open (sensor noise); "
        "the closing onset is the last sample within it")
    settle_window_s: float = _param(
        0.2, "settled when the width stayed within the settle band for this long")
    settle_tolerance_m: float = _param(
        0.0005, "the smallest settle band (width noise): a closing slower than this / settle_window_s "
        "(2.5 mm/s with the defaults) looks settled")
    settle_speed_ratio: float = _param(
        0.1, "the settle band also grows with the closing's peak speed: ratio x peak x window. A creep "
        "slower than this share of the closing speed (soft objects under grip force) counts as settled")
    closed_width_m: float = _param(
        0.0015, "a width at or below this during a grasp means the fingers closed on nothing: "
        "ABORT no_part_found at once, without running the model")
    reopen_threshold_m: float = _param(
        0.01, "after closing started, a width this far above the smallest width of the grasp "
        "means the gripper opened (re-arm; a partial reopen for a regrasp must exceed it)")
    ta_max_age_s: float = _param(
        1.0, "Ta, the newest frame before the closing onset, may be at most this much older than "
        "the onset (else ABORT no_pre_contact_frame)")
    tb_delay_s: float = _param(0.1, "Tb is the first frame received at or after settle time + this delay")
    tb_timeout_s: float = _param(
        3.0, "not settled this long after the closing onset: ABORT tb_timeout if the frames show contact "
        "(after settle_window_s + frame_max_age_s more, once), else the onset and Ta move up to now (a "
        "slow closing)")
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
    contact_required: bool = _param(
        True, "decide only closings with contact evidence (the frames' deformation Tb - Ta, HOLDING, "
        "or effort); a closing that stops short without it (a pre-shaping move) is no grasp. False: "
        "every closing that settles is decided")
    contact_min_deformation: float = _param(
        4.0, "contact when the deformation between Ta and Tb (grey levels: mean |Tb - Ta| of the most "
        "changed 2 % of a 32-pixel thumbnail) reaches at least this")
    contact_noise_factor: float = _param(
        3.0, "... and at least this many times the frame noise: the same measure between the two "
        "frames before the onset (no contact), the lower quartile over the last closings")
    contact_effort: float | None = _param(
        None, "if set, JointState.effort (sum of |effort| of the finger joints, the driver's unit) at or "
        "above this when Tb is taken is contact too (None: effort is not used)")

    def validate(self) -> TriggerConfig:
        """Check every field; raise :class:`ConfigError` naming the first bad one; return ``self``."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("max_stamp_lag_s", "contact_effort") and v is None:
                continue
            if f.name == "contact_required":
                if not isinstance(v, bool):
                    raise ConfigError(f"TriggerConfig.{f.name}: must be true or false, got {v!r}")
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
        if self.settle_speed_ratio >= 1.0:
            raise ConfigError(
                f"TriggerConfig.settle_speed_ratio: must be below 1, got {self.settle_speed_ratio}")
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
    """The fingers started closing: a new grasp (until the gate dismisses it for lack of contact).

    ``t`` is the estimated onset (the last sample still at the open width, or the first
    sign of motion), never later than ``t_detected``, the sample that revealed it.
    """

    t: float
    grasp_id: int
    t_detected: float


@dataclass(frozen=True)
class Settled:
    """The fingers stopped (width steady, not fully closed; or HOLDING)."""

    t: float
    grasp_id: int
    width_m: float | None


@dataclass(frozen=True)
class Resumed:
    """The fingers closed on after settling (a pause mid-closing): the same grasp is closing again."""

    t: float
    grasp_id: int


@dataclass(frozen=True)
class NoPart:
    """The fingers closed on nothing (fully closed), or the gripper said NO_PART_FOUND / PART_LOST.

    Reported once per grasp, while closing or after settling.
    """

    t: float
    grasp_id: int


@dataclass(frozen=True)
class GripperFault:
    """The gripper reported ERROR during a grasp (once per grasp, while closing or after settling)."""

    t: float
    grasp_id: int


@dataclass(frozen=True)
class Opened:
    """The gripper opened after a grasp started (width, or RELEASING): the tracker is armed again."""

    t: float


PhaseEvent = ClosingStarted | Settled | Resumed | NoPart | GripperFault | Opened

#: Firmware states that end a grasp whatever the width says (a report, not only a change).
_VETO_STATES = {
    GraspState.ERROR: "fault",
    GraspState.NO_PART_FOUND: "no_part",
    GraspState.PART_LOST: "no_part",
    GraspState.RELEASING: "opened",
}


class GraspPhaseTracker:
    """Pure state machine: gripper samples in, phase events out.

    Samples older than the last accepted one are ignored (``out_of_order``), as are exact
    repeats of the last one (``duplicates``); non-finite times are ignored (``invalid``).
    A sample's ``None`` fields mean "not in this message". GRASPING, HOLDING and the moving
    flag act on their transitions only (firmware states persist until the next command);
    ERROR, NO_PART_FOUND, PART_LOST and RELEASING end a grasp on any report after its onset,
    unless it is the state that was already reported at the onset, unchanged (a leftover;
    ERROR always counts).
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
        self.holding = False  # HOLDING reported during this grasp (contact evidence)
        self.effort: float | None = None  # the latest known effort
        self._last: GripperSample | None = None
        self._width: float | None = None  # last known width
        self._width_prev: float | None = None  # the known width before it
        self._state: GraspState | None = None  # last known grasp state
        self._state_before: GraspState | None = None  # the one known before the latest sample
        self._onset_state: GraspState | None = None  # the state known when this grasp began
        self._moving: bool | None = None  # last known moving flag
        self._open_ref: float | None = None  # largest width since armed
        self._last_open_t: float | None = None  # last time the width was at the open value
        self._moving_since: float | None = None  # motion start seen by the flag while waiting
        self._min_width: float | None = None  # smallest width since closing started
        self._moving_seen = False  # flag was True during this grasp
        self._settled_w: float | None = None  # the width the grasp settled at (None: not settled)
        self._ended = False  # no part or fault reported for this grasp
        self._peak_speed = 0.0  # fastest closing speed of this grasp over the settle window, m/s
        self._hist: deque[tuple[float, float]] = deque()  # (t, width) over the settle window + anchor

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
        if sample.effort is not None and math.isfinite(sample.effort):
            self.effort = sample.effort
        # a state acts on a change from a known state (the first report may be left over)
        changed = self._state is not None and sample.grasp_state != self._state
        new_state = sample.grasp_state if changed else None
        reported = sample.grasp_state
        self._state_before = self._state
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
            if self.phase == "closing":
                # Same sample that started closing: only firmware verdicts act at once.
                self._verdicts(sample.t, w, reported, new_state, events)
            return events
        if self._verdicts(sample.t, w, reported, new_state, events):
            return events
        if self.phase == "closing":
            self._closing(sample.t, w, new_state, moving_fell, events)
        else:
            self._closed(sample.t, w, events)
        return events

    def still_closing(self) -> bool:
        """Tell whether the width still falls: by more than ``settle_tolerance_m`` over the settle window.

        A closing that slowed down (a fast move into a slow approach) can look settled against
        its peak speed while it is still closing.
        """
        return len(self._hist) >= 2 and self._hist[0][1] - self._hist[-1][1] > self.config.settle_tolerance_m

    def follow_on(self) -> None:
        """Take the present closing as starting afresh (the gate moved its onset up): phase ``closing``.

        Its peak speed restarts from the present one, so its settle band fits its present pace.
        """
        self.phase = "closing"
        self._settled_w = None
        (t0, w0), (t1, w1) = self._hist[0], self._hist[-1]
        self._peak_speed = max(0.0, (w0 - w1) / (t1 - t0)) if t1 > t0 else 0.0

    def dismiss(self, t: float) -> None:
        """Forget the current grasp: it touched nothing (the gate's contact rule); re-arm from here.

        The grasp id is given back (the next closing gets it) and the fingers' present width
        becomes the open value, so any further closing from it starts a grasp.
        """
        self.grasp_id -= 1
        self._arm(t, self._width)

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
            if self._at_rest(t, w):  # resting lower after a small move: the open value follows
                self._open_ref = max(x[1] for x in self._hist)
            if w >= self._open_ref - cfg.open_tolerance_m:
                self._last_open_t = t

    def _at_rest(self, t: float, w: float) -> bool:
        """Tell whether the open fingers stayed within ``settle_tolerance_m`` for ``settle_window_s``."""
        cfg, hist = self.config, self._hist
        hist.append((t, w))
        while len(hist) >= 2 and hist[1][0] <= t - cfg.settle_window_s:
            hist.popleft()
        widths = [x[1] for x in hist]
        return hist[0][0] <= t - cfg.settle_window_s and max(widths) - min(widths) <= cfg.settle_tolerance_m

    def _start(self, onset: float, t: float, w: float | None, events: list[PhaseEvent]) -> None:
        self.grasp_id += 1
        self.phase = "closing"
        self.onset_t = onset
        self.holding = False
        self._onset_state = self._state_before  # a report of it that never changed is a leftover
        self._min_width = w if w is not None else self._width
        self._moving_seen = self._moving is True
        self._settled_w = None
        self._ended = False
        self._peak_speed = 0.0
        self._hist.clear()
        if self._open_ref is not None and self._last_open_t is not None and self._last_open_t < t:
            self._hist.append((self._last_open_t, self._open_ref))  # the closing's start: speed anchor
        if w is not None:
            self._track(t, w)
        assert onset <= t, "closing onset is never after its detection"
        events.append(ClosingStarted(onset, self.grasp_id, t))

    def _verdicts(self, t: float, w: float | None, reported: GraspState | None,
                  new_state: GraspState | None, events: list[PhaseEvent]) -> bool:
        """Apply the firmware's verdicts (veto states, HOLDING) to a started grasp; tell if one acted."""
        veto = _VETO_STATES.get(reported) if reported is not None else None
        if veto is not None and (reported == GraspState.ERROR or reported != self._onset_state):
            if veto == "opened":
                self._open(t, w, events)  # the open value from the widths to come if this has none
                return True
            if not self._ended:
                self._ended = True
                self._finish(GripperFault(t, self.grasp_id) if veto == "fault" else NoPart(t, self.grasp_id),
                             events)
                return True
            return False
        if new_state == GraspState.HOLDING:
            self.holding = True
            if self.phase == "closing":
                self._settle(t, self._width, events, by_state=True)
                return True
        return False

    def _closing(
        self,
        t: float,
        w: float | None,
        new_state: GraspState | None,
        moving_fell: bool,
        events: list[PhaseEvent],
    ) -> None:
        if self._moving is True:
            self._moving_seen = True
        if w is not None:
            if self._reopened(w):
                self._open(t, w, events)
                return
            self._min_width = w if self._min_width is None else min(self._min_width, w)
            if w <= self.config.closed_width_m:  # nothing can be between the fingers
                self._ended = True
                self._finish(NoPart(t, self.grasp_id), events)
                return
            if self._track(t, w):
                self._settle(t, w, events)
                return
        if moving_fell and self._moving_seen and self._width is not None:
            # trust the flag only if the width agrees (a flag derived from speed can flicker):
            # the last step is smaller than a closing threshold
            prev = self._width_prev if self._width_prev is not None else self._width
            if abs(self._width - prev) <= self.config.closing_threshold_m:
                self._settle(t, self._width, events)

    def _track(self, t: float, w: float) -> bool:
        """Add a width to the settle window; tell whether the fingers are steady over the whole window.

        Steady: the widths since the window start (one anchor at or before it) lie within
        ``max(settle_tolerance_m, settle_speed_ratio x peak speed x settle_window_s)``.
        """
        cfg = self.config
        hist = self._hist
        hist.append((t, w))
        while len(hist) >= 2 and hist[1][0] <= t - cfg.settle_window_s:
            hist.popleft()  # keep one anchor at or before the window start
        t0, w0 = hist[0]
        if t > t0:
            self._peak_speed = max(self._peak_speed, (w0 - w) / (t - t0))
        if t0 > t - cfg.settle_window_s:
            return False  # the window is not covered yet
        band = max(cfg.settle_tolerance_m, cfg.settle_speed_ratio * self._peak_speed * cfg.settle_window_s)
        widths = [x[1] for x in hist]
        return max(widths) - min(widths) <= band

    def _settle(self, t: float, w: float | None, events: list[PhaseEvent], by_state: bool = False) -> None:
        if w is not None and w <= self.config.closed_width_m and not by_state:
            self._ended = True
            self._finish(NoPart(t, self.grasp_id), events)
        else:
            self._settled_w = w if w is not None else self._width  # None: no width to resume from
            self._finish(Settled(t, self.grasp_id, w), events)

    def _finish(self, event: PhaseEvent, events: list[PhaseEvent]) -> None:
        self.phase = "closed"
        events.append(event)

    def _closed(self, t: float, w: float | None, events: list[PhaseEvent]) -> None:
        if w is None:
            return
        if self._reopened(w):
            self._open(t, w, events)
            return
        self._min_width = w if self._min_width is None else min(self._min_width, w)
        if self._ended:
            return
        if w <= self.config.closed_width_m:  # fully closed after settling: the part is gone
            self._ended = True
            events.append(NoPart(t, self.grasp_id))
            return
        steady = self._track(t, w)
        settled_w = self._settled_w
        if settled_w is not None and not steady and w < settled_w - self.config.closing_threshold_m:
            # closing on at the closing's pace after a pause: the same grasp closes again
            self.phase = "closing"
            self._settled_w = None
            events.append(Resumed(t, self.grasp_id))

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
        self._arm(t, w)
        events.append(Opened(t))

    def _arm(self, t: float, w: float | None) -> None:
        """Phase ``waiting`` with ``w`` (the present width) as the open value."""
        self.phase = "waiting"
        self.onset_t = None
        self.holding = False
        self._open_ref = w
        self._last_open_t = t if w is not None else None
        self._moving_since = t if self._moving is True else None
        self._min_width = None
        self._settled_w = None
        self._ended = False
        self._hist.clear()
