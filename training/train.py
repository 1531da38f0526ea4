"""``tgp train``: train an encoder with one method (MoCo v2 or a baseline), resumable.

Python API: :func:`train` on in-memory arrays (:class:`TactileSet`); the CLI loads the
data directory through the shared reader, split and cache, then calls it.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from tactile_grasp_predictor.errors import ConfigError, DatasetError, TgpError
from tactile_grasp_predictor.preprocess import PreprocessConfig, center_crop, difference, difference_stats
from training import distributed as D
from training.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from training.config import TrainConfig, load_config
from training.methods import Method, build_method

log = logging.getLogger("tgp.train")

STATS_SAMPLES = 2048  # trials used to estimate the normalisation statistics


@dataclass
class TactileSet:
    """Resized left-finger frames of N trials: ``before``/``during`` ``N x h x w x 3`` uint8, labels ``N``."""

    before: np.ndarray
    during: np.ndarray
    labels: np.ndarray
    objects: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.before.shape != self.during.shape or self.before.shape[0] != n:
            raise DatasetError(
                f"arrays disagree: before {self.before.shape}, during {self.during.shape}, labels {n}"
            )
        if self.before.dtype != np.uint8 or self.before.ndim != 4 or self.before.shape[3] != 3:
            raise DatasetError(
                f"frames must be uint8 N x h x w x 3, got {self.before.dtype} {self.before.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: Sequence[int] | np.ndarray) -> TactileSet:
        """Return the trials at ``idx`` (loaded into memory)."""
        idx = np.asarray(idx, dtype=np.int64)
        pick = (lambda xs: [xs[i] for i in idx]) if self.objects else (lambda xs: [])
        src = [self.sources[i] for i in idx] if self.sources else []
        return TactileSet(
            np.ascontiguousarray(self.before[idx]), np.ascontiguousarray(self.during[idx]),
            np.asarray(self.labels)[idx].astype(np.int64), pick(self.objects), src,
        )


def synthetic_set(n: int, hw: tuple[int, int], seed: int = 0) -> TactileSet:
    """Random trials with a learnable label (contact blob area at Tb) for tests and benchmarks.

    Ta is a noisy background; Tb adds a bright blob whose radius is larger for successes
    (label 1), at a random position, plus per-trial colour noise.
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    base = rng.integers(90, 140, size=(n, 1, 1, 3)).astype(np.float32)
    before = np.clip(base + rng.normal(0, 4, size=(n, h, w, 3)), 0, 255).astype(np.uint8)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    during = before.astype(np.float32).copy()
    for i in range(n):
        r = (0.18 if labels[i] else 0.10) * min(h, w) * rng.uniform(0.8, 1.25)
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))[..., None]
        during[i] += blob * rng.uniform(40, 80, size=3)
    during = np.clip(during + rng.normal(0, 3, size=during.shape), 0, 255).astype(np.uint8)
    objs = [f"obj{i % 7}" for i in range(n)]
    return TactileSet(before, during, labels, objs, [f"synthetic:i{i}" for i in range(n)])


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
    operational = ("num_threads", "name", "checkpoint_every", "checkpoint_minutes")  # no effect on results
    differ = sorted(k for k in now if k not in operational and saved.get(k, defaults[k]) != now[k])
    if differ:
        raise ConfigError(
            f"{path}: checkpoint was made with a different config ({', '.join(differ)}); "
            "use another --out or --no-resume"
        )


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
    order = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, float]] = []
    start_epoch, resume_step, resume_losses = 0, 0, []
    ckpt_path = out_dir / CHECKPOINT_NAME if out_dir is not None else None
    if out_dir is not None and ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _attach_log(out_dir / "train.log")
    if ckpt_path is not None and resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=ctx.device)
        _config_check(state["config"], cfg, ckpt_path)
        if int(state["world_size"]) != world:
            raise ConfigError(f"{ckpt_path}: written by {state['world_size']} process(es), now {world}")
        method.load_state_dict(state["model"])
        pp = PreprocessConfig.from_dict(state["preprocess"])
        method.preprocess = pp
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_torch"][rank].cpu())
        if "rng_cuda" in state and ctx.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"][rank].cpu(), ctx.device)
        order.set_state(state["rng_order"].cpu())
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        resume_step = int(state.get("step_in_epoch", 0))
        resume_losses = [float(v) for v in state.get("epoch_losses", [])]
        log.info("resumed %s at epoch %d", ckpt_path, start_epoch)

    model: torch.nn.Module = method
    if world > 1:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = DistributedDataParallel(method, device_ids=ids)
    labels_all = torch.as_tensor(np.asarray(data.labels), dtype=torch.long)
    t_start = time.perf_counter()
    last_epoch = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, stop_after_epochs)
    def write_checkpoint(epochs_done: int, step_in_epoch: int, order_state: torch.Tensor,
                         epoch_losses: list[float]) -> None:
        assert ckpt_path is not None
        rng = D.concat_all_gather(torch.get_rng_state().unsqueeze(0).to(ctx.device)).cpu()  # P x S
        extra: dict[str, Any] = {}
        if ctx.device.type == "cuda":  # kornia / randperm on the GPU draw from the CUDA generator
            cuda_rng = torch.cuda.get_rng_state(ctx.device).unsqueeze(0).to(ctx.device)
            extra["rng_cuda"] = D.concat_all_gather(cuda_rng).cpu()  # P x S
        if ctx.is_main:
            save_checkpoint(ckpt_path, {
                "model": method.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng_torch": rng, "rng_order": order_state,
                "epoch": epochs_done, "step_in_epoch": step_in_epoch, "epoch_losses": epoch_losses,
                "history": history, "config": cfg.to_dict(), "preprocess": pp.to_dict(),
                "world_size": world, **extra,
            })
            (ckpt_path.parent / "history.json").write_text(json.dumps(history, indent=1))
        if on_checkpoint is not None:
            on_checkpoint(epochs_done, step_in_epoch)

    last_save = time.perf_counter()
    for epoch in range(start_epoch, last_epoch):
        method.train()
        order_state = order.get_state()  # before this epoch's permutation (mid-epoch resume redraws it)
        perm = torch.randperm(len(data), generator=order)[: steps_per_epoch * global_batch]
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
                write_checkpoint(epoch, step + 1, order_state, losses)
                last_save = time.perf_counter()
        dt = time.perf_counter() - t0
        entry = {
            "epoch": epoch + 1, "loss": D.all_reduce_mean(float(np.mean(losses))),
            "lr": float(opt.param_groups[0]["lr"]), "seconds": dt,
            "images_per_s": (steps_per_epoch - first_step) * global_batch / dt,
        }
        history.append(entry)
        log.info("%s epoch %d/%d loss %.4f lr %.2e %.1f img/s", cfg.method, epoch + 1, cfg.epochs,
                 entry["loss"], entry["lr"], entry["images_per_s"])
        done = epoch + 1
        if ckpt_path is not None and (done % cfg.checkpoint_every == 0 or done == last_epoch):
            write_checkpoint(done, 0, order.get_state(), [])
            last_save = time.perf_counter()
    if out_dir is not None and ctx.is_main and history:
        _plot_history(history, out_dir / "loss.png", cfg.method)
    return TrainResult(method, pp, cfg, history, out_dir, time.perf_counter() - t_start,
                       history[-1]["epoch"] if history else start_epoch)  # type: ignore[arg-type]


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


