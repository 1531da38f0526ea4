"""tgp demo's scoring and report (the live run itself is `make demo`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from training.demo import Grasp, summarize, write_report


def grasp(i: int, label: bool, verdict: str, reason: str = "model", p: float = 0.5) -> Grasp:
    return Grasp(i, f"s.h5:i{i}", label, verdict, p if reason == "model" else math.nan, reason, i + 1,
                 10.0 + i, 20.0 + i)


def test_summary_counts_accuracy_precision_and_baselines() -> None:
    grasps = [grasp(0, True, "LIFT", p=0.9), grasp(1, False, "LIFT", p=0.7), grasp(2, False, "ABORT", p=0.1),
              grasp(3, True, "ABORT", p=0.3), grasp(4, False, "ABORT", "no_part_found")]
    s = summarize(grasps, threshold=0.5)
    assert s["grasps"] == 5 and s["decided_by_model"] == 4
    assert s["accuracy"] == pytest.approx(3 / 5)
    assert s["lift_precision"] == pytest.approx(1 / 2) and s["lift_recall"] == pytest.approx(1 / 2)
    assert s["baseline_always_lift_accuracy"] == pytest.approx(2 / 5)
    # gripper-only: lift the 4 grasps that closed on something → right on 0, 3 and 4
    assert s["baseline_gripper_only_accuracy"] == pytest.approx(3 / 5)
    assert s["reasons"] == {"model": 4, "no_part_found": 1}
    assert s["node_latency_ms_p50"] == pytest.approx(11.5)  # model-decided grasps only: 10, 11, 12, 13


def test_report_files(tmp_path: Path) -> None:
    grasps = [grasp(i, i % 3 != 0, "LIFT" if i % 2 else "ABORT", p=(i % 10) / 10) for i in range(30)]
    s = summarize(grasps, threshold=0.5)
    report = write_report(tmp_path, grasps, s, {"model_id": "m", "training_method": "t",
                                                "metrics": {"val_accuracy": 0.8}})
    text = report.read_text()
    assert "accuracy" in text and "LIFT precision" in text and "report.png" in text
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert len((tmp_path / "grasps.csv").read_text().splitlines()) == 31
    assert json.loads((tmp_path / "summary.json").read_text())["summary"]["grasps"] == 30
