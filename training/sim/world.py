"""The MuJoCo grasp world: a WSG-50-like parallel gripper with GelSight pads, a table, one object.

Hand frame: x along the pads' width (image x), y the closing axis (left finger = GelSight
A on +y, right = B on -y), z up. The hand has x, y, z and yaw joints driven by stiff
position servos (a robot arm under position control; gravity compensated); each finger
is a slide joint driven by a position actuator whose force range is the grip force
(5-35 N) and whose target moves at a constant speed, like the WSG-50 closing at a set
speed until the force limit stops it.
The object's geoms have ``priority=1`` so that their friction governs the contact.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from training.sim.objects import ObjectInstance

STROKE_M = 0.110  # WSG-50 full opening
PAD_HALF_X = 0.00945  # GelSight field of view: 18.9 mm ...
PAD_HALF_Z = 0.0071  # ... x 14.2 mm
PAD_THICK = 0.004
FINGER_KP = 4000.0  # N/m: position servo stiffness
OBJECT_GROUP = 3  # geom group of the object (rays see only this group)
TIMESTEP = 0.0025


@dataclass(frozen=True)
class GraspPose:
    """Where the hand goes: pad centre position (world, m), yaw (rad), opening (m)."""

    pos: tuple[float, float, float]
    yaw: float
    opening: float


def _fmt(v: tuple[float, ...] | list[float]) -> str:
    return " ".join(f"{x:.6g}" for x in v)


def build_xml(
    obj: ObjectInstance,
    grip_force: float,
    obj_pos: tuple[float, float, float],
    obj_quat: tuple[float, float, float, float],
) -> str:
    """MJCF text of the world for one trial."""
    assert 1.0 <= grip_force <= 80.0, grip_force
    geoms, assets = [], []
    for i, p in enumerate(obj.parts):
        mu = obj.surfaces[p.surface].friction
        if p.type == "mesh":
            assets.append(f'<mesh name="part{i}" vertex="{_fmt([c for v in p.mesh for c in v])}"/>')
            shape = f'type="mesh" mesh="part{i}"'
        else:
            shape = f'type="{p.type}" size="{_fmt(p.size)}"'
        geoms.append(
            f'<geom name="part{i}" {shape} pos="{_fmt(p.pos)}" euler="{_fmt(p.euler)}" '
            f'group="{OBJECT_GROUP}" priority="1" condim="4" friction="{mu:.5g} {0.004 * mu:.5g} 0.0001" '
            f'contype="1" conaffinity="1" rgba="0.8 0.5 0.3 1"/>'
        )
    finger = """
      <body name="finger_{s}" pos="0 0 0" gravcomp="1">
        <joint name="j_{s}" type="slide" axis="0 {a} 0" range="0 {half_stroke}" damping="30" armature="0.05"/>
        <geom name="pad_{s}" type="box" size="{phx} {pht} {phz}" pos="0 {a_pt} 0" contype="2" conaffinity="1"
              friction="0.3 0.001 0.0001" condim="4" solref="0.005 1" rgba="0.2 0.2 0.25 1" mass="0.05"/>
        <geom type="box" size="0.013 0.006 0.035" pos="0 {a_back} 0.03" contype="2" conaffinity="1"
              group="1" rgba="0.5 0.5 0.55 1" mass="0.15"/>
      </body>"""
    fingers = "".join(
        finger.format(
            s=s,
            a=a,
            half_stroke=STROKE_M / 2,
            phx=PAD_HALF_X,
            pht=PAD_THICK / 2,
            phz=PAD_HALF_Z,
            a_pt=a * PAD_THICK / 2,
            a_back=a * (PAD_THICK + 0.006),
        )
        for s, a in (("A", 1), ("B", -1))
    )
    return f"""
