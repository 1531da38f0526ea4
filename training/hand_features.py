"""The hand-feature baseline: statistics of Tb − Ta a person would compute, and two plain classifiers.

Every claim that a learned representation helps is measured against this. The features
are computed from the same resized Ta/Tb frames the other methods see (a
:class:`~training.data.sets.TactileSet`), in three groups (:data:`FEATURE_NAMES`):

- the **eighteen contact statistics** of Tb − Ta (issue #20): mean and maximum absolute
  difference, the fraction of pixels whose mean absolute difference exceeds 4, 8, 16
  and 32 intensity units, the signed and absolute per-channel means, and the contact's
  centroid and spread (the ``|d|``-weighted first and second moments of the pixels above
  the contact threshold, in image-relative units);
- **contact shape and texture**: the contact ellipse's orientation (cos 2θ, sin 2θ) and
  elongation, the number of separate contact regions, the bounding box of the largest,
  the gradient energy of ``|d|`` inside the contact (edges, texture) and its
  high-frequency energy (``|d|`` minus a blurred ``|d|``), the dominant orientation
  of that energy (structure tensor: coherence and cos 2φ, sin 2φ);
- **the sensor's look**: per-channel mean and overall standard deviation of Ta, so that
  a classifier can normalise for a sensor's illumination.

Two classifiers are fitted on a label subset (:func:`fit_and_score`): a logistic
regression on standardised features (L2 penalty chosen from :data:`LOGREG_C` by
stratified CV on the labelled subset, as the MLP probe chooses its own) and
gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier``, leaves no
smaller than a tenth of the labels).

>>> from training.data.sets import synthetic_set
>>> data = synthetic_set(12, (24, 32), seed=0)
>>> hand_features(data.before, data.during).shape == (12, len(FEATURE_NAMES))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.probe_fit import _choose_by_cv as choose_by_cv
from training.probe_fit import cv_folds, label_subset

CONTACT_THRESHOLDS = (4.0, 8.0, 16.0, 32.0)  # mean |Tb − Ta| over the channels, 0..255 units
CONTACT_LEVEL = 8.0  # the contact mask: pixels above this
HAND_PROBES = ("logreg", "gboost")

FEATURE_NAMES: tuple[str, ...] = (
    # the eighteen contact statistics
    "abs_mean",
    "abs_max",
    *(f"frac_above_{t:g}" for t in CONTACT_THRESHOLDS),
    "mean_r",
    "mean_g",
    "mean_b",
    "abs_mean_r",
    "abs_mean_g",
    "abs_mean_b",
    "centroid_x",
    "centroid_y",
    "spread_x",
    "spread_y",
    "spread_xy",
    "contact_weight",
    # contact shape and texture
    "ellipse_cos2",
    "ellipse_sin2",
    "elongation",
    "regions",
    "bbox_w",
    "bbox_h",
    "grad_energy",
    "hf_energy",
    "texture_coherence",
    "texture_cos2",
    "texture_sin2",
    "abs_p99",
    # the sensor's look (Ta)
    "ta_mean_r",
    "ta_mean_g",
    "ta_mean_b",
    "ta_std",
)


def _one(before: np.ndarray, during: np.ndarray) -> np.ndarray:
    """Features of one trial: ``before``/``during`` ``h x w x 3`` uint8 → ``D`` float64."""
    h, w = before.shape[:2]
    d = during.astype(np.float32) - before.astype(np.float32)  # h x w x 3
    ad = np.abs(d)
    a = ad.mean(axis=2)  # h x w: mean absolute difference per pixel
    f: list[float] = [float(a.mean()), float(a.max())]
    f += [float((a > t).mean()) for t in CONTACT_THRESHOLDS]
    f += [float(v) for v in d.reshape(-1, 3).mean(axis=0)]
    f += [float(v) for v in ad.reshape(-1, 3).mean(axis=0)]
    mask = a > CONTACT_LEVEL
    wgt = np.where(mask, a, 0.0)
    total = float(wgt.sum())
    ys = (np.arange(h, dtype=np.float64) + 0.5) / h * 2 - 1  # image-relative coordinates, -1..1
    xs = (np.arange(w, dtype=np.float64) + 0.5) / w * 2 - 1
    if total > 0:
        px, py = wgt.sum(axis=0) / total, wgt.sum(axis=1) / total
        cx, cy = float(px @ xs), float(py @ ys)
        sxx = float(px @ (xs - cx) ** 2)
        syy = float(py @ (ys - cy) ** 2)
        sxy = float(((ys - cy)[:, None] * (xs - cx)[None, :] * wgt).sum() / total)
    else:
        cx = cy = sxx = syy = sxy = 0.0
    f += [cx, cy, float(np.sqrt(sxx)), float(np.sqrt(syy)), sxy, total / (h * w)]
    # contact ellipse: orientation (doubled angle, sign-free) and elongation
    tr = sxx + syy
    if tr > 1e-12:
        c2, s2 = (sxx - syy) / tr, 2 * sxy / tr
        elong = float(np.hypot(c2, s2))
    else:
        c2 = s2 = elong = 0.0
    f += [c2, s2, elong]
    # separate regions and the bounding box of the largest
    n, _lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    big = stats[1:][stats[1:, cv2.CC_STAT_AREA] >= 4] if n > 1 else np.zeros((0, 5), np.int32)
    if len(big):
        top = big[np.argmax(big[:, cv2.CC_STAT_AREA])]
        f += [float(len(big)), top[cv2.CC_STAT_WIDTH] / w, top[cv2.CC_STAT_HEIGHT] / h]
    else:
        f += [0.0, 0.0, 0.0]
    # texture and edges inside the contact: gradient and high-frequency energy, dominant orientation
    gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3)
    hf = np.abs(a - cv2.GaussianBlur(a, (0, 0), 1.5))
    if mask.any():
        jxx, jyy = float((gx * gx)[mask].mean()), float((gy * gy)[mask].mean())
        jxy = float((gx * gy)[mask].mean())
        energy = jxx + jyy
        coh_c, coh_s = ((jxx - jyy) / energy, 2 * jxy / energy) if energy > 1e-9 else (0.0, 0.0)
        f += [float(np.sqrt(energy)), float(hf[mask].mean()), float(np.hypot(coh_c, coh_s)), coh_c, coh_s]
    else:
        f += [0.0, 0.0, 0.0, 0.0, 0.0]
    f.append(float(np.percentile(a, 99)))
    ta = before.astype(np.float32)
    f += [float(v) for v in ta.reshape(-1, 3).mean(axis=0)] + [float(ta.std())]
    return np.asarray(f, np.float64)


def hand_features(before: np.ndarray, during: np.ndarray) -> np.ndarray:
    """Return the features (``N x len(FEATURE_NAMES)`` float32) of N trials' Ta/Tb (``N x h x w x 3``)."""
    if before.shape != during.shape or before.ndim != 4 or before.shape[3] != 3:
        raise ValueError(f"expected two N x h x w x 3 arrays, got {before.shape} and {during.shape}")
    out = np.zeros((len(before), len(FEATURE_NAMES)), np.float32)
    for i in range(len(before)):
        out[i] = _one(np.asarray(before[i]), np.asarray(during[i]))
    return out


