"""``tgp train``: train an encoder with one method (MoCo v2 or a baseline), resumable.

Python API: :func:`train` on in-memory arrays (:class:`~training.data.sets.TactileSet`); the
CLI loads the data directory through the shared reader, split and cache
(:func:`training.cli.load_data`), then calls it. A checkpoint holds a :class:`TrainState`,
written by :func:`write_checkpoint` and restored by :func:`resume_checkpoint`.

    tgp train --data DIR --config cpu --out runs/moco [--set method=memory_bank] [--set bf16=true]
    torchrun --nproc_per_node=2 -m training.cli train --data DIR --config cpu --out runs/moco_ddp

A run directory holds ``checkpoint.pt`` (atomic, exact resume), ``history.json``,
``train.log`` and ``loss.png``. Running the same command again resumes from the
checkpoint and, if the run had finished, returns at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from tactile_grasp_predictor.errors import ConfigError, DatasetError
from tactile_grasp_predictor.preprocess import PreprocessConfig, center_crop, difference, difference_stats
from training import distributed as D
from training.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from training.cli import add_common_arguments, add_data_arguments, load_data
from training.config import OPERATIONAL_FIELDS, TrainConfig, load_config
from training.data.sets import TactileSet, synthetic_set
from training.methods import Method, build_method

log = logging.getLogger("tgp.train")

STATS_SAMPLES = 2048  # trials used to estimate the normalisation statistics


def preprocess_for(cfg: TrainConfig, data: TactileSet) -> PreprocessConfig:
    """Build the shared preprocessing for ``cfg``, with mean/std of the scaled difference from ``data``."""
    if tuple(data.before.shape[1:3]) != tuple(cfg.resize_hw):
        raise DatasetError(f"frames are {data.before.shape[1:3]}, config resize_hw is {cfg.resize_hw}")
    n = min(len(data), STATS_SAMPLES)
    scale = cfg.diff_scale
    if scale <= 0:  # auto gain: differences are small; make them fill the [-1, 1] range augmentations assume
        d = center_crop(difference(data.before[:n], data.during[:n]), cfg.crop).abs()
        p999 = float(torch.quantile(d.flatten()[:: max(1, d.numel() // 2_000_000)], 0.999))
        scale = float(min(100.0, max(1.0, 1.0 / max(p999, 1e-6))))
    pp = PreprocessConfig(resize_hw=cfg.resize_hw, crop=cfg.crop, scale=scale)
    mean, std = difference_stats(data.before[:n], data.during[:n], pp)
    return pp.with_stats(mean, std)


def cosine_factor(step: int, total: int, warmup: int, lr: float, lr_min: float) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine from ``lr`` to ``lr_min``."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return (lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))) / lr


@dataclass
class TrainResult:
    """A finished (or stopped) run: the method (unwrapped), its preprocessing, the history."""

    method: Method
    preprocess: PreprocessConfig
    config: TrainConfig
    history: list[dict[str, float]]
    out_dir: Path | None
    seconds: float
    epochs_done: int


def _config_check(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    now = cfg.to_dict()
    defaults = TrainConfig().to_dict()  # fields added after the checkpoint was written: their defaults
    differ = sorted(k for k in now if k not in OPERATIONAL_FIELDS and saved.get(k, defaults[k]) != now[k])
    if differ:
        raise ConfigError(
            f"{path}: checkpoint was made with a different config ({', '.join(differ)}); "
            "use another --out or --no-resume"
        )


@dataclass
class TrainState:
    """What a checkpoint saves and restores: the method and its optimiser, schedule, data order, history.

    ``pp`` is the preprocessing (its statistics come from the checkpoint on resume).
    """

    cfg: TrainConfig
    ctx: D.DistContext
    method: Method
    pp: PreprocessConfig
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    order: torch.Generator  # draws each epoch's permutation
    history: list[dict[str, float]] = field(default_factory=list)


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
        (path.parent / "history.json").write_text(json.dumps(state.history, indent=1))


def resume_checkpoint(path: Path, state: TrainState) -> tuple[int, int, list[float]]:
    """Restore ``state`` from the checkpoint at ``path``; return (epochs done, step in epoch, its losses).

    Refuses (ConfigError) a checkpoint of another config or another number of processes.
    """
    ctx = state.ctx
    saved = load_checkpoint(path, map_location=ctx.device)
    _config_check(saved["config"], state.cfg, path)
    if int(saved["world_size"]) != ctx.world_size:
        raise ConfigError(f"{path}: written by {saved['world_size']} process(es), now {ctx.world_size}")
    state.method.load_state_dict(saved["model"])
    state.pp = PreprocessConfig.from_dict(saved["preprocess"])
    state.method.preprocess = state.pp
    state.opt.load_state_dict(saved["optimizer"])
    state.sched.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng_torch"][ctx.rank].cpu())
    if "rng_cuda" in saved and ctx.device.type == "cuda":
        torch.cuda.set_rng_state(saved["rng_cuda"][ctx.rank].cpu(), ctx.device)
    state.order.set_state(saved["rng_order"].cpu())
    state.history = list(saved["history"])
    log.info("resumed %s at epoch %d", path, int(saved["epoch"]))
    return (int(saved["epoch"]), int(saved.get("step_in_epoch", 0)),
            [float(v) for v in saved.get("epoch_losses", [])])


def train(
    cfg: TrainConfig,
    data: TactileSet,
    out_dir: Path | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    device: str = "auto",
    on_checkpoint: Callable[[int, int], None] | None = None,
    stop_after_epochs: int | None = None,
) -> TrainResult:
    """Train ``cfg.method`` on ``data``; checkpoint into ``out_dir`` each ``checkpoint_every`` epochs.

    With ``checkpoint_minutes > 0`` a checkpoint is also written inside an epoch whenever that
    much time has passed (long epochs on slow or preemptible machines); resuming from it
    redraws the epoch's permutation and continues at the next step, bit for bit.

    Args:
        cfg: the run config (validated here against ``len(data)``).
        data: the training trials (labels used only by supervised / label-based methods).
        out_dir: run directory (``None``: no checkpoints, e.g. benchmarks).
        resume: continue from ``out_dir/checkpoint.pt`` if there is one.
        progress: show tqdm bars (rank 0 only).
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        on_checkpoint: called with (epochs done, steps into the next epoch) after each checkpoint.
        stop_after_epochs: stop (after checkpointing) once this many epochs are done in total.

    """
    ctx = D.init_from_env(device)
    cfg.validate(n_train=len(data) if cfg.method == "moco" else None)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed * 1000 + ctx.rank)
    world, rank = ctx.world_size, ctx.rank
    global_batch = cfg.batch_size * world
    steps_per_epoch = len(data) // global_batch
    if steps_per_epoch < 1:
        raise ConfigError(
            f"batch_size: {cfg.batch_size} x {world} process(es) exceeds the {len(data)} trials"
        )
    total_steps = steps_per_epoch * cfg.epochs

    pp = preprocess_for(cfg, data)
    method = build_method(cfg, pp, len(data)).to(ctx.device)
    params = [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.sgd_momentum, weight_decay=cfg.weight_decay)
    warm = cfg.warmup_epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cosine_factor(s, total_steps, warm, cfg.lr, cfg.lr_min)
    )
    state = TrainState(cfg, ctx, method, pp, opt, sched, torch.Generator().manual_seed(cfg.seed))
    start_epoch, resume_step = 0, 0
    resume_losses: list[float] = []  # the losses of a resumed epoch's steps before the checkpoint
    ckpt_path = out_dir / CHECKPOINT_NAME if out_dir is not None else None
    if out_dir is not None and ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _attach_log(out_dir / "train.log")
    if ckpt_path is not None and resume and ckpt_path.exists():
        start_epoch, resume_step, resume_losses = resume_checkpoint(ckpt_path, state)

    model: torch.nn.Module = method
    if world > 1:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = DistributedDataParallel(method, device_ids=ids)
    labels_all = torch.as_tensor(np.asarray(data.labels), dtype=torch.long)
    t_start = time.perf_counter()
    last_epoch = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, stop_after_epochs)
    last_save = time.perf_counter()
    for epoch in range(start_epoch, last_epoch):
        method.train()
        order_state = state.order.get_state()  # before this epoch's permutation (mid-epoch resume redraws it)
        perm = torch.randperm(len(data), generator=state.order)[: steps_per_epoch * global_batch]
        mine = perm.view(steps_per_epoch, world, cfg.batch_size)[:, rank]  # steps x B
        first_step, losses = (resume_step, resume_losses) if epoch == start_epoch else (0, [])
        t0 = time.perf_counter()
        bar = tqdm(range(first_step, steps_per_epoch), desc=f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}",
                   leave=False, disable=not (progress and ctx.is_main))
        for step in bar:
            idx_np = np.sort(mine[step].numpy())  # sorted reads are faster on memory-mapped caches
            idx = torch.from_numpy(idx_np)
            diff = difference(data.before[idx_np], data.during[idx_np]).to(ctx.device)  # B x 3 x h x w
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = model(diff, idx.to(ctx.device), labels_all[idx].to(ctx.device))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{cfg.method}: loss is {loss.item()} at epoch {epoch + 1}; try a lower lr"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            method.after_step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            mid = step + 1 < steps_per_epoch
            if (mid and ckpt_path is not None and cfg.checkpoint_minutes > 0
                    and time.perf_counter() - last_save >= 60 * cfg.checkpoint_minutes):
                write_checkpoint(ckpt_path, state, epoch, step + 1, order_state, losses)
                if on_checkpoint is not None:
                    on_checkpoint(epoch, step + 1)
                last_save = time.perf_counter()
        dt = time.perf_counter() - t0
        entry = {
            "epoch": epoch + 1, "loss": D.all_reduce_mean(float(np.mean(losses))),
            "lr": float(opt.param_groups[0]["lr"]), "seconds": dt,
            "images_per_s": (steps_per_epoch - first_step) * global_batch / dt,
        }
        state.history.append(entry)
        log.info("%s epoch %d/%d loss %.4f lr %.2e %.1f img/s", cfg.method, epoch + 1, cfg.epochs,
                 entry["loss"], entry["lr"], entry["images_per_s"])
        done = epoch + 1
        if ckpt_path is not None and (done % cfg.checkpoint_every == 0 or done == last_epoch):
            write_checkpoint(ckpt_path, state, done, 0, state.order.get_state(), [])
            if on_checkpoint is not None:
                on_checkpoint(done, 0)
            last_save = time.perf_counter()
    history = state.history
    if out_dir is not None and ctx.is_main and history:
        _plot_history(history, out_dir / "loss.png", cfg.method)
    epochs_done = int(history[-1]["epoch"]) if history else start_epoch
    return TrainResult(method, state.pp, cfg, history, out_dir, time.perf_counter() - t_start, epochs_done)


def _attach_log(path: Path) -> None:
    for h in list(log.handlers):
        if isinstance(h, logging.FileHandler):
            log.removeHandler(h)
            h.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _plot_history(history: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker=".")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_trained(run_dir: Path) -> TrainResult:
    """Rebuild the method of a run directory from its checkpoint, in eval mode (for probes, export)."""
    from training.config import config_from_dict

    state = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME)
    cfg = config_from_dict(state["config"], source=str(run_dir))
    pp = PreprocessConfig.from_dict(state["preprocess"])
    n_bank = int(state["model"]["bank"].shape[0]) if "bank" in state["model"] else None
    method = build_method(cfg, pp, n_bank)
    method.load_state_dict(state["model"])
    method.eval()
    return TrainResult(method, pp, cfg, list(state["history"]), Path(run_dir), 0.0, int(state["epoch"]))


# ------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tgp train``."""
    add_data_arguments(parser, synthetic_help="train on N synthetic trials instead of --data (smoke tests)")
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``tgp train`` (on every synthetic trial, or the training split of ``--data``)."""
    cfg = load_config(args.config, args.overrides)
    if args.synthetic:
        data = synthetic_set(args.synthetic, cfg.resize_hw, seed=cfg.seed)
    else:
        data, _test, _info = load_data(args, cfg)
    if cfg.method in ("supervised", "triplet_label"):
        print(f"note: {cfg.method} uses the labels of all {len(data)} training trials")
    res = train(cfg, data, args.out, resume=not args.no_resume, progress=not args.no_progress,
                device=args.device)
    if D.rank() == 0 and res.history:
        h = res.history[-1]
        print(f"{cfg.method}: {res.epochs_done} epochs, last loss {h['loss']:.4f}, "
              f"{h['images_per_s']:.0f} img/s; checkpoint {args.out / CHECKPOINT_NAME}")
    return 0
