"""The Calandra trial protocol in the simulated world, and the trial dict it produces.

Timeline (trial time in seconds; the object has settled on the table beforehand):
0 hand at the grasp pose, fingers open, no contact · ``t_before`` (Ta) · ``t_close``
the fingers start closing at constant speed until the grip-force limit stops them ·
``t_during`` (Tb) about 1.3 s later, closed and settled · ``t_lift`` lift 10 cm in 0.8 s
and hold · ``t_after`` (Tc). Label: the object is still held (lifted with the hand) and
rotated less than ``ROT_LIMIT_DEG`` in the grasp.

Camera frames happen on a tick grid ``k / fps`` (snapped to the 10 ms control period);
Ta, Tb and Tc are ticks of that grid, so the optional streams contain exactly the
snapshot frames (same physics state, same noise).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from training.sim import gel
from training.sim.gelsight import FAR_MM, GelSightRenderer
from training.sim.objects import ObjectInstance, ObjectSpec, catalogue, instantiate, texture_mm
from training.sim.world import PAD_HALF_X, PAD_HALF_Z, STROKE_M, TIMESTEP, GraspWorld

CONTROL_DT = 0.01  # s, 100 Hz control / capture grid
STEPS_PER_CONTROL = round(CONTROL_DT / TIMESTEP)
WIDTH_RATE_HZ = 50.0
CLOSE_SPEED = 0.12  # m/s, opening change rate (WSG-50 set speed)
LIFT_HEIGHT = 0.10
LIFT_TIME = 0.8
HOLD_TIME = 1.0
ROT_LIMIT_DEG = 25.0
T_CLOSE = 0.6
TB_AFTER_CLOSE = 1.3


@dataclass(frozen=True)
class SimConfig:
    """What a run renders: image size, camera rate, streams, ray grid, noise."""

    width: int = 160
    height: int = 120
    fps: float = 15.0
    streams: bool = False
    ray_grid: tuple[int, int] = (0, 0)  # rays per pad (x, y); 0 = 0.4 x the image size
    noise_std: float = 1.5  # sensor noise, intensity units
    stream_lead_s: float = 0.5  # streams start this long before closing


def _rot_angle_deg(r: np.ndarray) -> float:
    c = (np.trace(r) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _quat_yaw(yaw: float) -> tuple[float, float, float, float]:
    return (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))


class TrialSimulator:
    """Simulates trials one by one; holds the renderer and the catalogue (one per process)."""

    def __init__(self, config: SimConfig, objects: list[ObjectSpec] | None = None) -> None:
        self.cfg = config
        self.objects = objects if objects is not None else catalogue()
        self.renderer = GelSightRenderer(config.width, config.height)
        self.dome_mm = self.renderer.dome.numpy().astype(np.float32)  # H x W, <= 0
        if config.ray_grid == (0, 0):
            config = dataclasses.replace(
                config, ray_grid=(math.ceil(0.4 * config.width), math.ceil(0.4 * config.height))
            )
            self.cfg = config
        nu, nv = config.ray_grid
        self.pixel_area_mm2 = (2 * PAD_HALF_X * 1e3 / config.width) * (2 * PAD_HALF_Z * 1e3 / config.height)
        assert nu >= 8 and nv >= 6

    # --- timeline -----------------------------------------------------------------------
    def _tick_step(self, k: int) -> int:
        """Control index of camera tick ``k``."""
        return round(k / self.cfg.fps / CONTROL_DT)

    def simulate(self, seed: int, index: int, grip_force: float | None = None) -> dict[str, Any]:
        """Simulate trial ``index`` of run ``seed``: a dict with the Calandra keys + ``sim_*`` extras."""
        cfg = self.cfg
        ss = np.random.SeedSequence([seed, index])
        rng = np.random.default_rng(ss)
        for _attempt in range(20):
            spec = self.objects[int(rng.integers(len(self.objects)))]
            obj = instantiate(spec, rng)
            setup = self._setup(obj, rng, grip_force)
            if setup is not None:
                break
        else:  # pragma: no cover - the catalogue always has graspable objects
            raise RuntimeError(f"trial {index}: no graspable object found")
        world, grasp_pos, yaw, opening, grip_force, extras = setup

        fps = cfg.fps
        k_before = math.floor((T_CLOSE - 0.1) * fps)
        k_during = math.ceil((T_CLOSE + TB_AFTER_CLOSE) * fps)
        n_close = round(T_CLOSE / CONTROL_DT)
        n_during = self._tick_step(k_during)
        n_lift = n_during + round(0.1 / CONTROL_DT)
        n_lift_end = n_lift + round(LIFT_TIME / CONTROL_DT)
        k_after = math.ceil((n_lift_end * CONTROL_DT + HOLD_TIME) * fps)
        n_after = self._tick_step(k_after)
        snap_ticks = {"before": k_before, "during": k_during, "after": k_after}
        if cfg.streams:
            k0 = math.ceil((T_CLOSE - cfg.stream_lead_s) * fps)
            ticks = list(range(k0, k_after + 1))
        else:
            ticks = sorted(snap_ticks.values())
        capture_at: dict[int, list[int]] = {}
        for k in ticks:
            capture_at.setdefault(self._tick_step(k), []).append(k)

        width_every = round(1.0 / WIDTH_RATE_HZ / CONTROL_DT)
        g_time, g_width = [], []
        hmaps: dict[tuple[str, int], np.ndarray] = {}
        info: dict[str, float] = {}
        pose_tb: tuple[np.ndarray, np.ndarray] | None = None
        z0 = grasp_pos[2]
        for n in range(n_after + 1):
            t = n * CONTROL_DT
            # commands for the coming control period
            if n >= n_close:
                world.set_opening(opening - CLOSE_SPEED * (t - T_CLOSE))
            if n >= n_lift:
                s = min(1.0, (t - n_lift * CONTROL_DT) / LIFT_TIME)
                lift = LIFT_HEIGHT * (10 * s**3 - 15 * s**4 + 6 * s**5)  # minimum-jerk
                world.set_hand((grasp_pos[0], grasp_pos[1], z0 + lift), yaw)
            if n > 0:
                world.step(STEPS_PER_CONTROL)
            if n % width_every == 0 or n == n_after:
                g_time.append(round(t, 6))
                g_width.append(world.width())
            if n == n_during:
                pose_tb = world.object_pose()
                info["force_A_tb"] = world.pad_normal_force("A")
                info["force_B_tb"] = world.pad_normal_force("B")
                info["width_tb"] = world.width()
            for k in capture_at.get(n, []):
                for side in "AB":
                    hmaps[(side, k)] = self._height_map(world, obj, side, info if k == k_during else None)

        assert pose_tb is not None
        pos_tb, rot_tb = pose_tb
        pos_tc, rot_tc = world.object_pose()
        r_hand = world.hand_rotation()  # the hand does not rotate: relative rotation = object rotation
        rot_rel = r_hand.T @ rot_tc @ (r_hand.T @ rot_tb).T
        rotation = _rot_angle_deg(rot_rel)
        rise = float(pos_tc[2] - pos_tb[2])
        held = rise > 0.5 * LIFT_HEIGHT and world.width() > 0.002
        success = bool(held and rotation < ROT_LIMIT_DEG)

        images = self._render(hmaps, seed, index)
        trial: dict[str, Any] = {
            "object_name": spec.name.encode(),
            "is_gripping": int(success),
        }
        for side in "AB":
            for snap, k in snap_ticks.items():
                trial[f"gelsight{side}_{snap}"] = images[(side, k)]
        times = {name: round(self._tick_step(k) * CONTROL_DT, 6) for name, k in snap_ticks.items()}
        trial.update(
            {
                "sim_t_before": times["before"],
                "sim_t_close": round(n_close * CONTROL_DT, 6),
                "sim_t_during": times["during"],
                "sim_t_lift": round(n_lift * CONTROL_DT, 6),
                "sim_t_after": times["after"],
                "sim_object_kind": spec.kind.encode(),
                "sim_mass": obj.mass,
                "sim_friction": obj.friction,
                "sim_com_x": obj.com[0],
                "sim_com_y": obj.com[1],
                "sim_com_z": obj.com[2],
                "sim_grip_force": grip_force,
                "sim_grasp_yaw": yaw,
                "sim_grasp_height": float(z0),
                "sim_opening": opening,
                "sim_rotation_deg": rotation,
                "sim_lift_rise": rise,
                "sim_held": int(held),
                "sim_width_tb": info["width_tb"],
                "sim_force_A_tb": info["force_A_tb"],
                "sim_force_B_tb": info["force_B_tb"],
                "sim_depth_A_tb": info.get("depth_A", 0.0),
                "sim_contact_px_A_tb": info.get("contact_px_A", 0.0),
                "sim_seed": seed,
                "sim_index": index,
                "sim_fps": fps,
                "sim_gripper_time": np.asarray(g_time, np.float64),
                "sim_gripper_width": np.asarray(g_width, np.float64),
            }
        )
        trial.update(extras)
        if cfg.streams:
            for side in "AB":
                trial[f"sim_gelsight{side}_stream"] = np.stack([images[(side, k)] for k in ticks])
                trial[f"sim_gelsight{side}_stream_time"] = np.asarray(
                    [round(self._tick_step(k) * CONTROL_DT, 6) for k in ticks], np.float64
                )
        return trial

    # --- pieces -------------------------------------------------------------------------
    def _setup(
        self, obj: ObjectInstance, rng: np.random.Generator, force: float | None = None
    ) -> tuple | None:
        """Settle the object, choose the grasp; ``None`` if the object does not fit the gripper."""
        obj_yaw = float(rng.uniform(-math.pi, math.pi))
        grip_force = float(rng.uniform(5.0, 35.0))
        if force is not None:  # an override keeps every other draw the same
            grip_force = float(force)
        world = GraspWorld(obj, grip_force, (0.0, 0.0, obj.half_extent[2] + 0.002), _quat_yaw(obj_yaw))
        world.set_hand((0.0, 0.0, 0.4), 0.0, instant=True)
        world.set_opening(STROKE_M, instant=True)
        world.step(round(0.4 / TIMESTEP))  # settle
        pos, rot = world.object_pose()
        # the object's long horizontal axis after settling
        ax = rot[:, 0]
        settled_yaw = math.atan2(ax[1], ax[0])
        rel = float(rng.uniform(-0.6, 0.6))
        if obj.spec.kind == "box" and rng.random() < 0.5:
            rel += math.pi / 2  # grasp the other pair of faces
        yaw = settled_yaw + rel
        world.set_hand((0.0, 0.0, 0.4), yaw, instant=True)
        r_hand = world.hand_rotation()
        half = np.asarray(obj.half_extent)
        r_oh = r_hand.T @ rot  # object axes in the hand frame
        ext = np.abs(r_oh) @ half  # bounding half-extent along hand x, y, z
        clearance = float(rng.uniform(0.006, 0.012))
        opening = 2 * ext[1] + 2 * clearance
        if opening > STROKE_M - 0.002:
            return None
        # grasp position: along the hand x (near the object's long axis), height on the object
        # (retry a few times where the pads would miss the object: a grasp must find a part)
        z_top = float(pos[2] + ext[2])
        z_lo = PAD_HALF_Z + 0.0012  # the pad's lower edge just above the table
        z_hi = max(z_lo, z_top - 0.003)
        world.set_opening(opening, instant=True)
        for _ in range(6):
            lo, hi = (-0.3, 0.9) if obj.spec.kind == "hammer" else (-0.6, 0.6)  # hammers: towards the head
            along = float(rng.uniform(lo, hi)) * max(ext[0] - 0.004, 0.0)
            z = float(rng.uniform(z_lo, z_hi))
            grasp = pos + r_hand[:, 0] * along
            grasp_pos = (float(grasp[0]), float(grasp[1]), z)
            world.set_hand(grasp_pos, yaw, instant=True)
            gap, _ = world.gap_map("A", 16, 12)
            if np.isfinite(gap).mean() >= 0.15:
                break
        else:
            return None
        world.step(1)
        extras = {
            "sim_grasp_offset": along,
            "sim_object_settled_z": float(pos[2]),
            "sim_colour_seed": int(rng.integers(2**31)),
        }
        return world, grasp_pos, yaw, float(opening), grip_force, extras

    def _height_map(
        self, world: GraspWorld, obj: ObjectInstance, side: str, info: dict[str, float] | None
    ) -> np.ndarray:
        cfg = self.cfg
        nu, nv = cfg.ray_grid
        gap, pts = world.gap_map(side, nu, nv)
        force = world.pad_normal_force(side)
        gap_mm = gap * 1e3
        finite = np.isfinite(gap_mm)
        if not finite.any():
            return np.full((cfg.height, cfg.width), FAR_MM, np.float32)
        # the object's surface texture (fixed in the object frame), then up-sample to image size
        opos, orot = world.object_pose()
        p_obj = (pts.reshape(-1, 3) - opos[None]) @ orot  # world -> object frame
        tex = texture_mm(obj, p_obj).reshape(gap_mm.shape)
        coarse = np.where(finite, gap_mm + tex, FAR_MM).astype(np.float32)
        g = cv2.resize(coarse, (cfg.width, cfg.height), interpolation=cv2.INTER_LINEAR)
        g_inf = np.where(g > FAR_MM * 0.5, np.inf, g)
        hm, depth = gel.height_map(g_inf, force, self.pixel_area_mm2, dome_mm=self.dome_mm)
        if info is not None and side == "A":
            info["depth_A"] = depth
            info["contact_px_A"] = float((hm < 0).sum())
        return hm

    def _render(
        self, hmaps: dict[tuple[str, int], np.ndarray], seed: int, index: int
    ) -> dict[tuple[str, int], np.ndarray]:
        keys = sorted(hmaps)
        crng = np.random.default_rng([seed, index, 1])
        gain = {s: crng.uniform(0.93, 1.07, size=3) for s in "AB"}  # per-trial, per-sensor colour variation
        out: dict[tuple[str, int], np.ndarray] = {}
        batch = 16
        for i in range(0, len(keys), batch):
            chunk = keys[i : i + batch]
            img = self.renderer.render_float(np.stack([hmaps[k] for k in chunk])).permute(0, 2, 3, 1).numpy()
            for j, (side, k) in enumerate(chunk):
                nrng = np.random.default_rng([seed, index, 2, ord(side), k])  # same frame, same noise
                frame = img[j] * gain[side].astype(np.float32)
                if self.cfg.noise_std > 0:
                    frame = frame + nrng.standard_normal(frame.shape, dtype=np.float32) * np.float32(
                        self.cfg.noise_std
                    )
                out[(side, k)] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        return out
