"""``config.yaml``: the resolved configuration of a run, written in its folder when it starts.

    tgp train --config runs/moco/config.yaml --out runs/moco-again     # the same weights, bit for bit

The file is an ordinary config (every field of :class:`~training.config.TrainConfig` after the
named config, defaults and ``--set`` overrides were applied, ``num_threads`` made explicit)
plus a ``run`` section that the config loader skips: the command line, where the trials came
from (``data`` / ``synthetic`` / ``cache``, used by ``tgp train --config`` when neither
``--data`` nor ``--synthetic`` is given), how many there were and a digest of them, the
number of processes, the device, host, start time and versions. Bit-for-bit reproduction
holds for the same trials, process count, device kind and library versions (torch's CPU
kernels depend on the instruction set, recorded as ``cpu_capability``); the reader checks the
trials and the process count and says when they differ.
"""

from __future__ import annotations

import datetime
import hashlib
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tactile_grasp_predictor.errors import ConfigError
from training.config import RUN_SECTION, TrainConfig, resolve_config_path
from training.data.sets import TactileSet
from training.tempfiles import host_name, temp_sibling

CONFIG_NAME = "config.yaml"
_DIGEST_FRAMES = 64  # frames of each side hashed into the data digest (evenly spaced)


def data_digest(data: TactileSet) -> str:
    """Return a short digest of the trials: sources, labels and up to 64 evenly spaced Ta/Tb frames."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(np.asarray(data.labels, dtype=np.int64)).tobytes())
    h.update("\n".join(data.sources).encode())
    step = max(1, len(data) // _DIGEST_FRAMES)
    for frames in (data.before, data.during):
        h.update(np.ascontiguousarray(frames[::step]).tobytes())
    return h.hexdigest()[:16]


def command_line(argv: Sequence[str] | None = None) -> str:
    """Return the command as a user would type it again (``tgp ...`` also for ``-m training.cli``)."""
    args = list(sys.argv if argv is None else argv)
    if args and Path(args[0]).name in ("tgp", "cli.py"):
        args[0] = "tgp"
    return shlex.join(args)


def run_section(data: TactileSet, *, source: dict[str, Any] | None, world_size: int, device: str,
                argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Describe a run's start for ``config.yaml``: everything but the config itself (see the module)."""
    import torch

    src = source or {}
    return {
        "command": command_line(argv),
        "data": src.get("data"),
        "synthetic": int(src.get("synthetic") or 0),
        "cache": src.get("cache"),
        "trials": len(data),
        "data_digest": data_digest(data),
        "world_size": world_size,
        "device": device,
        "host": host_name(),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
    }


def write_run_config(out_dir: Path, cfg: TrainConfig, run: dict[str, Any]) -> Path:
    """Write ``out_dir/config.yaml`` (atomically): the resolved ``cfg`` and the ``run`` section."""
    path = out_dir / CONFIG_NAME
    head = (
        "# tgp train: the resolved configuration of this run, written when it started.\n"
        f"# Same weights, bit for bit: tgp train --config {path} --out NEW_DIR\n"
        "# (the trials come from the run section below unless --data or --synthetic is given)\n"
    )
    body = yaml.safe_dump({**cfg.to_dict(), RUN_SECTION: run}, sort_keys=False, width=110)
    tmp = temp_sibling(path)
    tmp.write_text(head + body)
    tmp.replace(path)
    return path


def read_run_section(name_or_path: str) -> dict[str, Any]:
    """Return the ``run`` section of a config file (empty for a named config or a file without one)."""
    path = resolve_config_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    run = data.get(RUN_SECTION) if isinstance(data, dict) else None
    if run is None:
        return {}
    if not isinstance(run, dict):
        raise ConfigError(f"{path}: {RUN_SECTION}: expected a mapping")
    return run


def reproduction_notes(run: dict[str, Any], data: TactileSet, world_size: int) -> list[str]:
    """Say how a run started from a ``config.yaml`` differs from the recorded one (empty: it does not)."""
    notes = []
    digest = run.get("data_digest")
    if digest is not None and digest != data_digest(data):
        notes.append(f"the trials differ from the recorded run's ({len(data)} trials, digest "
                     f"{data_digest(data)}; recorded {run.get('trials')}, {digest})")
    recorded_world = run.get("world_size")
    if recorded_world is not None and int(recorded_world) != world_size:
        notes.append(f"{world_size} process(es) instead of the recorded {recorded_world} "
                     "(the global batch and the data order per process differ)")
    return notes
