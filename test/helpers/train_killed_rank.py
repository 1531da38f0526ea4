"""``tgp train`` under ``torchrun`` with two faults a test can place exactly.

    torchrun --nproc_per_node=2 --max-restarts=1 test/helpers/train_killed_rank.py \
        [--kill-rank R --kill-after-epoch E] [--keep E,S,PATH] -- <tgp train options>

``--kill-rank R --kill-after-epoch E``: on the first attempt only, rank R SIGKILLs itself right
after the checkpoint of epoch E (so ``torchrun`` restarts every worker). ``--keep E,S,PATH``:
rank 0 copies the checkpoint written E epochs and S steps in to PATH (a mid-run checkpoint
for resume tests). Run it with the repository root on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path

from training import distributed as D
from training import train


def main() -> int:
    """Parse the fault options, then run ``tgp train`` with a checkpoint hook that places them."""
    argv = sys.argv[1:]
    cut = argv.index("--")
    faults = argparse.ArgumentParser()
    faults.add_argument("--kill-rank", type=int, default=-1)
    faults.add_argument("--kill-after-epoch", type=int, default=-1)
    faults.add_argument("--keep", default="")
    f = faults.parse_args(argv[:cut])
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(argv[cut + 1:])
    args.command_line = ["tgp", "train", *argv[cut + 1:]]
    keep = f.keep.split(",", 2) if f.keep else None

    def hook(epochs_done: int, step: int) -> None:
        if keep and D.rank() == 0 and (epochs_done, step) == (int(keep[0]), int(keep[1])):
            shutil.copyfile(Path(args.out) / "checkpoint.pt", keep[2])
        if (D.rank() == f.kill_rank and epochs_done == f.kill_after_epoch and step == 0
                and D.restart_count() == 0):
            os.kill(os.getpid(), signal.SIGKILL)

    return train.run(args, on_checkpoint=hook)


if __name__ == "__main__":
    raise SystemExit(main())
