"""MoCo v2 (He et al. 2020; Chen et al. 2020): momentum key encoder, queue of keys, InfoNCE.

The queue ``C x K`` and its pointer are registered buffers, so they travel with the
model's ``state_dict`` (checkpoints, exact resume). BN cannot see the positive pair:
under DDP the key batch is shuffled across processes (shuffle-BN); on one device the
batch runs through the encoders in ``split_bn`` chunks, the keys in shuffled order
(split-BN), which emulates per-GPU BN.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from tactile_grasp_predictor.preprocess import PreprocessConfig
from training import distributed as D
from training.config import TrainConfig, check_queue
from training.methods.common import Method, chunked, encoder_with_head, spread


def info_nce_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, tau: float) -> torch.Tensor:
    """MoCo logits: column 0 is the positive ``q·k+``, the rest ``q·queue``; all divided by ``tau``.

    Args:
        q: ``N x C`` normalised queries.
        k: ``N x C`` normalised positive keys.
        queue: ``C x K`` normalised negatives.
        tau: temperature.

    Returns:
        ``N x (1 + K)`` logits; the target class is 0 for every row.

    """
    assert q.shape == k.shape and q.shape[1] == queue.shape[0], (q.shape, k.shape, queue.shape)
    l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)  # N x 1
    l_neg = torch.einsum("nc,ck->nk", q, queue)  # N x K
    return torch.cat([l_pos, l_neg], dim=1) / tau  # N x (1 + K)


def info_nce_loss(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE: ``mean_n -log softmax(logits_n)[0]`` (equation 1 of the paper)."""
    logits = info_nce_logits(q.float(), k.float(), queue.float(), tau)
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


class MoCo(Method):
    """MoCo v2 with a two-hidden-layer projection head (the paper) by default."""

    queue: torch.Tensor
    queue_ptr: torch.Tensor

    def __init__(self, cfg: TrainConfig, preprocess: PreprocessConfig, n_train: int | None = None) -> None:
        super().__init__(cfg, preprocess)
        check_queue(cfg.moco_k, cfg.batch_size, n_train, D.world_size())
        self.encoder = encoder_with_head(cfg)
        self.encoder_k = copy.deepcopy(self.encoder)
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        self.k, self.m, self.tau = cfg.moco_k, cfg.moco_m, cfg.temperature
        self.register_buffer("queue", F.normalize(torch.randn(cfg.proj_dim, cfg.moco_k), dim=0))  # C x K
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``θk ← m θk + (1 − m) θq`` on parameters; BN buffers come from the key encoder's own passes."""
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder.parameters(), strict=True):
            pk.mul_(self.m).add_(pq.detach(), alpha=1.0 - self.m)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest ``B`` keys (gathered from every process) by ``keys``."""
        keys = D.concat_all_gather(keys)  # (P B) x C
        b = keys.shape[0]
        ptr = int(self.queue_ptr.item())
        assert self.k % b == 0, f"K={self.k} not a multiple of the global batch {b} (drop_last must be on)"
        self.queue[:, ptr : ptr + b] = keys.T.to(self.queue.dtype)
        self.queue_ptr[0] = (ptr + b) % self.k

    @torch.no_grad()
    def on_world_change(self, global_batch: int) -> list[str]:
        """Align the queue pointer to the new global batch (whole batches enqueue); say where it moved."""
        ptr = int(self.queue_ptr.item())
        aligned = (ptr // global_batch) * global_batch
        self.queue_ptr[0] = aligned
        return [f"MoCo queue pointer {ptr} -> {aligned} (a multiple of the global batch {global_batch})"]

    @torch.no_grad()
    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised keys ``N x C`` with BN blind to the pairing (shuffle- or split-BN)."""
        if D.world_size() > 1:
            x_all = D.concat_all_gather(x)  # (P N) x ...
            n = x.shape[0]
            perm = D.broadcast_(torch.randperm(x_all.shape[0], device=x.device))
            mine = perm.view(D.world_size(), n)[D.rank()]
            k = self.encoder_k(x_all[mine])  # N x C, a shuffled slice of the global batch
            k_all = D.concat_all_gather(F.normalize(k.float(), dim=1))  # (P N) x C in shuffled order
            unshuffle = torch.argsort(perm).view(D.world_size(), n)[D.rank()]
            return k_all[unshuffle]
        perm = torch.randperm(x.shape[0], device=x.device)
        k = chunked(self.encoder_k, x[perm], self.cfg.split_bn)  # N x C, shuffled
        k = F.normalize(k.float(), dim=1)
        return k[torch.argsort(perm)]

    def forward(self, diff: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """InfoNCE of two views of each sample against the queue; enqueues the keys."""
        x_q, x_k = self.view(diff), self.view(diff)  # N x 3 x S x S each
        chunks = self.cfg.split_bn if D.world_size() == 1 else 1
        q = F.normalize(chunked(self.encoder, x_q, chunks).float(), dim=1)  # N x C
        with torch.no_grad():
            self.momentum_update()
            k = self.keys(x_k)  # N x C
        queue = self.queue.clone().detach()  # C x K
        loss = info_nce_loss(q, k, queue, self.tau)
        with torch.no_grad():
            l_pos = (q * k).sum(1)  # N
            l_neg = q.detach() @ queue  # N x K
            self.record(pos_sim=l_pos, neg_sim=l_neg, top1=(l_pos > l_neg.max(1).values).float(),
                        feature_std=spread(q), queue_std=spread(queue.T))
        self.enqueue(k)
        return loss