# ------------------------------------------------------------------ data loading for the CLIs
def load_splits(data_dir: Path, cfg: TrainConfig, cache_dir: Path | None = None,
                progress: bool = True) -> tuple[TactileSet, TactileSet, dict[str, Any]]:
    """Index the shards of ``data_dir``, split (``cfg.split``, seeded) and cache them: (train, test, info).

    ``info`` holds the split kind, seed, counts, the split itself (trial sources, for the
    manifest) and the cache fingerprints of both sides (the bundle's data fingerprint).
    """
    from tactile_grasp_predictor.data.calandra import index_shards
    from training.data.cache import build_cache
    from training.data.splits import make_split

    index = index_shards(data_dir)
    if len(index) == 0:
        raise DatasetError(f"{data_dir}: no usable trials")
    split = make_split(index, kind=cfg.split, seed=cfg.seed)
    cache_dir = cache_dir or Path(data_dir) / ".cache"
    sets, prints = [], []
    for part in (split.train, split.test):
        arr = build_cache(part, cache_dir, size_hw=cfg.resize_hw, finger=cfg.finger, progress=progress)
        sets.append(TactileSet(arr.before, arr.during, np.asarray(arr.labels), list(arr.objects),
                               list(arr.sources)))
        prints.append(arr.fingerprint)
    info = {"kind": cfg.split, "seed": cfg.seed, "n_train": len(sets[0]), "n_test": len(sets[1]),
            "fingerprint": {"train": prints[0], "test": prints[1]}, "split": split.to_dict()}
    return sets[0], sets[1], info


# ------------------------------------------------------------------ CLI
def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``train``, ``probe``, ``table1`` and ``export``."""
    parser.add_argument("--config", default="cpu", help="named config (paper, cpu, tiny) or a YAML path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (repeatable), e.g. --set epochs=10")
    parser.add_argument("--cache", type=Path, default=None, help="cache directory (default DATA/.cache)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that continue a ``tgp train`` run (``probe``, ``export``)."""
    parser.add_argument("--run", type=Path, required=True, help="run directory of tgp train")
    parser.add_argument("--data", type=Path, help="directory of .h5 shards (same split as training)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="N synthetic trials instead")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tgp train``."""
    parser.add_argument("--data", type=Path, help="directory of .h5 shards (Calandra layout)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="train on N synthetic trials instead of --data (smoke tests)")
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``tgp train``."""
    try:
        cfg = load_config(args.config, args.overrides)
        if args.synthetic:
            data = synthetic_set(args.synthetic, cfg.resize_hw, seed=cfg.seed)
        elif args.data:
            data, _test, _info = load_splits(args.data, cfg, args.cache, progress=not args.no_progress)
        else:
            raise ConfigError("tgp train: give --data DIR or --synthetic N")
        if cfg.method in ("supervised", "triplet_label"):
            print(f"note: {cfg.method} uses the labels of all {len(data)} training trials")
        res = train(cfg, data, args.out, resume=not args.no_resume, progress=not args.no_progress,
                    device=args.device)
    except TgpError as exc:
        print(f"tgp train: error: {exc}")
        return 2
    if D.rank() == 0 and res.history:
        h = res.history[-1]
        print(f"{cfg.method}: {res.epochs_done} epochs, last loss {h['loss']:.4f}, "
              f"{h['images_per_s']:.0f} img/s; checkpoint {args.out / CHECKPOINT_NAME}")
    return 0
