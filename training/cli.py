"""``tgp``: the project's command-line tool.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; the module is imported only when its command runs, so
``tgp --help`` stays fast and a command's heavy imports (torch, mujoco, rclpy) cost
nothing to the others. To add a command, add one line to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

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
    return int(module.run(sub.parse_args(args[1:])) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
