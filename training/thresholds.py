"""Threshold rules: how ``tgp export`` chooses the decision threshold on validation trials.

Rules (``--threshold-rule``):

- ``balanced_accuracy`` (default): LIFT and ABORT errors weigh the same whatever the class balance.
- ``precision>=P``: the lowest threshold (most lifts) whose validation LIFT precision reaches ``P``.
- ``cost:drop=D,regrasp=R``: the pick pipeline's costs. Every ABORT costs a regrasp (``R``),
  a LIFT that fails drops the part (``D``), a LIFT that holds costs nothing; the threshold
  minimises the expected cost per grasp on validation, ``(D · failed lifts + R · aborts) / n``.
  With calibrated p the ideal rule is LIFT iff ``(1 − p) · D < R``, i.e. ``p > 1 − R / D``
  (ties between thresholds of equal cost go to the one nearest that point).

The thresholds tried are ``THRESHOLD_GRID`` (0.05 .. 0.95 in steps of 0.01).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.metrics import VerdictMetrics

__all__ = [
    "MIN_LIFTS",
    "THRESHOLD_GRID",
    "ThresholdRule",
    "choose_threshold",
    "describe_threshold_rule",
    "parse_threshold_rule",
    "threshold_rule",
]

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
#: Fewest validation LIFTs a ``precision>=P`` threshold must keep (fewer: precision is luck).
MIN_LIFTS = 5
_COST = re.compile(r"^cost:drop=([^,]+),regrasp=([^,]+)$")
_EXPECTED = "expected 'balanced_accuracy', 'precision>=P' (0 < P < 1) or 'cost:drop=D,regrasp=R' (D, R > 0)"


@dataclass(frozen=True)
class ThresholdRule:
    """A parsed threshold rule: ``kind`` and its numbers."""

    kind: str  # "balanced_accuracy" | "precision" | "cost"
    precision: float | None = None
    drop: float | None = None
    regrasp: float | None = None

    def describe(self) -> str:
        """Describe the rule in words, as the manifest's ``metrics.threshold_rule`` records it."""
        where = "the validation part of the training split"
        if self.kind == "balanced_accuracy":
            return f"max balanced accuracy on {where}"
        if self.kind == "precision":
            return (f"lowest threshold with LIFT precision >= {self.precision:g} (and >= {MIN_LIFTS} lifts) "
                    f"on {where}; if none reaches it, the highest precision")
        return (f"least expected cost per grasp on {where}: a dropped part (a LIFT that fails) costs "
                f"{self.drop:g}, a regrasp (every ABORT) {self.regrasp:g}")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def threshold_rule(rule: str) -> ThresholdRule:
    """Parse a threshold rule (spaces ignored); :class:`ConfigError` naming the rule if bad."""
    text = rule.replace(" ", "")
    if text == "balanced_accuracy":
        return ThresholdRule("balanced_accuracy")
    if text.startswith("precision>="):
        target = _number(text[len("precision>="):])
        if 0.0 < target < 1.0:
            return ThresholdRule("precision", precision=target)
    match = _COST.match(text)
    if match:
        drop, regrasp = _number(match.group(1)), _number(match.group(2))
        if all(math.isfinite(v) and v > 0 for v in (drop, regrasp)):
            return ThresholdRule("cost", drop=drop, regrasp=regrasp)
    raise ConfigError(f"threshold rule {rule!r}: {_EXPECTED}")


def parse_threshold_rule(rule: str) -> float | None:
    """Check ``rule``; return ``P`` of ``precision>=P``, else ``None`` (ConfigError if bad)."""
    return threshold_rule(rule).precision


def describe_threshold_rule(rule: str) -> str:
    """Describe ``rule`` in words, as the manifest's ``metrics.threshold_rule`` records it."""
    return threshold_rule(rule).describe()


def choose_threshold(p: np.ndarray, y: np.ndarray, rule: str = "balanced_accuracy") -> float:
    """Pick a threshold in [0.05, 0.95] for ``p >= t`` → LIFT on validation labels ``y``.

    ``balanced_accuracy``: maximise balanced accuracy (ties: nearest 0.5). ``precision>=P``:
    the lowest threshold (highest LIFT recall) whose LIFT precision is at least ``P`` with at
    least ``MIN_LIFTS`` lifts (fewer if the validation part has fewer successes); if no
    threshold reaches ``P``, the one with the highest precision (ties: lowest).
    ``cost:drop=D,regrasp=R``: the least expected cost (module docstring; ties: nearest ``1 − R/D``).
    """
    parsed = threshold_rule(rule)
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    assert p.shape == y.shape, (p.shape, y.shape)
    if parsed.kind == "cost":
        drop, regrasp = parsed.drop, parsed.regrasp
        assert drop is not None and regrasp is not None
        ideal, n = 1.0 - regrasp / drop, max(1, len(p))

        def cost(t: float) -> tuple[float, float]:
            failed_lifts, aborts = float(((p >= t) & ~y).sum()), float((p < t).sum())
            return round((drop * failed_lifts + regrasp * aborts) / n, 12), abs(t - ideal)

        return float(min((float(t) for t in THRESHOLD_GRID), key=cost))
    if y.all() or (~y).all():
        return 0.5
    if parsed.kind == "balanced_accuracy":
        best_bal, best_t = -1.0, 0.5
        for t in sorted(THRESHOLD_GRID, key=lambda v: abs(v - 0.5)):
            bal = VerdictMetrics.of(p >= t, y).balanced_accuracy  # defined: both classes are present
            if bal > best_bal + 1e-12:
                best_bal, best_t = bal, float(t)
        return best_t
    target = parsed.precision
    assert target is not None
    # at least one lift, so that precision is defined (NaN without lifts) at every threshold kept
    min_lifts = max(1, min(MIN_LIFTS, int(y.sum())))
    fallback, fallback_t = -1.0, float(THRESHOLD_GRID[-1])
    for t in THRESHOLD_GRID:  # ascending: recall falls as t rises
        m = VerdictMetrics.of(p >= t, y)
        if m.lifts < min_lifts:
            break
        precision = m.precision
        if precision >= target:
            return float(t)
        if precision > fallback + 1e-12:
            fallback, fallback_t = precision, float(t)
    return fallback_t
