"""The metrics of LIFT / ABORT decisions against outcomes: one module, one set of semantics.

Every report of the project (``tgp bag eval``'s replay report, ``tgp export``'s manifest,
``tgp score``, ``tgp demo``, the benchmarks) computes its figures here. "Positive" means
the lift succeeded, so LIFT is the right verdict for a positive grasp.

Semantics, the same everywhere:

- a ratio whose denominator is zero is NaN (LIFT precision without LIFTs, LIFT recall
  without successes, accuracy without grasps, AUC with one class), never 0; :func:`json_safe`
  writes NaN as JSON ``null``;
- percentiles use numpy's default (linear) interpolation over the finite values only.

scikit-learn computes the confusion counts and the ROC curve / AUC; it is imported inside
the functions that need it. No ROS, no ``training``.

Example:
    >>> m = VerdictMetrics.of([True, True, False], [True, False, False])
    >>> (m.tp, m.fp, m.tn, m.fn), m.precision, m.accuracy
    ((1, 1, 1, 0), 0.5, 0.6666666666666666)
    >>> math.isnan(VerdictMetrics.of([False], [True]).precision)  # no LIFTs: undefined
    True
    >>> percentiles([10.0, 11.0, 12.0, 13.0, math.nan], (50, 90))  # NaN: not measured, left out
    {'p50': 11.5, 'p90': 12.7}

"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

ArrayLike = Sequence[float] | Sequence[bool] | npt.NDArray[Any]


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _flags(values: ArrayLike, what: str) -> npt.NDArray[np.bool_]:
    a = np.asarray(values, dtype=bool)
    if a.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence, got shape {a.shape}")
    return a


def confusion_counts(verdicts: ArrayLike, labels: ArrayLike) -> tuple[int, int, int, int]:
    """``(tp, fp, tn, fn)`` of LIFT flags ``verdicts`` against success ``labels`` (scikit-learn).

    tp: LIFT and succeeded; fp: LIFT and failed; tn: ABORT and would have failed;
    fn: ABORT and would have succeeded. Empty input gives four zeros.
    """
    v, y = _flags(verdicts, "verdicts"), _flags(labels, "labels")
    if v.shape != y.shape:
        raise ValueError(f"verdicts ({len(v)}) and labels ({len(y)}) differ in length")
    if len(y) == 0:
        return 0, 0, 0, 0
    from sklearn.metrics import confusion_matrix

    (tn, fp), (fn, tp) = confusion_matrix(y, v, labels=[False, True])  # rows: label, columns: verdict
    return int(tp), int(fp), int(tn), int(fn)


@dataclass(frozen=True)
class VerdictMetrics:
    """Confusion counts of LIFT/ABORT verdicts against labels, and the ratios that follow from them."""

    tp: int  # LIFT, succeeded
    fp: int  # LIFT, failed
    tn: int  # ABORT, would have failed
    fn: int  # ABORT, would have succeeded

    @classmethod
    def of(cls, verdicts: ArrayLike, labels: ArrayLike) -> VerdictMetrics:
        """From LIFT flags and success labels of equal length."""
        return cls(*confusion_counts(verdicts, labels))

    @property
    def n(self) -> int:
        """Number of labelled grasps."""
        return self.tp + self.fp + self.tn + self.fn

    @property
    def lifts(self) -> int:
        """Number of LIFT verdicts."""
        return self.tp + self.fp

    @property
    def accuracy(self) -> float:
        """Share of right verdicts (NaN without grasps)."""
        return _ratio(self.tp + self.tn, self.n)

    @property
    def precision(self) -> float:
        """LIFT precision: of the LIFT verdicts, the share that succeeded (NaN without LIFTs)."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """LIFT recall: of the successful grasps, the share let through (NaN without successes)."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        """ABORT recall: of the failed grasps, the share stopped (NaN without failures)."""
        return _ratio(self.tn, self.tn + self.fp)

    @property
    def balanced_accuracy(self) -> float:
        """Mean of LIFT recall and ABORT recall (NaN unless both classes are present)."""
        return 0.5 * (self.recall + self.specificity)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN → ``None``): n, accuracy, LIFT precision / recall, confusion matrix."""
        return json_safe({
            "n": self.n,
            "accuracy": self.accuracy,
            "lift_precision": self.precision,
            "lift_recall": self.recall,
            "confusion": {
                "labels": ["fail", "success"],
                "verdicts": ["ABORT", "LIFT"],
                "matrix": [[self.tn, self.fp], [self.fn, self.tp]],
            },
        })


