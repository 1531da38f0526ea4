"""Probes: each matches scikit-learn's predict_proba, survives the tensor round trip, rejects bad tensors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tactile_grasp_predictor.errors import BundleError
from tactile_grasp_predictor.probes import (
    KNNProbe,
    MLPProbe,
    Probe,
    SVMProbe,
    probe_from_sklearn,
    probe_from_tensors,
    probe_to_tensors,
)


def _toy(seed: int = 0, n: int = 120, d: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 40, d)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.7 * rng.normal(size=n + 40) > 0).astype(np.int64)
    x[:, 2] *= 10.0  # badly scaled feature, so the standardisation matters
    return x[:n], y[:n], x[n:]


def _check(model: object, x_test: np.ndarray, l2: bool = False, atol: float = 1e-5) -> Probe:
    probe = probe_from_sklearn(model, l2_normalize=l2).eval()
    expect = model.predict_proba(x_test)[:, 1]  # type: ignore[attr-defined]
    with torch.inference_mode():
        got = probe(torch.from_numpy(x_test)).numpy()
    assert got.shape == (len(x_test),)
    np.testing.assert_allclose(got, expect, atol=atol, rtol=0)
    assert 0.05 < expect.mean() < 0.95 and expect.std() > 0.05  # a non-trivial comparison
    # the stored form reproduces the probe exactly
    tensors, params = probe_to_tensors(probe)
    again = probe_from_tensors(probe.kind, tensors, params)
    with torch.inference_mode():
        torch.testing.assert_close(again(torch.from_numpy(x_test)), torch.from_numpy(got), atol=0, rtol=0)
    return probe


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_matches_sklearn(metric: str, weights: str) -> None:
    x, y, xt = _toy()
    knn = KNeighborsClassifier(n_neighbors=11, metric=metric, weights=weights, algorithm="brute").fit(x, y)
    probe = _check(knn, xt)
    assert isinstance(probe, KNNProbe) and probe.k == 11


def test_knn_with_scaler_pipeline() -> None:
    x, y, xt = _toy(1)
    knn = KNeighborsClassifier(n_neighbors=7, metric="cosine")
    _check(make_pipeline(StandardScaler(), knn).fit(x, y), xt)


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_calibrated_svm_matches_sklearn(kernel: str) -> None:
    x, y, xt = _toy(2)
    svm = CalibratedClassifierCV(SVC(kernel=kernel, C=1.0), method="sigmoid", ensemble=False, cv=3)
    probe = _check(make_pipeline(StandardScaler(), svm).fit(x, y), xt)
    assert isinstance(probe, SVMProbe) and probe.kernel == kernel


def test_legacy_svc_probability_is_close() -> None:
    x, y, xt = _toy(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SVC(probability=True) is deprecated in sklearn 1.9
        svc = make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)).fit(x, y)
        # libsvm couples the two classes iteratively: close to, not exactly, the Platt sigmoid
        _check(svc, xt, atol=5e-3)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_matches_sklearn(activation: str) -> None:
    x, y, xt = _toy(4)
    mlp = MLPClassifier(hidden_layer_sizes=(32, 16), activation=activation, max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warning on toy data
        model = make_pipeline(StandardScaler(), mlp).fit(x, y)
    probe = _check(model, xt)
    assert isinstance(probe, MLPProbe) and probe.n_layers == 3


def test_l2_normalised_features() -> None:
    x, y, xt = _toy(5)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=400, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(xn, y)
    probe = probe_from_sklearn(mlp, l2_normalize=True).eval()
    expect = mlp.predict_proba(xt / np.linalg.norm(xt, axis=1, keepdims=True))[:, 1]
    np.testing.assert_allclose(probe(torch.from_numpy(xt)).detach().numpy(), expect, atol=1e-5)


def test_knn_exact_vote_by_hand() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0])
    probe = KNNProbe(bank, labels, k=3)
    # nearest three of (1, 0.05) by cosine: rows 0, 1, 2 → 2 of 3 successes
    assert probe(torch.tensor([[1.0, 0.05]])).item() == pytest.approx(2 / 3)


def test_bad_tensors_raise_bundle_error_naming_them() -> None:
    probe = MLPProbe([torch.randn(4, 3), torch.randn(3, 1)], [torch.randn(3), torch.randn(1)])
    tensors, params = probe_to_tensors(probe)
    with pytest.raises(BundleError, match="weight_1"):
        probe_from_tensors("mlp", {**tensors, "weight_1": torch.randn(5, 1)}, params)
    with pytest.raises(BundleError, match="bias_0"):
        probe_from_tensors("mlp", {k: v for k, v in tensors.items() if k != "bias_0"}, params)
    with pytest.raises(BundleError, match="kind"):
        probe_from_tensors("forest", tensors, params)
    with pytest.raises(BundleError, match="n_layers"):
        probe_from_tensors("mlp", tensors, {"activation": "relu"})
    with pytest.raises(BundleError, match="unexpected"):
        probe_from_tensors("mlp", {**tensors, "junk": torch.zeros(1)}, params)
    with pytest.raises(BundleError, match="'k'"):
        KNNProbe(torch.randn(3, 2), torch.tensor([0.0, 1.0, 1.0]), k=5)
    with pytest.raises(BundleError, match="labels"):
        KNNProbe(torch.randn(3, 2), torch.tensor([0.0, 2.0, 1.0]), k=1)
    with pytest.raises(BundleError, match="NaN"):
        SVMProbe(torch.full((2, 2), float("nan")), torch.ones(2), 0.0)
    with pytest.raises(BundleError, match="input_mean"):
        probe_from_tensors("mlp", {**tensors, "input_mean": torch.zeros(7)}, params)
