"""``tgp probe``: fit KNN / SVM / MLP probes on frozen features, at several label fractions.

Probes are fitted with scikit-learn, then converted to the runtime probes of
:mod:`tactile_grasp_predictor.probes` (plain tensors; nothing pickled), and the
conversion is checked against scikit-learn's own probabilities on the test features.

    tgp probe --run runs/moco --data DIR [--probes knn,svm,mlp] [--fractions 0.01,0.1,1]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.probes import Probe, probe_from_sklearn
from training.config import TrainConfig

PROBES = ("knn", "svm", "mlp")


def knn_k(n_train: int, cfg_k: int = 0) -> int:
    """``k = round(√n_train)`` (the paper's protocol) unless the config fixes it; at most ``n_train``."""
    k = cfg_k if cfg_k > 0 else max(1, round(math.sqrt(n_train)))
    return min(k, n_train)


def cv_folds(min_class: int) -> int:
    """Folds for the probes' internal cross-validation: 5, fewer when a class has fewer labels (≥ 2)."""
    return max(2, min(5, min_class))


def make_probe(kind: str, n_train: int, cfg: TrainConfig, seed: int = 0, min_class: int = 5) -> Any:
    """Build an unfitted scikit-learn model for ``kind`` (``knn``, ``svm``, ``mlp``).

    The MLP gets the first of ``cfg.mlp_alpha``; :func:`fit_probe` chooses among several.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind == "knn":
        return KNeighborsClassifier(n_neighbors=knn_k(n_train, cfg.knn_k), metric="cosine")
    if kind == "svm":
        svc = SVC(kernel="rbf", C=cfg.svm_c, gamma="scale", random_state=seed)
        calibrated = CalibratedClassifierCV(svc, method="sigmoid", cv=cv_folds(min_class), ensemble=False)
        return make_pipeline(StandardScaler(), calibrated)
    if kind == "mlp":
        mlp = MLPClassifier(hidden_layer_sizes=(cfg.mlp_hidden,), alpha=cfg.mlp_alpha[0], max_iter=400,
                            learning_rate_init=1e-3, random_state=seed)
        return make_pipeline(StandardScaler(), mlp)
    raise ConfigError(f"probe: unknown kind {kind!r}; known: {', '.join(PROBES)}")


def label_subset(labels: np.ndarray, fraction: float, seed: int, min_per_class: int = 2) -> np.ndarray:
    """Pick a stratified ``fraction`` of the labelled trials (at least ``min_per_class`` per class)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    if fraction >= 1.0:
        return np.arange(len(labels))
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = min(len(idx), max(min_per_class, round(fraction * len(idx))))
        out.append(rng.choice(idx, size=n, replace=False))
    return np.sort(np.concatenate(out))


@dataclass
class ProbeResult:
    """One fitted probe's accuracy on the test features."""

    probe: str
    fraction: float
    n_labels: int
    accuracy: float
    max_abs_diff_runtime: float  # runtime probe vs scikit-learn probabilities on the test set
    params: str = ""  # the MLP's L2 penalty as fitted (CV-chosen if mlp_alpha lists several): "alpha=10"


def fit_probe(kind: str, x_train: np.ndarray, y_train: np.ndarray, cfg: TrainConfig,
              seed: int = 0) -> tuple[Any, Probe]:
    """Fit ``kind`` on features ``N x D`` and labels ``N``; return (sklearn model, runtime probe)."""
    y_train = np.asarray(y_train).astype(np.int64)
    counts = np.bincount(y_train, minlength=2)
    if counts.min() < 1:
        raise ConfigError(f"probe {kind}: the training labels hold one class only ({counts.tolist()})")
    model = make_probe(kind, len(y_train), cfg, seed, min_class=int(counts.min()))
    if kind == "mlp" and len(cfg.mlp_alpha) > 1:
        model = _choose_by_cv(model, {"mlpclassifier__alpha": list(cfg.mlp_alpha)},
                              x_train, y_train, cv_folds(int(counts.min())), seed)
    else:
        model.fit(x_train, y_train)
    return model, probe_from_sklearn(model)


def _choose_by_cv(model: Any, grid: dict[str, list[Any]], x: np.ndarray, y: np.ndarray, folds: int,
                  seed: int) -> Any:
    """Choose ``grid``'s best by stratified ``folds``-fold CV accuracy on ``x, y``; refit it on all of them.

    Ties go to the earlier grid value (scikit-learn's rule).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    search = GridSearchCV(model, grid, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                          scoring="accuracy", refit=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(x, y)
    return search.best_estimator_


def chosen_params(model: Any) -> str:
    """Return the fitted MLP probe's L2 penalty as text (``alpha=10``); ``""`` for other probes."""
    steps = getattr(model, "named_steps", {})
    mlp = steps.get("mlpclassifier")
    return f"alpha={mlp.alpha:g}" if mlp is not None else ""


def runtime_proba(probe: Probe, x: np.ndarray) -> np.ndarray:
    """p(success) of the runtime probe on features ``N x D``."""
    with torch.no_grad():
        return probe(torch.from_numpy(np.asarray(x, np.float32))).numpy()


def probe_suite(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
                cfg: TrainConfig, probes: tuple[str, ...] = PROBES,
                fractions: tuple[float, ...] = (1.0,), seed: int = 0) -> list[ProbeResult]:
    """Fit every probe at every label fraction; test accuracy from the runtime (tensor) probe."""
    rows = []
    for frac in fractions:
        sub = label_subset(y_tr, frac, seed)
        for kind in probes:
            model, probe = fit_probe(kind, x_tr[sub], y_tr[sub], cfg, seed)
            p_rt = runtime_proba(probe, x_te)
            p_sk = model.predict_proba(x_te)[:, 1]
            acc = float(((p_rt >= 0.5).astype(np.int64) == np.asarray(y_te)).mean())
            rows.append(ProbeResult(kind, frac, len(sub), acc, float(np.abs(p_rt - p_sk).max()),
                                    chosen_params(model)))
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tgp probe``."""
    from training.cli import add_common_arguments, add_run_arguments

    add_run_arguments(parser)
    parser.add_argument("--probes", default=",".join(PROBES), help="comma-separated: knn,svm,mlp")
    parser.add_argument("--fractions", default="", help="label fractions, e.g. 0.01,0.1,1 (default: config)")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``tgp probe``: writes ``probes.csv``/``probes.json`` into the run directory."""
    from training.cli import load_data
    from training.features import extract_features
    from training.train import load_trained

    trained = load_trained(args.run)
    cfg = trained.config
    train_set, test_set, _ = load_data(args, cfg)
    probes = tuple(p.strip() for p in args.probes.split(",") if p.strip())
    fractions = (tuple(float(f) for f in args.fractions.split(",")) if args.fractions
                 else cfg.label_fractions)
    enc = trained.method.encoder
    x_tr = extract_features(enc, train_set, trained.preprocess)
    x_te = extract_features(enc, test_set, trained.preprocess)
    rows = probe_suite(x_tr, train_set.labels, x_te, test_set.labels, cfg, probes, fractions, cfg.seed)
    with (args.run / "probes.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    (args.run / "probes.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    for r in rows:
        print(f"{r.probe:4s} labels {r.fraction:6.1%} ({r.n_labels:5d}): accuracy {r.accuracy:.3f}")
    return 0