<mujoco model="tgp_grasp">
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="3">
    <flag multiccd="enable"/>
  </option>
  <asset>{"".join(assets)}</asset>
  <worldbody>
    <geom name="table" type="plane" size="0.5 0.5 0.01" contype="1" conaffinity="1"
          friction="0.6 0.005 0.0001"/>
    <body name="hand" pos="0 0 0" gravcomp="1">
      <joint name="hand_x" type="slide" axis="1 0 0" damping="800" armature="1"/>
      <joint name="hand_y" type="slide" axis="0 1 0" damping="800" armature="1"/>
      <joint name="hand_z" type="slide" axis="0 0 1" damping="800" armature="1"/>
      <joint name="hand_yaw" type="hinge" axis="0 0 1" damping="50" armature="0.1"/>
      <geom type="box" size="0.03 0.07 0.01" pos="0 0 0.075" contype="0" conaffinity="0" rgba="0.3 0.3 0.3 1"
            mass="0.8"/>
      {fingers}
    </body>
    <body name="object" pos="{_fmt(obj_pos)}" quat="{_fmt(obj_quat)}">
      <freejoint name="object_free"/>
      <inertial pos="{_fmt(obj.com)}" mass="{obj.mass:.6g}" diaginertia="{_fmt(obj.inertia)}"/>
      {"".join(geoms)}
    </body>
  </worldbody>
  <actuator>
    <position name="arm_x" joint="hand_x" kp="40000" forcerange="-500 500"/>
    <position name="arm_y" joint="hand_y" kp="40000" forcerange="-500 500"/>
    <position name="arm_z" joint="hand_z" kp="40000" forcerange="-500 500"/>
    <position name="arm_yaw" joint="hand_yaw" kp="2000" forcerange="-50 50"/>
    <position name="grip_A" joint="j_A" kp="{FINGER_KP}" ctrlrange="-0.03 {STROKE_M / 2}"
              forcerange="-{grip_force:.5g} {grip_force:.5g}"/>
    <position name="grip_B" joint="j_B" kp="{FINGER_KP}" ctrlrange="-0.03 {STROKE_M / 2}"
              forcerange="-{grip_force:.5g} {grip_force:.5g}"/>
  </actuator>
