"""``tgp train``: train an encoder with one method (MoCo v2 or a baseline), resumable, logged.

Python API: :func:`train` on in-memory arrays (:class:`~training.data.sets.TactileSet`); the
CLI loads the data directory through the shared reader, split and cache
(:func:`training.cli.load_data`; under ``torchrun`` one process builds the cache while the
others wait), then calls it. A checkpoint holds a :class:`~training.checkpoint.TrainState`.

    tgp train --data DIR --config cpu --out runs/moco [--set method=memory_bank] [--set knn_every=1]
    tgp train --config runs/moco/config.yaml --out runs/moco-again         # the same weights
    tgp train --synthetic 96 --config tiny --out runs/lr --sweep lr=0.01,0.05  # a grid, tabulated
    torchrun --nproc_per_node=2 -m training.cli train --data DIR --config cpu --out runs/moco_ddp

A run directory holds ``config.yaml`` (resolved, with the command line), ``checkpoint.pt``
(atomic, exact resume), ``history.json``, ``train.log``, ``loss.png``, TensorBoard events,
``metrics.csv`` (per step) and, with the kNN monitor, ``knn.csv``. Running the same command
again resumes from the checkpoint and, if the run had finished, returns at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from tactile_grasp_predictor.errors import ConfigError, DatasetError
from tactile_grasp_predictor.preprocess import PreprocessConfig, center_crop, difference, difference_stats
from training import distributed as D
from training.checkpoint import (
    CHECKPOINT_NAME,
    Resumed,
    TrainState,
    load_checkpoint,
    resume_checkpoint,
    write_checkpoint,
)
from training.cli import add_common_arguments, add_data_arguments, load_data
from training.config import TrainConfig, load_config
from training.data.sets import TactileSet, synthetic_set
from training.knn_monitor import KnnMonitor
from training.methods import Method, build_method
from training.run_config import (
    CONFIG_NAME,
    command_line,
    read_run_section,
    reproduction_notes,
    run_section,
    write_run_config,
)
from training.runlog import RunLog, attach_log, epoch_line, plot_history

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
    source: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``cfg.method`` on ``data``; checkpoint into ``out_dir`` each ``checkpoint_every`` epochs.

    With ``checkpoint_minutes > 0`` a checkpoint is also written inside an epoch whenever that
    much time has passed (long epochs on slow or preemptible machines); resuming from it
    redraws the epoch's permutation and continues at the next step, bit for bit. The run
    folder gets ``config.yaml`` at the start, per-step scalars as it goes and a summary line
    per epoch (:mod:`training.runlog`); with ``knn_every > 0`` the kNN monitor scores a
    held-out slice of the labels every that many epochs (:mod:`training.knn_monitor`).

    Args:
        cfg: the run config (validated here against ``len(data)``; ``num_threads=0`` becomes
            torch's thread count, recorded as such).
        data: the training trials (labels used only by supervised / label-based methods and
            the kNN monitor).
        out_dir: run directory (``None``: no checkpoints or logs, e.g. benchmarks).
        resume: continue from ``out_dir/checkpoint.pt`` if there is one (always after an
            elastic restart by ``torchrun``).
        progress: show tqdm bars (rank 0 only).
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        on_checkpoint: called with (epochs done, steps into the next epoch) after each checkpoint.
        stop_after_epochs: stop (after checkpointing) once this many epochs are done in total.
        source: where the trials came from, for ``config.yaml`` (``data``, ``synthetic``,
            ``cache``, ``argv``; see :mod:`training.run_config`).

    """
    ctx = D.init_from_env(device)
    cfg.validate(n_train=len(data) if cfg.method == "moco" else None)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    else:  # the count changes the weights' last bits: make it part of the recorded config
        cfg = dataclasses.replace(cfg, num_threads=torch.get_num_threads())
    torch.manual_seed(cfg.seed * 1000 + ctx.rank)
    world, rank = ctx.world_size, ctx.rank
    global_batch = cfg.batch_size * world
    steps_per_epoch = len(data) // global_batch
    if steps_per_epoch < 1:
        raise ConfigError(
            f"batch_size: {cfg.batch_size} x {world} process(es) exceeds the {len(data)} trials"
        )
    total_steps = steps_per_epoch * cfg.epochs
    monitor = KnnMonitor(data, cfg) if cfg.knn_every > 0 and ctx.is_main else None

    pp = preprocess_for(cfg, data)
    method = build_method(cfg, pp, len(data)).to(ctx.device)
    params = [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.sgd_momentum, weight_decay=cfg.weight_decay)
    warm = cfg.warmup_epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cosine_factor(s, total_steps, warm, cfg.lr, cfg.lr_min)
    )
    state = TrainState(cfg, ctx, method, pp, opt, sched, torch.Generator().manual_seed(cfg.seed),
                       steps_per_epoch, len(data))
    ckpt_path = out_dir / CHECKPOINT_NAME if out_dir is not None else None
    if out_dir is not None and ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(".*.tmp-*"):  # a write cut short by a kill (only rank 0 writes here)
            stale.unlink(missing_ok=True)
        attach_log(out_dir / "train.log")
    resumed: Resumed | None = None
    if ckpt_path is not None and (resume or D.restart_count() > 0):
        blob = D.broadcast_file(ctx, ckpt_path)  # rank 0's file: nodes without a shared filesystem agree
        if blob is not None:
            saved = load_checkpoint(ckpt_path, map_location=ctx.device, data=blob)
            resumed = resume_checkpoint(ckpt_path, state, saved)
    start_epoch, resume_step = (resumed.epoch, resumed.step_in_epoch) if resumed else (0, 0)
    runlog = None
    if out_dir is not None and ctx.is_main:
        if resumed is None or not (out_dir / CONFIG_NAME).exists():
            run = run_section(data, source=source, world_size=world, device=str(ctx.device),
                              argv=(source or {}).get("argv"))
            write_run_config(out_dir, cfg, run)
        else:
            log.info("resumed by: %s", command_line((source or {}).get("argv")))
        # rows after the checkpoint go; after a change of process count the step axis continues in
        # the new global batch (a gap, or old rows dropped where the new numbers overlap them)
        done = start_epoch * steps_per_epoch + resume_step
        runlog = RunLog(out_dir, min(done, resumed.steps_logged) if resumed else 0, start_epoch)
        for note in resumed.notes if resumed else []:
            tqdm.write(f"note: {note}")

    model: torch.nn.Module = method
    if world > 1:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = DistributedDataParallel(method, device_ids=ids)
    labels_all = torch.as_tensor(np.asarray(data.labels), dtype=torch.long)
    t_start = time.perf_counter()
    last_epoch = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, stop_after_epochs)
    last_save = time.perf_counter()

    def checkpoint(epochs_done: int, step_in_epoch: int, order_state: torch.Tensor, losses: list[float],
                   ) -> None:
        assert ckpt_path is not None
        if runlog is not None:
            runlog.flush()  # the logs never lag the checkpoint a resume starts from
        write_checkpoint(ckpt_path, state, epochs_done, step_in_epoch, order_state, losses)
        if on_checkpoint is not None:
            on_checkpoint(epochs_done, step_in_epoch)

    try:
        for epoch in range(start_epoch, last_epoch):
            method.train()
            order_state = state.order.get_state()  # before the epoch's permutation (redrawn on a resume)
            perm = torch.randperm(len(data), generator=state.order)[: steps_per_epoch * global_batch]
            mine = perm.view(steps_per_epoch, world, cfg.batch_size)[:, rank]  # steps x B
            carried = resumed.epoch_losses if resumed is not None and epoch == start_epoch else None
            first_step, losses = (resume_step, list(carried)) if carried is not None else (0, [])
            t0 = time.perf_counter()
            show = progress and ctx.is_main
            bar = tqdm(range(first_step, steps_per_epoch), leave=False, disable=not show,
                       desc=f"{cfg.method} epoch {epoch + 1}/{cfg.epochs}")
            for step in bar:
                t_step = time.perf_counter()
                idx_np = np.sort(mine[step].numpy())  # sorted reads are faster on a memory-mapped cache
                idx = torch.from_numpy(idx_np)
                diff = difference(data.before[idx_np], data.during[idx_np]).to(ctx.device)  # B x 3 x h x w
                with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    loss = model(diff, idx.to(ctx.device), labels_all[idx].to(ctx.device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"{cfg.method}: loss is {loss.item()} at epoch {epoch + 1}; try a lower lr"
                    )
                lr = float(opt.param_groups[0]["lr"])  # the rate this step uses
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                method.after_step()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                if runlog is not None:
                    runlog.step(epoch * steps_per_epoch + step + 1, epoch + 1, {
                        "loss": losses[-1], "lr": lr,
                        "images_per_s": global_batch / (time.perf_counter() - t_step),
                        **method.step_stats(),
                    })
                mid = step + 1 < steps_per_epoch
                if (mid and ckpt_path is not None and cfg.checkpoint_minutes > 0
                        and time.perf_counter() - last_save >= 60 * cfg.checkpoint_minutes):
                    checkpoint(epoch, step + 1, order_state, losses)
                    last_save = time.perf_counter()
            dt = time.perf_counter() - t0
            done = epoch + 1
            entry = {
                "epoch": done, "step": done * steps_per_epoch,
                "loss": D.all_reduce_mean(float(np.mean(losses))),
                "lr": float(opt.param_groups[0]["lr"]), "seconds": dt,
                "images_per_s": (steps_per_epoch - first_step) * global_batch / dt,
            }
            if monitor is not None and (done % cfg.knn_every == 0 or done == cfg.epochs):
                knn = monitor.evaluate(method.encoder, state.pp, ctx.device)
                entry.update(knn_accuracy=knn.accuracy, knn_auc=knn.auc, knn_k=knn.k)
                if runlog is not None:
                    runlog.knn_result(done * steps_per_epoch, done, dataclasses.asdict(knn))
            state.history.append(entry)
            line = epoch_line(cfg.method, entry, cfg.epochs)
            log.info(line)
            if ctx.is_main:
                tqdm.write(line)
            if runlog is not None:
                runlog.epoch(done * steps_per_epoch, entry)
            if ckpt_path is not None and (done % cfg.checkpoint_every == 0 or done == last_epoch):
                checkpoint(done, 0, state.order.get_state(), [])
                last_save = time.perf_counter()
    finally:
        if runlog is not None:
            runlog.close()
    history = state.history
    if out_dir is not None and ctx.is_main and history:
        plot_history(history, out_dir / "loss.png", cfg.method)
    epochs_done = int(history[-1]["epoch"]) if history else start_epoch
    return TrainResult(method, state.pp, cfg, history, out_dir, time.perf_counter() - t_start, epochs_done)


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
    parser.add_argument("--out", type=Path, required=True,
                        help="run directory (with --sweep: the folder the runs go into)")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2",
                        help="train every combination of these values (repeatable), one run folder each, "
                             "and tabulate them (sweep.md, sweep.csv, sweep.png in --out)")
    add_common_arguments(parser)


