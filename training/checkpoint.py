"""Atomic checkpoints and exact resume, nothing pickled beyond ``weights_only`` tensors.

A checkpoint holds everything a run needs to continue bit for bit: the method's state
(model, key encoder, queue + pointer, memory bank), optimiser, LR schedule, torch RNG
state of every process, the data-order generator, the epoch (and the step inside it), the
config and the preprocessing: a :class:`TrainState`, saved by :func:`write_checkpoint` and
restored by :func:`resume_checkpoint`. It is written to a temporary file in the same
directory, flushed, then renamed over the old one, so a kill at any moment leaves either the
old or the new checkpoint, never half of one. Loading uses ``torch.load(weights_only=True)``.

Resuming with another number of processes (``torchrun`` restarted on fewer or more GPUs)
keeps the model, optimiser and data order, and rescales what depends on the global batch:
the position in the epoch and in the LR schedule (counted in samples), the MoCo queue
pointer (aligned to the new global batch), and the random streams (processes the checkpoint
had keep theirs, new ones are seeded). It says so; such a run is no longer bit-identical to
one without the change.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.preprocess import PreprocessConfig
from training import distributed as D
from training.config import RESUMABLE_FIELDS, TrainConfig
from training.methods import Method
from training.tempfiles import temp_sibling

log = logging.getLogger("tgp.train")

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically to ``path`` (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    with tmp.open("wb") as fh:
        torch.save({"format_version": FORMAT_VERSION, **state}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu",
                    data: bytes | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no unpickling of arbitrary objects).

    ``data``: the file's bytes, already read (rank 0's, broadcast); ``path`` then only names it.
    """
    path = Path(path)
    if data is None and not path.is_file():
        raise ConfigError(f"{path}: no checkpoint there")
    try:
        source: Any = path if data is None else io.BytesIO(data)
        state = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated / foreign file
        raise ConfigError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: not a checkpoint of format version {FORMAT_VERSION}")
    return state


@dataclass
class TrainState:
    """What a checkpoint saves and restores: the method and its optimiser, schedule, data order, history.

    ``pp`` is the preprocessing (its statistics come from the checkpoint on resume);
    ``steps_per_epoch`` and ``n_train`` are this run's (a resume on another number of
    processes rescales the saved position to them).
    """

    cfg: TrainConfig
    ctx: D.DistContext
    method: Method
    pp: PreprocessConfig
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    order: torch.Generator  # draws each epoch's permutation
    steps_per_epoch: int
    n_train: int
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Resumed:
    """Where a resumed run continues: epochs done, the step inside the next epoch, its losses so far."""

    epoch: int
    step_in_epoch: int
    epoch_losses: list[float]
    notes: list[str]  # what the resume changed (another process count or thread count); empty if nothing
    steps_logged: int = 0  # optimiser steps before the checkpoint, counted as the run that wrote it did


def write_checkpoint(path: Path, state: TrainState, epochs_done: int, step_in_epoch: int,
                     order_state: torch.Tensor, epoch_losses: list[float]) -> None:
    """Save ``state`` atomically into ``path`` (rank 0 writes, with ``history.json`` beside it).

    Every process contributes its torch (and CUDA) RNG state. ``order_state`` is the data-order
    generator's state before the permutation of the epoch ``step_in_epoch`` steps into which the
    run stands (0: at an epoch boundary); ``epoch_losses`` are that epoch's losses so far.
    """
    ctx = state.ctx
    rng = D.concat_all_gather(torch.get_rng_state().unsqueeze(0).to(ctx.device)).cpu()  # P x S
    extra: dict[str, Any] = {}
    if ctx.device.type == "cuda":  # kornia / randperm on the GPU draw from the CUDA generator
        cuda_rng = torch.cuda.get_rng_state(ctx.device).unsqueeze(0).to(ctx.device)
        extra["rng_cuda"] = D.concat_all_gather(cuda_rng).cpu()  # P x S
    if ctx.is_main:
        save_checkpoint(path, {
            "model": state.method.state_dict(), "optimizer": state.opt.state_dict(),
            "scheduler": state.sched.state_dict(), "rng_torch": rng, "rng_order": order_state,
            "epoch": epochs_done, "step_in_epoch": step_in_epoch, "epoch_losses": epoch_losses,
            "history": state.history, "config": state.cfg.to_dict(), "preprocess": state.pp.to_dict(),
            "world_size": ctx.world_size, **extra,
        })
        tmp = temp_sibling(path.parent / "history.json")
        tmp.write_text(json.dumps(state.history, indent=1))
        tmp.replace(path.parent / "history.json")


