"""``tgp score``: a bundle on the trials of real Calandra-layout shards, through the runtime predictor."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers.bundles import make_random_bundle
from helpers.shards import write_synthetic_shards
from tactile_grasp_predictor.predictor import Predictor
from training.cli import main as tgp

pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread (conftest.py)


def test_score_matches_the_predictor_trial_by_trial(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    trials = write_synthetic_shards(tmp_path / "shards", 12, first=7, finger_b="swapped")
    bundle = make_random_bundle(tmp_path / "bundle", size=32, threshold=0.4)
    (tmp_path / "shards" / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")  # refused, counted
    out = tmp_path / "scores"
    assert tgp(["score", "--bundle", str(bundle), "--data", str(tmp_path / "shards"), "--out", str(out),
                "--no-progress"]) == 0
    assert "12 trials (1 skipped)" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert [r["trial"] for r in rows] == [f"a.h5:i{i}" for i in range(7)] + [f"b.h5:i{i}" for i in range(5)]
    pred = Predictor.from_bundle(bundle)
    for row, trial in zip(rows, trials, strict=True):  # the left finger (A), Ta = before, Tb = during
        p = pred.predict(trial["gelsightA_before"], trial["gelsightA_during"])  # type: ignore[arg-type]
        assert float(row["p"]) == pytest.approx(p, abs=1e-6)
        assert row["verdict"] == ("LIFT" if p >= 0.4 else "ABORT")
        assert int(row["label"]) == trial["is_gripping"]
    metrics = json.loads((out / "metrics.json").read_text())
    verdicts = np.array([r["verdict"] == "LIFT" for r in rows])
    labels = np.array([int(r["label"]) == 1 for r in rows])
    assert metrics["accuracy"] == pytest.approx(float((verdicts == labels).mean()))
    assert metrics["threshold"] == 0.4 and metrics["skipped"] == 1 and metrics["n"] == 12
    assert (out / "scores.png").stat().st_size > 1000


def test_score_refuses_an_empty_directory_and_a_tampered_bundle(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    bundle = make_random_bundle(tmp_path / "bundle", size=32)
    assert tgp(["score", "--bundle", str(bundle), "--data", str(empty), "--no-progress"]) == 2
    assert str(empty) in capsys.readouterr().err
    write_synthetic_shards(tmp_path / "shards", 8, first=7, finger_b="swapped")
    weights = next(bundle.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")  # wrong hash
    assert tgp(["score", "--bundle", str(bundle), "--data", str(tmp_path / "shards"), "--no-progress"]) == 2
    assert "sha256" in capsys.readouterr().err
