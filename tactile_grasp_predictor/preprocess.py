"""The one preprocessing of a (Ta, Tb) GelSight pair: resize → Tb − Ta → centre crop → normalise.

Training, inference and replay all call these functions, and a model bundle records the
:class:`PreprocessConfig` it was trained with, so the node feeds the network exactly what
it saw during training.

Units: frames are ``uint8`` RGB ``H x W x 3``. :func:`difference` returns ``(Tb − Ta) / 255``
as ``float32`` in ``[-1, 1]``, channel-first. :func:`normalize` then applies
``(scale · d − mean) / std`` per channel, where ``mean``/``std`` are statistics of the scaled
difference (see :func:`difference_stats`).

Example:
    >>> import numpy as np
    >>> cfg = PreprocessConfig(resize_hw=(96, 128), crop=96)
    >>> ta = np.zeros((480, 640, 3), np.uint8); tb = np.full((480, 640, 3), 10, np.uint8)
    >>> tuple(preprocess_pair(ta, tb, cfg).shape)
    (1, 3, 96, 96)

Training augments between the pieces: ``difference`` → augmentation (random resized
crop, jitter, …) → ``normalize``; evaluation uses :func:`preprocess_batch`.

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch

from tactile_grasp_predictor.errors import ConfigError, FrameError

__all__ = [
    "PreprocessConfig",
    "center_crop",
    "check_frame",
    "difference",
    "difference_stats",
    "normalize",
    "preprocess_batch",
    "preprocess_pair",
    "resize_frame",
]

ArrayOrTensor = np.ndarray | torch.Tensor


def _triple(value: Any, name: str) -> tuple[float, float, float]:
    try:
        seq = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"preprocessing.{name}: expected 3 numbers, got {value!r}") from exc
    if len(seq) != 3:
        raise ConfigError(f"preprocessing.{name}: expected 3 numbers (RGB), got {len(seq)}")
    return (seq[0], seq[1], seq[2])


@dataclass(frozen=True)
class PreprocessConfig:
    """Parameters of the preprocessing; stored in every bundle's manifest.

    Attributes:
        resize_hw: ``(height, width)`` every frame is resized to before differencing
            (``cv2.INTER_AREA``). The paper resizes to 256 x 256; the ``cpu`` config uses
            a small size such as 96 x 128 (keeps the 3:4 GelSight aspect).
        crop: side of the square centre crop fed to the network (paper: 224).
        scale: gain applied to the difference ``(Tb − Ta) / 255`` before mean/std.
        mean: per-channel (RGB) mean of the scaled difference.
        std: per-channel (RGB) standard deviation of the scaled difference.

    """

    resize_hw: tuple[int, int] = (96, 128)
    crop: int = 96
    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        try:
            hw = tuple(int(v) for v in self.resize_hw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"preprocessing.resize_hw: expected (height, width), got {self.resize_hw!r}"
            ) from exc
        if len(hw) != 2 or min(hw) < 1:
            raise ConfigError(f"preprocessing.resize_hw: expected two positive ints, got {self.resize_hw!r}")
        object.__setattr__(self, "resize_hw", (hw[0], hw[1]))
        crop = int(self.crop)
        if crop < 1 or crop > min(hw):
            raise ConfigError(f"preprocessing.crop: {self.crop} must be in 1..min(resize_hw)={min(hw)}")
        object.__setattr__(self, "crop", crop)
        scale = float(self.scale)
        if not math.isfinite(scale) or scale <= 0:
            raise ConfigError(f"preprocessing.scale: must be a positive finite number, got {self.scale!r}")
        object.__setattr__(self, "scale", scale)
        mean = _triple(self.mean, "mean")
        std = _triple(self.std, "std")
        if not all(math.isfinite(m) for m in mean):
            raise ConfigError(f"preprocessing.mean: must be finite, got {mean}")
        if not all(math.isfinite(s) and s > 0 for s in std):
            raise ConfigError(f"preprocessing.std: must be positive and finite, got {std}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def cpu(cls) -> PreprocessConfig:
        """Return the small input for CPU training and inference: 96 x 128 resize, 96 crop."""
        return cls(resize_hw=(96, 128), crop=96)

    @classmethod
    def paper(cls) -> PreprocessConfig:
        """Return the paper's input: 256 x 256 resize, 224 crop."""
        return cls(resize_hw=(256, 256), crop=224)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (lists, floats) for manifests and configs."""
        d = asdict(self)
        return {
            "resize_hw": list(d["resize_hw"]),
            "crop": d["crop"],
            "scale": d["scale"],
            "mean": list(d["mean"]),
            "std": list(d["std"]),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"preprocessing: expected a mapping, got {type(data).__name__}")
        known = {"resize_hw", "crop", "scale", "mean", "std"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"preprocessing: unknown field(s) {unknown}; known: {sorted(known)}")
        missing = sorted(known - set(data))
        if missing:
            raise ConfigError(f"preprocessing: missing field(s) {missing}")
        return cls(
            resize_hw=tuple(data["resize_hw"]),
            crop=data["crop"],
            scale=data["scale"],
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
        )

    def with_stats(
        self, mean: tuple[float, float, float], std: tuple[float, float, float]
    ) -> PreprocessConfig:
        """Return a copy with new normalisation statistics (e.g. from :func:`difference_stats`)."""
        return PreprocessConfig(self.resize_hw, self.crop, self.scale, mean, std)


def check_frame(img: Any, name: str = "frame") -> np.ndarray:
    """Return ``img`` if it is a usable ``uint8 H x W x 3`` array, else raise :class:`FrameError`."""
    if not isinstance(img, np.ndarray):
        raise FrameError(f"{name}: expected a numpy uint8 H x W x 3 array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise FrameError(f"{name}: expected dtype uint8, got {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise FrameError(f"{name}: expected shape H x W x 3 (RGB), got {img.shape}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise FrameError(f"{name}: empty image of shape {img.shape}")
    return img


def resize_frame(img: np.ndarray, cfg: PreprocessConfig, name: str = "frame") -> np.ndarray:
    """Resize one ``uint8 H x W x 3`` frame to ``cfg.resize_hw`` with ``cv2.INTER_AREA``.

    Frames already at the target size are returned unchanged (no copy). Used by the
    training cache too, so cached arrays equal what the node computes.
    """
    check_frame(img, name)
    h, w = cfg.resize_hw
    if img.shape[0] == h and img.shape[1] == w:
        return img
    out = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_AREA)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    return out


def _as_uint8_tensor(x: ArrayOrTensor, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        # read-only arrays (a memory-mapped cache): copied, torch wants writable memory
        x = np.ascontiguousarray(x) if x.flags.writeable else np.array(x, order="C")
    t = torch.from_numpy(x) if isinstance(x, np.ndarray) else x
    if not isinstance(t, torch.Tensor):
        raise FrameError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    if t.dtype != torch.uint8:
        raise FrameError(f"{name}: expected dtype uint8, got {t.dtype}")
    if t.ndim not in (3, 4) or t.shape[-1] != 3:
        raise FrameError(f"{name}: expected shape [N x] H x W x 3 (RGB), got {tuple(t.shape)}")
    return t


def difference(ta: ArrayOrTensor, tb: ArrayOrTensor) -> torch.Tensor:
    """``(Tb − Ta) / 255`` as float32, channel-first.

    Args:
        ta: uint8 ``H x W x 3`` or ``N x H x W x 3`` (numpy or torch, any device), before contact.
        tb: same shape as ``ta``, closed before lift.

    Returns:
        ``3 x H x W`` or ``N x 3 x H x W`` float32 in ``[-1, 1]`` on the inputs' device.

    """
    a = _as_uint8_tensor(ta, "ta")
    b = _as_uint8_tensor(tb, "tb")
    if a.shape != b.shape:
        raise FrameError(f"ta/tb: shapes differ: ta {tuple(a.shape)} vs tb {tuple(b.shape)}")
    d = (b.to(torch.float32) - a.to(torch.float32)).mul_(1.0 / 255.0)  # [N x] H x W x 3
    return d.movedim(-1, -3).contiguous()  # [N x] 3 x H x W


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre ``size x size`` crop of a ``[N x] C x H x W`` tensor (a view)."""
    h, w = x.shape[-2], x.shape[-1]
    if size > h or size > w:
        raise FrameError(f"center_crop: crop {size} larger than image {h} x {w}")
    top = (h - size) // 2
    left = (w - size) // 2
    return x[..., top : top + size, left : left + size]


