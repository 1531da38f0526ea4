"""Shear of the gel under tangential load: a brush model with partial slip (incipient slip).

The gel is a bed of tangential springs ("bristles", stiffness ``k_t`` per unit area, the
gel's shear modulus over its thickness) under the contact. The object's surface moves
relative to the pad by a rigid translation ``s`` and a rotation ``theta`` about the contact
centroid; a bristle follows it (sticks) while its traction ``k_t |d|`` stays below the
local friction limit ``mu p(x)`` (Coulomb, with the Winkler pressure ``p``) and slips at
that limit otherwise. ``s`` and ``theta`` are solved so that the tractions carry the
tangential force and the torque about the pad normal that MuJoCo's contact solver puts on
the pad. Where the pressure is low, at the rim of the contact, the bristles slip first:
the stick region shrinks towards the centre as the load approaches ``mu N`` — the
incipient slip that Yuan et al. observed with GelSight markers before gross slip
("Measurement of shear and slip with a GelSight tactile sensor", ICRA 2015), and the
classic brush / Cattaneo–Mindlin picture of partial slip (e.g. Pacejka, "Tire and Vehicle
Dynamics", the brush model). Around the contact the gel surface follows smoothly
(Gaussian decay over about the gel thickness).

Stiffness: the Winkler normal stiffness of :mod:`training.sim.gel` (0.3 N/mm^3 for a
2 mm gel) corresponds to a Young's modulus of about 0.6 MPa; an incompressible elastomer's
shear modulus is a third of that, so ``k_t = G / h`` is about 0.1 N/mm^3. Displacements
are capped at half the gel thickness (large-strain limit).
"""

from __future__ import annotations

import cv2
import numpy as np

SHEAR_STIFFNESS = 0.1  # N/mm^3 = G / h for G = 0.2 MPa, h = 2 mm
MAX_SHEAR_MM = 1.0  # half the gel thickness
DECAY_MM = 1.5  # the free gel surface follows the contact over about its thickness


def _brush_level(a: np.ndarray, lam: np.ndarray, target: float) -> float:
    """Solve ``sum_i a_i min(x, lam_i) = target`` for ``x`` (exact; ``inf`` if unreachable).

    ``a_i > 0`` are the springs' weights and ``lam_i`` the levels at which they saturate.
    """
    if target <= 0 or a.size == 0:
        return 0.0
    order = np.argsort(lam)
    lam_s, a_s = lam[order], a[order]
    sat = np.concatenate([[0.0], np.cumsum(a_s * lam_s)])  # carried by the saturated springs
    free = np.concatenate([np.cumsum(a_s[::-1])[::-1], [0.0]])  # weight of the springs still linear
    carried = sat[:-1] + free[:-1] * lam_s  # total at x = lam_s[j]
    j = int(np.searchsorted(carried, target, side="left"))
    if j >= lam_s.size:
        return float("inf")
    return float((target - sat[j]) / free[j])


def shear_field(
    pressure: np.ndarray,
    force_t: tuple[float, float],
    torque: float,
    mu: float,
    mm_per_px: tuple[float, float],
    stiffness: float = SHEAR_STIFFNESS,
    field: bool = True,
) -> tuple[np.ndarray | None, float]:
    """Return the gel surface displacement (H x W x 2 mm, image x / y) and the contact's slipping fraction.

    ``pressure`` (H x W, N/mm^2) is the contact pressure; ``force_t`` (N, image x / y) and
    ``torque`` (N mm, about the image centre, positive turning x towards y) the tangential
    load the object puts on the gel; ``mu`` the friction coefficient. With ``field=False``
    only the slipping fraction is computed (the displacement is ``None``).
    """
    h, w = pressure.shape
    disp = np.zeros((h, w, 2), np.float32)
    contact = pressure > 0
    n = int(contact.sum())
    ft = np.asarray(force_t, np.float64)
    if n == 0 or (np.hypot(*ft) < 1e-6 and abs(torque) < 1e-6):
        return (disp if field else None), 0.0
    sx, sy = mm_per_px
    area = sx * sy
    ys, xs = np.nonzero(contact)
    x = (xs + 0.5 - w / 2) * sx  # mm from the image centre
    y = (ys + 0.5 - h / 2) * sy
    p = pressure[contact].astype(np.float64)
    cap = mu * p  # traction limit, N/mm^2
    a = np.full(n, area)
    # translation: tractions min(k |s|, cap) along the force
    fmag = float(np.hypot(*ft))
    lam_t = _brush_level(a, cap, fmag)
    tau_t = np.minimum(lam_t, cap)  # N/mm^2 along the force direction
    slipping = lam_t >= cap
    direction = ft / fmag if fmag > 0 else np.zeros(2)
    # rotation about the pressure centroid with the friction left over
    xc, yc = float((p * x).sum() / p.sum()), float((p * y).sum() / p.sum())
    t_c = torque - (xc * ft[1] - yc * ft[0])
    rx, ry = x - xc, y - yc
    r = np.hypot(rx, ry) + 1e-9
    cap_r = np.sqrt(np.maximum(cap**2 - tau_t**2, 0.0))
    lam_r = _brush_level(a * r * r, cap_r / r, abs(t_c))  # traction = min(lam * r, cap_r)
    tau_r = np.minimum(lam_r * r, cap_r) * np.sign(t_c)
    slipping |= lam_r * r >= cap_r
    if not field:
        return None, float(slipping.mean())
    tx = tau_t * direction[0] - tau_r * ry / r
    ty = tau_t * direction[1] + tau_r * rx / r
    inside = np.zeros((h, w, 2), np.float32)
    inside[ys, xs, 0] = tx / stiffness
    inside[ys, xs, 1] = ty / stiffness
    # outside the contact the free surface follows the nearby contact's displacement (normalised
    # convolution: continuous at the rim) and relaxes over the decay length
    sigma = (DECAY_MM / sx, DECAY_MM / sy)
    near = cv2.GaussianBlur(contact.astype(np.float32), (0, 0), sigmaX=sigma[0], sigmaY=sigma[1])
    follow = np.minimum(1.0 / np.maximum(near, 1e-6), 2.0)
    for c in range(2):
        disp[..., c] = cv2.GaussianBlur(inside[..., c], (0, 0), sigmaX=sigma[0], sigmaY=sigma[1]) * follow
    disp[contact] = inside[contact]
    mag = np.hypot(disp[..., 0], disp[..., 1])
    scale = np.minimum(1.0, MAX_SHEAR_MM / np.maximum(mag, 1e-9))
    disp *= scale[..., None]
    return disp, float(slipping.mean())