def data_source(args: argparse.Namespace) -> dict[str, Any]:
    """Say where ``tgp train``'s trials come from (a run's ``config.yaml`` when the command does not).

    Fills ``args.data`` / ``args.synthetic`` / ``args.cache`` from the config file's ``run``
    section when neither ``--data`` nor ``--synthetic`` is given; returns what ``config.yaml``
    records (absolute paths, the command line).
    """
    recorded = read_run_section(args.config)
    if not args.data and not args.synthetic and recorded:
        if recorded.get("synthetic"):
            args.synthetic = int(recorded["synthetic"])
        elif recorded.get("data"):
            args.data = Path(recorded["data"])
            if args.cache is None and recorded.get("cache"):
                args.cache = Path(recorded["cache"])
        if D.rank() == 0:
            print(f"data: {'--synthetic ' + str(args.synthetic) if args.synthetic else args.data} "
                  f"(the run section of {args.config})")
    return {
        "data": str(Path(args.data).resolve()) if args.data else None,
        "synthetic": int(args.synthetic or 0),
        "cache": str(Path(args.cache).resolve()) if args.cache else None,
        "argv": getattr(args, "command_line", None),
        "recorded": recorded,
    }


def load_train_set(args: argparse.Namespace, cfg: TrainConfig, ctx: D.DistContext) -> TactileSet:
    """Load the training trials of ``--synthetic N`` (all of them) or ``--data DIR`` (its training split).

    Under ``torchrun`` the cache is built by one process (rank 0, or the first of each node
    without a shared filesystem: :func:`training.distributed.builders_first`) while the others
    wait, then found by them.
    """
    if args.synthetic:
        return synthetic_set(args.synthetic, cfg.resize_hw, seed=cfg.seed)
    if not args.data:
        return load_data(args, cfg)[0]  # neither option: its error says what to give
    cache_root = Path(args.cache) if args.cache else Path(args.data) / ".cache"
    with D.builders_first(ctx, cache_root):
        data, _test, info = load_data(args, cfg)
    if ctx.world_size > 1:
        print(f"{ctx.describe()}: cache {'built' if any(info['cache_built']) else 'found'} in {cache_root}",
              flush=True)
    return data


