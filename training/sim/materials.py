"""Surface materials of the simulated objects: friction against the gel, density, surface texture.

A material decides three things the grasp outcome depends on and one thing the GelSight
sees: the sliding friction coefficient against the sensor's silicone gel (the object
geom's MuJoCo friction), the object's effective density (mass = density x volume of its
parts; household objects are hollow or filled, so these are effective densities, not the
bulk solid's), and the **surface texture**: a height field fixed in the object frame that
the gel takes up where it is pressed (ridges, knurls, rubber dimples, wood grain, weave,
embossed print, rough stone). So the imprint's texture tells the material, and the
material tells friction and weight; a smooth surface tells little.

Sources and assumptions (docs/simulator.md, "Materials"):

- friction: dry-friction coefficients of elastomers on these counter-surfaces are
  typically 0.3-1.5 (e.g. the Engineering ToolBox table "Friction and friction coefficients
  for common materials": rubber on dry surfaces 0.6-1.0+, plastics and metals on each
  other 0.2-0.6); silicone gels are at the high end on clean smooth surfaces and lower on
  hard plastics and metals. The ranges below are assumptions inside those published
  ranges, ordered as the tables order them (rubber > fabric, knurled metal > wood, cardboard,
  glass > plastics > brushed metal), not measurements of a particular gel;
- texture scales: knurl pitch 0.6-1.6 mm (DIN 82 knurl pitches 0.5-1.6 mm), ribbed grips
  and caps 0.8-2 mm, rubber grip dimples 1.2-2 mm, woven fabric 0.4-0.9 mm, raised print
  and labels 0.1-0.2 mm high; heights of 0.02-0.2 mm are what a GelSight resolves well
  (Johnson & Adelson 2009, "Retrographic sensing for the measurement of surface texture and
  shape", resolve micron-scale relief);
- effective densities: bulk densities (wood 400-800, rubber 900-1300, stone 1500-2700
  kg/m^3) and, for hollow or partly filled containers, a fraction of them.

Texture heights are in mm, evaluated at points in the object frame (metres), with a
per-part pair of orthonormal directions (``d1``, ``d2``) fixed in the object frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEXTURES = ("smooth", "ribbed", "knurled", "dimpled", "grain", "woven", "rough", "embossed")


@dataclass(frozen=True)
class Material:
    """A surface material: friction against the gel, effective density, texture family and scales."""

    name: str
    friction: tuple[float, float]  # sliding friction coefficient against the gel (uniform range)
    density: tuple[float, float]  # effective density, kg/m^3 (uniform range)
    texture: str  # one of TEXTURES
    pitch_mm: tuple[float, float]  # texture period (uniform range); unused for smooth
    amp_mm: tuple[float, float]  # texture height (uniform range)


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material("smooth_plastic", (0.35, 0.50), (400.0, 1600.0), "smooth", (1.0, 1.0), (0.0, 0.004)),
        Material("ribbed_plastic", (0.40, 0.55), (400.0, 1600.0), "ribbed", (0.8, 2.0), (0.06, 0.15)),
        Material("embossed_plastic", (0.35, 0.50), (400.0, 1600.0), "embossed", (0.8, 1.6), (0.08, 0.18)),
        Material("glass", (0.55, 0.80), (800.0, 2000.0), "smooth", (1.0, 1.0), (0.0, 0.004)),
        Material("brushed_metal", (0.30, 0.45), (1500.0, 5000.0), "grain", (0.15, 0.35), (0.005, 0.02)),
        Material("knurled_metal", (0.65, 0.90), (3000.0, 7000.0), "knurled", (0.6, 1.6), (0.08, 0.18)),
        Material("rubber", (1.00, 1.40), (1000.0, 1500.0), "dimpled", (1.2, 2.0), (0.08, 0.20)),
        Material("wood", (0.45, 0.65), (500.0, 1000.0), "grain", (0.4, 1.2), (0.02, 0.06)),
        Material("cardboard", (0.50, 0.65), (400.0, 1200.0), "rough", (0.3, 0.7), (0.01, 0.03)),
        Material("fabric", (0.70, 1.00), (200.0, 700.0), "woven", (0.4, 0.9), (0.04, 0.09)),
        Material("stone", (0.55, 0.80), (2200.0, 3000.0), "rough", (0.4, 1.0), (0.04, 0.10)),
    )
}


@dataclass(frozen=True)
class Surface:
    """One part's drawn surface: material, friction, density and texture parameters."""

    material: str
    friction: float
    density: float
    texture: str
    pitch_mm: float
    amp_mm: float
    d1: tuple[float, float, float]  # texture directions in the object frame (orthonormal)
    d2: tuple[float, float, float]
    phase: tuple[float, float]  # texture offsets, mm
    waves: np.ndarray  # K x 4 (kx, ky, kz in rad/mm; phase) for rough / grain noise


