"""Batched GelSight optical renderer on the real taxim calibration.

The optical model follows Taxim (Si & Yuan, 2022): the gel surface takes the shape of the
object where they touch and relaxes smoothly around it (a pyramid of Gaussian blurs that
keeps the contact region fixed); each pixel's surface normal (slope angle, direction)
indexes a table of per-pixel quadratic polynomials fitted on real ball presses, whose
value is added to the real no-contact frame. This module reads the calibration files
shipped in the ``taxim`` wheel directly (``dataPack.npz``, ``polycalib.npz``,
``gelmap.npy``, ``params.json``) and renders whole batches with torch on the CPU.

Height-map convention (the same as Taxim's): ``height_mm[n, y, x]`` is the distance in
mm of the object surface from the top of the undeformed gel, measured away from the
camera; values <= 0 press into the gel, large values (e.g. ``FAR_MM``) mean no object.

Example:
    >>> r = GelSightRenderer(160, 120)
    >>> img = r.render(np.full((1, 120, 160), FAR_MM, np.float32))  # no contact
    >>> img.shape, img.dtype
    ((1, 120, 160, 3), dtype('uint8'))

"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

FAR_MM = 100.0  # "no object here" in a height map

#: Sensor geometry of the calibrated GelSight (taxim ``params.json``).
FULL_W, FULL_H = 640, 480


def calib_dir() -> Path:
    """Folder of the taxim GelSight calibration files (inside the installed ``taxim`` wheel)."""
    import importlib.util

    spec = importlib.util.find_spec("taxim")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the 'taxim' package (its calibration files) is not installed")
    path = Path(spec.origin).parent / "calib" / "gelsight"
    if not (path / "polycalib.npz").is_file():
        raise FileNotFoundError(f"taxim calibration not found in {path}")
    return path


@dataclass(frozen=True)
class Calibration:
    """The real calibration arrays, full resolution (480 x 640)."""

    f0_rgb: np.ndarray  # H x W x 3 float64, real no-contact frame, RGB, 0..255
    poly_rgb: np.ndarray  # 3 x B x B x 6 float64, RGB order: (slope bin, direction bin) -> quad. poly in x, y
    gel_dome_mm: np.ndarray  # H x W float64, gel surface height (<= 0, away from camera is +)
    pixmm: float  # mm per full-resolution pixel
    ball_imgs_rgb: np.ndarray  # K x H x W x 3 uint8, real ball presses
    ball_center_px: np.ndarray  # K x 2 (x, y) full-resolution pixels
    ball_contact_radius_px: np.ndarray  # K
    params: dict  # taxim "simulator" parameters


@cache
def load_calibration(path: str | None = None) -> Calibration:
    """Load (once per process) the GelSight calibration from ``path`` (default: the taxim wheel)."""
    folder = Path(path) if path else calib_dir()
    with (folder / "params.json").open() as fh:
        params = json.load(fh)
    poly = np.load(folder / "polycalib.npz")
    # The tables were fitted on OpenCV BGR frames: grad_r is the first (blue) channel.
    poly_rgb = np.stack([poly["grad_b"], poly["grad_g"], poly["grad_r"]], axis=0)  # 3 x B x B x 6
    pack = np.load(folder / "dataPack.npz")
    f0_rgb = pack["f0"][..., ::-1].astype(np.float64)  # BGR -> RGB
    pixmm = float(params["sensor"]["pixmm"])
    dome = np.load(folder / "gelmap.npy").astype(np.float64) * pixmm  # mm
    dome = dome - dome.max()
    return Calibration(
        f0_rgb=_process_background(f0_rgb, params["simulator"]),
        poly_rgb=poly_rgb,
        gel_dome_mm=dome,
        pixmm=pixmm,
        ball_imgs_rgb=np.ascontiguousarray(pack["imgs"][..., ::-1]),
        ball_center_px=pack["touch_center"].astype(np.float64),
        ball_contact_radius_px=pack["touch_radius"].astype(np.float64),
        params=params["simulator"],
    )


def _process_background(f0: np.ndarray, sim: dict) -> np.ndarray:
    """Taxim's background conditioning: mix a blurred frame into the dark (marker) pixels."""
    sx, sy = (s * FULL_W if i == 0 else s * FULL_H for i, s in enumerate(sim["initial_frame_sigma_rel"]))
    blurred = cv2.GaussianBlur(f0, (0, 0), sigmaX=sx, sigmaY=sy, borderType=cv2.BORDER_REFLECT)
    dark = (blurred - f0).mean(axis=2) < sim["diff_threshold"]
    mix = sim["frame_mixing_percentage"]
    out = f0.copy()
    out[dark] = mix * blurred[dark] + (1 - mix) * f0[dark]
    return out


