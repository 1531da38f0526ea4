"""The simulated object set: a fixed catalogue of named objects made of parts and materials.

The catalogue (150 objects by default) is drawn once from a fixed seed, independent of
the trial seed, so that object names mean the same object in every run (object-disjoint
splits work as on the real data). An object is a union of parts (MuJoCo primitives or
convex meshes), each of one material (:mod:`training.sim.materials`: friction against the
gel, effective density, surface texture); its mass and centre of mass follow from the
parts' volumes and densities plus an unseen internal offset (contents, a filled bottle).
Each trial jitters size (+-5 %), density (+-10 %: contents), friction (+-5 %: dust, moisture)
and that offset (+-5 % of the half-extents) around the object's nominal values, so an
object behaves much the same every time it is grasped (as the real dataset's objects do).

Families (:data:`KINDS`), chosen to span the contact geometries a gripper meets: flat
faces and edges (``box``, ``prism``, ``bracket``, ``rock``), curved faces (``cylinder``,
``log``, ``capsule``, ``pebble``, ``ball``), tapered faces that squeeze the object up or
down (``cup``, ``pebble``, ``ball``), and composite objects whose centre of mass lies far
from where they are grasped or whose parts differ in material (``hammer``, ``bottle``,
``mug``, ``dumbbell``, ``tool``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from training.sim.materials import Surface, draw_surface

KINDS = (
    "box",
    "cylinder",
    "log",
    "capsule",
    "pebble",
    "hammer",
    "bottle",
    "ball",
    "cup",
    "prism",
    "mug",
    "dumbbell",
    "bracket",
    "rock",
    "tool",
)

# materials each family is made of (first part; composite families name their other parts below)
FAMILY_MATERIALS: dict[str, tuple[str, ...]] = {
    "box": ("cardboard", "wood", "smooth_plastic", "embossed_plastic"),
    "cylinder": ("brushed_metal", "smooth_plastic", "embossed_plastic", "cardboard", "glass"),
    "log": ("wood", "cardboard", "smooth_plastic"),
    "capsule": ("smooth_plastic", "rubber", "fabric"),
    "pebble": ("stone", "smooth_plastic", "rubber"),
    "hammer": ("wood", "rubber", "knurled_metal"),  # handle; the head is brushed metal
    "bottle": ("glass", "smooth_plastic", "ribbed_plastic", "embossed_plastic"),  # body; cap ribbed
    "ball": ("rubber", "fabric", "smooth_plastic"),
    "cup": ("glass", "smooth_plastic", "cardboard"),
    "prism": ("wood", "smooth_plastic", "stone"),
    "mug": ("glass", "smooth_plastic"),
    "dumbbell": ("knurled_metal",),  # bar; the weights rubber or brushed metal
    "bracket": ("brushed_metal", "wood"),
    "rock": ("stone",),
    "tool": ("ribbed_plastic", "rubber"),  # handle; the shaft brushed metal
}


@dataclass(frozen=True)
class Part:
    """One MuJoCo geom of an object, in the object frame (metres)."""

    type: str  # mujoco geom type: box | cylinder | capsule | ellipsoid | sphere | mesh
    size: tuple[float, ...]  # mujoco half-sizes (unused for meshes)
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    euler: tuple[float, float, float] = (0.0, 0.0, 0.0)  # degrees, xyz
    surface: int = 0  # index into the object's surfaces
    mesh: tuple[tuple[float, float, float], ...] = ()  # vertices of a convex mesh (part frame)


@dataclass(frozen=True)
class ObjectSpec:
    """A catalogue object: nominal shape parameters, its parts' surfaces and the unseen CoM offset."""

    name: str
    kind: str
    dims: tuple[float, ...]  # family-specific nominal dimensions (m)
    surfaces: tuple[Surface, ...]  # one per distinct material of the object
    com_frac: tuple[float, float, float]  # internal CoM offset as a fraction of the half-extents
    shape_seed: int = 0  # meshes (rock) are drawn from this

    @property
    def friction(self) -> float:
        """Nominal friction of the first surface (the grasped body of most families)."""
        return self.surfaces[0].friction