def _config_check(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> list[str]:
    """Refuse a checkpoint of another config; return notes on the resumable fields that changed."""
    now = cfg.to_dict()
    defaults = TrainConfig().to_dict()  # fields added after the checkpoint was written: their defaults
    before = {k: saved.get(k, defaults[k]) for k in now}
    differ = sorted(k for k in now if k not in RESUMABLE_FIELDS and before[k] != now[k])
    if differ:
        raise ConfigError(
            f"{path}: checkpoint was made with a different config ({', '.join(differ)}); "
            "use another --out or --no-resume"
        )
    if before["num_threads"] != now["num_threads"]:
        return [f"num_threads {before['num_threads']} -> {now['num_threads']}: torch's CPU kernels sum in "
                "another order, so the weights will differ in the last bits from a run without the change"]
    return []


def resume_checkpoint(path: Path, state: TrainState, saved: dict[str, Any] | None = None) -> Resumed:
    """Restore ``state`` from the checkpoint at ``path`` (or its contents ``saved``); say where to continue.

    Refuses (ConfigError) a checkpoint of another config. A checkpoint of another number of
    processes is rescaled to this one (see the module); the notes say what changed.
    """
    ctx, cfg = state.ctx, state.cfg
    saved = load_checkpoint(path, map_location=ctx.device) if saved is None else saved
    notes = _config_check(saved["config"], cfg, path)
    state.method.load_state_dict(saved["model"])
    state.pp = PreprocessConfig.from_dict(saved["preprocess"])
    state.method.preprocess = state.pp
    state.opt.load_state_dict(saved["optimizer"])
    state.sched.load_state_dict(saved["scheduler"])
    state.order.set_state(saved["rng_order"].cpu())
    state.history = list(saved["history"])
    steps_logged = int(state.sched.last_epoch)
    epoch, step = int(saved["epoch"]), int(saved.get("step_in_epoch", 0))
    old_world = int(saved["world_size"])
    rng_torch, rng_cuda = saved["rng_torch"].cpu(), saved.get("rng_cuda")
    if old_world != ctx.world_size:
        step, world_notes = _rescale_world(state, old_world, epoch, step)
        notes += world_notes
    if ctx.rank < rng_torch.shape[0]:  # a copy: torch reads a row view of P x S from its storage start
        torch.set_rng_state(rng_torch[ctx.rank].clone())
        if rng_cuda is not None and ctx.device.type == "cuda":
            torch.cuda.set_rng_state(rng_cuda[ctx.rank].cpu().clone(), ctx.device)
    else:  # a process the checkpoint did not have: a fresh stream of its own
        torch.manual_seed(cfg.seed * 1000 + ctx.rank + 7919 * (epoch + 1))
    log.info("resumed %s after %d epoch(s) and %d step(s)", path, epoch, step)
    for note in notes:
        log.warning("resume: %s", note)
    return Resumed(epoch, step, [float(v) for v in saved.get("epoch_losses", [])], notes, steps_logged)


def _rescale_world(state: TrainState, old_world: int, epoch: int, step: int) -> tuple[int, list[str]]:
    """Move a checkpoint of ``old_world`` processes to this run's; return (step in epoch, notes)."""
    cfg, new_world = state.cfg, state.ctx.world_size
    gb_old, gb_new = cfg.batch_size * old_world, cfg.batch_size * new_world
    spe_old, spe_new = state.n_train // gb_old, state.steps_per_epoch
    new_step = min(spe_new, step * gb_old // gb_new)  # samples done in this epoch, in new batches
    t_old = int(state.sched.last_epoch)
    t_new = epoch * spe_new + new_step
    state.sched.last_epoch = t_new
    for group, base, factor in zip(state.opt.param_groups, state.sched.base_lrs, state.sched.lr_lambdas,
                                   strict=True):
        group["lr"] = base * factor(t_new)
    notes = [
        f"checkpoint of {old_world} process(es) resumed on {new_world}: global batch {gb_old} -> {gb_new}, "
        f"steps per epoch {spe_old} -> {spe_new}, epoch {epoch + 1} step {step} -> {new_step}, "
        f"LR schedule step {t_old} -> {t_new} of {spe_new * cfg.epochs} (lr not scaled with the batch)",
        *state.method.on_world_change(gb_new),
        "random streams: processes 0.." + str(min(old_world, new_world) - 1) + " continue theirs"
        + (f", {new_world - old_world} new one(s) seeded" if new_world > old_world else ""),
        "the run is no longer bit-identical to one without the change",
    ]
    return new_step, notes