</mujoco>
"""


class GraspWorld:
    """One trial's compiled world with helpers to move the hand and read the pads."""

    def __init__(
        self,
        obj: ObjectInstance,
        grip_force: float,
        obj_pos: tuple[float, float, float],
        obj_quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0),
    ) -> None:
        self.model = mujoco.MjModel.from_xml_string(build_xml(obj, grip_force, obj_pos, obj_quat))
        self.data = mujoco.MjData(self.model)
        self.obj = obj
        m = self.model
        self.obj_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "object")
        self.finger_body = {s: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, f"finger_{s}") for s in "AB"}
        self.pad_geom = {s: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"pad_{s}") for s in "AB"}
        self.qadr = {
            s: m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"j_{s}")] for s in "AB"
        }
        jid = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"hand_{a}") for a in ("x", "y", "z", "yaw")]
        self.hand_qadr = m.jnt_qposadr[jid]
        self.hand_dofadr = m.jnt_dofadr[jid]
        self.hand_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "hand")
        self.obj_geoms = set(np.flatnonzero(m.geom_bodyid == self.obj_body).tolist())
        # geom id -> index of the object part (its surface), -1 for every other geom
        self.geom_part = np.full(m.ngeom + 1, -1, np.int32)
        for i in range(len(obj.parts)):
            self.geom_part[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"part{i}")] = i
        self._geomgroup = np.zeros(6, np.uint8)
        self._geomgroup[OBJECT_GROUP] = 1
        mujoco.mj_forward(m, self.data)

    # --- hand and fingers -------------------------------------------------------------
    def set_hand(
        self, pos: tuple[float, float, float] | np.ndarray, yaw: float, instant: bool = False
    ) -> None:
        """Command the hand (pad centre) to ``pos`` with ``yaw`` about z; ``instant`` teleports it there."""
        target = np.array([pos[0], pos[1], pos[2], yaw], np.float64)
        self.data.ctrl[0:4] = target
        if instant:
            self.data.qpos[self.hand_qadr] = target
            self.data.qvel[self.hand_dofadr] = 0.0
            mujoco.mj_forward(self.model, self.data)

    def set_opening(self, width: float, instant: bool = False) -> None:
        """Command the finger opening (m); ``instant`` also teleports the fingers there."""
        half = min(max(width / 2, -0.03), STROKE_M / 2)
        self.data.ctrl[4:6] = half
        if instant:
            for s in "AB":
                self.data.qpos[self.qadr[s]] = max(half, 0.0)
                self.data.qvel[
                    self.model.jnt_dofadr[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, f"j_{s}")]
                ] = 0.0

    def width(self) -> float:
        """Return the current finger opening (m), >= 0 like the WSG-50 reports it (soft joint limits)."""
        return max(0.0, float(self.data.qpos[self.qadr["A"]] + self.data.qpos[self.qadr["B"]]))

    def step(self, n: int = 1) -> None:
        """Advance the physics ``n`` steps."""
        mujoco.mj_step(self.model, self.data, nstep=n)

    def settle(self, seconds: float, rest_time: float = 0.05, speed: float = 0.005) -> float:
        """Let the object come to rest on the table; return its remaining speed (m/s).

        The object's free joint is damped with a time constant of ``rest_time`` (a hand
        steadying it; without rolling resistance a ball or a cylinder with an off-axis
        centre of mass rocks for ever) in 0.1 s steps until it moves slower than ``speed``
        or ``seconds`` have passed; then the damping is removed.
        """
        m = self.model
        jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "object_free")
        dof = m.jnt_dofadr[jid]
        m.dof_damping[dof : dof + 3] = m.body_mass[self.obj_body] / rest_time
        m.dof_damping[dof + 3 : dof + 6] = m.body_inertia[self.obj_body] / rest_time
        v = float("inf")
        for _ in range(max(1, round(seconds / 0.1))):
            self.step(round(0.1 / TIMESTEP))
            v = float(np.linalg.norm(self.data.qvel[dof : dof + 3]))
            if v < speed:
                break
        m.dof_damping[dof : dof + 6] = 0.0
        return v

    # --- object --------------------------------------------------------------------------
    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Object position (3,) and rotation matrix (3 x 3) in the world."""
        return self.data.xpos[self.obj_body].copy(), self.data.xmat[self.obj_body].reshape(3, 3).copy()

    def hand_rotation(self) -> np.ndarray:
        """Hand rotation matrix (3 x 3) in the world."""
        return self.data.xmat[self.hand_body].reshape(3, 3).copy()

    # --- pads ----------------------------------------------------------------------------
    def pad_normal_force(self, side: str) -> float:
        """Total normal force (N) between the pad ``side`` and the object (mj_contactForce)."""
        d = self.data
        pad = self.pad_geom[side]
        total = 0.0
        f6 = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            if (g1 == pad and g2 in self.obj_geoms) or (g2 == pad and g1 in self.obj_geoms):
                mujoco.mj_contactForce(self.model, d, i, f6)
                total += f6[0]
        return float(total)

    def pad_wrench(self, side: str) -> tuple[float, np.ndarray, float, np.ndarray]:
        """Load the object puts on pad ``side``, from the pad–object contacts (mj_contactForce).

        Returns the normal force (N, pressing into the pad), the tangential force (N, 2:
        along the pad's image axes u, v), the torque about the pad normal through the pad
        centre (N m, positive turning the image x axis towards the image y axis), and the
        centre of pressure (m, 2: u, v from the pad centre).
        """
        d = self.data
        pad = self.pad_geom[side]
        centre, u, v, n = self.pad_frame(side)
        f6 = np.zeros(6)
        normal, tang, torque = 0.0, np.zeros(2), 0.0
        cop = np.zeros(2)
        for i in range(d.ncon):
            c = d.contact[i]
            g1, g2 = int(c.geom1), int(c.geom2)
            if g1 == pad and g2 in self.obj_geoms:
                sign = -1.0  # the contact force acts on geom2 along the frame; geom1 gets the opposite
            elif g2 == pad and g1 in self.obj_geoms:
                sign = 1.0
            else:
                continue
            mujoco.mj_contactForce(self.model, d, i, f6)
            frame = c.frame.reshape(3, 3)  # rows: normal (geom1 -> geom2), tangent 1, tangent 2
            f_world = sign * (frame.T @ f6[:3])  # force of the object on the pad
            r = c.pos - centre
            fn = float(f_world @ -n)  # the pad's normal n points towards the object
            normal += fn
            tang += (float(f_world @ u), float(f_world @ v))
            torque += float(np.cross(r, f_world) @ -n)
            cop += fn * np.array([r @ u, r @ v])
        if normal > 1e-9:
            cop /= normal
        return normal, tang, torque, cop

    def pad_frame(self, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pad surface centre (3,), image-x axis u, image-y axis v (rows, down), inward normal n."""
        r = self.hand_rotation()
        q = self.data.qpos[self.qadr[side]]
        sign = 1.0 if side == "A" else -1.0
        centre = self.data.xpos[self.hand_body] + r @ np.array([0.0, sign * q, 0.0])
        n = -sign * r[:, 1]  # towards the other finger
        u = sign * r[:, 0]  # mirrored for B: each camera looks through its own pad
        v = -r[:, 2]
        return centre, u, v, n

    def gap_map(
        self,
        side: str,
        nu: int,
        nv: int,
        back: float = 0.25,
        behind_limit: float = 0.012,
        mount: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distance (m) from the pad surface to the object along the pad normal on an nv x nu grid.

        Rays are cast with mj_multiRay from one point ``back`` metres behind the pad through
        the grid (nearly parallel rays); misses and hits more than ``behind_limit`` behind the
        pad surface are ``inf``. ``mount`` = (du, dv metres, rotation rad) places the sensor's
        field of view on the pad (a mounting offset: the grid shifted along the image axes and
        turned about the pad normal). Also returns the points (nv x nu x 3, world; for a miss,
        the grid point on the pad plane) and the object part each ray hit (nv x nu, -1: none).
        """
        centre, u, v, n = self.pad_frame(side)
        du, dv, rot = mount
        c, s = np.cos(rot), np.sin(rot)
        u, v = c * u + s * v, -s * u + c * v
        centre = centre + du * u + dv * v
        us = (np.arange(nu) + 0.5) / nu * 2 - 1
        vs = (np.arange(nv) + 0.5) / nv * 2 - 1
        grid = centre[None, None] + us[None, :, None] * PAD_HALF_X * u + vs[:, None, None] * PAD_HALF_Z * v
        origin = centre - back * n
        vec = (grid - origin).reshape(-1, 3)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        nray = vec.shape[0]
        geomid = np.zeros(nray, np.int32)
        dist = np.zeros(nray, np.float64)
        mujoco.mj_multiRay(
            self.model,
            self.data,
            origin,
            vec.reshape(-1),
            self._geomgroup,
            False,
            self.finger_body[side],
            geomid,
            dist,
            None,
            nray,
            1.0,
        )
        hit = dist >= 0
        pts = origin[None] + vec * dist[:, None]
        gap = (pts - centre[None]) @ n
        ok = hit & (gap > -behind_limit)
        gap = np.where(ok, gap, np.inf)
        pts = np.where(ok[:, None], pts, grid.reshape(-1, 3))
        part = np.where(ok, self.geom_part[geomid], -1)
        return gap.reshape(nv, nu), pts.reshape(nv, nu, 3), part.reshape(nv, nu)