LOGREG_C = (1e-2, 0.1, 1.0, 10.0)  # the logistic regression's inverse L2 penalty, chosen by CV


def make_classifier(kind: str, n_labels: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """Return an unfitted classifier: ``logreg`` (C = the first of :data:`LOGREG_C`) or ``gboost``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=LOGREG_C[0], max_iter=1000))
    if kind == "gboost":
        leaf = max(2, min(20, n_labels // 10))
        return HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.07, min_samples_leaf=leaf, early_stopping=False, random_state=seed
        )
    raise ValueError(f"unknown hand-feature classifier {kind!r}; known: {', '.join(HAND_PROBES)}")


def fit_classifier(kind: str, x: np.ndarray, y: np.ndarray, seed: int = 0):  # type: ignore[no-untyped-def]
    """Fit ``kind`` on features ``x`` and labels ``y``; the logistic regression's C by stratified CV."""
    y = np.asarray(y).astype(np.int64)
    model = make_classifier(kind, len(y), seed)
    if kind == "logreg":
        folds = cv_folds(int(np.bincount(y, minlength=2).min()))
        return choose_by_cv(model, {"logisticregression__C": list(LOGREG_C)}, x, y, folds, seed)
    return model.fit(x, y)


@dataclass
class HandResult:
    """One hand-feature classifier's test accuracy on one label subset."""

    probe: str  # logreg | gboost
    fraction: float
    n_labels: int
    accuracy: float


def fit_and_score(
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    fractions: tuple[float, ...],
    seed: int = 0,
    probes: tuple[str, ...] = HAND_PROBES,
) -> list[HandResult]:
    """Fit each classifier on the stratified label subset of each fraction (seed ``seed``); test accuracy.

    The subsets are :func:`training.probe_fit.label_subset`'s, the same the probes and
    supervised learning get for that seed.
    """
    y_tr = np.asarray(y_tr).astype(np.int64)
    out = []
    for frac in fractions:
        sub = label_subset(y_tr, frac, seed)
        for kind in probes:
            model = fit_classifier(kind, x_tr[sub], y_tr[sub], seed)
            acc = float((model.predict(x_te) == np.asarray(y_te)).mean())
            out.append(HandResult(kind, frac, len(sub), acc))
    return out
