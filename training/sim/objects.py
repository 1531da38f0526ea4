"""The simulated object set: a fixed catalogue of named objects and per-trial variations.

The catalogue (100 objects by default) is drawn once from a fixed seed, independent of
the trial seed, so that object names mean the same object in every run (object-disjoint
splits work as on the real data). Each trial then jitters size, mass, friction and
centre of mass around the object's nominal values.

Kinds: ``box``, ``cylinder`` (upright), ``log`` (cylinder lying down), ``capsule``,
``pebble`` (flat ellipsoid), ``hammer`` (handle + heavy head: centre of mass far from
the handle) and ``bottle`` (body + neck, centre of mass low and off-axis when "filled").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("box", "cylinder", "log", "capsule", "pebble", "hammer", "bottle")


@dataclass(frozen=True)
class Part:
    """One MuJoCo geom of an object, in the object frame (metres)."""

    type: str  # mujoco geom type: box | cylinder | capsule | ellipsoid
    size: tuple[float, ...]  # mujoco half-sizes
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    euler: tuple[float, float, float] = (0.0, 0.0, 0.0)  # degrees, xyz


@dataclass(frozen=True)
class ObjectSpec:
    """A catalogue object: nominal shape parameters and physical properties."""

    name: str
    kind: str
    dims: tuple[float, ...]  # kind-specific nominal dimensions (m)
    mass: float  # kg
    friction: float  # sliding friction coefficient
    com_frac: tuple[float, float, float]  # nominal CoM offset as a fraction of the half-extents


@dataclass
class ObjectInstance:
    """One trial's object: geoms, mass properties, friction, resting height."""

    spec: ObjectSpec
    parts: list[Part]
    mass: float
    friction: float
    com: tuple[float, float, float]  # centre of mass in the object frame (m)
    inertia: tuple[float, float, float]  # diagonal inertia (kg m^2)
    half_extent: tuple[float, float, float]  # bounding half-extents in the object frame (m)
    texture: np.ndarray = field(repr=False)  # K x 4 rows (kx, ky, kz, phase): surface texture waves
    texture_amp_mm: float = 0.02


