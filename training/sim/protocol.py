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
from training.sim.materials import texture_height
from training.sim.objects import ObjectInstance, ObjectSpec, catalogue, instantiate
from training.sim.sensors import N_ROBOTS, SensorLook, SensorSpec, fleet, ideal_sensor
from training.sim.shear import shear_field
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
TEXTURE_MAX_MM = 0.25  # above every material's texture height (materials.py)


SENSOR_SETS = ("fleet", "ideal")


@dataclass(frozen=True)
class SimConfig:
    """What a run renders: image size, camera rate, streams, ray grid, camera noise, which sensors."""

    width: int = 160
    height: int = 120
    fps: float = 15.0
    streams: bool = False
    ray_grid: tuple[int, int] = (0, 0)  # rays per pad (x, y); 0 = 0.4 x the image size
    noise: float = 1.0  # camera noise scale: 1 = each sensor's own, 0 = none
    sensors: str = "fleet"  # fleet: the robots' sensors and their nuisances; ideal: one clean sensor
    stream_lead_s: float = 0.5  # streams start this long before closing

    def __post_init__(self) -> None:
        if self.sensors not in SENSOR_SETS:
            raise ValueError(f"sensors: {self.sensors!r} is not one of {SENSOR_SETS}")


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
        self.sensors: tuple[SensorSpec, ...] = (
            fleet() if config.sensors == "fleet" else (ideal_sensor(0), ideal_sensor(1))
        )
        self._looks: dict[int, SensorLook] = {}
        self.mm_per_px = self.renderer.mm_per_px
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
        robot = int(rng.integers(N_ROBOTS)) if cfg.sensors == "fleet" else 0
        sensor = {"A": self.sensors[2 * robot], "B": self.sensors[2 * robot + 1]}
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
        hmaps: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}
        info: dict[str, Any] = {}
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
                info["width_tb"] = world.width()
            for k in capture_at.get(n, []):
                for side in "AB":
                    hmaps[(side, k)] = self._contact(
                        world, obj, side, sensor[side], info if k == k_during else None
                    )

        assert pose_tb is not None
        pos_tb, rot_tb = pose_tb
        pos_tc, rot_tc = world.object_pose()
        r_hand = world.hand_rotation()  # the hand does not rotate: relative rotation = object rotation
        rot_rel = r_hand.T @ rot_tc @ (r_hand.T @ rot_tb).T
        rotation = _rot_angle_deg(rot_rel)
        rise = float(pos_tc[2] - pos_tb[2])
        held = rise > 0.5 * LIFT_HEIGHT and world.width() > 0.002
        success = bool(held and rotation < ROT_LIMIT_DEG)

        times_of = {k: self._tick_step(k) * CONTROL_DT for k in {k for _s, k in hmaps}}
        images = self._render(hmaps, sensor, times_of, seed, index)
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
                "sim_material": obj.surfaces[0].material.encode(),
                "sim_mass": obj.mass,
                "sim_volume": obj.volume,
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
                "sim_force_A_tb": info.get("force_A", 0.0),
                "sim_force_B_tb": info.get("force_B", 0.0),
                "sim_depth_A_tb": info.get("depth_A", 0.0),
                "sim_contact_px_A_tb": info.get("contact_px_A", 0.0),
                "sim_material_A_tb": str(info.get("material_A", "")).encode(),
                "sim_friction_A_tb": info.get("friction_A", 0.0),
                "sim_shear_A_tb": info.get("shear_A", 0.0),
                "sim_slip_frac_A_tb": info.get("slip_A", 0.0),
                "sim_robot": robot,
                "sim_sensor_A": sensor["A"].sensor_id,
                "sim_sensor_B": sensor["B"].sensor_id,
                "sim_markers_A": int(sensor["A"].markers),
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
        grip_force = float(rng.uniform(5.0, 25.0))
        if force is not None:  # an override keeps every other draw the same
            grip_force = float(force)
        world = GraspWorld(obj, grip_force, (0.0, 0.0, obj.half_extent[2] + 0.002), _quat_yaw(obj_yaw))
        world.set_hand((0.0, 0.0, 0.4), 0.0, instant=True)
        world.set_opening(STROKE_M, instant=True)
        if world.settle(1.5) > 0.01:
            return None  # still moving: another object
        world.step(round(0.1 / TIMESTEP))  # undamped: what is left is where it rests
        pos, rot = world.object_pose()
        # the object's long horizontal axis after settling
        ax = rot[:, 0]
        settled_yaw = math.atan2(ax[1], ax[0])
        rel = float(rng.uniform(-0.6, 0.6))
        if obj.spec.kind == "box" and rng.random() < 0.5:
            rel += math.pi / 2  # grasp the other pair of faces
        half = np.asarray(obj.half_extent)
        clearance = float(rng.uniform(0.006, 0.012))
        for _ in range(4):  # long objects: turn the grasp towards across the long axis until it fits
            yaw = settled_yaw + rel
            world.set_hand((0.0, 0.0, 0.4), yaw, instant=True)
            r_hand = world.hand_rotation()
            ext = np.abs(r_hand.T @ rot) @ half  # bounding half-extent along hand x, y, z
            opening = 2 * ext[1] + 2 * clearance
            if opening <= STROKE_M - 0.002:
                break
            base = math.pi / 2 if rel > math.pi / 4 else 0.0
            rel = base + 0.5 * (rel - base)
        else:
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
            # both pads must see a part of the object within their reach (the fingers meet in the middle)
            seen = [float((world.gap_map(side, 16, 12)[0] < 0.5 * opening).mean()) for side in "AB"]
            if min(seen) >= 0.15:
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

    def _contact(
        self,
        world: GraspWorld,
        obj: ObjectInstance,
        side: str,
        sensor: SensorSpec,
        info: dict[str, Any] | None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the object's height map (H x W mm) on pad ``side`` and the gel's shear (mm) if loaded.

        The sensor's mounting offset places its field of view on the pad; the object's surface
        texture is added at image resolution where the object is near the pad; the Winkler gel
        carries the pad's normal force and the brush model its tangential load.
        """
        cfg = self.cfg
        nu, nv = cfg.ray_grid
        fn, ft, torque, _cop = world.pad_wrench(side)
        fn = max(fn, 0.0)
        if info is not None:
            info[f"force_{side}"] = fn
        far = np.full((cfg.height, cfg.width), FAR_MM, np.float32)
        if fn < gel.MIN_FORCE_N:  # an unloaded gel is not pressed wherever the object is: no rays
            return far, None
        gap, pts, part = world.gap_map(side, nu, nv, mount=sensor.mount)
        finite = np.isfinite(gap)
        if not finite.any():
            return far, None
        size = (cfg.width, cfg.height)
        coarse = np.where(finite, gap * 1e3, FAR_MM).astype(np.float32)
        g = cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR)
        # the texture matters only where the gel can touch: within its thickness of the closest
        # point (the indentation is capped there) plus the texture's height
        free = g - self.dome_mm
        near = free < free.min() + gel.MAX_DEPTH_MM + TEXTURE_MAX_MM
        part_px = cv2.resize(part.astype(np.float32), size, interpolation=cv2.INTER_NEAREST).astype(np.int32)
        used = [int(i) for i in np.unique(part_px[near]) if i >= 0]
        if used:
            pts_px = cv2.resize(
                pts.astype(np.float32), size, interpolation=cv2.INTER_LINEAR
            )  # H x W x 3 world
            opos, orot = world.object_pose()
            for i in used:
                sel = near & (part_px == i)
                p_obj = (pts_px[sel].astype(np.float64) - opos[None]) @ orot  # world -> object frame
                g[sel] -= texture_height(obj.surfaces[obj.parts[i].surface], p_obj).astype(np.float32)
        g_inf = np.where(g > FAR_MM * 0.5, np.inf, g)
        hm, depth = gel.height_map(g_inf, fn, self.pixel_area_mm2, dome_mm=self.dome_mm)
        disp = None
        slip = shear = mu = 0.0
        main = -1
        if fn >= gel.MIN_FORCE_N:
            pressure = gel.pressure(hm, self.dome_mm)
            pressed = pressure > 0
            if pressed.any():
                counts = np.bincount(part_px[pressed & (part_px >= 0)], minlength=len(obj.parts))
                main = int(np.argmax(counts)) if counts.sum() else -1
                mu = obj.surfaces[obj.parts[main].surface].friction if main >= 0 else obj.friction
                f_img, t_img = self._to_image(ft, torque, sensor.mount)
                fmag = float(np.hypot(*f_img))
                if fmag > mu * fn:  # the gel face carries at most mu N; the rest loads the pad's rim
                    f_img *= mu * fn / fmag
                shear = float(np.hypot(*f_img)) / max(mu * fn, 1e-9)
                # the image shows the gel's shear through its markers only; the Tb record needs the slip
                if sensor.markers or (info is not None and side == "A"):
                    f_xy = (float(f_img[0]), float(f_img[1]))
                    disp, slip = shear_field(pressure, f_xy, t_img, mu, self.mm_per_px, field=sensor.markers)
        if info is not None and side == "A":
            info["depth_A"] = depth
            info["contact_px_A"] = float((hm < self.dome_mm).sum())
            info["material_A"] = obj.surfaces[obj.parts[main].surface].material if main >= 0 else ""
            info["friction_A"] = mu
            info["shear_A"] = shear
            info["slip_A"] = slip
        return hm, disp

    @staticmethod
    def _to_image(
        ft: np.ndarray, torque: float, mount: tuple[float, float, float]
    ) -> tuple[np.ndarray, float]:
        """Turn the pad-frame tangential force (N) and torque (N m) into image axes (N, N mm).

        The torque is taken about the image centre (the sensor's field of view, moved by ``mount``).
        """
        du, dv, rot = mount
        c, s = math.cos(rot), math.sin(rot)
        f_img = np.array([c * ft[0] + s * ft[1], -s * ft[0] + c * ft[1]])
        r0 = (du * c - dv * s, du * s + dv * c)  # image centre in the pad frame (m)
        t_img = torque - (r0[0] * ft[1] - r0[1] * ft[0])
        return f_img, t_img * 1e3

    def _look(self, sensor: SensorSpec) -> SensorLook:
        look = self._looks.get(sensor.sensor_id)
        if look is None:
            look = SensorLook(sensor, self.renderer.background.numpy(), self.renderer.fov_mm)
            self._looks[sensor.sensor_id] = look
        return look

    def _render(
        self,
        hmaps: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]],
        sensor: dict[str, SensorSpec],
        times: dict[int, float],
        seed: int,
        index: int,
    ) -> dict[tuple[str, int], np.ndarray]:
        keys = sorted(hmaps)
        crng = np.random.default_rng([seed, index, 1])
        wb = {s: crng.uniform(0.97, 1.03, size=3) for s in "AB"}  # per-trial white balance
        bg = self.renderer.background.numpy()
        px = np.asarray(self.mm_per_px, np.float32)
        out: dict[tuple[str, int], np.ndarray] = {}
        batch = 16
        for i in range(0, len(keys), batch):
            chunk = keys[i : i + batch]
            img = self.renderer.render_float(np.stack([hmaps[k][0] for k in chunk])).numpy()
            for j, (side, k) in enumerate(chunk):
                look = self._look(sensor[side])
                nrng = np.random.default_rng([seed, index, 2, ord(side), k])  # same frame, same noise
                disp = hmaps[(side, k)][1]
                frame = look.frame(img[j] - bg, None if disp is None else disp / px)
                gain = look.frame_gain(times[k], index, nrng)
                out[(side, k)] = look.expose(frame, gain, nrng, wb[side], self.cfg.noise)
        return out
