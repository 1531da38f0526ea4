"""Training runs on tiny configs: every method steps, exact resume after a kill (logs too), paper config step.

Two processes under ``torchrun`` (gloo): test_train_distributed.py.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from helpers.tensorboard import read_scalars
from tactile_grasp_predictor.errors import ConfigError
from training.checkpoint import load_checkpoint
from training.config import METHODS, load_config
from training.data.sets import synthetic_set
from training.methods import build_method
from training.train import train

ROOT = Path(__file__).resolve().parents[1]
#: What each method logs per step besides loss, lr and images/s (metrics.csv, TensorBoard).
STEP_STATS = {
    "moco": {"top1", "pos_sim", "neg_sim", "feature_std", "queue_std"},
    "memory_bank": {"top1", "feature_std"},
    "triplet": {"feature_std"},
    "triplet_label": {"feature_std"},
    "autoencoder": set(),
    "supervised": {"batch_accuracy"},
}


pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread (conftest.py)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_and_moves_weights(method: str, tmp_path: Path) -> None:
    cfg = load_config("tiny", [f"method={method}", "epochs=1"])
    data = synthetic_set(48, cfg.resize_hw, seed=1)
    res = train(cfg, data, tmp_path / method, progress=False)
    assert res.epochs_done == 1 and len(res.history) == 1
    assert torch.isfinite(torch.tensor(res.history[0]["loss"]))
    fresh = build_method(cfg, res.preprocess, len(data))
    w_new = res.method.encoder.backbone.conv1.weight
    w_old = fresh.encoder.backbone.conv1.weight
    assert w_new.shape == w_old.shape and not torch.allclose(w_new, w_old)  # trained away from init
    state = load_checkpoint(tmp_path / method / "checkpoint.pt")
    assert state["epoch"] == 1 and state["config"]["method"] == method
    assert (tmp_path / method / "loss.png").stat().st_size > 0
    rows = _rows(tmp_path / method / "metrics.csv")  # 48 trials / batch 16: 3 steps, each with its statistics
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert sum(float(r["loss"]) for r in rows) / 3 == pytest.approx(res.history[0]["loss"], rel=1e-6)
    assert STEP_STATS[method] <= set(rows[0]) and all(r[k] != "" for r in rows for k in STEP_STATS[method])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


RESUME_OVERRIDES = ["epochs=3", "moco_k=32", "checkpoint_minutes=1e-9"]  # also a checkpoint after every step


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory) -> object:
    torch.set_num_threads(1)
    cfg = load_config("tiny", RESUME_OVERRIDES)
    return train(cfg, synthetic_set(64, cfg.resize_hw, seed=2), tmp_path_factory.mktemp("straight"),
                 progress=False)


def _same_run(a: object, b: object) -> None:
    sa, sb = a.method.state_dict(), b.method.state_dict()  # type: ignore[attr-defined]
    assert sa.keys() == sb.keys()
    for key in sa:  # weights, key encoder, queue, pointer, BN statistics: bit for bit
        assert torch.equal(sa[key], sb[key]), key
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]  # type: ignore[attr-defined]


def test_killed_mid_epoch_and_resumed_run_equals_uninterrupted(tmp_path: Path, straight_run: object) -> None:
    # a separate process is SIGKILLed right after the checkpoint written 2 steps into epoch 2
    script = textwrap.dedent(f"""
        import os, signal, torch
        from pathlib import Path
        from training.config import load_config
        from training.data.sets import synthetic_set
        from training.train import train
        torch.set_num_threads(1)
        cfg = load_config("tiny", {RESUME_OVERRIDES!r})
        data = synthetic_set(64, cfg.resize_hw, seed=2)
        def die(epochs_done, step):
            if (epochs_done, step) == (1, 2):
                os.kill(os.getpid(), signal.SIGKILL)
        train(cfg, data, Path({str(tmp_path / "killed")!r}), progress=False, on_checkpoint=die)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=170)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    state = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")
    assert (state["epoch"], state["step_in_epoch"], len(state["epoch_losses"])) == (1, 2, 2)
    assert not list((tmp_path / "killed").glob(".*tmp*"))  # no half-written checkpoint left

    cfg = load_config("tiny", RESUME_OVERRIDES)
    resumed = train(cfg, synthetic_set(64, cfg.resize_hw, seed=2), tmp_path / "killed", progress=False)
    assert resumed.epochs_done == 3
    _same_run(straight_run, resumed)
    # the logs too: the killed process's rows up to its checkpoint, then the resumed ones, each step once
    straight_dir = straight_run.out_dir  # type: ignore[attr-defined]
    want = {int(r["step"]): float(r["loss"]) for r in _rows(straight_dir / "metrics.csv")}
    got = [(int(r["step"]), float(r["loss"])) for r in _rows(tmp_path / "killed" / "metrics.csv")]
    assert [s for s, _ in got] == list(range(1, 13)) and dict(got) == want
    assert len(list((tmp_path / "killed").glob("events.out.tfevents.*"))) == 2
    assert read_scalars(tmp_path / "killed")["train/loss"] == pytest.approx(want, rel=1e-6)


def test_stopped_at_epoch_end_and_resumed_equals_uninterrupted(tmp_path: Path, straight_run: object) -> None:
    cfg = load_config("tiny", RESUME_OVERRIDES)
    data = synthetic_set(64, cfg.resize_hw, seed=2)
    first = train(cfg, data, tmp_path, progress=False, stop_after_epochs=1)
    assert first.epochs_done == 1 and load_checkpoint(tmp_path / "checkpoint.pt")["step_in_epoch"] == 0
    _same_run(straight_run, train(cfg, data, tmp_path, progress=False))


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    cfg = load_config("tiny", ["epochs=1"])
    data = synthetic_set(48, cfg.resize_hw)
    train(cfg, data, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="different config"):
        train(load_config("tiny", ["epochs=1", "lr=0.5"]), data, tmp_path, progress=False)


def test_queue_too_large_for_the_data_is_a_config_error() -> None:
    cfg = load_config("tiny", ["moco_k=64"])
    with pytest.raises(ConfigError, match="moco_k"):
        train(cfg, synthetic_set(64, cfg.resize_hw), None, progress=False)


def test_paper_config_builds_and_runs_one_step_on_cpu() -> None:
    # the paper's model and input (ResNet-50, 256 -> 224, 2-hidden-layer head, tau, m); a tiny N and batch
    cfg = load_config("paper", ["epochs=1", "batch_size=4", "moco_k=8", "split_bn=2"])
    assert cfg.arch == "resnet50" and cfg.crop == 224
    data = synthetic_set(12, cfg.resize_hw, seed=3)
    res = train(cfg, data, None, progress=False, stop_after_epochs=1)
    assert res.method.encoder.feat_dim == 2048
    assert res.method.queue.shape == (128, 8)
    assert res.history and torch.isfinite(torch.tensor(res.history[0]["loss"]))


def test_bf16_autocast_step(tmp_path: Path) -> None:
    cfg = load_config("tiny", ["epochs=1", "bf16=true"])
    res = train(cfg, synthetic_set(48, cfg.resize_hw), tmp_path, progress=False)
    assert torch.isfinite(torch.tensor(res.history[0]["loss"]))