def roc_curve(
    scores: ArrayLike, labels: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    """Compute the false / true LIFT rates at every distinct score (scikit-learn) and the ROC AUC.

    Returns ``(fpr, tpr, auc)``: the curve starts at (0, 0) and has one point per distinct
    score (none dropped); the AUC counts ties half (Mann–Whitney). With one class only (or
    no scores) the curve is the diagonal ``[0, 1], [0, 1]`` and the AUC is NaN.
    """
    s, y = np.asarray(scores, np.float64), _flags(labels, "labels")
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in shape")
    if not (y.any() and (~y).any()):
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), math.nan
    from sklearn import metrics as skm

    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    return fpr.astype(np.float64), tpr.astype(np.float64), float(skm.roc_auc_score(y, s))


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """ROC AUC of ``scores`` for success ``labels`` (ties count half); NaN with one class."""
    return roc_curve(scores, labels)[2]


def binary_metrics(p: ArrayLike, y: ArrayLike, threshold: float) -> dict[str, float]:
    """Figures of ``p >= threshold`` → LIFT against labels ``y``, as ``tgp export`` / ``tgp score`` keep them.

    Keys: ``n``, ``accuracy``, ``balanced_accuracy``, ``lift_precision``, ``lift_recall``,
    ``positives`` (success rate), ``auc``; NaN where undefined (see the module docstring).
    """
    probs, labels = np.asarray(p, np.float64), _flags(y, "labels")
    m = VerdictMetrics.of(probs >= threshold, labels)
    return {
        "n": len(labels),
        "accuracy": m.accuracy,
        "balanced_accuracy": m.balanced_accuracy,
        "lift_precision": m.precision,
        "lift_recall": m.recall,
        "positives": float(labels.mean()) if len(labels) else math.nan,
        "auc": roc_auc(probs, labels),
    }


def reliability(probs: ArrayLike, labels: ArrayLike, bins: int = 10) -> dict[str, Any]:
    """Calibration of ``probs``: per equal-width bin the mean p, the success rate and the count; ECE.

    Returns ``{"bins": [{"lo", "hi", "n", "mean_p", "success_rate"}, ...], "ece": float}``;
    an empty bin's means and the ECE of no predictions are ``None``. p = 1 falls in the last bin.
    """
    p, y = np.asarray(probs, np.float64), np.asarray(labels, np.float64)
    if p.shape != y.shape:
        raise ValueError(f"probs {p.shape} and labels {y.shape} differ in shape")
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        conf = float(p[m].mean()) if n else None
        acc = float(y[m].mean()) if n else None
        if conf is not None and acc is not None:
            ece += n / len(p) * abs(conf - acc)
        rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": n, "mean_p": conf,
                     "success_rate": acc})
    return {"bins": rows, "ece": ece if len(p) else None}


def percentiles(values: Iterable[float], qs: Sequence[float] = (50, 99)) -> dict[str, float]:
    """Percentiles ``qs`` (0–100) of the finite ``values``, keyed ``"p50"``, ``"p99"``, ...

    numpy's default linear interpolation; non-finite values (a latency that could not be
    measured) are left out; NaN for every key when no finite value remains.
    """
    a = np.asarray(list(values), np.float64)
    a = a[np.isfinite(a)]
    return {f"p{q:g}": float(np.percentile(a, q)) if a.size else math.nan for q in qs}


def json_safe(value: Any) -> Any:
    """``value`` made JSON-ready: NaN / ±inf → ``None``, numpy scalars and arrays → Python.

    Dicts, lists and tuples are converted recursively (tuples become lists).
    """
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def format_metric(value: Any, spec: str = ".3f", missing: str = "–") -> str:
    """``value`` formatted with ``spec``; ``missing`` for ``None`` and NaN (an undefined metric).

    Non-float values (counts, names) are written with ``str``.
    """
    if value is None or (isinstance(value, (float, np.floating)) and not math.isfinite(value)):
        return missing
    if isinstance(value, (float, np.floating)):
        return format(float(value), spec)
    return str(value)
