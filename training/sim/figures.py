"""The simulator's figures for docs/simulator.md: each cue and nuisance next to the real calibration frames.

    python -m training.sim.figures --out docs/img [--data DIR]

- ``sim_renderer_vs_real.png``: real ball presses of the calibration pack, their renderings
  and the difference;
- ``sim_cues.png``: the real ball press and the real no-contact frame beside rendered
  textured surfaces (one per texture family), edges, and the shear field of the brush model
  at rising tangential load (markers moving, the slipping rim, a torque);
- ``sim_nuisances.png``: one contact seen by several sensors of the fleet (LED / colour,
  illumination, wear, markers, mounting offset) beside the two real sensors' frames, and
  the camera's noise, exposure and lighting drift in Tb − Ta;
- ``sim_grid.png`` (with ``--data``): Ta, Tb, Tc and Tb − Ta of simulated trials with labels.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from training.sim import gel
from training.sim.gelsight import BALL_RADIUS_MM, FAR_MM, GelSightRenderer, load_calibration
from training.sim.materials import MATERIALS, draw_surface, texture_height
from training.sim.sensors import SensorLook, fleet, ideal_sensor
from training.sim.shear import shear_field

W, H = 320, 240  # figure frames: half the real resolution


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _real(img_rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(img_rgb, (W, H), interpolation=cv2.INTER_AREA)


def _press(r: GelSightRenderer, gap_mm: np.ndarray, force: float) -> tuple[np.ndarray, np.ndarray]:
    """Height map and pressure of a gap map (mm from the pad plane) pressed with ``force`` N."""
    dome = r.dome.numpy()
    area = r.mm_per_px[0] * r.mm_per_px[1]
    hm, _ = gel.height_map(gap_mm, force, area, dome_mm=dome)
    return hm, gel.pressure(hm, dome)


def _frame(
    r: GelSightRenderer,
    look: SensorLook,
    hm: np.ndarray,
    disp_mm: np.ndarray | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    img = r.render_float(hm[None]).numpy()[0] - r.background.numpy()
    disp = None if disp_mm is None else disp_mm / np.asarray(r.mm_per_px, np.float32)
    f = look.frame(img, disp)
    return look.expose(f, 1.0, np.random.default_rng(seed), np.ones(3), noise=noise)


def _plane(r: GelSightRenderer) -> tuple[np.ndarray, np.ndarray]:
    xs = (np.arange(r.width) + 0.5) * r.mm_per_px[0] - r.fov_mm[0] / 2
    ys = (np.arange(r.height) + 0.5) * r.mm_per_px[1] - r.fov_mm[1] / 2
    return np.meshgrid(xs, ys)


def _sphere_gap(r: GelSightRenderer, radius: float, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    xx, yy = _plane(r)
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    return np.where(d2 < radius**2, radius - np.sqrt(np.maximum(radius**2 - d2, 0.0)), np.inf)


def cue_figure(path: Path) -> None:
    """Save ``sim_cues.png``: textures, edges and shear beside the real calibration frames."""
    plt = _plt()
    cal = load_calibration()
    r = GelSightRenderer(W, H)
    ideal = SensorLook(ideal_sensor(0), r.background.numpy(), r.fov_mm)
    marked = SensorLook(
        next(s for s in fleet() if s.markers and s.marker_pitch_mm < 1.3), r.background.numpy(), r.fov_mm
    )
    xx, yy = _plane(r)
    panels: list[tuple[np.ndarray, str]] = [
        (_real(cal.ball_imgs_rgb[10]), "real: 4 mm ball press"),
        (_real(cal.f0_rgb.astype(np.uint8)), "real: no contact"),
    ]
    cyl = np.where(np.abs(yy) < 9.0, 9.0 - np.sqrt(np.maximum(81.0 - yy**2, 0.0)), np.inf)  # a 9 mm cylinder
    rng = np.random.default_rng(5)
    for name in ("ribbed_plastic", "knurled_metal", "rubber", "wood", "fabric", "embossed_plastic", "stone"):
        s = draw_surface(name, rng, axis=(1.0, 0.3, 0.0))
        pts = np.stack([xx, yy, np.zeros_like(xx)], -1) * 1e-3
        gap = cyl - texture_height(s, pts)
        hm, _ = _press(r, gap, 12.0)
        panels.append((_frame(r, ideal, hm), f"{name}: {MATERIALS[name].texture}, mu {s.friction:.2f}"))
    edge = np.where(xx < 3.0, 0.15 * np.abs(yy) / 7.0, np.inf)  # a box face ending in an edge
    panels.append((_frame(r, ideal, _press(r, edge, 15.0)[0]), "box edge (face ends at x = 3 mm)"))
    wedge = 0.35 * np.abs(xx - 2.0 * yy / 7.0)  # a prism's ridge, turned
    panels.append((_frame(r, ideal, _press(r, wedge, 10.0)[0]), "prism ridge"))
    ball = _sphere_gap(r, 12.0)
    hm, p = _press(r, ball, 12.0)
    n_force = float(p.sum()) * r.mm_per_px[0] * r.mm_per_px[1]
    for ratio in (0.0, 0.6, 0.95):
        disp, slip = shear_field(p, (0.0, ratio * 0.8 * n_force), 0.0, 0.8, r.mm_per_px)
        panels.append(
            (_frame(r, marked, hm, disp), f"markers, shear {ratio:.2f} mu N: slipping {100 * slip:.0f} %")
        )
    disp, slip = shear_field(p, (0.0, 0.0), 25.0, 0.8, r.mm_per_px)
    panels.append((_frame(r, marked, hm, disp), f"torque 25 N mm: slipping {100 * slip:.0f} %"))
    _grid(plt, panels, path, cols=5)


def nuisance_figure(path: Path) -> None:
    """Save ``sim_nuisances.png``: one contact on several fleet sensors beside the two real sensors."""
    plt = _plt()
    cal = load_calibration()
    r = GelSightRenderer(W, H)
    mini = np.load(Path(cal_dir_mini()) / "dataPack.npz")
    panels: list[tuple[np.ndarray, str]] = [
        (_real(cal.ball_imgs_rgb[10]), "real GelSight: ball press"),
        (_real(np.ascontiguousarray(mini["imgs"][5][..., ::-1])), "real GelSight Mini: ball press"),
    ]
    hm, _ = _press(r, _sphere_gap(r, 8.0, -2.0, -1.0), 10.0)  # an 8 mm sphere, 10 N
    bg = r.background.numpy()
    panels.append(
        (_frame(r, SensorLook(ideal_sensor(0), bg, r.fov_mm), hm), "rendered: the calibrated sensor")
    )
    for spec in fleet()[:9]:
        look = SensorLook(spec, bg, r.fov_mm)
        tags = [
            f"LED {'/'.join(f'{g:.2f}' for g in spec.led_gain)}",
            f"{spec.scratches} scr."
            + (", markers" if spec.markers else "")
            + (", AE" if spec.auto_exposure else ""),
            f"mount {spec.mount[0] * 1e3:+.1f}/{spec.mount[1] * 1e3:+.1f} mm",
        ]
        shifted = _shift(hm, spec.mount, r)
        panels.append(
            (_frame(r, look, shifted, noise=1.0, seed=spec.sensor_id), f"{spec.name}: " + ", ".join(tags))
        )
    # Tb - Ta without contact: what exposure jitter, drift, auto-exposure and noise leave (x 8)
    for spec in (fleet()[0], next(s for s in fleet() if s.auto_exposure)):
        look = SensorLook(spec, bg, r.fov_mm)
        rng = np.random.default_rng(1)
        ta = look.expose(look.frame(np.zeros_like(bg)), look.frame_gain(0.5, 0, rng), rng, np.ones(3))
        tb_clean = look.frame(r.render_float(hm[None]).numpy()[0] - bg)
        tb = look.expose(tb_clean, look.frame_gain(1.9, 0, rng), rng, np.ones(3))
        diff = np.clip((tb.astype(np.float32) - ta.astype(np.float32)) * 8 + 128, 0, 255).astype(np.uint8)
        panels.append((diff, f"{spec.name}: Tb - Ta x 8 (AE {'on' if spec.auto_exposure else 'off'})"))
    _grid(plt, panels, path, cols=4)


def cal_dir_mini() -> Path:
    """Folder of the GelSight Mini calibration (beside the GelSight's in the taxim wheel)."""
    from training.sim.gelsight import calib_dir

    return calib_dir().parent / "gelsight_mini"


def _shift(hm: np.ndarray, mount: tuple[float, float, float], r: GelSightRenderer) -> np.ndarray:
    """Return the height map as a sensor mounted with ``mount`` sees it (its view moved on the pad)."""
    du, dv, rot = mount
    m = cv2.getRotationMatrix2D((r.width / 2, r.height / 2), -math.degrees(rot), 1.0)
    m[0, 2] -= du * 1e3 / r.mm_per_px[0]
    m[1, 2] -= dv * 1e3 / r.mm_per_px[1]
    return cv2.warpAffine(hm, m, (r.width, r.height), flags=cv2.INTER_LINEAR, borderValue=FAR_MM)


def _grid(plt: Any, panels: list[tuple[np.ndarray, str]], path: Path, cols: int) -> None:
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows))
    for ax in np.asarray(axes).ravel():
        ax.axis("off")
    for ax, (img, title) in zip(np.asarray(axes).ravel(), panels, strict=False):
        ax.imshow(img)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=60)
    plt.close(fig)


