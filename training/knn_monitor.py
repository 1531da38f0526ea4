"""Online kNN accuracy while a method trains (``knn_every`` epochs), so a bad run shows early.

The monitor holds out the labels of a slice of the training trials: the stratified, seeded
validation part :func:`~training.data.splits.split_fit_val` gives ``tgp export`` (``val_fraction``,
default 20 %). Every ``knn_every`` epochs it computes the frozen features of all training
trials exactly as the probes see them (:func:`~training.features.extract_features`: eval
mode, centre crop) and scores the slice with the runtime kNN probe (cosine, ``k = √n``) whose
bank is the rest. Its accuracy at the end of training is that of ``tgp export --probe knn``
on the same validation slice at threshold 0.5.

The slice's frames are still part of the (label-free) training set; only its labels are
held out. The monitor reads the encoder and changes nothing: no gradient, no BN update, no
random number, so a run trains the same weights with or without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.metrics import binary_metrics
from tactile_grasp_predictor.models import Encoder
from tactile_grasp_predictor.preprocess import PreprocessConfig
from tactile_grasp_predictor.probes import KNNProbe
from training.config import TrainConfig
from training.data.sets import TactileSet
from training.data.splits import split_fit_val
from training.features import extract_features
from training.probe_fit import knn_k


@dataclass(frozen=True)
class KnnResult:
    """One evaluation of the monitor: accuracy and AUC of the held-out slice, with k and sizes."""

    accuracy: float
    auc: float
    k: int
    n_bank: int
    n_held_out: int


class KnnMonitor:
    """kNN accuracy of the current encoder on the held-out labels of ``data`` (see the module)."""

    def __init__(self, data: TactileSet, cfg: TrainConfig) -> None:
        self.data = data
        self.labels = np.asarray(data.labels).astype(np.int64)
        self.fit, self.held_out = split_fit_val(self.labels, cfg.val_fraction, cfg.seed)
        if len(self.held_out) == 0 or len(np.unique(self.labels[self.fit])) < 2:
            raise ConfigError(
                f"knn_every: the kNN monitor needs labelled trials of both classes; the {len(data)} "
                "training trials give none to hold out (set knn_every=0)"
            )
        self.k = knn_k(len(self.fit), cfg.knn_k)

    @torch.no_grad()
    def evaluate(self, encoder: Encoder, preprocess: PreprocessConfig,
                 device: str | torch.device = "cpu") -> KnnResult:
        """Score the held-out slice with a kNN probe on the features of the others."""
        feats = torch.from_numpy(extract_features(encoder, self.data, preprocess, device=device))  # N x D
        probe = KNNProbe(feats[self.fit], torch.from_numpy(self.labels[self.fit]), k=self.k)
        p = probe(feats[self.held_out]).numpy()
        m = binary_metrics(p, self.labels[self.held_out], 0.5)
        return KnnResult(float(m["accuracy"]), float(m["auc"]), self.k, len(self.fit), len(self.held_out))
