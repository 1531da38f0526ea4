"""Live vs offline: compare the node's decisions on a played bag with the offline replay's, grasp by grasp.

ROS-free: the live side comes in as :class:`LiveDecision` rows (the fields of the node's
``GraspDecision`` messages, stamps as float seconds). Two decisions are the same when verdict
and reason agree, Ta/Tb stamps agree to 1 µs (both absent counts as agreeing) and, where the
model ran, p agrees to 1e-5.

Example::

    offline = evaluate_bag(bag, predictor)
    cmp = compare_decisions(offline, live_rows)
    print(cmp.summary())
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tactile_grasp_predictor.replay.evaluate import BagEvaluation

STAMP_TOL_S = 1e-6
P_TOL = 1e-5


@dataclass(frozen=True)
class LiveDecision:
    """One decision the node published (``GraspDecision``, stamps in seconds, ``None`` if empty)."""

    grasp_id: int
    verdict: int  # 0 ABORT, 1 LIFT
    reason: str
    ta_stamp: float | None
    tb_stamp: float | None
    p_success: float


@dataclass
class Comparison:
    """The outcome of comparing one bag's live and offline decisions."""

    bag: str
    grasps: int
    identical: int
    mismatches: list[str] = field(default_factory=list)
    extra_live: list[int] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def all_identical(self) -> bool:
        """Whether every grasp got the same decision live and offline, and live had no extra grasps."""
        return self.identical == self.grasps and not self.mismatches and not self.extra_live

    def summary(self) -> str:
        """One line: how many grasps agree."""
        return (
            f"{self.bag}: {self.identical}/{self.grasps} grasps identical live and offline"
            + (f"; live-only grasps {self.extra_live}" if self.extra_live else "")
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**asdict(self), "all_identical": self.all_identical}


def _same_stamp(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < STAMP_TOL_S


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.6f}"


def compare_decisions(offline: BagEvaluation, live: Sequence[LiveDecision]) -> Comparison:
    """Compare grasp by grasp (by ``grasp_id``); a grasp without a live decision is a mismatch."""
    by_id: dict[int, LiveDecision] = {}
    for row in live:
        by_id.setdefault(row.grasp_id, row)  # the node publishes one decision per grasp
    cmp = Comparison(offline.bag, len(offline.grasps), 0)
    for g in offline.grasps:
        d, m = g.decision, by_id.get(g.grasp_id)
        if m is None:
            cmp.mismatches.append(f"grasp {g.grasp_id}: no live decision")
            continue
        same = (m.verdict, m.reason) == (int(d.verdict), d.reason)
        same &= _same_stamp(m.ta_stamp, d.ta_stamp) and _same_stamp(m.tb_stamp, d.tb_stamp)
        if d.reason == "model":
            same &= math.isfinite(m.p_success) and abs(m.p_success - d.p_success) < P_TOL
        if same:
            cmp.identical += 1
        else:
            cmp.mismatches.append(
                f"grasp {g.grasp_id}: live {m.verdict}/{m.reason} Ta {_fmt(m.ta_stamp)} "
                f"Tb {_fmt(m.tb_stamp)} p {m.p_success:.4f}; "
                f"offline {int(d.verdict)}/{d.reason} Ta {_fmt(d.ta_stamp)} Tb {_fmt(d.tb_stamp)} "
                f"p {d.p_success:.4f}"
            )
    known = {g.grasp_id for g in offline.grasps}
    cmp.extra_live = sorted(set(by_id) - known)
    return cmp


def write_comparison(cmp: Comparison, out_dir: Path) -> Path:
    """Write ``compare.json`` and ``compare.md`` into ``out_dir``; return the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(cmp.to_dict(), indent=2))
    lines = [
        f"# Live vs offline: {cmp.bag}",
        "",
        f"**{cmp.identical}/{cmp.grasps} grasps identical** (verdict, reason, Ta/Tb stamps, p).",
        "",
        *(f"- {k}: {v}" for k, v in cmp.notes.items()),
        "",
    ]
    if cmp.mismatches or cmp.extra_live:
        lines += ["## Differences", "", *(f"- {m}" for m in cmp.mismatches)]
        if cmp.extra_live:
            lines.append(f"- grasps decided live only: {cmp.extra_live}")
    md = out / "compare.md"
    md.write_text("\n".join(lines) + "\n")
    return md