def gaussian_blur(img: torch.Tensor, sigma_xy: tuple[float, float]) -> torch.Tensor:
    """Separable Gaussian blur of each image of ``img`` (N x H x W), mirror padding.

    OpenCV's separable filter (kernel radius 3 sigma) is an order of magnitude faster on
    the CPU than a 1-channel ``conv2d`` for these kernel sizes, and deterministic.
    """
    assert img.dim() == 3
    h, w = img.shape[1:]
    kx = 2 * min(math.ceil(3.0 * sigma_xy[0]), w - 1) + 1
    ky = 2 * min(math.ceil(3.0 * sigma_xy[1]), h - 1) + 1
    src = img.detach().to(torch.float32).contiguous().numpy()
    out = np.empty_like(src)
    for n in range(src.shape[0]):
        out[n] = cv2.GaussianBlur(
            src[n], (kx, ky), sigmaX=sigma_xy[0], sigmaY=sigma_xy[1], borderType=cv2.BORDER_REFLECT_101
        )
    return torch.from_numpy(out)


class GelSightRenderer:
    """Render batches of height maps to GelSight RGB images at ``width x height``.

    Args:
        width, height: output size in pixels; the field of view is always the calibrated
            sensor's (640 x 480 pixels of ``pixmm`` mm, about 18.9 x 14.2 mm).
        calib_path: calibration folder (default: the taxim wheel's GelSight).

    """

    PRESS_FADE_MM = 0.05  # indentation over which the flat-gel colour offset fades in

    def __init__(self, width: int = 160, height: int = 120, calib_path: str | None = None) -> None:
        if not (8 <= width <= FULL_W and 6 <= height <= FULL_H):
            raise ValueError(f"image size {width}x{height} outside 8x6 .. {FULL_W}x{FULL_H}")
        cal = load_calibration(calib_path)
        self.width, self.height = width, height
        self.pixmm_full = cal.pixmm
        self.mm_per_px = (cal.pixmm * FULL_W / width, cal.pixmm * FULL_H / height)  # (x, y)
        self.fov_mm = (cal.pixmm * FULL_W, cal.pixmm * FULL_H)
        self.params = cal.params
        area = cv2.INTER_AREA
        bg = cv2.resize(cal.f0_rgb, (width, height), interpolation=area)
        self.background = torch.from_numpy(bg).float().permute(2, 0, 1).contiguous()  # 3 x H x W
        dome = cv2.resize(cal.gel_dome_mm, (width, height), interpolation=area)
        self.dome = torch.from_numpy(dome).float()  # H x W, <= 0
        self.bins = cal.poly_rgb.shape[1]
        poly = torch.from_numpy(cal.poly_rgb).float().reshape(3, self.bins * self.bins, 6)
        self.poly_rows = poly.permute(1, 0, 2).contiguous()  # B*B x 3 x 6: one row per (slope, direction) bin
        # polynomial features in full-resolution pixel coordinates at our pixel centres
        xs = (np.arange(width) + 0.5) * FULL_W / width - 0.5
        ys = (np.arange(height) + 0.5) * FULL_H / height - 0.5
        xx, yy = np.meshgrid(xs, ys)
        feats = np.stack([xx * xx, yy * yy, xx * yy, xx, yy, np.ones_like(xx)], axis=-1)
        self.features = torch.from_numpy(feats.reshape(-1, 6)).float()  # HW x 6
        # the table's response to a flat gel: subtracted, so that no contact = the real frame
        flat = self._shade(torch.zeros(1, height, width))
        self.flat_offset = flat[0]  # 3 x H x W
        # the untouched gel (its dome is already in the real background frame)
        self.rest_surface = self.deform(torch.full((1, height, width), FAR_MM))[0]  # H x W

    def _sigma(self, rel: list[float] | tuple[float, float]) -> tuple[float, float]:
        return (rel[0] * self.width, rel[1] * self.height)

    def deform(self, height_mm: torch.Tensor) -> torch.Tensor:
        """Gel surface (N x H x W mm) for object height maps (N x H x W mm), Taxim-style."""
        assert height_mm.dim() == 3 and height_mm.shape[1:] == (self.height, self.width)
        dome = self.dome[None]
        joined = torch.minimum(height_mm, dome)  # N x H x W: the gel is pushed where the object is
        depth = (-height_mm).amax(dim=(1, 2)).clamp(min=0.0)  # N
        contact = height_mm < 0
        keep = contact & (joined - dome < -depth[:, None, None] * self.params["contact_scale"])
        surf = joined
        sig_x, sig_y = self.params["deform_pyramid_sigma_rel"]
        for sx, sy in zip(sig_x, sig_y, strict=True):
            surf = gaussian_blur(surf, (sx * self.width, sy * self.height))
            surf = torch.where(keep, joined, surf)
        return gaussian_blur(surf, self._sigma(self.params["deform_final_sigma_rel"]))

    def _shade(self, surface_mm: torch.Tensor) -> torch.Tensor:
        """Colour change (N x 3 x H x W, 0..255 scale) of a gel surface (N x H x W mm)."""
        n, h, w = surface_mm.shape
        z = -surface_mm  # towards the camera is +
        zp = F.pad(z[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
        d_row = (zp[:, 2:, 1:-1] - zp[:, :-2, 1:-1]) / (2 * self.mm_per_px[1])
        d_col = (zp[:, 1:-1, 2:] - zp[:, 1:-1, :-2]) / (2 * self.mm_per_px[0])
        slope = torch.atan(torch.sqrt(d_row * d_row + d_col * d_col))  # N x H x W, [0, pi/2)
        direction = torch.atan2(d_row, d_col)  # [-pi, pi]
        b = self.bins - 1
        i_mag = torch.clamp((slope / (0.5 * math.pi / b)).long(), 0, b)
        i_dir = torch.clamp(((direction + math.pi) / (2 * math.pi / b)).long(), 0, b)
        i_dir = torch.where(i_mag == 0, b // 2, i_dir)  # no slope, no direction: one bin (numerical noise)
        idx = (i_mag * self.bins + i_dir).reshape(-1)  # N*H*W
        coef = self.poly_rows.index_select(0, idx).reshape(n, h * w, 3, 6)  # N x HW x 3 x 6
        val = (coef * self.features[None, :, None, :]).sum(-1)  # N x HW x 3
        return val.permute(0, 2, 1).reshape(n, 3, h, w)

    @torch.no_grad()
    def render_float(self, height_mm: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Noise-free images, N x 3 x H x W float (0..255 scale, unclipped), for a batch of height maps."""
        hm = torch.as_tensor(np.asarray(height_mm, dtype=np.float32))
        if hm.dim() == 2:
            hm = hm[None]
        out = self.background[None].repeat(hm.shape[0], 1, 1, 1)  # N x 3 x H x W
        touched = (hm < self.dome[None]).flatten(1).any(dim=1)  # N: the object reaches the gel
        if touched.any():
            sel = touched.nonzero()[:, 0]
            # the colour change comes from the deformation relative to the untouched gel
            surface = self.deform(hm[sel]) - self.rest_surface[None]  # n x H x W, <= 0 where pressed
            # the table's flat-slope response belongs to pressed gel only: fade it in with the indentation
            pressed = (-surface / self.PRESS_FADE_MM).clamp(0.0, 1.0)[:, None]  # n x 1 x H x W
            out[sel] = out[sel] + self._shade(surface) - (1.0 - pressed) * self.flat_offset[None]
        return out

    def render(
        self,
        height_mm: np.ndarray | torch.Tensor,
        rng: np.random.Generator | None = None,
        noise_std: float = 0.0,
        colour_gain: np.ndarray | None = None,
    ) -> np.ndarray:
        """Render N x H x W height maps (mm) to N x H x W x 3 uint8 RGB images.

        ``colour_gain`` (3,) scales each channel (per-trial illumination variation);
        ``noise_std`` adds Gaussian sensor noise drawn from ``rng`` (reproducible).
        """
        img = self.render_float(height_mm).permute(0, 2, 3, 1).numpy()  # N x H x W x 3
        if colour_gain is not None:
            img = img * np.asarray(colour_gain, np.float32)[None, None, None, :]
        if noise_std > 0:
            assert rng is not None, "noise needs a seeded rng"
            img = img + rng.normal(0.0, noise_std, img.shape).astype(np.float32)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)

    def sphere_height_map(
        self, center_px: tuple[float, float], radius_mm: float, depth_mm: float
    ) -> np.ndarray:
        """Height map (H x W mm) of a sphere pressed ``depth_mm`` into the gel at a full-res pixel centre."""
        xs = ((np.arange(self.width) + 0.5) * FULL_W / self.width - 0.5 - center_px[0]) * self.pixmm_full
        ys = ((np.arange(self.height) + 0.5) * FULL_H / self.height - 0.5 - center_px[1]) * self.pixmm_full
        xx, yy = np.meshgrid(xs, ys)
        r2 = xx * xx + yy * yy
        inside = r2 < radius_mm**2
        hm = np.full(r2.shape, FAR_MM, np.float32)
        hm[inside] = (radius_mm - np.sqrt(radius_mm**2 - r2[inside])) - depth_mm
        return hm


BALL_RADIUS_MM = 2.0  # the calibration ball (Taxim: 4 mm diameter)


def ball_press_error(renderer: GelSightRenderer, indices: list[int] | None = None) -> dict[str, float]:
    """Render the real calibration ball presses and compare them with the real frames.

    The press depth follows from the annotated contact radius a: d = R - sqrt(R^2 - a^2).
    Errors are mean absolute intensity differences (0..255) inside the contact circle
    enlarged by 20 %, for the rendering and for the no-contact frame as a baseline.
    """
    cal = load_calibration()
    idx = list(range(len(cal.ball_imgs_rgb))) if indices is None else indices
    sim_err, base_err = [], []
    for k in idx:
        cx, cy = cal.ball_center_px[k]
        a_mm = cal.ball_contact_radius_px[k] * cal.pixmm
        depth = BALL_RADIUS_MM - math.sqrt(max(BALL_RADIUS_MM**2 - a_mm**2, 0.0))
        hm = renderer.sphere_height_map((cx, cy), BALL_RADIUS_MM, depth)
        sim = np.clip(renderer.render_float(hm)[0].permute(1, 2, 0).numpy(), 0, 255)
        real = cv2.resize(
            cal.ball_imgs_rgb[k].astype(np.float32),
            (renderer.width, renderer.height),
            interpolation=cv2.INTER_AREA,
        )
        bg = renderer.background.permute(1, 2, 0).numpy()
        xs = (np.arange(renderer.width) + 0.5) * FULL_W / renderer.width - 0.5 - cx
        ys = (np.arange(renderer.height) + 0.5) * FULL_H / renderer.height - 0.5 - cy
        xx, yy = np.meshgrid(xs, ys)
        mask = xx * xx + yy * yy < (1.2 * cal.ball_contact_radius_px[k]) ** 2
        sim_err.append(float(np.abs(sim - real)[mask].mean()))
        base_err.append(float(np.abs(bg - real)[mask].mean()))
    sim_mae, base_mae = float(np.mean(sim_err)), float(np.mean(base_err))
    return {"sim_mae": sim_mae, "no_contact_mae": base_mae, "ratio": sim_mae / base_mae, "n": float(len(idx))}
