"""Per-sample augmentations on batched tensors (kornia), on CPU or GPU.

The paper's list, with MoCo v2's strengths: random resized crop, colour jitter, random
grayscale, Gaussian blur, horizontal flip. Every sample of a batch draws its own
parameters; the ops run batched on the tensor's device (no per-image PIL loop).

Inputs are differences ``Tb - Ta`` of frames scaled to [0, 1], times the preprocessing gain
(``PreprocessConfig.scale``; small tactile differences are amplified to fill [-1, 1]).
Colour ops need an image in [0, 1]: the difference is mapped with ``(d + 1) / 2``,
augmented, and mapped back with ``2 y - 1`` (an exact inverse), then the shared
normalisation of :mod:`tactile_grasp_predictor.preprocess` applies.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn

from training.config import TrainConfig


def blur_kernel_size(crop: int) -> int:
    """Odd Gaussian kernel side, about 10 % of the crop (MoCo v2), at least 3."""
    k = max(3, round(0.1 * crop))
    return k if k % 2 else k + 1


class DiffAugment(nn.Module):
    """Random views of difference images: ``N x 3 x h x w`` in [-1, 1] → ``N x 3 x S x S``.

    Example:
        >>> aug = DiffAugment(crop=32)
        >>> aug(torch.zeros(4, 3, 40, 48)).shape
        torch.Size([4, 3, 32, 32])

    """

    def __init__(
        self,
        crop: int,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        gray_p: float = 0.2,
        blur_p: float = 0.5,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        flip_p: float = 0.5,
    ) -> None:
        super().__init__()
        self.crop = crop
        k = blur_kernel_size(crop)
        self.ops = nn.Sequential(
            K.RandomResizedCrop((crop, crop), scale=crop_scale),
            K.ColorJitter(*jitter, p=jitter_p),
            K.RandomGrayscale(p=gray_p),
            K.RandomGaussianBlur((k, k), blur_sigma, p=blur_p),
            K.RandomHorizontalFlip(p=flip_p),
        )

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> DiffAugment:
        """Build the augmentation a config describes."""
        return cls(
            cfg.crop, cfg.aug_crop_scale, cfg.aug_jitter, cfg.aug_jitter_p,
            cfg.aug_gray_p, cfg.aug_blur_p, cfg.aug_blur_sigma, cfg.aug_flip_p,
        )

    @torch.no_grad()
    def forward(self, diff: torch.Tensor) -> torch.Tensor:
        """One random view per sample of ``diff`` (``N x 3 x h x w`` in [-1, 1])."""
        assert diff.ndim == 4 and diff.shape[1] == 3, f"expected N x 3 x h x w, got {tuple(diff.shape)}"
        with torch.autocast(diff.device.type, enabled=False):  # fp32: kornia ops are slow in bf16 on CPU
            x = ((diff.float() + 1.0) * 0.5).clamp_(0.0, 1.0)  # N x 3 x h x w in [0, 1]
            y = self.ops(x)  # N x 3 x S x S
        return y * 2.0 - 1.0


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Central ``size x size`` window of ``N x C x h x w`` (the evaluation view)."""
    h, w = x.shape[-2:]
    assert h >= size and w >= size, f"cannot crop {size} from {h}x{w}"
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]
