"""Winkler gel model: gap map + pad normal force -> gel height map.

The gel is a bed of independent springs of stiffness ``k`` (N/mm^3, pressure per mm of
indentation). Pressed by a rigid object whose surface lies ``g(x)`` mm from the
undeformed gel (``g >= 0``, its closest point at 0), the gel surface moves in by
``max(0, delta - g(x))``, and the indentation depth ``delta`` is the one at which the
integrated pressure equals the measured normal force:

    k * a * sum_x max(0, delta - g(x)) = F        (a = area of one pixel, mm^2)

So a flat face spreads the force over the whole pad and presses shallow, while an edge
or a curved surface concentrates it and presses deep. The resulting height map (object
surface relative to the gel, ``g - delta``, <= 0 in contact) is what the GelSight
renderer takes.
"""

from __future__ import annotations

import numpy as np

from training.sim.gelsight import FAR_MM

GEL_STIFFNESS = 0.3  # N/mm^3: a 35 N flat press over the whole pad indents about 0.45 mm
MAX_DEPTH_MM = 2.0  # gel thickness: indentation saturates here
MIN_FORCE_N = 0.05  # below this the pad is considered untouched


def indentation_depth(
    gap_mm: np.ndarray, force_n: float, pixel_area_mm2: float, stiffness: float = GEL_STIFFNESS
) -> float:
    """Depth ``delta`` (mm) at which the Winkler bed carries ``force_n`` for the given gap map.

    ``gap_mm`` may hold ``inf`` where there is no object. Exact: the carried force is
    piecewise linear in delta between sorted gap values.
    """
    if force_n <= 0:
        return 0.0
    g = np.sort(gap_mm[np.isfinite(gap_mm)].ravel())
    if g.size == 0:
        return 0.0
    g = g - g[0]
    target = force_n / (stiffness * pixel_area_mm2)  # = sum max(0, delta - g)
    # carried(delta) at delta = g[i] is i * g[i] - sum(g[:i])
    csum = np.concatenate([[0.0], np.cumsum(g)])
    idx = np.arange(g.size)
    carried = idx * g - csum[:-1]
    i = int(np.searchsorted(carried, target, side="right"))  # number of pixels in contact
    delta = (target + csum[i]) / i
    return float(min(delta, MAX_DEPTH_MM))


def height_map(
    gap_mm: np.ndarray,
    force_n: float,
    pixel_area_mm2: float,
    stiffness: float = GEL_STIFFNESS,
    dome_mm: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Height map (mm) for the renderer and the indentation depth (mm).

    ``gap_mm`` is measured from the pad plane, which touches the top of the gel's dome;
    ``dome_mm`` (<= 0, 0 at the top; the renderer's ``dome``) is how far the untouched gel
    surface lies below that plane, so the springs' free length adds to the gap there:
    a flat face first touches the middle of the pad and its patch grows with the force.
    Without force the object only hovers: the gap itself (clipped at 0). With force, the
    object is placed so that the Winkler bed carries the force.
    """
    finite = np.isfinite(gap_mm)
    if force_n < MIN_FORCE_N or not finite.any():
        hm = np.where(finite, np.maximum(gap_mm, 0.0), FAR_MM)
        return np.minimum(hm, FAR_MM).astype(np.float32), 0.0
    free = gap_mm if dome_mm is None else gap_mm - dome_mm  # distance to the untouched gel surface
    delta = indentation_depth(free, force_n, pixel_area_mm2, stiffness)
    g0 = free[finite].min()
    hm = np.where(finite, gap_mm - g0 - delta, FAR_MM)
    return np.minimum(hm, FAR_MM).astype(np.float32), delta


def pressure(
    height_mm: np.ndarray, dome_mm: np.ndarray | float = 0.0, stiffness: float = GEL_STIFFNESS
) -> np.ndarray:
    """Contact pressure (N/mm^2) of a :func:`height_map` result: ``k`` times the gel's indentation.

    The untouched gel lies at ``dome_mm`` (<= 0); where the object surface is below it
    (``height_mm < dome_mm``) the springs are compressed by the difference.
    """
    return (stiffness * np.maximum(np.asarray(dome_mm) - height_mm, 0.0)).astype(np.float32)
