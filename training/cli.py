"""``tgp``: the project's command-line tool.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; the module is imported only when its command runs, so
``tgp --help`` stays fast and a command's heavy imports (torch, mujoco, rclpy) cost
nothing to the others. To add a command, add one line to :data:`COMMANDS`.

Errors: a subcommand raises :class:`~tactile_grasp_predictor.errors.TgpError` (a bad
config, a missing file, ...) and :func:`run_subcommand`, the one place that catches it,
prints ``tgp <command>: error: <message>`` on stderr and exits 2, never with a traceback.

The options several subcommands share live here too: :func:`add_common_arguments`
(config, overrides, cache, device, progress), :func:`add_run_arguments` (a ``tgp train``
run to continue), :func:`add_data_arguments` (``--data`` or ``--synthetic``), and
:func:`load_data`, which turns the last into (train, test, info).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tactile_grasp_predictor.errors import ConfigError, TgpError

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.data.sets import TactileSet

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("training.doctor", "check the environment: torch, rclpy, the interfaces, the RMW"),
    "simulate": ("training.sim.cli", "simulate grasp trials and write shards in the Calandra layout"),
    "train": ("training.train", "train an encoder without labels (MoCo v2 or a baseline)"),
    "probe": ("training.probe_fit", "fit KNN / SVM / MLP probes on frozen features"),
    "table1": ("training.table1", "train every method, fit every probe, write the Table I report"),
    "export": ("training.export", "export a trained encoder + probe as a model bundle"),
    "score": ("training.score", "run an exported bundle on the trials of a directory of shards"),
    "bag": ("training.bag_cli", "record, evaluate and play rosbag2 grasp recordings"),
    "harvest": ("training.harvest", "shards of the Ta/Tb the node picks from bags or simulated streams"),
    "demo": ("training.demo", "simulate, train, then run the node live on a simulated robot"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tgp",
        description="tactile_grasp_predictor: simulate, train, evaluate and replay tactile grasp gating.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``train``, ``probe``, ``table1`` and ``export``."""
    parser.add_argument("--config", default="cpu", help="named config (paper, cpu, tiny) or a YAML path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (repeatable), e.g. --set epochs=10")
    parser.add_argument("--cache", type=Path, default=None, help="cache directory (default DATA/.cache)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_data_arguments(parser: argparse.ArgumentParser,
                       data_help: str = "directory of .h5 shards (Calandra layout)",
                       synthetic_help: str = "N synthetic trials instead") -> None:
    """Add ``--data DIR`` or ``--synthetic N``: where a command's trials come from (:func:`load_data`)."""
    parser.add_argument("--data", type=Path, help=data_help)
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help=synthetic_help)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that continue a ``tgp train`` run (``probe``, ``export``)."""
    parser.add_argument("--run", type=Path, required=True, help="run directory of tgp train")
    add_data_arguments(parser, data_help="directory of .h5 shards (same split as training)")


def load_data(args: argparse.Namespace, cfg: TrainConfig) -> tuple[TactileSet, TactileSet, dict[str, Any]]:
    """(train, test, info) of ``--synthetic N`` (split 2/3 : 1/3) or ``--data DIR`` (``cfg.split``, cached).

    Raises ConfigError when neither is given.
    """
    from training.data.sets import load_splits, synthetic_split

    if args.synthetic:
        return synthetic_split(args.synthetic, cfg.resize_hw, seed=cfg.seed)
    if args.data:
        return load_splits(args.data, cfg, args.cache, progress=not args.no_progress)
    raise ConfigError("give --data DIR or --synthetic N")


def run_subcommand(name: str, run: Callable[[argparse.Namespace], int | None],
                   args: argparse.Namespace) -> int:
    """Run ``tgp name``: its exit code, or 2 with ``tgp name: error: ...`` on stderr on a TgpError."""
    try:
        return int(run(args) or 0)
    except TgpError as exc:
        print(f"tgp {name}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tgp`` with ``argv`` (default: the process arguments); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        parser = _parser()
        if not args:
            parser.print_help()
            return 0
        parser.parse_args(args)  # prints help or a usage error and exits
        return 2
    name = args[0]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"tgp {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    parsed = sub.parse_args(args[1:])
    parsed.command_line = ["tgp", *args]  # as typed (a run's config.yaml records it)
    return run_subcommand(name, module.run, parsed)


if __name__ == "__main__":
    raise SystemExit(main())
