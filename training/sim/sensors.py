"""A fleet of simulated GelSight sensors: what differs from one sensor (and robot) to the next.

Every simulated trial runs on one of :data:`N_ROBOTS` robots, each with a left (A) and a
right (B) sensor; sensor ``2 r`` is robot ``r``'s left one. A :class:`SensorSpec` holds a
sensor's nuisances, drawn once from a fixed seed (the same fleet in every run), so that a
"new sensor" split (train on some sensors, test on the others) is a fleet of robots:

Each nuisance, its distribution (per sensor unless said) and what it is grounded in:

- **LED / colour calibration**: per-channel gain U(0.70, 1.15) on background and response.
  The two real calibrations in the ``taxim`` wheel differ so: the GelSight Mini's
  no-contact frame is 0.81 / 0.74 / 0.64 (R/G/B) of the GelSight's.
- **Illumination field**: ``1 + ax x + ay y + ar (x^2 + y^2 - 2/3)``, each U(-0.12, 0.12);
  the real no-contact frame varies by about +-10 % (std / mean) over the field.
- **Imprint contrast**: response gain U(0.75, 1.25) (coating reflectance, LED angle); the
  real ball presses of the two sensors differ in contrast.
- **Gel wear**: scratches Poisson(3) (2-10 mm long, 0.06-0.15 mm wide, +10..+40 DN,
  response x0.3-0.7 on them), 0-2 worn patches (1-4 mm, response x0.5-0.9), 5-40 dust
  specks (-10..-30 DN); the real GelSight frame shows such scratches and specks.
- **Markers**: on with p = 0.5; pitch U(0.9, 1.6) mm, dot radius U(0.15, 0.3) mm,
  darkness U(0.4, 0.75), grid turned U(-3, 3) deg; marker-printed GelSight gels (Yuan et
  al., ICRA 2015). They move with the gel's shear (:mod:`training.sim.shear`).
- **Mounting offset**: the field of view shifted U(-1, 1) mm along each image axis and
  turned U(-3, 3) deg on the pad (tolerances of a printed finger mount).
- **Camera noise**: read noise U(0.8, 2.5) DN, shot-noise gain U(0.005, 0.03) DN/DN
  (variance = read^2 + gain x signal: the EMVA 1288 linear camera model).
- **Exposure**: per-frame gain jitter U(0.1, 0.6) % (LED PWM, exposure steps);
  auto-exposure on with p = 0.3 (brightness held at the no-contact level; UVC webcams ship
  with auto-exposure on).
- **Lighting drift**: within a trial U(-0.3, 0.3) %/s; over a session a slow sinusoid of
  amplitude U(0, 4) % and period U(200, 1000) trials (LED flux falls ~0.3 %/K as the
  junction warms: LED datasheets).

Per trial, the camera's white balance also varies by U(0.97, 1.03) per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

N_ROBOTS = 8
N_SENSORS = 2 * N_ROBOTS
FLEET_SEED = 20260420


@dataclass(frozen=True)
class SensorSpec:
    """One sensor's nuisances (see the module table)."""

    sensor_id: int
    led_gain: tuple[float, float, float]
    illum: tuple[float, float, float]  # ax, ay, ar
    response_gain: float
    wear_seed: int
    scratches: int
    patches: int
    specks: int
    markers: bool
    marker_pitch_mm: float
    marker_radius_mm: float
    marker_darkness: float
    marker_angle_deg: float
    marker_phase: tuple[float, float]  # fraction of the pitch
    mount: tuple[float, float, float]  # du, dv (m), rotation (rad)
    read_noise: float
    shot_gain: float
    exposure_jitter: float  # relative std per frame
    auto_exposure: bool
    drift_per_s: float  # relative change per second within a trial
    session_amp: float
    session_period: float  # trials
    session_phase: float

    @property
    def name(self) -> str:
        """``gs00`` … (the shard attribute ``sim_sensor_A`` holds the id)."""
        return f"gs{self.sensor_id:02d}"


