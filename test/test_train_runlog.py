"""A run folder as ML engineers expect it: config.yaml, TensorBoard events, metrics.csv, the kNN monitor,
reproduction from config.yaml bit for bit, and sweeps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.tensorboard import read_scalars
from training.checkpoint import load_checkpoint
from training.cli import main as tgp
from training.config import load_config
from training.data.sets import synthetic_set
from training.data.splits import split_fit_val
from training.features import extract_features
from training.run_config import read_run_section, reproduction_notes
from training.sweep import parse_sweep, split_values
from training.train import load_trained

pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread (conftest.py)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoint.pt")["model"]


def test_a_run_folder_is_logged_and_its_config_yaml_reproduces_the_weights(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = ["train", "--synthetic", "64", "--config", "tiny", "--out", str(run), "--set", "epochs=2",
            "--set", "knn_every=1", "--no-progress"]
    assert tgp(argv) == 0
    console = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in console if line.startswith("moco epoch")]
    assert len(epoch_lines) == 2 and all(" kNN " in line and "img/s" in line for line in epoch_lines)

    # config.yaml: the resolved config the checkpoint holds, num_threads explicit, and how the run started
    saved = load_checkpoint(run / "checkpoint.pt")
    assert load_config(str(run / "config.yaml")).to_dict() == saved["config"]
    assert saved["config"]["num_threads"] == torch.get_num_threads() == 1
    section = read_run_section(str(run / "config.yaml"))
    assert section["command"] == "tgp " + " ".join(argv)
    assert (section["synthetic"], section["trials"], section["world_size"]) == (64, 64, 1)

    # per step: 64 trials / batch 16 = 4 steps per epoch; the CSV and the TensorBoard events agree
    rows = _rows(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    assert [int(r["epoch"]) for r in rows] == [1] * 4 + [2] * 4
    stats = {"loss", "lr", "images_per_s", "top1", "pos_sim", "neg_sim", "feature_std", "queue_std"}
    assert stats <= rows[0].keys()
    scalars = read_scalars(run)
    assert scalars["train/loss"] == pytest.approx({int(r["step"]): float(r["loss"]) for r in rows}, rel=1e-6)
    assert scalars["train/lr"][1] == pytest.approx(0.05)  # the tiny config's lr, no warm-up
    history = json.loads((run / "history.json").read_text())
    assert scalars["epoch/loss"] == pytest.approx({4: history[0]["loss"], 8: history[1]["loss"]})

    # the kNN monitor: every epoch, in knn.csv, TensorBoard, history and loss.png; it is what a kNN
    # probe (scikit-learn's) on the final encoder's features scores on the held-out labels
    knn = _rows(run / "knn.csv")
    assert [(r["epoch"], r["step"]) for r in knn] == [("1", "4"), ("2", "8")]
    assert sorted(scalars["knn/accuracy"]) == [4, 8]
    assert history[-1]["knn_accuracy"] == pytest.approx(float(knn[-1]["accuracy"]))
    from sklearn.neighbors import KNeighborsClassifier

    trained, data = load_trained(run), synthetic_set(64, (40, 48), seed=0)
    x = extract_features(trained.method.encoder, data, trained.preprocess)
    fit, held = split_fit_val(np.asarray(data.labels), 0.2, 0)
    sk = KNeighborsClassifier(n_neighbors=int(knn[-1]["k"]), metric="cosine").fit(x[fit], data.labels[fit])
    assert abs(sk.score(x[held], data.labels[held]) - float(knn[-1]["accuracy"])) <= 1 / len(held) + 1e-9
    assert (run / "loss.png").stat().st_size > 0

    # tgp train --config RUN/config.yaml: the trials come from its run section; without the monitor
    # (which must not change training) the weights are the same, bit for bit
    again = tmp_path / "again"
    assert tgp(["train", "--config", str(run / "config.yaml"), "--out", str(again), "--set", "knn_every=0",
                "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"data: --synthetic 64 (the run section of {run / 'config.yaml'})" in out
    assert "not a reproduction" not in out and not (again / "knn.csv").exists()
    first, second = _weights(run), _weights(again)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)

    # other trials or another process count are said to be no reproduction
    notes = reproduction_notes(section, synthetic_set(48, (40, 48), seed=0), 2)
    assert len(notes) == 2 and "trials differ" in notes[0] and "2 process(es)" in notes[1]


def test_a_sweep_trains_a_grid_into_sibling_folders_and_tabulates_it(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert tgp(["train", "--synthetic", "48", "--config", "tiny", "--out", str(out), "--set", "epochs=1",
                "--sweep", "lr=0.02,0.05", "--sweep", "resize_hw=[40,48]", "--no-progress"]) == 0
    names = ["lr=0.02,resize_hw=40-48", "lr=0.05,resize_hw=40-48"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == names
    table = _rows(out / "sweep.csv")
    assert [r["run"] for r in table] == names and [r["lr"] for r in table] == ["0.02", "0.05"]
    for name, row in zip(names, table, strict=True):
        member = load_checkpoint(out / name / "checkpoint.pt")
        assert member["config"]["lr"] == float(row["lr"]) and member["config"]["resize_hw"] == [40, 48]
        assert float(row["final_loss"]) == pytest.approx(member["history"][-1]["loss"], rel=1e-5)
        assert (out / name / "config.yaml").is_file()
    assert "| lr=0.02,resize_hw=40-48 | 0.02 | [40,48] | 1 |" in (out / "sweep.md").read_text()
    assert (out / "sweep.png").stat().st_size > 0


@pytest.mark.parametrize(("item", "message"), [
    ("nope=1,2", "'nope' is not a config field"),
    ("lr=0.1,", "no empty value"),
    ("lr=0.1,-1", "lr: must be > 0"),
])
def test_a_bad_sweep_is_refused_before_any_run(item: str, message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert tgp(["train", "--synthetic", "48", "--config", "tiny", "--out", str(tmp_path / "s"),
                "--sweep", item]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_sweep_values_split_at_top_level_commas() -> None:
    assert split_values("0.1,[1,2],{a: 1, b: 2}, x") == ["0.1", "[1,2]", "{a: 1, b: 2}", "x"]
    assert parse_sweep(["crop=24,32", "lr=0.1"]) == [("crop", ["24", "32"]), ("lr", ["0.1"])]
