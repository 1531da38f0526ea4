"""The hand-feature baseline: its statistics of Tb − Ta, its classifiers, and its row in Table I."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from training.config import load_config
from training.data.sets import synthetic_set
from training.hand_features import FEATURE_NAMES, HAND_PROBES, fit_and_score, fit_classifier, hand_features
from training.probe_fit import label_subset
from training.table1 import Row, label_draw_seed, run_table, write_report


def _frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    return np.full((n, h, w, 3), 120, np.uint8)


def test_no_change_gives_no_contact() -> None:
    ta = _frames(2)
    f = hand_features(ta, ta.copy())
    assert f.shape == (2, len(FEATURE_NAMES)) and f.dtype == np.float32
    diff_part = [i for i, n in enumerate(FEATURE_NAMES) if not n.startswith("ta_")]
    assert np.all(f[:, diff_part] == 0)
    assert f[0, FEATURE_NAMES.index("ta_mean_g")] == pytest.approx(120.0)


def test_contact_statistics_follow_the_imprint() -> None:
    ta = _frames(2)
    tb = ta.copy()
    tb[0, 10:20, 40:60] += 40  # a bright patch right of the centre, above it
    tb[1, 10:40, 10:20] += 40  # a tall patch on the left
    f = hand_features(ta, tb)
    col = {n: f[:, i] for i, n in enumerate(FEATURE_NAMES)}
    assert col["centroid_x"][0] > 0 > col["centroid_x"][1] and col["centroid_y"][0] < 0
    assert col["frac_above_32"][0] == pytest.approx(200 / (48 * 64))
    assert col["abs_max"][0] == pytest.approx(40.0) and col["mean_r"][0] > 0
    assert col["spread_x"][0] > col["spread_y"][0] and col["spread_y"][1] > col["spread_x"][1]
    assert col["ellipse_cos2"][0] > 0 > col["ellipse_cos2"][1]  # wide vs tall
    assert col["regions"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="N x h x w x 3"):
        hand_features(ta, tb[:1])


def test_classifiers_learn_the_synthetic_blob_size() -> None:
    data = synthetic_set(160, (32, 40), seed=1)
    x = hand_features(data.before, data.during)
    y = data.labels
    for kind in HAND_PROBES:
        model = fit_classifier(kind, x[:120], y[:120])
        assert (model.predict(x[120:]) == y[120:]).mean() > 0.85, kind
    with pytest.raises(ValueError, match="unknown"):
        fit_classifier("svm", x, y)


def test_label_subsets_are_the_probes_subsets() -> None:
    data = synthetic_set(100, (24, 32), seed=2)
    x = hand_features(data.before, data.during)
    res = fit_and_score(x, data.labels, x, data.labels, (0.1, 1.0), seed=label_draw_seed(0, 1))
    assert [(r.probe, r.fraction) for r in res] == [(p, f) for f in (0.1, 1.0) for p in HAND_PROBES]
    n10 = len(label_subset(data.labels, 0.1, label_draw_seed(0, 1)))
    assert [r.n_labels for r in res if r.fraction == 0.1] == [n10, n10]


def test_table1_has_a_hand_feature_row_at_every_fraction_and_draw(tmp_path: Path) -> None:
    cfg = load_config("tiny", ["label_fractions=[0.1, 1.0]"])
    full = synthetic_set(120, cfg.resize_hw, seed=4)
    train_set, test_set = full.subset(range(80)), full.subset(range(80, 120))
    rows = run_table(
        cfg, train_set, test_set, tmp_path, ("hand_features",), (0,), progress=False, label_draws=2
    )
    got = {(r.method, r.probe, r.fraction, r.draw) for r in rows}
    assert {("hand_features", p, f, 0) for p in HAND_PROBES for f in (0.1, 1.0)} <= got
    assert {("hand_features", p, 0.1, 1) for p in HAND_PROBES} <= got and (
        "hand_features",
        "logreg",
        1.0,
        1,
    ) not in got
    assert all(r.accuracy > 0.7 for r in rows if r.method == "hand_features" and r.fraction == 1.0)
    # with a learned method beside it, the report compares the two
    hand = max(r.accuracy for r in rows if r.method == "hand_features" and r.fraction == 1.0)
    rows.append(Row(0, "moco", "mlp", 1.0, 80, 0.5, 1.0))
    write_report(rows, tmp_path, cfg, {"kind": "synthetic"}, "tgp t", 1.0)
    md = (tmp_path / "results.md").read_text()
    assert (
        "Hand features (statistics of Tb − Ta" in md
        and "| Hand features (Tb − Ta statistics) / logreg |" in md
    )
    assert f"MoCo + MLP 50.0 vs hand features {100 * hand:.1f}: MoCo NOT ahead" in md
    assert any(r["method"] == "hand_features" for r in csv.DictReader((tmp_path / "results.csv").open()))
