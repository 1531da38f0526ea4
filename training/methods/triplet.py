"""Triplet nets: the paper's label-based variant and a label-free variant.

Label-based (the paper, supervised): anchor and positive share a grasp label, the
negative has the other label. Label-free: anchor and positive are two augmentations of
one image, the negative is another image of the batch. Both use the triplet margin loss
on unit-norm embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tactile_grasp_predictor.preprocess import PreprocessConfig
from training import distributed as D
from training.config import TrainConfig
from training.methods.common import Method, chunked, encoder_with_head, spread


def triplet_loss(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float) -> torch.Tensor:
    """``mean max(0, ‖a − p‖ − ‖a − n‖ + margin)`` over rows (inputs ``B x C``, already normalised)."""
    d_ap = (a - p).norm(dim=1)  # B
    d_an = (a - n).norm(dim=1)  # B
    return F.relu(d_ap - d_an + margin).mean()


def label_triplets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pick ``(anchor, positive, negative)`` indices within a batch from its labels.

    Each anchor whose label occurs at least twice, and whose other label occurs at least
    once, gets a random positive (same label, not itself) and a random negative (other label).
    """
    n = labels.shape[0]
    same = labels[:, None] == labels[None, :]  # B x B
    eye = torch.eye(n, dtype=torch.bool, device=labels.device)
    pos_mask, neg_mask = same & ~eye, ~same
    ok = pos_mask.any(1) & neg_mask.any(1)
    anchors = ok.nonzero().flatten()
    if anchors.numel() == 0:
        empty = anchors.new_zeros(0)
        return empty, empty, empty
    # random choice per row: argmax of (uniform noise masked to the allowed entries)
    noise = torch.rand(n, n, device=labels.device)
    pos = torch.where(pos_mask, noise, -1.0)[anchors].argmax(1)
    neg = torch.where(neg_mask, torch.rand(n, n, device=labels.device), -1.0)[anchors].argmax(1)
    return anchors, pos, neg


class Triplet(Method):
    """Triplet net; ``use_labels=True`` is the paper's (supervised) variant."""

    def __init__(self, cfg: TrainConfig, preprocess: PreprocessConfig, use_labels: bool = False) -> None:
        super().__init__(cfg, preprocess)
        self.uses_labels = use_labels
        self.encoder = encoder_with_head(cfg)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm embeddings ``B x C`` of normalised views."""
        chunks = self.cfg.split_bn if D.world_size() == 1 else 1
        return F.normalize(chunked(self.encoder, x, chunks).float(), dim=1)

    def forward(self, diff: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Triplet margin loss of the batch."""
        margin = self.cfg.triplet_margin
        if self.uses_labels:
            e = self.embed(self.view(diff))  # B x C
            self.record(feature_std=spread(e))
            a, p, n = label_triplets(labels)
            if a.numel() == 0:  # a batch of one class: nothing to contrast
                return e.sum() * 0.0
            return triplet_loss(e[a], e[p], e[n], margin)
        e_a, e_p = self.embed(self.view(diff)), self.embed(self.view(diff))  # B x C each
        self.record(feature_std=spread(e_a))
        shift = int(torch.randint(1, diff.shape[0], (1,)))
        return triplet_loss(e_a, e_p, e_p.roll(shift, dims=0), margin)  # negative: another image
