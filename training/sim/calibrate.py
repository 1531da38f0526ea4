"""Measure the simulator's difficulty: can a small CNN predict the label before the lift.

Reads simulated shards (simulating them first if the directory is empty), trains a small
supervised CNN on the left GelSight ``Tb - Ta`` difference and, as a leakage check, on
``Ta`` alone, and reports test accuracy next to the majority-class rate; also fits a
gradient-boosted model on the hidden physical parameters (an "oracle" ceiling) and draws
a grid of Ta / Tb / Tc images with labels.

Targets (issue 3): Tb - Ta accuracy 75-88 %, majority <= 70 %, Ta within 2 points of
the majority.

Example:
    python -m training.sim.calibrate --trials 1000 --seed 11 --data /tmp/sim_cal --out docs/img

"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HIDDEN = (
    "sim_mass",
    "sim_friction",
    "sim_com_x",
    "sim_com_y",
    "sim_com_z",
    "sim_grip_force",
    "sim_grasp_height",
    "sim_grasp_offset",
    "sim_width_tb",
    "sim_depth_A_tb",
    "sim_contact_px_A_tb",
)


def load(data: Path, size: tuple[int, int]) -> dict[str, Any]:
    """Left Ta, Tb, Tc (N x 3 x H x W uint8, resized to ``size`` = (w, h)), labels, hidden params, kinds."""
    import cv2

    from tactile_grasp_predictor.data.calandra import CalandraShard

    keys = ["gelsightA_before", "gelsightA_during", "gelsightA_after"]
    imgs: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    labels, hidden, kinds, names = [], [], [], []
    for path in sorted(data.glob("*.h5")):
        with CalandraShard(path) as shard:
            for i in shard.trial_indices():
                t = shard.read(i, keys=keys)
                for k in keys:
                    imgs[k].append(
                        cv2.resize(t.images[k], size, interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
                    )
                labels.append(t.label)
                hidden.append([float(t.extras.get(h, 0.0)) for h in HIDDEN])
                kind = t.extras.get("sim_object_kind", b"?")
                kinds.append(kind.decode() if isinstance(kind, bytes) else str(kind))
                names.append(t.object_name)
    return {
        "ta": np.stack(imgs[keys[0]]),
        "tb": np.stack(imgs[keys[1]]),
        "tc": np.stack(imgs[keys[2]]),
        "y": np.asarray(labels, np.int64),
        "hidden": np.asarray(hidden),
        "kind": np.asarray(kinds),
        "name": np.asarray(names),
    }


def train_cnn(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, epochs: int = 12, seed: int = 0
) -> float:
    """Train a small CNN on ``x`` (N x C x H x W float32) and return the test accuracy."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    c = x.shape[1]
    net = nn.Sequential(
        nn.Conv2d(c, 16, 3, 2, 1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, 2, 1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, 2, 1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(64, 2),
    )
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    tr = torch.from_numpy(train)
    for _ in range(epochs):
        net.train()
        perm = tr[torch.randperm(len(tr), generator=gen)]
        for b in range(0, len(perm), 64):
            idx = perm[b : b + 64]
            xb = xt[idx]
            if torch.rand(1, generator=gen).item() < 0.5:  # flips keep the physics (mirror symmetric)
                xb = xb.flip(-1)
            loss = nn.functional.cross_entropy(net(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        te = torch.from_numpy(test)
        pred = torch.cat([net(xt[te[b : b + 256]]).argmax(1) for b in range(0, len(te), 256)])
    return float((pred == yt[te]).float().mean())


def measure(d: dict[str, Any], seed: int = 0, epochs: int = 12) -> dict[str, float]:
    """Accuracies of Tb - Ta, Ta alone and the hidden-parameter oracle on a 75/25 split."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = d["y"]
    n = len(y)
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(0.75 * n)
    train, test = perm[:cut], perm[cut:]
    ta = d["ta"].astype(np.float32) / 255.0
    tb = d["tb"].astype(np.float32) / 255.0
    diff = (tb - ta) * 4.0
    ta_n = (ta - ta[train].mean(axis=(0, 2, 3), keepdims=True)) * 4.0
    res = {
        "n": float(n),
        "success_rate": float(y.mean()),
        "majority_test": float(max(y[test].mean(), 1 - y[test].mean())),
        "acc_tb_minus_ta": train_cnn(diff, y, train, test, epochs, seed),
        "acc_ta_only": train_cnn(ta_n, y, train, test, epochs, seed),
    }
    gbm = HistGradientBoostingClassifier(max_iter=200, random_state=seed).fit(d["hidden"][train], y[train])
    res["acc_oracle_hidden"] = float((gbm.predict(d["hidden"][test]) == y[test]).mean())
    return res


def picture_grid(d: dict[str, Any], path: Path, rows: int = 6) -> None:
    """Save a PNG grid: Ta, Tb, Tc, Tb - Ta of ``rows`` trials (half successes, half failures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = d["y"]
    pick = list(np.flatnonzero(y == 1)[: rows // 2]) + list(np.flatnonzero(y == 0)[: rows - rows // 2])
    fig, axes = plt.subplots(len(pick), 4, figsize=(8, 1.6 * len(pick)))
    for r, i in enumerate(pick):
        diff = d["tb"][i].astype(np.float32) - d["ta"][i].astype(np.float32)
        panels = [d["ta"][i], d["tb"][i], d["tc"][i], np.clip(diff * 3 + 128, 0, 255).astype(np.uint8)]
        for c, (img, title) in enumerate(
            zip(panels, ["Ta (before)", "Tb (during)", "Tc (after)", "Tb - Ta"], strict=True)
        ):
            ax = axes[r, c]
            ax.imshow(img.transpose(1, 2, 0))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
        axes[r, 0].set_ylabel(f"{d['kind'][i]}\n{'LIFT ok' if y[i] else 'FAIL'}", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=55)
    plt.close(fig)


def renderer_figure(path: Path, indices: tuple[int, ...] = (0, 10, 20), width: int = 240) -> None:
    """Save a PNG: real ball-press frames next to their renderings (same sphere, centre, depth)."""
    import math

    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.sim.gelsight import BALL_RADIUS_MM, GelSightRenderer, load_calibration

    cal = load_calibration()
    r = GelSightRenderer(width, width * 3 // 4)
    fig, axes = plt.subplots(len(indices), 3, figsize=(8, 2.2 * len(indices)))
    for row, k in enumerate(indices):
        a_mm = cal.ball_contact_radius_px[k] * cal.pixmm
        depth = BALL_RADIUS_MM - math.sqrt(max(BALL_RADIUS_MM**2 - a_mm**2, 0.0))
        hm = r.sphere_height_map(tuple(cal.ball_center_px[k]), BALL_RADIUS_MM, depth)
        sim = r.render(hm[None])[0]
        real = cv2.resize(cal.ball_imgs_rgb[k], (r.width, r.height), interpolation=cv2.INTER_AREA)
        diff = np.abs(sim.astype(np.int16) - real.astype(np.int16)).astype(np.uint8)
        for c, (img, title) in enumerate(
            zip((real, sim, diff * 4), ("real frame", "rendered", "|diff| x 4"), strict=True)
        ):
            axes[row, c].imshow(img)
            axes[row, c].set_xticks([])
            axes[row, c].set_yticks([])
            if row == 0:
                axes[row, c].set_title(title, fontsize=9)
        axes[row, 0].set_ylabel(f"press {k}\ndepth {depth:.2f} mm", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=60)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Simulate (if needed), measure and report; prints JSON."""
    import torch

    p = argparse.ArgumentParser(prog="python -m training.sim.calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="shard directory (simulated into when empty)")
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="folder for sim_grid.png and sim_calibration.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not any(args.data.glob("*.h5")):
        from training.sim import cli

        sub = argparse.ArgumentParser()
        cli.add_arguments(sub)
        cli.run(
            sub.parse_args(
                [
                    "--trials",
                    str(args.trials),
                    "--seed",
                    str(args.seed),
                    "--out",
                    str(args.data),
                    "--workers",
                    str(args.workers),
                ]
            )
        )
    d = load(args.data, (80, 60))
    res = measure(d, epochs=args.epochs)
    kinds = {k: round(float(d["y"][d["kind"] == k].mean()), 3) for k in sorted(set(d["kind"]))}
    res_all = {**{k: round(v, 4) for k, v in res.items()}, "success_by_kind": kinds}
    print(json.dumps(res_all, indent=2))
    if args.out:
        picture_grid(d, args.out / "sim_grid.png")
        renderer_figure(args.out / "sim_renderer_vs_real.png")
        (args.out / "sim_calibration.json").write_text(json.dumps(res_all, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
