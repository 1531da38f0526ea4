"""Draw docs/img/trigger_timeline.png: a pre-shape, a grasp and a regrasp through the real trigger core.

    .venv/bin/python docs/img/trigger_timeline.py

A pick pipeline pre-shapes the open gripper from 85 to 75 mm (50 mm/s), closes on a 40 mm part
(the model says ABORT), reopens part-way to 55 mm and regrasps (the model says LIFT), then
opens. JointStates at 50 Hz and GelSight frames at 30 Hz (a synthetic gel: at rest, or pressed
while the fingers hold the part, with pixel noise) go through a ``GraspGate`` with the
``ContactJudge``, exactly as the node's and the replay's session feed it; every mark in the
figure is an event the core emitted (onset, settle, Ta, Tb, dismissal, decision).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tactile_grasp_predictor.contact import ContactJudge, deformation
from tactile_grasp_predictor.decision import decide
from tactile_grasp_predictor.gate import (
    Frame,
    GateEvent,
    GraspAborted,
    GraspDismissed,
    GraspGate,
    PhaseChanged,
    SnapshotReady,
)
from tactile_grasp_predictor.gripper import GripperSample
from tactile_grasp_predictor.tracker import TriggerConfig

OUT = Path(__file__).with_suffix(".png")
PART = 0.040
# (time, width) corners of the program: open, pre-shape, grasp, partial reopen, regrasp, open
CORNERS = [(0.0, 0.085), (0.8, 0.085), (1.0, 0.075), (1.8, 0.075), (2.15, PART), (3.4, PART), (3.55, 0.055),
           (3.95, 0.055), (4.1, PART), (5.3, PART), (5.75, 0.085), (6.5, 0.085)]


def width(t: float) -> float:
    """Return the programmed finger opening at ``t``."""
    ts, ws = zip(*CORNERS, strict=True)
    return float(np.interp(t, ts, ws))


def gel(pressed: bool, rng: np.random.Generator) -> np.ndarray:
    """Render a 48 x 64 gel image: at rest, or pressed by the part (a blob), with pixel noise."""
    yy, xx = np.mgrid[0:48, 0:64].astype(np.float32)
    img = np.stack([np.full((48, 64), c, np.float32) for c in (120.0, 110.0, 140.0)], axis=-1)
    if pressed:
        blob = np.exp(-((yy - 24) ** 2 + (xx - 30) ** 2) / (2 * 7.0**2))
        img += 60.0 * blob[..., None] * np.array([1.0, -0.5, 0.3], np.float32)
    return np.clip(img + rng.normal(0.0, 2.0, img.shape), 0, 255).astype(np.uint8)


class Scripted:
    """A stand-in model that answers the given probabilities in turn."""

    model_id = "scripted"

    def __init__(self, answers: list[float]) -> None:
        self.answers = iter(answers)

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        """Return the next scripted probability."""
        return next(self.answers)


def main() -> None:
    """Run the program through the core and draw what it did."""
    rng = np.random.default_rng(0)
    cfg = TriggerConfig()
    gate = GraspGate(cfg, ContactJudge(cfg))
    inputs: list[tuple[float, object]] = [(t, GripperSample(t, width(t))) for t in np.arange(0.0, 6.5, 0.02)]
    held = [(2.15, 3.4), (4.1, 5.3)]
    for t in np.arange(0.005, 6.5, 1 / 30):
        inputs.append((t, Frame(t, None, gel(any(a <= t <= b for a, b in held), rng))))
    inputs.sort(key=lambda x: x[0])
    model = Scripted([0.30, 0.80])  # the model's p for the two grasps (threshold 0.5)
    events: list[GateEvent] = []
    decided: list[tuple[float, str]] = []
    frames: list[Frame] = []
    for _, item in inputs:
        if isinstance(item, Frame):
            frames.append(item)
            new = gate.on_frame(item)
        else:
            new = gate.on_gripper(item)  # type: ignore[arg-type]
        for ev in new:
            events.append(ev)
            if isinstance(ev, SnapshotReady):
                d = decide(ev, model, 0.5)
                text = f"grasp {ev.grasp_id}: {d.verdict.name} (model p = {d.p_success:.2f})"
                decided.append((ev.t_trigger, text))
                gate.mark_decided(ev.grasp_id, ev.t_trigger)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.4), sharex=True, height_ratios=[3, 1.4])
    ts = np.arange(0.0, 6.5, 0.01)
    top.plot(ts, [width(t) * 1000 for t in ts], color="#1f4e79", lw=2, label="finger opening (JointState)")
    for a, b in held:
        top.axvspan(a, b, color="#f4c7a1", alpha=0.5, lw=0)
    top.text(2.9, 35, "fingers on the part", ha="center", fontsize=8, color="#9c4a10")
    y_marks = 90
    for ev in events:
        if isinstance(ev, PhaseChanged) and ev.phase in ("closing", "settling"):
            style = {"closing": ("#2e7d32", "onset"), "settling": ("#6a1b9a", "settled")}[ev.phase]
            top.axvline(ev.t, color=style[0], lw=1, ls="--")
            top.text(ev.t, y_marks + 1, style[1], rotation=90, fontsize=7, color=style[0], va="bottom",
                     ha="right")
        elif isinstance(ev, (SnapshotReady, GraspDismissed)):
            dismissed = isinstance(ev, GraspDismissed)
            ta, tb = (ev.ta, ev.later) if isinstance(ev, GraspDismissed) else (ev.ta, ev.tb)
            if isinstance(ev, GraspDismissed):
                top.annotate("pre-shape: no contact at Tb\n→ dismissed, no decision; re-armed at 75 mm",
                             xy=(ev.t, 75), xytext=(0.15, 58), fontsize=8, color="#555555",
                             arrowprops={"arrowstyle": "->", "color": "#777777"})
            for frame, name, color in ((ta, "Ta", "#2e7d32"), (tb, "Tb", "#c62828")):
                if frame is None:
                    continue
                color = "#9e9e9e" if dismissed else color
                top.plot([frame.t], [width(frame.t) * 1000 + 3], marker="v", color=color, ms=8)
                top.text(frame.t, width(frame.t) * 1000 + 5, name, ha="center", fontsize=8, color=color)
        elif isinstance(ev, GraspAborted):
            top.text(ev.t, 30, f"ABORT {ev.reason}", fontsize=8)
    for t, text in decided:
        top.annotate(text, xy=(t, PART * 1000), xytext=(t + 0.05, 20), fontsize=8.5, weight="bold",
                     arrowprops={"arrowstyle": "->"})
    top.set_ylim(10, 100)
    top.set_ylabel("opening (mm)")
    top.set_title("pre-shape → grasp → partial reopen and regrasp, through GraspGate + ContactJudge")
    top.legend(loc="lower right", fontsize=8)

    rest = frames[0].image
    bottom.plot([f.t for f in frames], [deformation(rest, f.image) for f in frames], ".", ms=3,
                color="#444444", label="deformation vs the gel at rest")
    assert gate.contact is not None
    bottom.axhline(gate.contact.threshold, color="#c62828", lw=1, ls=":",
                   label=f"contact threshold ({gate.contact.threshold:.1f})")
    bottom.set_ylabel("grey levels")
    bottom.set_xlabel("time (s)")
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    plt.close(fig)
    print(f"wrote {OUT}: {sum(isinstance(e, SnapshotReady) for e in events)} decisions, "
          f"{sum(isinstance(e, GraspDismissed) for e in events)} dismissed")


if __name__ == "__main__":
    main()