def catalogue(n: int = 100, seed: int = 20170101) -> list[ObjectSpec]:
    """Return the fixed object catalogue: ``n`` named objects cycling through the kinds."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        u = rng.uniform
        if kind == "box":
            dims: tuple[float, ...] = (u(0.025, 0.075), u(0.025, 0.08), u(0.03, 0.12))  # x, y, z full
            mass = u(0.08, 0.9)
            com = (u(-0.3, 0.3), u(-0.3, 0.3), u(-0.3, 0.3))
        elif kind == "cylinder":
            dims = (u(0.012, 0.04), u(0.04, 0.14))  # radius, height
            mass = u(0.08, 0.8)
            com = (0.0, 0.0, u(-0.4, 0.4))
        elif kind == "log":
            dims = (u(0.012, 0.03), u(0.08, 0.2))  # radius, length (along x)
            mass = u(0.06, 0.6)
            com = (u(-0.5, 0.5), 0.0, 0.0)
        elif kind == "capsule":
            dims = (u(0.012, 0.03), u(0.03, 0.1))  # radius, cylinder length (along x)
            mass = u(0.05, 0.5)
            com = (u(-0.4, 0.4), 0.0, 0.0)
        elif kind == "pebble":
            dims = (u(0.025, 0.045), u(0.02, 0.04), u(0.01, 0.02))  # ellipsoid half axes
            mass = u(0.05, 0.45)
            com = (u(-0.2, 0.2), u(-0.2, 0.2), 0.0)
        elif kind == "hammer":
            dims = (
                u(0.008, 0.015),
                u(0.14, 0.26),
                u(0.015, 0.025),
                u(0.04, 0.07),
            )  # handle r, len, head half, len
            mass = u(0.15, 0.8)
            com = (u(0.3, 0.8), 0.0, 0.0)  # towards the head
        else:  # bottle
            dims = (u(0.025, 0.04), u(0.08, 0.16), u(0.008, 0.015), u(0.03, 0.06))  # body r, h, neck r, h
            mass = u(0.1, 0.9)
            com = (u(-0.3, 0.3), 0.0, u(-0.6, -0.2))
        friction = u(0.35, 1.1)
        out.append(
            ObjectSpec(
                f"sim_{kind}_{i:03d}",
                kind,
                tuple(float(d) for d in dims),
                float(mass),
                float(friction),
                (float(com[0]), float(com[1]), float(com[2])),
            )
        )
    return out


def instantiate(spec: ObjectSpec, rng: np.random.Generator) -> ObjectInstance:
    """Draw one trial's version of ``spec``: jittered size, mass, friction and CoM."""
    j = rng.uniform(0.9, 1.1, size=len(spec.dims))
    d = [float(a * b) for a, b in zip(spec.dims, j, strict=True)]
    parts: list[Part]
    if spec.kind == "box":
        hx, hy, hz = d[0] / 2, d[1] / 2, d[2] / 2
        parts = [Part("box", (hx, hy, hz))]
        half = (hx, hy, hz)
    elif spec.kind == "cylinder":
        r, h = d[0], d[1] / 2
        parts = [Part("cylinder", (r, h))]
        half = (r, r, h)
    elif spec.kind == "log":
        r, h = d[0], d[1] / 2
        parts = [Part("cylinder", (r, h), euler=(0.0, 90.0, 0.0))]
        half = (h, r, r)
    elif spec.kind == "capsule":
        r, h = d[0], d[1] / 2
        parts = [Part("capsule", (r, h), euler=(0.0, 90.0, 0.0))]
        half = (h + r, r, r)
    elif spec.kind == "pebble":
        parts = [Part("ellipsoid", (d[0], d[1], d[2]))]
        half = (d[0], d[1], d[2])
    elif spec.kind == "hammer":
        r, hl, hh, hlen = d[0], d[1] / 2, d[2], d[3] / 2
        # handle along x, head a box across it at +x end (lying on the table: head sets the height)
        parts = [
            Part("cylinder", (r, hl), pos=(0.0, 0.0, r - hh), euler=(0.0, 90.0, 0.0)),
            Part("box", (hh, hlen, hh), pos=(hl + hh, 0.0, 0.0)),
        ]
        half = (hl + 2 * hh, hlen, hh)
    else:  # bottle: upright
        r, hb, rn, hn = d[0], d[1] / 2, d[2], d[3] / 2
        parts = [
            Part("cylinder", (r, hb), pos=(0.0, 0.0, -hn)),
            Part("cylinder", (rn, hn), pos=(0.0, 0.0, hb)),
        ]
        half = (r, r, hb + hn)
    mass = float(spec.mass * rng.uniform(0.8, 1.25))
    friction = float(np.clip(spec.friction * rng.uniform(0.85, 1.15), 0.2, 1.5))
    cx, cy, cz = (
        float(np.clip(c + rng.uniform(-0.1, 0.1), -0.9, 0.9) * h)
        for c, h in zip(spec.com_frac, half, strict=True)
    )
    com = (cx, cy, cz)
    hx, hy, hz = half
    inertia = (mass / 3 * (hy * hy + hz * hz), mass / 3 * (hx * hx + hz * hz), mass / 3 * (hx * hx + hy * hy))
    # texture: a few plane waves in the object frame (wavelengths 1.5-5 mm)
    k = rng.normal(size=(6, 3))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    k *= 2 * np.pi / rng.uniform(0.0015, 0.005, size=(6, 1))
    texture = np.concatenate([k, rng.uniform(0, 2 * np.pi, size=(6, 1))], axis=1)
    return ObjectInstance(
        spec,
        parts,
        mass,
        friction,
        com,
        inertia,
        (float(half[0]), float(half[1]), float(half[2])),
        texture=texture,
        texture_amp_mm=float(rng.uniform(0.005, 0.03)),
    )


def texture_mm(obj: ObjectInstance, pts_obj: np.ndarray) -> np.ndarray:
    """Surface texture height (mm) at points given in the object frame (... x 3, metres)."""
    phase = pts_obj @ obj.texture[:, :3].T + obj.texture[:, 3]  # ... x K
    return obj.texture_amp_mm * np.sin(phase).mean(axis=-1) * 2.0