def normalize(x: torch.Tensor, cfg: PreprocessConfig) -> torch.Tensor:
    """``(scale · x − mean) / std`` per channel on a ``[N x] 3 x H x W`` difference tensor."""
    assert x.shape[-3] == 3, f"expected 3 channels at dim -3, got shape {tuple(x.shape)}"
    mean = torch.tensor(cfg.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(cfg.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * cfg.scale - mean) / std


def preprocess_pair(ta: np.ndarray, tb: np.ndarray, cfg: PreprocessConfig) -> torch.Tensor:
    """Full preprocessing of one pair of raw frames of any size → ``1 x 3 x S x S`` float32.

    Raises:
        FrameError: a frame is not ``uint8 H x W x 3`` or the two frames differ in shape.

    """
    check_frame(ta, "ta")
    check_frame(tb, "tb")
    if ta.shape != tb.shape:
        raise FrameError(f"ta/tb: shapes differ: ta {ta.shape} vs tb {tb.shape}")
    d = difference(resize_frame(ta, cfg, "ta"), resize_frame(tb, cfg, "tb"))  # 3 x h x w
    x = normalize(center_crop(d, cfg.crop), cfg)  # 3 x S x S
    return x.unsqueeze(0).contiguous()  # 1 x 3 x S x S


def preprocess_batch(
    ta: ArrayOrTensor, tb: ArrayOrTensor, cfg: PreprocessConfig, crop: bool = True
) -> torch.Tensor:
    """Batched preprocessing of frames already resized to ``cfg.resize_hw``.

    Args:
        ta: uint8 ``N x h x w x 3`` (numpy, e.g. a memory-mapped cache, or torch on any device).
        tb: same shape as ``ta``.
        cfg: the preprocessing parameters.
        crop: centre-crop to ``cfg.crop`` (evaluation); ``False`` keeps the full resized frame.

    Returns:
        ``N x 3 x S x S`` (or ``N x 3 x h x w``) normalised float32.

    """
    a = _as_uint8_tensor(ta, "ta")
    if a.ndim != 4:
        raise FrameError(f"ta: expected N x h x w x 3, got {tuple(a.shape)}")
    if tuple(a.shape[1:3]) != cfg.resize_hw:
        raise FrameError(f"ta: frames are {tuple(a.shape[1:3])}, expected resized to {cfg.resize_hw}")
    d = difference(a, tb)  # N x 3 x h x w
    if crop:
        d = center_crop(d, cfg.crop)  # N x 3 x S x S
    return normalize(d, cfg).contiguous()


def difference_stats(ta: ArrayOrTensor, tb: ArrayOrTensor, cfg: PreprocessConfig) -> tuple[
    tuple[float, float, float], tuple[float, float, float]
]:
    """Per-channel mean and std of the scaled, centre-cropped difference over resized frames.

    Use with :meth:`PreprocessConfig.with_stats` to fill ``mean``/``std`` from training data.
    """
    d = center_crop(difference(ta, tb), cfg.crop) * cfg.scale  # N x 3 x S x S
    if d.ndim == 3:
        d = d.unsqueeze(0)
    flat = d.transpose(0, 1).reshape(3, -1).to(torch.float64)  # 3 x (N S S)
    mean = flat.mean(dim=1)
    std = flat.std(dim=1).clamp_min(1e-6)
    m = mean.tolist()
    s = std.tolist()
    return (m[0], m[1], m[2]), (s[0], s[1], s[2])