def draw_surface(
    material: str, rng: np.random.Generator, axis: tuple[float, float, float] | None = None
) -> Surface:
    """Draw one part's surface of ``material``; ``axis`` (object frame) aligns ribs and grain, when given."""
    m = MATERIALS[material]
    u = rng.uniform
    # ribs and grain run roughly along the part's axis, when given
    a = rng.normal(size=3) if axis is None else np.asarray(axis, np.float64) + 0.15 * rng.normal(size=3)
    d1 = a / np.linalg.norm(a)
    t = np.cross(d1, rng.normal(size=3))
    d2 = t / np.linalg.norm(t)
    pitch = float(u(*m.pitch_mm))
    k = rng.normal(size=(12, 3))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    k *= 2 * np.pi / (pitch * rng.uniform(0.6, 1.6, size=(12, 1)))
    waves = np.concatenate([k, rng.uniform(0, 2 * np.pi, size=(12, 1))], axis=1)
    return Surface(
        material,
        float(u(*m.friction)),
        float(u(*m.density)),
        m.texture,
        pitch,
        float(u(*m.amp_mm)),
        (float(d1[0]), float(d1[1]), float(d1[2])),
        (float(d2[0]), float(d2[1]), float(d2[2])),
        (float(u(0, 10)), float(u(0, 10))),
        waves,
    )


def _tri(x: np.ndarray) -> np.ndarray:
    """Triangle wave of period 1 in [0, 1], 1 at integers."""
    return np.abs(2.0 * (x - np.floor(x)) - 1.0)


def _hash01(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Return a fixed pseudo-random number in [0, 1) per integer cell (i, j)."""
    h = np.sin(i * 12.9898 + j * 78.233) * 43758.5453
    return h - np.floor(h)


def texture_height(surface: Surface, pts_m: np.ndarray) -> np.ndarray:
    """Texture height (mm, >= 0 raises the surface) at object-frame points ``pts_m`` (... x 3, metres)."""
    p = np.asarray(pts_m, np.float64) * 1e3  # mm
    a, per = surface.amp_mm, surface.pitch_mm
    kind = surface.texture
    if kind == "smooth" or a <= 0:
        return np.zeros(p.shape[:-1])
    s = p @ np.asarray(surface.d1) + surface.phase[0]
    t = p @ np.asarray(surface.d2) + surface.phase[1]
    if kind == "ribbed":  # ridges across d1
        return a * _tri(s / per) ** 3
    if kind == "knurled":  # diamond knurl: pyramids between two ridge sets at +-45 degrees
        r1, r2 = (s + t) / (per * np.sqrt(2)), (s - t) / (per * np.sqrt(2))
        return a * np.minimum(_tri(r1), _tri(r2))
    if kind == "dimpled":  # hexagonal lattice of round bumps
        row = per * np.sqrt(3) / 2
        j = np.round(t / row)
        off = np.where(j % 2 == 0, 0.0, per / 2)
        i = np.round((s - off) / per)
        r2 = ((s - off - i * per) ** 2 + (t - j * row) ** 2) / (0.36 * per) ** 2
        return a * np.clip(1.0 - r2, 0.0, None)
    if kind == "grain":  # wood / brushing: fine lines along d1, wavering across
        w = t + 0.4 * per * np.sin(2 * np.pi * s / (9 * per))
        lines = 0.6 * np.sin(2 * np.pi * w / per) + 0.4 * np.sin(2 * np.pi * w / (0.37 * per) + 1.3)
        return a * (0.5 + 0.5 * lines)
    if kind == "woven":  # plain weave: alternating over / under yarns
        u1, u2 = s / per, t / per
        warp = np.cos(np.pi * u1) ** 2 * (np.sin(np.pi * u2) > 0)
        weft = np.cos(np.pi * u2) ** 2 * (np.sin(np.pi * u1) <= 0)
        return a * np.maximum(warp, weft)
    if kind == "rough":  # random relief: many short plane waves
        ph = p @ surface.waves[:, :3].T + surface.waves[:, 3]
        return a * (0.5 + 0.5 * np.clip(2.0 * np.sin(ph).mean(axis=-1), -1.0, 1.0))
    if kind == "embossed":  # raised print: rows of blocky glyph strokes
        line = 2.2 * per
        rj = np.floor(t / line)
        in_row = (t - rj * line) < 1.3 * per
        ci = np.floor(s / (0.7 * per))
        on = _hash01(ci, rj) > 0.45
        return a * (in_row & on)
    raise ValueError(f"unknown texture {kind!r}")