@dataclass
class ObjectInstance:
    """One trial's object: parts, surfaces, mass properties, bounding half-extents (centred)."""

    spec: ObjectSpec
    parts: list[Part]
    surfaces: list[Surface]
    mass: float
    com: tuple[float, float, float]  # centre of mass in the object frame (m)
    inertia: tuple[float, float, float]  # diagonal inertia (kg m^2)
    half_extent: tuple[float, float, float]  # bounding half-extents in the object frame (m)
    volume: float = field(default=0.0)

    @property
    def friction(self) -> float:
        """Friction of the first surface (reported as ``sim_friction``)."""
        return self.surfaces[0].friction


# --- geometry helpers -------------------------------------------------------------------
def _rot(euler_deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation matrix of MuJoCo's default ``euler`` (xyz, intrinsic, degrees)."""
    ax, ay, az = (math.radians(a) for a in euler_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rx @ ry @ rz


def _local_points(p: Part) -> np.ndarray:
    """Points spanning the part's bounding box in its own frame (for the object's extents)."""
    if p.type == "mesh":
        return np.asarray(p.mesh, np.float64)
    if p.type == "box":
        h = np.asarray(p.size[:3])
    elif p.type in ("cylinder",):
        h = np.array([p.size[0], p.size[0], p.size[1]])
    elif p.type == "capsule":
        h = np.array([p.size[0], p.size[0], p.size[1] + p.size[0]])
    elif p.type == "ellipsoid":
        h = np.asarray(p.size[:3])
    else:  # sphere
        h = np.array([p.size[0]] * 3)
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    return corners * h


def _volume(p: Part) -> float:
    if p.type == "box":
        return 8.0 * p.size[0] * p.size[1] * p.size[2]
    if p.type == "cylinder":
        return math.pi * p.size[0] ** 2 * 2 * p.size[1]
    if p.type == "capsule":
        return math.pi * p.size[0] ** 2 * 2 * p.size[1] + 4 / 3 * math.pi * p.size[0] ** 3
    if p.type == "ellipsoid":
        return 4 / 3 * math.pi * p.size[0] * p.size[1] * p.size[2]
    if p.type == "sphere":
        return 4 / 3 * math.pi * p.size[0] ** 3
    return _hull_volume(p.mesh)


def _hull_volume(vertices: tuple[tuple[float, float, float], ...]) -> float:
    """Return the volume (m^3) of the convex hull of ``vertices``: the hull MuJoCo collides with.

    MuJoCo builds that hull (qhull) when it compiles a vertex-only mesh, and a unit density
    makes the body's mass its volume (1-3 ms; importing scipy.spatial cost every worker 0.3 s).
    """
    import mujoco

    v = " ".join(f"{c:.9g}" for vertex in vertices for c in vertex)
    xml = (
        f'<mujoco><asset><mesh name="m" vertex="{v}"/></asset><worldbody><body><freejoint/>'
        '<geom type="mesh" mesh="m" density="1"/></body></worldbody></mujoco>'
    )
    return float(mujoco.MjModel.from_xml_string(xml).body_mass[1])


def _frustum(
    r_bottom: float, r_top: float, half_h: float, n: int = 20
) -> tuple[tuple[float, float, float], ...]:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = [
        (r * math.cos(t), r * math.sin(t), z) for r, z in ((r_bottom, -half_h), (r_top, half_h)) for t in a
    ]
    return tuple((float(x), float(y), float(z)) for x, y, z in ring)


def _prism(n: int, radius: float, half_len: float) -> tuple[tuple[float, float, float], ...]:
    """Return the vertices of an n-gon extruded along x, one face down (it rests on a flat face)."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False) - np.pi / 2 + np.pi / n
    return tuple(
        (float(x), float(radius * math.cos(t)), float(radius * math.sin(t)))
        for x in (-half_len, half_len)
        for t in a
    )


def _rock(
    rng: np.random.Generator, half: tuple[float, float, float], n: int = 24
) -> tuple[tuple[float, float, float], ...]:
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v *= rng.uniform(0.75, 1.0, size=(n, 1))
    return tuple((float(x), float(y), float(z)) for x, y, z in v * np.asarray(half))


# --- catalogue ----------------------------------------------------------------------------
def catalogue(n: int = 150, seed: int = 20170101) -> list[ObjectSpec]:
    """Return the fixed object catalogue: ``n`` named objects cycling through the families."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        u = rng.uniform
        mats = FAMILY_MATERIALS[kind]
        main = mats[int(rng.integers(len(mats)))]
        com = (u(-0.15, 0.15), u(-0.15, 0.15), u(-0.15, 0.15))
        extra: list[str] = []
        axis: tuple[float, float, float] | None = None
        if kind == "box":
            dims: tuple[float, ...] = (u(0.025, 0.09), u(0.025, 0.08), u(0.04, 0.16))  # x, y, z full
            com = (u(-0.5, 0.5), u(-0.3, 0.3), u(-0.4, 0.4))
        elif kind == "cylinder":
            dims = (u(0.012, 0.04), u(0.05, 0.18))  # radius, height
            com = (0.0, 0.0, u(-0.4, 0.4))
            axis = (0.0, 0.0, 1.0)
        elif kind == "log":
            dims = (u(0.012, 0.03), u(0.08, 0.25))  # radius, length (along x)
            com = (u(-0.5, 0.5), 0.0, 0.0)
            axis = (1.0, 0.0, 0.0)
        elif kind == "capsule":
            dims = (u(0.012, 0.03), u(0.04, 0.14))  # radius, cylinder length (along x)
            com = (u(-0.4, 0.4), 0.0, 0.0)
            axis = (1.0, 0.0, 0.0)
        elif kind == "pebble":
            dims = (u(0.025, 0.045), u(0.02, 0.04), u(0.01, 0.02))  # ellipsoid half axes
            com = (u(-0.2, 0.2), u(-0.2, 0.2), 0.0)
        elif kind == "hammer":
            dims = (
                u(0.008, 0.015),
                u(0.14, 0.26),
                u(0.015, 0.025),
                u(0.04, 0.07),
            )  # handle r, len, head half, len
            com = (u(-0.1, 0.1), 0.0, 0.0)
            extra = ["brushed_metal"]
            axis = (1.0, 0.0, 0.0)
        elif kind == "bottle":
            dims = (u(0.025, 0.04), u(0.08, 0.2), u(0.008, 0.015), u(0.03, 0.06))  # body r, h, neck r, h
            com = (u(-0.2, 0.2), 0.0, u(-0.6, -0.2))  # partly filled: low
            extra = ["ribbed_plastic"]
            axis = (0.0, 0.0, 1.0)
        elif kind == "ball":
            dims = (u(0.02, 0.045),)
            com = (u(-0.2, 0.2), u(-0.2, 0.2), u(-0.2, 0.2))
        elif kind == "cup":
            dims = (u(0.75, 0.92), u(0.028, 0.045), u(0.06, 0.12))  # bottom r / top r, top r, height
            com = (0.0, 0.0, u(-0.5, -0.1))
            axis = (0.0, 0.0, 1.0)
        elif kind == "prism":
            dims = (float(rng.integers(3, 7)), u(0.015, 0.035), u(0.06, 0.16))  # sides, circumradius, length
            com = (u(-0.4, 0.4), 0.0, 0.0)
            axis = (1.0, 0.0, 0.0)
        elif kind == "mug":
            dims = (u(0.03, 0.042), u(0.07, 0.11), u(0.018, 0.03))  # body r, height, handle reach
            com = (u(-0.2, 0.0), 0.0, u(-0.4, 0.0))
            axis = (0.0, 0.0, 1.0)
        elif kind == "dumbbell":
            dims = (
                u(0.01, 0.016),
                u(0.08, 0.14),
                u(0.025, 0.045),
                u(0.01, 0.025),
            )  # bar r, len, disc r, half t
            com = (u(-0.3, 0.3), 0.0, 0.0)
            extra = ["rubber" if rng.random() < 0.5 else "brushed_metal"]
            axis = (1.0, 0.0, 0.0)
        elif kind == "bracket":
            dims = (u(0.06, 0.14), u(0.02, 0.05), u(0.004, 0.012), u(0.03, 0.08))  # long, width, thick, leg
            com = (0.0, 0.0, 0.0)
        elif kind == "rock":
            dims = (u(0.03, 0.055), u(0.02, 0.04), u(0.015, 0.03))  # half axes
            com = (u(-0.2, 0.2), u(-0.2, 0.2), 0.0)
        else:  # tool: handle cylinder + thin shaft along x
            dims = (
                u(0.011, 0.018),
                u(0.07, 0.11),
                u(0.003, 0.005),
                u(0.06, 0.14),
            )  # handle r, len, shaft r, len
            com = (u(-0.1, 0.1), 0.0, 0.0)
            extra = ["brushed_metal"]
            axis = (1.0, 0.0, 0.0)
        surfaces = tuple(draw_surface(m, rng, axis) for m in (main, *extra))
        out.append(
            ObjectSpec(
                f"sim_{kind}_{i:03d}",
                kind,
                tuple(float(d) for d in dims),
                surfaces,
                (float(com[0]), float(com[1]), float(com[2])),
                int(rng.integers(2**31)),
            )
        )
    return out


def _parts(spec: ObjectSpec, d: list[float]) -> list[Part]:
    """Return the parts of ``spec`` at the (jittered) dimensions ``d``."""
    k = spec.kind
    if k == "box":
        return [Part("box", (d[0] / 2, d[1] / 2, d[2] / 2))]
    if k == "cylinder":
        return [Part("cylinder", (d[0], d[1] / 2))]
    if k in ("log", "capsule"):
        return [Part("cylinder" if k == "log" else "capsule", (d[0], d[1] / 2), euler=(0.0, 90.0, 0.0))]
    if k == "pebble":
        return [Part("ellipsoid", (d[0], d[1], d[2]))]
    if k == "hammer":  # handle along x, head a box across it at the +x end
        r, hl, hh, hlen = d[0], d[1] / 2, d[2], d[3] / 2
        return [
            Part("cylinder", (r, hl), pos=(0.0, 0.0, r - hh), euler=(0.0, 90.0, 0.0), surface=0),
            Part("box", (hh, hlen, hh), pos=(hl + hh, 0.0, 0.0), surface=1),
        ]
    if k == "bottle":  # upright body + neck (cap)
        r, hb, rn, hn = d[0], d[1] / 2, d[2], d[3] / 2
        return [
            Part("cylinder", (r, hb), pos=(0.0, 0.0, -hn)),
            Part("cylinder", (rn, hn), pos=(0.0, 0.0, hb), surface=1),
        ]
    if k == "ball":
        return [Part("sphere", (d[0],))]
    if k == "cup":
        return [Part("mesh", (), mesh=_frustum(d[0] * d[1], d[1], d[2] / 2))]
    if k == "prism":
        return [Part("mesh", (), mesh=_prism(round(spec.dims[0]), d[1], d[2] / 2))]
    if k == "mug":  # body + a handle bar on +x
        r, hh, reach = d[0], d[1] / 2, d[2]
        return [
            Part("cylinder", (r, hh)),
            Part("box", (reach / 2, 0.004, 0.6 * hh), pos=(r + reach / 2 - 0.002, 0.0, 0.0)),
        ]
    if k == "dumbbell":  # bar along x, two discs
        r, hl, rd, ht = d[0], d[1] / 2, d[2], d[3]
        return [
            Part("cylinder", (r, hl), euler=(0.0, 90.0, 0.0)),
            Part("cylinder", (rd, ht), pos=(-hl - ht, 0.0, 0.0), euler=(0.0, 90.0, 0.0), surface=1),
            Part("cylinder", (rd, ht), pos=(hl + ht, 0.0, 0.0), euler=(0.0, 90.0, 0.0), surface=1),
        ]
    if k == "bracket":  # L: a flat plate and an upright leg at its -x end
        ln, w, t, leg = d[0] / 2, d[1] / 2, d[2] / 2, d[3] / 2
        return [
            Part("box", (ln, w, t), pos=(0.0, 0.0, -leg + t)),
            Part("box", (t, w, leg), pos=(-ln + t, 0.0, 0.0)),
        ]
    if k == "rock":
        rng = np.random.default_rng(spec.shape_seed)
        base = _rock(rng, (spec.dims[0], spec.dims[1], spec.dims[2]))
        scale = np.asarray(d[:3]) / np.asarray(spec.dims[:3])
        verts = np.asarray(base) * scale
        return [Part("mesh", (), mesh=tuple((float(x), float(y), float(z)) for x, y, z in verts))]
    # tool: handle at -x, shaft at +x
    r, hl, rs, ls = d[0], d[1] / 2, d[2], d[3] / 2
    return [
        Part("cylinder", (r, hl), pos=(-ls, 0.0, 0.0), euler=(0.0, 90.0, 0.0)),
        Part("capsule", (rs, ls), pos=(hl, 0.0, r - rs), euler=(0.0, 90.0, 0.0), surface=1),
    ]


def _centred(parts: list[Part]) -> tuple[list[Part], np.ndarray]:
    """Centre the parts' bounding box on the origin; return the moved parts and the half-extents."""
    pts = np.concatenate([_local_points(p) @ _rot(p.euler).T + np.asarray(p.pos) for p in parts])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    c = (lo + hi) / 2
    moved = [
        replace(p, pos=(float(p.pos[0] - c[0]), float(p.pos[1] - c[1]), float(p.pos[2] - c[2])))
        for p in parts
    ]
    return moved, (hi - lo) / 2


def instantiate(spec: ObjectSpec, rng: np.random.Generator) -> ObjectInstance:
    """Draw one trial's version of ``spec``: jittered size, densities, frictions and internal CoM offset."""
    j = rng.uniform(0.95, 1.05, size=len(spec.dims))
    d = [float(a * b) for a, b in zip(spec.dims, j, strict=True)]
    parts, half = _centred(_parts(spec, d))
    surfaces = [
        replace(
            s,
            friction=float(np.clip(s.friction * rng.uniform(0.95, 1.05), 0.2, 1.6)),
            density=float(s.density * rng.uniform(0.9, 1.1)),
        )
        for s in spec.surfaces
    ]
    vols = np.array([_volume(p) for p in parts])
    masses = vols * np.array([surfaces[p.surface].density for p in parts])
    mass = float(np.clip(masses.sum(), 0.04, 2.0))
    centre = (masses[:, None] * np.array([p.pos for p in parts])).sum(axis=0) / masses.sum()
    off = [
        float(np.clip(c + rng.uniform(-0.05, 0.05), -0.9, 0.9) * h)
        for c, h in zip(spec.com_frac, half, strict=True)
    ]
    com = np.clip(centre + np.asarray(off), -0.9 * half, 0.9 * half)
    hx, hy, hz = (float(h) for h in half)
    inertia = (mass / 3 * (hy * hy + hz * hz), mass / 3 * (hx * hx + hz * hz), mass / 3 * (hx * hx + hy * hy))
    return ObjectInstance(
        spec,
        parts,
        surfaces,
        mass,
        (float(com[0]), float(com[1]), float(com[2])),
        inertia,
        (hx, hy, hz),
        float(vols.sum()),
    )
