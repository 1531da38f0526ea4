"""Synthetic trials written as real Calandra-layout shards (for ``tgp`` commands on shards)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tactile_grasp_predictor.data.calandra import CalandraShard, Trial
from tactile_grasp_predictor.data.trial_streams import TrialStreams
from training.data.sets import synthetic_set
from training.data.shard_writer import write_shard


def write_synthetic_shards(directory: Path, n: int, hw: tuple[int, int] = (48, 64), seed: int = 3, *,
                           first: int | None = None, finger_b: Literal["same", "swapped"] = "same",
                           compression_level: int = 9) -> list[dict[str, object]]:
    """Write ``n`` trials of ``synthetic_set`` (a learnable label) as shards ``a.h5`` and ``b.h5``.

    ``first``: how many trials go into ``a.h5`` (default half). Finger A's images are
    (before, during, during); finger B's the ``"same"`` or ``"swapped"`` (during, before,
    before). Returns the trials as written.
    """
    s = synthetic_set(n, hw, seed=seed)
    trials: list[dict[str, object]] = []
    for i in range(n):
        b0, b1 = (s.before[i], s.during[i]) if finger_b == "same" else (s.during[i], s.before[i])
        trials.append({
            "object_name": s.objects[i].encode(), "is_gripping": int(s.labels[i]),
            "gelsightA_before": s.before[i], "gelsightA_during": s.during[i], "gelsightA_after": s.during[i],
            "gelsightB_before": b0, "gelsightB_during": b1, "gelsightB_after": b1,
        })
    split = n // 2 if first is None else first
    directory.mkdir(parents=True, exist_ok=True)
    write_shard(directory / "a.h5", trials[:split], compression_level=compression_level)
    write_shard(directory / "b.h5", trials[split:], compression_level=compression_level)
    return trials


def write_stream_shards(directory: Path, recordings: Sequence[TrialStreams], name: str = "s.h5") -> Path:
    """Write ``recordings`` as ``tgp simulate --streams`` would: key frames plus the ``sim_*`` streams.

    Object names are ``thing_<k>``; ``gelsightA_before/during`` the first and last frames.
    """
    trials = [{"object_name": f"thing_{k}".encode(), "is_gripping": int(bool(tr.label)),
               "gelsightA_before": tr.frames_left[0], "gelsightA_during": tr.frames_left[-1],
               "sim_gripper_time": tr.gripper_t, "sim_gripper_width": tr.gripper_w, "sim_t_lift": tr.t_lift,
               "sim_gelsightA_stream": tr.frames_left, "sim_gelsightA_stream_time": tr.frame_t}
              for k, tr in enumerate(recordings)]
    directory.mkdir(parents=True, exist_ok=True)
    return write_shard(directory / name, trials, compression_level=1)


def read_shard_dir(directory: Path, keys: Sequence[str] = ("gelsightA_before", "gelsightA_during")
                   ) -> list[Trial]:
    """Every trial of ``directory``'s ``*.h5`` shards (file order, then trial order) with ``keys``."""
    trials = []
    for f in sorted(directory.glob("*.h5")):
        with CalandraShard(f) as shard:
            trials += [shard.read(i, keys=keys) for i in shard.trial_indices()]
    return trials
