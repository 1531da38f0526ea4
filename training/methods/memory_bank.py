"""Instance discrimination with a memory bank (Wu et al. 2018), exact softmax over all N.

One normalised feature per training image lives in the bank ``N x C`` (a buffer, saved
with the model). The loss is ``CE(f · bankᵀ / τ, idx)``; after each step, without
gradient, ``bank[idx] ← normalize(m · bank[idx] + (1 − m) · f)`` with m = 0.5.
For a few thousand images the exact softmax is cheap, so NCE is not needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tactile_grasp_predictor.preprocess import PreprocessConfig
from training import distributed as D
from training.config import TrainConfig
from training.methods.common import Method, chunked, encoder_with_head, spread


def instance_softmax_loss(f: torch.Tensor, bank: torch.Tensor, idx: torch.Tensor, tau: float) -> torch.Tensor:
    """Exact non-parametric softmax: ``-log softmax(f_n · bankᵀ / τ)[idx_n]`` averaged over n.

    Args:
        f: ``B x C`` normalised features.
        bank: ``N x C`` normalised memory.
        idx: ``B`` rows of ``bank`` (the samples' own entries).
        tau: temperature.

    """
    assert f.shape[1] == bank.shape[1] and idx.shape == (f.shape[0],), (f.shape, bank.shape, idx.shape)
    logits = f.float() @ bank.float().T / tau  # B x N
    return F.cross_entropy(logits, idx)


@torch.no_grad()
def bank_update(bank: torch.Tensor, idx: torch.Tensor, f: torch.Tensor, momentum: float) -> None:
    """In place: ``bank[idx] ← normalize(momentum · bank[idx] + (1 − momentum) · f)``."""
    mixed = momentum * bank[idx] + (1.0 - momentum) * f.to(bank.dtype)  # B x C
    bank[idx] = F.normalize(mixed, dim=1)


class MemoryBank(Method):
    """Wu et al.'s instance discrimination: encoder + head → 128-d, bank of N entries."""

    bank: torch.Tensor

    def __init__(self, cfg: TrainConfig, preprocess: PreprocessConfig, n_train: int) -> None:
        super().__init__(cfg, preprocess)
        self.encoder = encoder_with_head(cfg)
        self.register_buffer("bank", F.normalize(torch.randn(n_train, cfg.proj_dim), dim=1))  # N x C

    def forward(self, diff: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of one augmented view per sample against the whole bank; updates the bank rows."""
        assert int(idx.max()) < self.bank.shape[0], "sample index outside the memory bank"
        chunks = self.cfg.split_bn if D.world_size() == 1 else 1
        f = F.normalize(chunked(self.encoder, self.view(diff), chunks).float(), dim=1)  # B x C
        loss = instance_softmax_loss(f, self.bank.clone(), idx, self.cfg.bank_temperature)
        with torch.no_grad():  # own entry ranked first among the whole bank; how spread the features are
            top1 = ((f.detach() @ self.bank.T).argmax(1) == idx).float()
            self.record(top1=top1, feature_std=spread(f))
        all_idx, all_f = D.concat_all_gather(idx), D.concat_all_gather(f.detach())
        bank_update(self.bank, all_idx, all_f, self.cfg.bank_momentum)
        return loss
