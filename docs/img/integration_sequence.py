"""Draw docs/img/integration_sequence.png: the pick pipeline's arm → close → evaluate contract.

    .venv/bin/python docs/img/integration_sequence.py

A sequence diagram (matplotlib only): the pipeline, predictor_node and the gripper + GelSight
drivers as lifelines; arm before closing, the node's decision published while the pipeline is
still closing, the armed goal answered at once with that decision, then lift or regrasp.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OUT = Path(__file__).with_suffix(".png")
LANES = {"pipeline": 1.0, "node": 4.6, "drivers": 8.2}
TITLES = {"pipeline": "pick pipeline\n(PickGate / BT / MTC)", "node": "predictor_node",
          "drivers": "WSG-50 + GelSight\ndrivers"}


def main() -> None:
    """Draw the diagram and save it next to this script."""
    fig, ax = plt.subplots(figsize=(9.5, 8.2))
    top, bottom = 0.6, 13.7
    for name, x in LANES.items():
        ax.text(x, top, TITLES[name], ha="center", va="center", fontsize=10, weight="bold",
                bbox={"boxstyle": "round,pad=0.4", "fc": "#e8eef7", "ec": "#4a6fa5"})
        ax.plot([x, x], [top + 0.7, bottom], color="#999999", lw=1, ls="--", zorder=0)

    def msg(y: float, a: str, b: str, text: str, dashed: bool = False, color: str = "black") -> None:
        xa, xb = LANES[a], LANES[b]
        ax.annotate("", xy=(xb, y), xytext=(xa, y),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.4, "ls": "--" if dashed else "-"})
        ax.text((xa + xb) / 2, y - 0.12, text, ha="center", va="bottom", fontsize=8.5, color=color)

    def note(y: float, lane: str, text: str, color: str = "#555555") -> None:
        ax.text(LANES[lane] + 0.15, y, text, ha="left", va="center", fontsize=8, color=color, style="italic",
                bbox={"fc": "white", "ec": "none", "pad": 1.0})

    def step(y: float, text: str) -> None:
        ax.text(0.05, y, text, ha="left", va="center", fontsize=9, weight="bold", color="#4a6fa5")

    step(1.9, "1")
    msg(1.9, "pipeline", "node", "~/arm  (ArmGrasp)")
    msg(2.5, "node", "pipeline", "arm_token = n + 1, active, phase = waiting", dashed=True)
    note(2.2, "node", "n decisions published so far")
    step(3.4, "2")
    msg(3.4, "pipeline", "drivers", "approach + close the gripper")
    msg(4.1, "drivers", "node", "frames (Ta before the onset), JointState: closing")
    msg(4.9, "drivers", "node", "JointState: settled; frame Tb (settle + tb_delay_s)")
    note(5.5, "node", "model: p(success) of (Ta, Tb)")
    green = "#2a7a3a"
    msg(6.2, "node", "pipeline", "~/decision: GraspDecision #n+1 (published now)", dashed=True, color=green)
    note(6.6, "pipeline", "still closing: nobody is asking yet")
    step(7.4, "3")
    msg(7.4, "pipeline", "node", "EvaluateGrasp goal (arm_token = n + 1, timeout_s)")
    msg(8.1, "node", "pipeline", "result: decision #n+1, error_code NONE (at once)", dashed=True, color=green)
    note(8.5, "node", "without arm_token the goal would wait for #n+2: TIMEOUT")
    step(9.4, "4")
    note(9.4, "pipeline", "LIFT (verdict 1)  →  lift")
    note(10.0, "pipeline", "ABORT: branch on decision.reason_code")
    note(10.5, "pipeline", "  no_part_found / model / gripper_opened → release, regrasp (1.)")
    note(11.0, "pipeline", "  model_unavailable / inactive / server_unavailable → stop, alert")
    msg(11.8, "pipeline", "drivers", "lift, or release and retreat")
    ax.text(4.6, 12.9, "error_code: NONE 0 · TIMEOUT 1 · CANCELLED 2 · INACTIVE 3 · ARM_EXPIRED 4\n"
            "reason_code: GraspDecision.REASON_* (docs/node.md, stable numbers)",
            ha="center", va="center", fontsize=8.5,
            bbox={"boxstyle": "round", "fc": "#f6f6f6", "ec": "#bbbbbb"})
    ax.set_xlim(0, 9.6)
    ax.set_ylim(bottom, 0)
    ax.axis("off")
    ax.set_title("Integration contract: arm → close → evaluate → lift or regrasp", fontsize=12)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    plt.close(fig)
    print(OUT)


if __name__ == "__main__":
    main()
