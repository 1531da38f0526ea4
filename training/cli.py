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