def renderer_figure(path: Path, indices: tuple[int, ...] = (0, 10, 20), width: int = 240) -> None:
    """Save a PNG: real ball-press frames next to their renderings (same sphere, centre, depth)."""
    plt = _plt()
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


def picture_grid(data: Path, path: Path, rows: int = 8) -> None:
    """Save a PNG grid: Ta, Tb, Tc, Tb − Ta of ``rows`` simulated trials of ``data`` (half successes)."""
    from tactile_grasp_predictor.data.calandra import CalandraShard

    plt = _plt()
    keys = ["gelsightA_before", "gelsightA_during", "gelsightA_after"]
    picked: dict[int, list[Any]] = {0: [], 1: []}
    for shard_path in sorted(data.glob("*.h5")):
        with CalandraShard(shard_path) as shard:
            for i in shard.trial_indices():
                t = shard.read(i, keys=keys)
                if t.extras.get("sim_force_A_tb", 1.0) > 1.0 and len(picked[t.label]) < rows // 2:
                    picked[t.label].append(t)
        if all(len(v) >= rows // 2 for v in picked.values()):
            break
    trials = picked[1] + picked[0]
    fig, axes = plt.subplots(len(trials), 4, figsize=(8, 1.6 * len(trials)))
    for r, t in enumerate(trials):
        ta, tb, tc = (t.images[k] for k in keys)
        diff = np.clip((tb.astype(np.float32) - ta.astype(np.float32)) * 3 + 128, 0, 255).astype(np.uint8)
        for c, (img, title) in enumerate(
            zip((ta, tb, tc, diff), ("Ta (before)", "Tb (during)", "Tc (after)", "Tb - Ta"), strict=True)
        ):
            axes[r, c].imshow(img)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(title, fontsize=9)
        kind = t.extras.get("sim_object_kind", b"?")
        mat = t.extras.get("sim_material_A_tb", b"")
        dec = [v.decode() if isinstance(v, bytes) else str(v) for v in (kind, mat)]
        axes[r, 0].set_ylabel(f"{dec[0]}\n{dec[1]}\n{'LIFT ok' if t.label else 'FAIL'}", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=55)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Write the figures into ``--out``."""
    p = argparse.ArgumentParser(prog="python -m training.sim.figures", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=None, help="simulated shards for sim_grid.png")
    args = p.parse_args(argv)
    renderer_figure(args.out / "sim_renderer_vs_real.png")
    cue_figure(args.out / "sim_cues.png")
    nuisance_figure(args.out / "sim_nuisances.png")
    if args.data:
        picture_grid(args.data, args.out / "sim_grid.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
