"""Pure losses against hand computations; config rules; augmentation shapes and ranges."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tactile_grasp_predictor.errors import ConfigError
from training.augment import DiffAugment, blur_kernel_size
from training.config import check_queue, load_config
from training.methods.autoencoder import Decoder, reconstruction_loss
from training.methods.memory_bank import bank_update, instance_softmax_loss
from training.methods.moco import info_nce_logits, info_nce_loss
from training.methods.triplet import label_triplets, triplet_loss
from training.train import cosine_factor


def test_info_nce_matches_hand_computation() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    queue = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # C x K: keys (1,0), (0,1), (-1,0)
    tau = 0.5
    logits = info_nce_logits(q, k, queue, tau)
    assert torch.allclose(logits, torch.tensor([[0.6, 1.0, 0.0, -1.0], [1.0, 0.0, 1.0, 0.0]]) / tau)
    # row 0: -log(e^{1.2} / (e^{1.2} + e^{2} + e^{0} + e^{-2})); row 1: -log(e^2 / (e^2 + 1 + e^2 + 1))
    r0 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(2.0) + 1.0 + math.exp(-2.0)))
    r1 = -math.log(math.exp(2.0) / (2 * math.exp(2.0) + 2.0))
    assert info_nce_loss(q, k, queue, tau).item() == pytest.approx((r0 + r1) / 2, rel=1e-6)


def test_instance_softmax_and_bank_update_by_hand() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    f = torch.tensor([[0.0, 1.0]])
    loss = instance_softmax_loss(f, bank, torch.tensor([1]), tau=1.0)
    expected = -math.log(math.e / (1.0 + math.e + 1.0))  # logits (0, 1, 0), target 1
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    bank_update(bank, torch.tensor([0]), f, momentum=0.5)
    s = 1 / math.sqrt(2)
    assert torch.allclose(bank[0], torch.tensor([s, s]))  # normalize(0.5 (1,0) + 0.5 (0,1))
    assert torch.equal(bank[1], torch.tensor([0.0, 1.0]))  # untouched rows


def test_triplet_loss_by_hand_and_label_mining() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    n = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    # row 0: max(0, sqrt2 - 0 + 0.3); row 1: max(0, 0 - 2 + 0.3) = 0
    assert triplet_loss(a, p, n, 0.3).item() == pytest.approx((math.sqrt(2) + 0.3) / 2, rel=1e-6)
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    anc, pos, neg = label_triplets(labels)
    assert anc.numel() == 6
    assert torch.all(labels[anc] == labels[pos]) and torch.all(anc != pos)
    assert torch.all(labels[anc] != labels[neg])
    anc, _, _ = label_triplets(torch.tensor([1, 1, 1]))  # no negatives: no triplets
    assert anc.numel() == 0


def test_reconstruction_loss_and_decoder_shapes() -> None:
    x = torch.zeros(2, 3, 4, 4)
    assert reconstruction_loss(x + 2.0, x).item() == pytest.approx(4.0)
    for size in (32, 96, 40):
        assert Decoder(8, size)(torch.zeros(2, 8)).shape == (2, 3, size, size)


def test_queue_rules_give_clear_errors() -> None:
    check_queue(5800, 200, 6000)  # the paper's numbers are legal
    with pytest.raises(ConfigError, match="multiple of the global batch"):
        check_queue(100, 64, 1000)
    with pytest.raises(ConfigError, match="N - B"):
        check_queue(5800, 200, 5900)
    with pytest.raises(ConfigError, match="global batch size 128"):
        check_queue(192, 64, 10_000, world_size=2)


def test_config_overrides_and_errors() -> None:
    cfg = load_config("tiny", ["epochs=5", "resize_hw=[48,64]", "bf16=true", "method=memory_bank"])
    assert (cfg.epochs, cfg.resize_hw, cfg.bf16, cfg.method) == (5, (48, 64), True, "memory_bank")
    paper = load_config("paper")
    assert (paper.arch, paper.crop, paper.resize_hw, paper.batch_size, paper.moco_k) == (
        "resnet50", 224, (256, 256), 200, 5800)
    assert (paper.moco_m, paper.temperature, paper.lr, paper.lr_min, paper.epochs) == (
        0.999, 0.07, 0.01, 1e-6, 200)
    with pytest.raises(ConfigError, match="unknown config field"):
        load_config("tiny", ["nope=1"])
    with pytest.raises(ConfigError, match="epochs"):
        load_config("tiny", ["epochs=abc"])
    with pytest.raises(ConfigError, match="method"):
        load_config("tiny", ["method=simclr"])
    with pytest.raises(ConfigError, match="no such file"):
        load_config("does-not-exist")
    with pytest.raises(ConfigError, match="key=value"):
        load_config("tiny", ["epochs"])


def test_cosine_schedule_end_points() -> None:
    assert cosine_factor(0, 100, 0, 0.01, 1e-6) == pytest.approx(1.0)
    assert cosine_factor(100, 100, 0, 0.01, 1e-6) * 0.01 == pytest.approx(1e-6)
    assert cosine_factor(50, 100, 0, 0.01, 1e-6) * 0.01 == pytest.approx((0.01 + 1e-6) / 2)
    assert cosine_factor(0, 100, 10, 0.01, 1e-6) == pytest.approx(0.1)


def test_augment_per_sample_views() -> None:
    torch.manual_seed(0)
    aug = DiffAugment(crop=32)
    d = torch.rand(8, 3, 40, 48) * 2 - 1
    v1, v2 = aug(d), aug(d)
    assert v1.shape == (8, 3, 32, 32) and v1.min() >= -1 and v1.max() <= 1
    assert not torch.allclose(v1, v2)  # random views differ
    # per-sample: samples of one batch draw different crops (not one crop for all)
    same = torch.stack([d[0]] * 8)
    v = aug(same)
    assert not torch.allclose(v[0], v[1])
    assert blur_kernel_size(224) == 23 and blur_kernel_size(32) == 3


def test_moco_enqueue_and_momentum() -> None:
    from tactile_grasp_predictor.preprocess import PreprocessConfig
    from training.methods.moco import MoCo

    torch.set_num_threads(1)
    cfg = load_config("tiny")
    moco = MoCo(cfg, PreprocessConfig(resize_hw=cfg.resize_hw, crop=cfg.crop), n_train=64)
    keys = F.normalize(torch.randn(16, cfg.proj_dim), dim=1)
    moco.enqueue(keys)
    assert torch.equal(moco.queue[:, :16], keys.T) and int(moco.queue_ptr) == 16
    moco.enqueue(keys)
    assert int(moco.queue_ptr) == 0  # wraps at K = 32
    with torch.no_grad():
        for p in moco.encoder.parameters():
            p.add_(1.0)
    before = next(moco.encoder_k.parameters()).clone()
    moco.momentum_update()
    after = next(moco.encoder_k.parameters())
    assert torch.allclose(after, before + (1 - cfg.moco_m) * 1.0, atol=1e-6)
    assert "queue" in moco.state_dict() and "queue_ptr" in moco.state_dict()


def test_auto_gain_maps_the_difference_range_to_one() -> None:
    import numpy as np

    from training.data.sets import TactileSet
    from training.train import preprocess_for

    cfg = load_config("tiny")
    before = np.full((8, 40, 48, 3), 100, np.uint8)
    during = before.copy()
    during[:, 10:30, 10:40] += 10  # |Tb - Ta| = 10/255 on the contact, 0 elsewhere
    data = TactileSet(before, during, np.array([0, 1] * 4))
    pp = preprocess_for(cfg, data)
    assert pp.scale == pytest.approx(25.5, rel=1e-3)  # 99.9th percentile 10/255 -> 1
    fixed = preprocess_for(load_config("tiny", ["diff_scale=2.0"]), data)
    assert fixed.scale == 2.0
    # normalisation statistics of the scaled difference: mean of (scaled) d over the crop
    crop_frac = (20 * 30) / (32 * 32)  # contact patch inside the 32 x 32 centre crop (rows 4-36, cols 8-40)
    assert pp.mean[0] == pytest.approx(25.5 * 10 / 255 * crop_frac, rel=1e-3)
