"""The representation-learning methods of Table I, one module each, built by name."""

from __future__ import annotations

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.preprocess import PreprocessConfig
from training.config import TrainConfig
from training.methods.autoencoder import AutoEncoder
from training.methods.common import Method
from training.methods.memory_bank import MemoryBank
from training.methods.moco import MoCo
from training.methods.supervised import Supervised
from training.methods.triplet import Triplet

__all__ = ["AutoEncoder", "MemoryBank", "Method", "MoCo", "Supervised", "Triplet", "build_method"]


def build_method(cfg: TrainConfig, preprocess: PreprocessConfig, n_train: int | None) -> Method:
    """Build the method ``cfg.method`` names, for a training set of ``n_train`` samples.

    ``n_train=None`` skips the MoCo queue-size check (rebuilding a trained model).
    """
    if cfg.method == "moco":
        return MoCo(cfg, preprocess, n_train)
    if cfg.method == "memory_bank":
        if n_train is None:
            raise ConfigError("memory_bank: the bank size (n_train) is required")
        return MemoryBank(cfg, preprocess, n_train)
    if cfg.method == "triplet":
        return Triplet(cfg, preprocess, use_labels=False)
    if cfg.method == "triplet_label":
        return Triplet(cfg, preprocess, use_labels=True)
    if cfg.method == "autoencoder":
        return AutoEncoder(cfg, preprocess)
    if cfg.method == "supervised":
        return Supervised(cfg, preprocess)
    raise ConfigError(f"method: unknown {cfg.method!r}")
