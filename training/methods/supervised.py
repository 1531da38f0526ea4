"""Supervised from scratch on the same backbone: the reference line of Table I.

The backbone plus a linear classifier trained with cross-entropy on augmented views of
the labelled trials. Its own head gives p(success) directly; its pooled features can be
probed like any other method's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tactile_grasp_predictor.models import Encoder, ProjectionHead
from tactile_grasp_predictor.preprocess import PreprocessConfig
from training import distributed as D
from training.config import TrainConfig
from training.methods.common import Method, chunked


class Supervised(Method):
    """ResNet + linear 2-way classifier (``encoder.head``), cross-entropy on the labels."""

    uses_labels = True

    def __init__(self, cfg: TrainConfig, preprocess: PreprocessConfig) -> None:
        super().__init__(cfg, preprocess)
        self.encoder = Encoder(cfg.arch)
        self.encoder.head = ProjectionHead(self.encoder.feat_dim, self.encoder.feat_dim, 2, hidden_layers=0)
        self.encoder = self.encoder.to(memory_format=self.memory_format)

    def forward(self, diff: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the classifier on one augmented view per sample."""
        chunks = self.cfg.split_bn if D.world_size() == 1 else 1
        logits = chunked(self.encoder, self.view(diff), chunks).float()  # B x 2
        self.record(batch_accuracy=(logits.detach().argmax(1) == labels).float())
        return F.cross_entropy(logits, labels)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """p(success) ``N`` of normalised, cropped inputs ``N x 3 x S x S`` (eval mode is the caller's)."""
        return torch.softmax(self.encoder(x).float(), dim=1)[:, 1]