def train_from_args(args: argparse.Namespace, cfg: TrainConfig, out: Path, source: dict[str, Any],
                    on_checkpoint: Callable[[int, int], None] | None = None) -> TrainResult:
    """Load the trials for ``cfg`` and train one run into ``out`` (``tgp train`` and each sweep member)."""
    ctx = D.init_from_env(args.device)
    data = load_train_set(args, cfg, ctx)
    if ctx.is_main:
        for note in reproduction_notes(source.get("recorded") or {}, data, ctx.world_size):
            print(f"note: not a reproduction of {args.config}: {note}")
        if cfg.method in ("supervised", "triplet_label"):
            print(f"note: {cfg.method} uses the labels of all {len(data)} training trials")
    res = train(cfg, data, out, resume=not args.no_resume, progress=not args.no_progress,
                device=args.device, on_checkpoint=on_checkpoint, source=source)
    if ctx.is_main and res.history:
        h = res.history[-1]
        print(f"{cfg.method}: {res.epochs_done} epochs, last loss {h['loss']:.4f}, "
              f"{h['images_per_s']:.0f} img/s; run folder {out}")
    return res


def run(args: argparse.Namespace, *, on_checkpoint: Callable[[int, int], None] | None = None) -> int:
    """Entry point of ``tgp train`` (on every synthetic trial, or the training split of ``--data``).

    ``on_checkpoint`` is :func:`train`'s hook (tests of killed processes use it). Under
    ``torchrun`` the process group is joined first, before any data is read.
    """
    D.init_from_env(args.device)
    source = data_source(args)
    if args.sweep:
        from training.sweep import run_sweep

        run_sweep(args, source)
        return 0
    cfg = load_config(args.config, args.overrides)
    train_from_args(args, cfg, args.out, source, on_checkpoint)
    return 0
