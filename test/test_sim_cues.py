"""The simulator's physical cues and nuisances: textures, materials, objects, shear and sensors."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from training.sim import gel
from training.sim.materials import MATERIALS, TEXTURES, draw_surface, texture_height
from training.sim.objects import KINDS, catalogue, instantiate
from training.sim.sensors import N_SENSORS, SensorLook, fleet, ideal_sensor
from training.sim.shear import SHEAR_STIFFNESS, shear_field
from training.sim.world import GraspWorld, build_xml


# --- materials and textures -------------------------------------------------------------------
def test_every_texture_family_is_used_and_bounded() -> None:
    assert {m.texture for m in MATERIALS.values()} == set(TEXTURES)
    rng = np.random.default_rng(0)
    pts = np.stack(np.meshgrid(np.linspace(0, 0.01, 80), np.linspace(0, 0.01, 80), [0.0]), -1).reshape(-1, 3)
    for name, m in MATERIALS.items():
        s = draw_surface(name, rng)
        h = texture_height(s, pts)
        assert h.shape == (len(pts),) and h.min() >= -1e-9 and h.max() <= s.amp_mm + 1e-9, name
        if m.texture == "smooth":
            assert np.ptp(h) <= 0.004
        else:
            assert np.ptp(h) > 0.3 * s.amp_mm, name  # a visible relief


def test_ribs_repeat_at_their_pitch() -> None:
    s = draw_surface("ribbed_plastic", np.random.default_rng(3), axis=(1.0, 0.0, 0.0))
    d1 = np.asarray(s.d1)
    along = np.linspace(0.0, 0.02, 4000)[:, None] * d1[None]  # metres along the rib axis
    h = texture_height(s, along)
    spectrum = np.abs(np.fft.rfft(h - h.mean()))
    freq = np.fft.rfftfreq(len(h), d=20.0 / len(h))  # cycles per mm
    assert freq[np.argmax(spectrum)] == pytest.approx(1.0 / s.pitch_mm, rel=0.05)


# --- objects ---------------------------------------------------------------------------------
def test_every_family_builds_a_world_with_physical_mass_properties() -> None:
    cat = catalogue()
    assert len({s.name for s in cat}) == len(cat) and {s.kind for s in cat} == set(KINDS)
    assert [s.name for s in catalogue()] == [s.name for s in cat]  # fixed: the same objects every run
    rng = np.random.default_rng(1)
    for kind in KINDS:
        spec = next(s for s in cat if s.kind == kind)
        obj = instantiate(spec, rng)
        assert 0.04 <= obj.mass <= 2.0 and obj.volume > 0, kind
        assert all(abs(c) <= h for c, h in zip(obj.com, obj.half_extent, strict=True)), kind
        model = mujoco.MjModel.from_xml_string(build_xml(obj, 10.0, (0.0, 0.0, 0.1), (1.0, 0.0, 0.0, 0.0)))
        frictions = model.geom_friction[model.geom_group == 3][:, 0]
        wanted = [obj.surfaces[p.surface].friction for p in obj.parts]
        assert np.allclose(frictions, wanted, rtol=1e-4), kind  # each part its material's friction


def test_settling_brings_a_rolling_object_to_rest() -> None:
    spec = next(s for s in catalogue() if s.kind == "ball")
    obj = instantiate(spec, np.random.default_rng(4))
    world = GraspWorld(obj, 10.0, (0.0, 0.0, obj.half_extent[2] + 0.002))
    world.set_hand((0.0, 0.0, 0.4), 0.0, instant=True)
    assert world.settle(1.5) < 0.005
    assert (world.model.dof_damping[-6:] == 0).all()  # the damping only steadies, it does not stay


# --- shear: the brush model ---------------------------------------------------------------------
def _patch(n: int = 40, p: float = 0.05) -> np.ndarray:  # below the large-strain cap
    pressure = np.zeros((60, 80), np.float32)
    yy, xx = np.mgrid[:60, :80]
    pressure[(yy - 30) ** 2 + (xx - 40) ** 2 < (n / 2) ** 2] = p
    return pressure


def test_sticking_contact_carries_the_force_and_slips_from_the_rim() -> None:
    pressure, mu, px = _patch(), 0.8, (0.1, 0.1)
    n_force = float(pressure.sum()) * px[0] * px[1]
    slips, shifts = [], []
    for ratio in (0.1, 0.5, 0.9, 1.2):
        disp, slip = shear_field(pressure, (ratio * mu * n_force, 0.0), 0.0, mu, px)
        carried = SHEAR_STIFFNESS * disp[pressure > 0, 0].sum() * px[0] * px[1]
        assert carried == pytest.approx(min(ratio, 1.0) * mu * n_force, rel=1e-3)
        assert np.abs(disp[..., 1]).max() < 0.05 * np.abs(disp[..., 0]).max()  # along the force
        slips.append(slip)
        shifts.append(float(disp[30, 40, 0]))
    assert slips[0] == 0.0 and slips[-1] == 1.0 and slips == sorted(slips)
    assert shifts == sorted(shifts)


def test_partial_slip_starts_where_the_pressure_is_low() -> None:
    yy, xx = np.mgrid[:60, :80]
    r2 = ((yy - 30) ** 2 + (xx - 40) ** 2) / 20.0**2
    pressure = (0.08 * np.sqrt(np.clip(1 - r2, 0, None))).astype(np.float32)  # Hertz-like: low at the rim
    n_force = float(pressure.sum()) * 0.01
    disp, slip = shear_field(pressure, (0.0, 0.6 * 0.5 * n_force), 0.0, 0.5, (0.1, 0.1))
    assert 0.0 < slip < 1.0
    traction = SHEAR_STIFFNESS * disp[..., 1]
    at_limit = np.isclose(traction, 0.5 * pressure, rtol=1e-3) & (pressure > 0)
    assert at_limit.any() and r2[at_limit].min() > r2[~at_limit & (pressure > 0)].max() - 0.2


def test_torque_turns_the_gel_about_the_contact() -> None:
    disp, _ = shear_field(_patch(), (0.0, 0.0), 0.5, 1.0, (0.1, 0.1))  # N mm, turning x towards y
    # rotation from +x to +y: right of the centre moves down (+y), left moves up
    assert disp[30, 55, 1] > 0 > disp[30, 25, 1]
    assert disp[45, 40, 0] < 0 < disp[15, 40, 0]


# --- sensors -----------------------------------------------------------------------------------
def test_the_fleet_is_fixed_and_varied() -> None:
    a, b = fleet(), fleet()
    assert a == b and len(a) == N_SENSORS
    assert 0 < sum(s.markers for s in a) < N_SENSORS
    assert len({s.led_gain for s in a}) == N_SENSORS


def test_markers_move_with_the_gel_and_the_ideal_sensor_is_the_background() -> None:
    bg = np.full((3, 48, 64), 120.0, np.float32)
    ideal = SensorLook(ideal_sensor(0), bg, (18.9, 14.2))
    assert np.array_equal(ideal.frame(np.zeros_like(bg)), bg)
    spec = next(s for s in fleet() if s.markers)
    look = SensorLook(spec, bg, (18.9, 14.2))
    still = look.frame(np.zeros_like(bg))[0]
    disp = np.zeros((48, 64, 2), np.float32)
    disp[..., 0] = 2.0  # the whole gel surface 2 px to the right
    moved = look.frame(np.zeros_like(bg), disp)[0]
    inner = slice(8, -8)
    errors = {
        s: float(np.abs(np.roll(still, s, axis=1)[:, inner] - moved[:, inner]).mean()) for s in range(-4, 5)
    }
    assert min(errors, key=errors.__getitem__) == 2 and errors[2] < 0.2 * errors[0]
    frame = look.expose(still[None].repeat(3, 0), 1.0, np.random.default_rng(0), np.ones(3), noise=0.0)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8


def test_gel_pressure_is_the_spring_load() -> None:
    dome = np.zeros((6, 8), np.float32)
    hm, _ = gel.height_map(np.zeros((6, 8)), 5.0, 0.5, dome_mm=dome)
    assert float(gel.pressure(hm, dome).sum()) * 0.5 == pytest.approx(5.0, rel=1e-5)


def test_pad_wrench_balances_the_grip_force() -> None:
    spec = next(s for s in catalogue() if s.kind == "box")
    obj = instantiate(spec, np.random.default_rng(2))
    world = GraspWorld(obj, 20.0, (0.0, 0.0, obj.half_extent[2] + 0.002))
    world.set_hand((0.0, 0.0, obj.half_extent[2]), 0.0, instant=True)
    world.set_opening(0.0)
    world.step(400)
    normal_a, tang_a, _, _ = world.pad_wrench("A")
    normal_b, _, _, _ = world.pad_wrench("B")
    assert normal_a == pytest.approx(20.0, rel=0.1) and normal_b == pytest.approx(20.0, rel=0.1)
    assert math.hypot(*tang_a) < obj.friction * normal_a