@cache
def fleet(n: int = N_SENSORS, seed: int = FLEET_SEED) -> tuple[SensorSpec, ...]:
    """Return the fixed fleet of ``n`` sensors (robot ``r`` carries sensors ``2r`` and ``2r + 1``)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform
    out = []
    for i in range(n):
        out.append(
            SensorSpec(
                sensor_id=i,
                led_gain=(float(u(0.70, 1.15)), float(u(0.70, 1.15)), float(u(0.70, 1.15))),
                illum=(float(u(-0.12, 0.12)), float(u(-0.12, 0.12)), float(u(-0.12, 0.12))),
                response_gain=float(u(0.75, 1.25)),
                wear_seed=int(rng.integers(2**31)),
                scratches=int(min(rng.poisson(3.0), 8)),
                patches=int(rng.integers(0, 3)),
                specks=int(rng.integers(5, 41)),
                markers=bool(rng.random() < 0.5),
                marker_pitch_mm=float(u(0.9, 1.6)),
                marker_radius_mm=float(u(0.15, 0.3)),
                marker_darkness=float(u(0.4, 0.75)),
                marker_angle_deg=float(u(-3.0, 3.0)),
                marker_phase=(float(u(0, 1)), float(u(0, 1))),
                mount=(float(u(-1e-3, 1e-3)), float(u(-1e-3, 1e-3)), math.radians(float(u(-3.0, 3.0)))),
                read_noise=float(u(0.8, 2.5)),
                shot_gain=float(u(0.005, 0.03)),
                exposure_jitter=float(u(0.001, 0.006)),
                auto_exposure=bool(rng.random() < 0.3),
                drift_per_s=float(u(-0.003, 0.003)),
                session_amp=float(u(0.0, 0.04)),
                session_period=float(u(200.0, 1000.0)),
                session_phase=float(u(0.0, 2 * math.pi)),
            )
        )
    return tuple(out)


def ideal_sensor(sensor_id: int) -> SensorSpec:
    """Return the calibrated sensor itself: no wear, markers, offsets or drift; Gaussian noise of 1.5 DN."""
    return SensorSpec(
        sensor_id=sensor_id,
        led_gain=(1.0, 1.0, 1.0),
        illum=(0.0, 0.0, 0.0),
        response_gain=1.0,
        wear_seed=0,
        scratches=0,
        patches=0,
        specks=0,
        markers=False,
        marker_pitch_mm=1.2,
        marker_radius_mm=0.2,
        marker_darkness=0.0,
        marker_angle_deg=0.0,
        marker_phase=(0.0, 0.0),
        mount=(0.0, 0.0, 0.0),
        read_noise=1.5,
        shot_gain=0.0,
        exposure_jitter=0.0,
        auto_exposure=False,
        drift_per_s=0.0,
        session_amp=0.0,
        session_period=1000.0,
        session_phase=0.0,
    )


class SensorLook:
    """A sensor's appearance at one image size: background, response gain, markers; applies them to frames.

    ``background`` is the renderer's real no-contact frame (3 x H x W), ``fov_mm`` its
    field of view (x, y).
    """

    def __init__(self, spec: SensorSpec, background: np.ndarray, fov_mm: tuple[float, float]) -> None:
        self.spec = spec
        _, h, w = background.shape
        self.h, self.w = h, w
        self.mm_per_px = (fov_mm[0] / w, fov_mm[1] / h)
        xs = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
        ys = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
        xx, yy = np.meshgrid(xs, ys)
        ax, ay, ar = spec.illum
        field = 1.0 + ax * xx + ay * yy + ar * (xx * xx + yy * yy - 2.0 / 3.0)
        led = np.asarray(spec.led_gain, np.float32)[:, None, None]
        wear_resp, wear_bg = self._wear()
        self.background = (background * led * field[None] + wear_bg[None]).astype(np.float32)  # 3 x H x W
        self.response = (led * spec.response_gain * wear_resp[None] * field[None]).astype(np.float32)
        self.marker_mask = self._markers() if spec.markers else None  # H x W in [0, 1]
        self.grid_x, self.grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.reference_mean = float(self.frame(np.zeros((3, h, w), np.float32)).mean())

    def _px(self, mm: float) -> float:
        return mm / self.mm_per_px[0]

    def _wear(self) -> tuple[np.ndarray, np.ndarray]:
        """Response factor (H x W, 1 = intact) and background change (H x W, DN) of the gel's wear."""
        s = self.spec
        rng = np.random.default_rng(s.wear_seed)
        h, w = self.h, self.w
        scale = 8  # draw at 8x sub-pixel precision (cv2 shift)
        resp = np.ones((h, w), np.float32)
        bg = np.zeros((h, w), np.float32)
        for _ in range(s.scratches):
            line = np.zeros((h, w), np.float32)
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            length, ang = self._px(rng.uniform(2.0, 10.0)), rng.uniform(0, np.pi)
            x1, y1 = x0 + length * math.cos(ang), y0 + length * math.sin(ang)
            thick = max(1, round(self._px(rng.uniform(0.06, 0.15))))
            cv2.line(
                line,
                (round(x0 * scale), round(y0 * scale)),
                (round(x1 * scale), round(y1 * scale)),
                1.0,
                thick,
                cv2.LINE_AA,
                shift=3,
            )
            resp *= 1.0 - line * rng.uniform(0.3, 0.7)
            bg += line * rng.uniform(10.0, 40.0)
        for _ in range(s.patches):
            patch = np.zeros((h, w), np.float32)
            centre = (round(rng.uniform(0, w) * scale), round(rng.uniform(0, h) * scale))
            axes = (
                round(self._px(rng.uniform(0.5, 2.0)) * scale),
                round(self._px(rng.uniform(0.5, 2.0)) * scale),
            )
            cv2.ellipse(patch, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA, shift=3)
            patch = np.asarray(cv2.GaussianBlur(patch, (0, 0), max(0.5, self._px(0.3))), np.float32)
            resp *= 1.0 - patch * rng.uniform(0.1, 0.5)
            bg += patch * rng.uniform(-8.0, 8.0)
        for _ in range(s.specks):
            dot = np.zeros((h, w), np.float32)
            r = max(1, round(self._px(rng.uniform(0.05, 0.15)) * scale))
            cv2.circle(
                dot,
                (round(rng.uniform(0, w) * scale), round(rng.uniform(0, h) * scale)),
                r,
                1.0,
                -1,
                cv2.LINE_AA,
                shift=3,
            )
            bg -= dot * rng.uniform(10.0, 30.0)
        return resp, bg

    def _markers(self) -> np.ndarray:
        """Draw the marker dots on the undeformed gel (H x W, 1 on a dot), antialiased."""
        s = self.spec
        h, w = self.h, self.w
        sx, sy = self.mm_per_px
        xs, ys = np.meshgrid((np.arange(w) + 0.5) * sx, (np.arange(h) + 0.5) * sy)
        a = math.radians(s.marker_angle_deg)
        u = (math.cos(a) * xs + math.sin(a) * ys) / s.marker_pitch_mm + s.marker_phase[0]
        v = (-math.sin(a) * xs + math.cos(a) * ys) / s.marker_pitch_mm + s.marker_phase[1]
        du, dv = (u - np.round(u)) * s.marker_pitch_mm, (v - np.round(v)) * s.marker_pitch_mm
        dist = np.sqrt(du * du + dv * dv)
        edge = 0.6 * sx  # antialiasing width, mm
        return np.clip((s.marker_radius_mm - dist) / edge + 0.5, 0.0, 1.0).astype(np.float32)

    def frame(self, shade: np.ndarray, disp_px: np.ndarray | None = None) -> np.ndarray:
        """Return the sensor's noise-free frame (3 x H x W float) for the renderer's colour change ``shade``.

        ``disp_px`` (H x W x 2, pixels) moves the markers with the gel's surface.
        """
        img = self.background + self.response * shade
        if self.marker_mask is not None:
            mask = self.marker_mask
            if disp_px is not None:
                mask = cv2.remap(
                    mask,
                    self.grid_x - disp_px[..., 0],
                    self.grid_y - disp_px[..., 1],
                    cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REFLECT_101,
                )
            img = img * (1.0 - self.spec.marker_darkness * mask)[None]
        return img

    def expose(
        self, img: np.ndarray, gain: float, rng: np.random.Generator, wb: np.ndarray, noise: float = 1.0
    ) -> np.ndarray:
        """Apply exposure, white balance and camera noise (scaled by ``noise``): H x W x 3 uint8."""
        s = self.spec
        if s.auto_exposure:
            gain *= self.reference_mean / max(float(img.mean()), 1.0)
        out = img * (np.float32(gain) * wb.astype(np.float32)[:, None, None])
        if noise > 0:
            var = np.float32(s.read_noise**2) + np.float32(s.shot_gain) * np.maximum(out, 0.0)
            out = out + rng.standard_normal(out.shape, dtype=np.float32) * (np.sqrt(var) * np.float32(noise))
        return np.clip(np.rint(out), 0, 255).astype(np.uint8).transpose(1, 2, 0)

    def frame_gain(self, t: float, trial_index: int, rng: np.random.Generator) -> float:
        """Lighting drift and exposure jitter of a frame at trial time ``t`` (s) of trial ``trial_index``."""
        s = self.spec
        session = 1.0 + s.session_amp * math.sin(
            2 * math.pi * trial_index / s.session_period + s.session_phase
        )
        return float(session * (1.0 + s.drift_per_s * t) * (1.0 + s.exposure_jitter * rng.standard_normal()))
