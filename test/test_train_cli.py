"""``tgp``: one error path for every subcommand (stderr, exit 2, no traceback) and the shared data options."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tactile_grasp_predictor.errors import BagError
from training.cli import add_run_arguments, load_data, run_subcommand
from training.cli import main as tgp
from training.config import load_config


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--out", "{tmp}/run"], "tgp train: error: give --data DIR or --synthetic N"),
    (["probe", "--run", "{tmp}/none", "--synthetic", "9"],
     "tgp probe: error: {tmp}/none/checkpoint.pt: no checkpoint"),
    (["export", "--run", "{tmp}/none", "--out", "{tmp}/b", "--threshold-rule", "recall>=0.5"],
     "tgp export: error: threshold rule 'recall>=0.5'"),
    (["table1", "--synthetic", "9", "--methods", "moco,nope", "--out", "{tmp}/t"],
     "tgp table1: error: --methods: unknown ['nope']"),
    (["score", "--bundle", "{tmp}/none", "--data", "{tmp}"], "tgp score: error: {tmp}/none"),
    (["demo", "--size", "big", "--out", "{tmp}/demo"], "tgp demo: error: --size 'big': expected WxH"),
])
def test_a_subcommand_error_is_one_line_on_stderr_and_exit_2(
        argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tgp([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(message.replace("{tmp}", str(tmp_path))), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "error" not in out


def test_run_subcommand_passes_exit_codes_and_lets_other_exceptions_through(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace()
    assert run_subcommand("x", lambda a: None, args) == 0
    assert run_subcommand("x", lambda a: 3, args) == 3

    def refuse(a: argparse.Namespace) -> int:
        raise BagError("bag.mcap: no such topic")

    assert run_subcommand("bag", refuse, args) == 2
    assert capsys.readouterr().err == "tgp bag: error: bag.mcap: no such topic\n"

    def bug(a: argparse.Namespace) -> int:
        raise KeyError("a bug, not a user error")

    with pytest.raises(KeyError):  # programming errors keep their traceback
        run_subcommand("x", bug, args)


def test_synthetic_option_gives_the_same_split_to_every_command() -> None:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--no-progress", action="store_true")
    cfg = load_config("tiny")
    train_set, test_set, info = load_data(parser.parse_args(["--run", "r", "--synthetic", "31"]), cfg)
    assert (len(train_set), len(test_set)) == (20, 11)
    assert info == {"kind": "synthetic", "seed": cfg.seed, "n_train": 20, "n_test": 11}
    assert train_set.sources[-1] == "synthetic:i19" and test_set.sources[0] == "synthetic:i20"
    assert train_set.before.shape[1:3] == tuple(cfg.resize_hw)
