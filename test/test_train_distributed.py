"""Two CPU processes under ``torchrun`` (gloo) on real shards: one model, the cache built once behind a
barrier from a cold start, a killed rank restarted by torchrun and resumed to the same weights, and a
two-process checkpoint resumed on one process with what it rescaled said."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.shards import write_synthetic_shards
from training.checkpoint import load_checkpoint
from training.config import load_config
from training.data.sets import load_splits
from training.run_config import read_run_section
from training.tempfiles import host_name
from training.train import cosine_factor, train

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "test" / "helpers" / "train_killed_rank.py"
CKPT = "checkpoint.pt"
# 144 trials: paper split 96 train / 48 test; 96 / (16 x 2 processes) = 3 steps per epoch
OVERRIDES = ["epochs=3", "moco_k=64"]
COMMON = ["--config", "tiny", "--set", OVERRIDES[0], "--set", OVERRIDES[1], "--device", "cpu",
          "--no-progress"]

pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread (conftest.py)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("shards")
    write_synthetic_shards(directory, 144)
    return directory


def _torchrun(faults: list[str], train_args: list[str], restarts: int = 0) -> str:
    """Run the helper under torchrun with two processes; its stdout (the run must succeed)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           f"--max-restarts={restarts}", str(HELPER), *faults, "--", *train_args, *COMMON]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    return proc.stdout


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def reference(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An uninterrupted two-process run (a checkpoint after every step); the one 2 steps into epoch 2 kept."""
    tmp = tmp_path_factory.mktemp("reference")
    run, mid = tmp / "run", tmp / "mid.pt"
    _torchrun(["--keep", f"1,2,{mid}"],
              ["--data", str(shards), "--cache", str(tmp / "cache"), "--out", str(run),
               "--set", "checkpoint_minutes=1e-9"])
    return run, mid


def test_two_processes_train_one_model(reference: tuple[Path, Path]) -> None:
    run, _mid = reference
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["world_size"] == 2 and state["rng_torch"].shape[0] == 2 and state["epoch"] == 3
    # 3 epochs x 3 steps, each enqueues the 32 keys gathered from both processes: pointer 288 % 64 = 32
    assert int(state["model"]["queue_ptr"]) == 32
    assert [int(r["step"]) for r in _rows(run / "metrics.csv")] == list(range(1, 10))
    assert read_run_section(str(run / "config.yaml"))["world_size"] == 2


def test_a_killed_rank_is_restarted_and_resumes_to_the_same_weights_from_a_cold_cache(
        shards: Path, reference: tuple[Path, Path], tmp_path: Path) -> None:
    run, cache = tmp_path / "run", tmp_path / "cache"
    out = _torchrun(["--kill-rank", "1", "--kill-after-epoch", "2"],
                    ["--data", str(shards), "--cache", str(cache), "--out", str(run)], restarts=1)
    # the cold cache: rank 0 builds it while rank 1 waits, then finds it; after the restart both find it
    host = host_name()
    assert out.count("cache built") == 1 and f"rank 0/2 (local 0) on {host}: cache built" in out
    assert out.count(f"rank 1/2 (local 1) on {host}: cache found") == 2
    assert out.count(f"rank 0/2 (local 0) on {host}: cache found") == 1
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["tactile", "tactile"]  # no temp dirs
    # torchrun restarted both workers; they resumed from the last whole checkpoint (epoch 1 or 2 done)
    assert "resumed" in (run / "train.log").read_text()
    ref, got = load_checkpoint(reference[0] / "checkpoint.pt")["model"], load_checkpoint(run / CKPT)
    assert got["epoch"] == 3 and all(torch.equal(ref[k], got["model"][k]) for k in ref)
    want = [(r["step"], r["loss"]) for r in _rows(reference[0] / "metrics.csv")]
    assert [(r["step"], r["loss"]) for r in _rows(run / "metrics.csv")] == want  # each step once, same losses
    assert not list(run.glob(".*tmp*"))


def test_a_two_process_checkpoint_resumes_on_one_process_and_says_what_it_rescaled(
        shards: Path, reference: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run, mid = tmp_path / "run", reference[1]
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(mid.read_bytes())  # 2 processes, 1 epoch + 2 of 3 steps done
    cfg = load_config("tiny", [*OVERRIDES, "num_threads=1"])
    data, _test, _info = load_splits(shards, cfg, reference[0].parent / "cache", progress=False)
    res = train(cfg, data, run, progress=False)
    out = capsys.readouterr().out
    # one process: global batch 32 -> 16, 6 steps per epoch; 2 x 32 samples done = 4 new steps into epoch 2
    assert "checkpoint of 2 process(es) resumed on 1: global batch 32 -> 16" in out
    assert "epoch 2 step 2 -> 4, LR schedule step 5 -> 10 of 18" in out
    assert "no longer bit-identical" in out and "MoCo queue pointer" in out
    rows = _rows(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(11, 19))  # steps 11..18 of the rescaled schedule
    lr_at_10 = cfg.lr * cosine_factor(10, 18, 0, cfg.lr, cfg.lr_min)  # the first step after the resume
    assert float(rows[0]["lr"]) == pytest.approx(lr_at_10, rel=1e-6)
    state = load_checkpoint(run / "checkpoint.pt")
    assert res.epochs_done == 3 and state["world_size"] == 1 and int(state["model"]["queue_ptr"]) % 16 == 0
