"""tactile_grasp_predictor.metrics against hand-computed values and at its edges."""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest

from tactile_grasp_predictor import metrics
from tactile_grasp_predictor.metrics import (
    VerdictMetrics,
    binary_metrics,
    confusion_counts,
    format_metric,
    json_safe,
    percentiles,
    reliability,
    roc_auc,
    roc_curve,
)


def test_docstring_examples() -> None:
    failed, tried = doctest.testmod(metrics)
    assert tried >= 4 and failed == 0


def test_verdict_metrics_by_hand() -> None:
    # verdicts: LIFT LIFT ABORT ABORT LIFT LIFT ; labels: ok fail fail ok ok fail
    m = VerdictMetrics.of([True, True, False, False, True, True], [True, False, False, True, True, False])
    assert (m.tp, m.fp, m.tn, m.fn) == (2, 2, 1, 1)
    assert m.n == 6 and m.lifts == 4
    assert m.accuracy == pytest.approx(3 / 6)
    assert m.precision == pytest.approx(2 / 4)
    assert m.recall == pytest.approx(2 / 3)
    assert m.specificity == pytest.approx(1 / 3)
    assert m.balanced_accuracy == pytest.approx(0.5 * (2 / 3 + 1 / 3))
    d = m.to_dict()
    assert d["confusion"]["matrix"] == [[1, 2], [1, 2]]  # rows: fail, success; columns: ABORT, LIFT
    assert set(d) == {"n", "accuracy", "lift_precision", "lift_recall", "confusion"}


def test_no_lifts_no_successes_and_empty_are_nan_and_null() -> None:
    no_lift = VerdictMetrics.of([False, False, False], [True, False, False])
    assert math.isnan(no_lift.precision) and no_lift.recall == 0.0
    assert no_lift.accuracy == pytest.approx(2 / 3)
    assert no_lift.to_dict()["lift_precision"] is None
    no_success = VerdictMetrics.of([True, False], [False, False])
    assert math.isnan(no_success.recall) and no_success.precision == 0.0
    assert math.isnan(no_success.balanced_accuracy)
    empty = VerdictMetrics.of([], [])
    assert (empty.tp, empty.fp, empty.tn, empty.fn) == (0, 0, 0, 0)
    assert all(math.isnan(x) for x in (empty.accuracy, empty.precision, empty.recall))
    assert empty.to_dict()["accuracy"] is None
    with pytest.raises(ValueError, match="differ in length"):
        confusion_counts([True], [True, False])


def test_binary_metrics_at_a_threshold() -> None:
    p = np.array([0.1, 0.2, 0.35, 0.4, 0.8, 0.9])
    y = np.array([0, 0, 1, 1, 1, 1])
    m = binary_metrics(p, y, 0.5)  # lifts the last two, both succeed
    assert m["n"] == 6 and m["accuracy"] == pytest.approx(4 / 6)
    assert m["lift_precision"] == 1.0 and m["lift_recall"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx(0.5 * (0.5 + 1.0))
    assert m["positives"] == pytest.approx(4 / 6) and m["auc"] == 1.0
    none = binary_metrics(p, y, 0.95)  # no lifts: precision undefined, not 0
    assert math.isnan(none["lift_precision"]) and none["lift_recall"] == 0.0
    one_class = binary_metrics(p, np.ones(6), 0.5)
    assert math.isnan(one_class["auc"]) and math.isnan(one_class["balanced_accuracy"])
    assert json.loads(json.dumps(json_safe(none), allow_nan=False))["lift_precision"] is None


def test_roc_curve_points_and_auc_by_hand() -> None:
    # scores 0.9 (ok), 0.5 (ok), 0.5 (fail), 0.1 (fail): the tie at 0.5 moves both rates at once
    fpr, tpr, auc = roc_curve([0.9, 0.5, 0.5, 0.1], [True, True, False, False])
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    # pairs (ok, fail): (0.9, 0.5) win, (0.9, 0.1) win, (0.5, 0.5) tie, (0.5, 0.1) win → 3.5 / 4
    assert auc == pytest.approx(3.5 / 4)
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0 and roc_auc([0.9, 0.1], [False, True]) == 0.0


@pytest.mark.parametrize(("scores", "labels"), [([0.1, 0.2], [True, True]), ([0.3], [False]), ([], [])])
def test_roc_with_one_class_or_none(scores: list[float], labels: list[bool]) -> None:
    fpr, tpr, auc = roc_curve(scores, labels)
    assert math.isnan(auc) and fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0]


def test_reliability_bins_and_ece_by_hand() -> None:
    p = [0.05, 0.15, 0.15, 0.95, 1.0]
    y = [0, 1, 0, 1, 1]
    r = reliability(p, y, bins=10)
    bins = r["bins"]
    assert len(bins) == 10 and bins[0]["lo"] == 0.0 and bins[-1]["hi"] == 1.0
    assert [b["n"] for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]  # p = 1 falls in the last bin
    assert bins[1]["mean_p"] == pytest.approx(0.15) and bins[1]["success_rate"] == 0.5
    assert bins[2]["mean_p"] is None and bins[2]["success_rate"] is None
    # |0.05 - 0| * 1/5 + |0.15 - 0.5| * 2/5 + |0.975 - 1| * 2/5
    assert r["ece"] == pytest.approx(0.05 / 5 + 0.35 * 2 / 5 + 0.025 * 2 / 5)
    assert reliability([], [])["ece"] is None


def test_percentiles_linear_finite_only_and_empty() -> None:
    v = [10.0, 11.0, 12.0, 13.0]
    q = percentiles(v, (50, 90, 99))
    assert q == pytest.approx({"p50": 11.5, "p90": 12.7, "p99": 12.97})  # numpy's linear rule
    assert q["p99"] == float(np.percentile(v, 99))
    assert percentiles([*v, math.nan, math.inf]) == percentiles(v)  # unmeasured values left out
    assert all(math.isnan(x) for x in percentiles([], (50, 99)).values())
    assert list(percentiles([1.0], (50, 99.9))) == ["p50", "p99.9"]


def test_json_safe_and_format_metric() -> None:
    doc = {"a": math.nan, "b": [np.float32(0.5), np.int64(3), (math.inf, 1)], "c": np.arange(2), "d": "x",
           "e": np.bool_(True)}
    assert json_safe(doc) == {"a": None, "b": [0.5, 3, [None, 1]], "c": [0, 1], "d": "x", "e": True}
    json.dumps(json_safe(doc), allow_nan=False)  # strict JSON
    assert format_metric(None) == "–" and format_metric(math.nan, ".1%") == "–"
    assert format_metric(0.877, ".1%") == "87.7%" and format_metric(0.5) == "0.500"
    assert format_metric(3) == "3"
