"""The grasp simulator: renderer vs real frames, gel physics, determinism, layout, streams."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tactile_grasp_predictor.data.calandra import GELSIGHT_KEYS, CalandraShard, index_shards
from tactile_grasp_predictor.errors import ConfigError
from training.sim import cli, gel
from training.sim.gelsight import FAR_MM, GelSightRenderer, ball_press_error
from training.sim.protocol import SimConfig, TrialSimulator

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args([*argv, "--no-progress"]))


@pytest.fixture(scope="module")
def renderer() -> GelSightRenderer:
    return GelSightRenderer(160, 120)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "a"
    assert (
        _run_cli("--trials", "16", "--seed", "3", "--out", str(out), "--shard-size", "8", "--workers", "2")
        == 0
    )
    return out


# --- renderer ---------------------------------------------------------------------------
def test_renderer_matches_real_ball_presses(renderer: GelSightRenderer) -> None:
    err = ball_press_error(renderer, indices=list(range(0, 48, 4)))
    # the rendering must be much closer to the real pressed frame than the no-contact frame is
    assert err["sim_mae"] < 0.55 * err["no_contact_mae"], err
    assert err["sim_mae"] < 12.0, err


def test_no_contact_is_the_real_background(renderer: GelSightRenderer) -> None:
    img = renderer.render(np.full((2, 120, 160), FAR_MM, np.float32))
    bg = np.clip(np.rint(renderer.background.permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)
    assert img.shape == (2, 120, 160, 3) and img.dtype == np.uint8
    assert np.abs(img.astype(int) - bg[None]).max() <= 1  # float rounding only


def test_deeper_press_changes_more_pixels(renderer: GelSightRenderer) -> None:
    bg = renderer.render(np.full((1, 120, 160), FAR_MM, np.float32))[0].astype(int)
    shallow, deep = (
        renderer.render(renderer.sphere_height_map((320, 240), 2.0, d)[None])[0] for d in (0.2, 1.0)
    )
    changed = [int((np.abs(x.astype(int) - bg).sum(-1) > 15).sum()) for x in (shallow, deep)]
    assert 0 < changed[0] < changed[1]


def test_renderer_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="outside"):
        GelSightRenderer(1280, 960)


# --- gel model --------------------------------------------------------------------------
def test_winkler_depth_balances_force() -> None:
    yy, xx = np.mgrid[-30:30, -40:40] * 0.1  # mm
    gap = (xx**2 + yy**2) / (2 * 5.0)  # a sphere of radius 5 mm, touching at the centre
    for force in (1.0, 4.0, 10.0):  # below the gel-thickness cap
        depth = gel.indentation_depth(gap, force, 0.01)
        carried = gel.GEL_STIFFNESS * 0.01 * np.maximum(depth - gap, 0).sum()
        assert carried == pytest.approx(force, rel=1e-6)
    flat = gel.indentation_depth(np.zeros((60, 80)), 10.0, 0.01)
    assert flat == pytest.approx(10.0 / (gel.GEL_STIFFNESS * 0.01 * 60 * 80))
    assert gel.indentation_depth(gap, 10.0, 0.01) > flat  # curved presses deeper than flat
    assert gel.indentation_depth(gap, 1e4, 0.01) == gel.MAX_DEPTH_MM
    hm, d = gel.height_map(np.full((6, 8), np.inf), 10.0, 0.01)
    assert d == 0.0 and (hm == FAR_MM).all()


def test_flat_face_on_the_domed_gel_grows_a_patch(renderer: GelSightRenderer) -> None:
    dome = renderer.dome.numpy()  # <= 0, 0 at the top of the gel
    flat = np.zeros_like(dome)  # a flat face on the pad plane
    pixel_area = renderer.mm_per_px[0] * renderer.mm_per_px[1]
    patches = []
    for force in (5.0, 30.0):
        hm, _depth = gel.height_map(flat, force, pixel_area, dome_mm=dome)
        pressed = np.maximum(dome - hm, 0)  # indentation of the gel
        assert gel.GEL_STIFFNESS * pixel_area * pressed.sum() == pytest.approx(force, rel=1e-4)
        patches.append(int((pressed > 0).sum()))
    assert 0 < patches[0] < patches[1] < flat.size


def test_higher_grip_force_presses_deeper_and_wider() -> None:
    sim = TrialSimulator(SimConfig(noise=0.0))
    for index in range(12):  # the first trial whose grasp makes contact at both forces
        lo, hi = (sim.simulate(5, index, grip_force=f) for f in (8.0, 32.0))
        if lo["sim_force_A_tb"] > 1.0 and hi["sim_force_A_tb"] > 1.0:
            break
    assert lo["object_name"] == hi["object_name"]
    assert lo["sim_force_A_tb"] == pytest.approx(8.0, rel=0.15)
    assert hi["sim_force_A_tb"] == pytest.approx(32.0, rel=0.15)
    assert hi["sim_depth_A_tb"] > lo["sim_depth_A_tb"]
    assert hi["sim_contact_px_A_tb"] >= lo["sim_contact_px_A_tb"]
    d_lo, d_hi = (
        np.abs(t["gelsightA_during"].astype(int) - t["gelsightA_before"].astype(int)).mean() for t in (lo, hi)
    )
    assert d_hi > d_lo > 0.5


# --- shards -----------------------------------------------------------------------------
def test_shards_have_the_real_layout(sim_dir: Path) -> None:
    files = sorted(sim_dir.glob("*.h5"))
    assert [f.name for f in files] == ["sim_seed3_000.h5", "sim_seed3_001.h5"]
    index = index_shards(sim_dir, skip_bad=False)
    assert len(index) == 16 and not index.skipped
    labels = index.labels
    assert 0 < labels.sum() < len(labels), "both classes on a few dozen trials"
    with CalandraShard(files[0]) as shard:
        extra = ["sim_gripper_time", "sim_gripper_width"]
        t = shard.read(0, keys=[*GELSIGHT_KEYS, *extra])
        for k in GELSIGHT_KEYS:
            assert t.images[k].dtype == np.uint8 and t.images[k].shape == (120, 160, 3)
        assert t.object_name.startswith("sim_")
        e = t.extras
        times = [e[f"sim_t_{p}"] for p in ("before", "close", "during", "lift", "after")]
        assert times == sorted(times) and times[0] > 0
        gt, gw = e["sim_gripper_time"], e["sim_gripper_width"]
        assert gt.dtype == np.float64 and gw.shape == gt.shape
        assert np.diff(gt).max() <= 0.05 + 1e-9 and gt[0] <= times[0] and gt[-1] >= times[-1]
        assert 0.0 < gw[0] <= 0.110 and gw[-1] < gw[0]  # opened, then closed on the object
        assert {"sim_mass", "sim_friction", "sim_com_x", "sim_grip_force"} <= set(e)
    assert not (set(t.extras) & {"object_name", "is_gripping", *GELSIGHT_KEYS})


def test_same_seed_same_bytes_whatever_the_workers(sim_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "b"
    assert (
        _run_cli("--trials", "16", "--seed", "3", "--out", str(other), "--shard-size", "8", "--workers", "1")
        == 0
    )
    for f in sorted(sim_dir.glob("*.h5")):
        assert (other / f.name).read_bytes() == f.read_bytes(), f.name


def test_resume_skips_complete_shards(sim_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    shutil.copytree(sim_dir, out)
    kept = out / "sim_seed3_000.h5"
    os.utime(kept, (1_000_000, 1_000_000))
    (out / "sim_seed3_001.h5").unlink()
    assert (
        _run_cli("--trials", "16", "--seed", "3", "--out", str(out), "--shard-size", "8", "--workers", "1")
        == 0
    )
    assert kept.stat().st_mtime == 1_000_000  # not rewritten
    assert (out / "sim_seed3_001.h5").read_bytes() == (sim_dir / "sim_seed3_001.h5").read_bytes()
    with pytest.raises(ConfigError, match="other options"):
        _run_cli("--trials", "24", "--seed", "4", "--out", str(out), "--shard-size", "8")


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="width"):
        _run_cli("--trials", "2", "--out", str(tmp_path), "--width", "1280", "--height", "960")
    with pytest.raises(ConfigError, match="trials"):
        _run_cli("--trials", "0", "--out", str(tmp_path))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        _run_cli("--trials", "2", "--out", str(tmp_path / "file"))


def test_streams_hold_the_snapshot_frames() -> None:
    plain = TrialSimulator(SimConfig()).simulate(9, 1)
    t = TrialSimulator(SimConfig(streams=True, fps=15.0)).simulate(9, 1)
    for side in "AB":
        frames, times = t[f"sim_gelsight{side}_stream"], t[f"sim_gelsight{side}_stream_time"]
        assert (
            frames.dtype == np.uint8 and frames.shape[1:] == (120, 160, 3) and frames.shape[0] == len(times)
        )
        assert times[0] <= t["sim_t_close"] - 0.45 and times[-1] == t["sim_t_after"]
        assert np.diff(times).mean() == pytest.approx(1 / 15, abs=0.005)
        for phase in ("before", "during", "after"):
            k = int(np.flatnonzero(np.isclose(times, t[f"sim_t_{phase}"]))[0])
            assert np.array_equal(frames[k], t[f"gelsight{side}_{phase}"])
            assert np.array_equal(plain[f"gelsight{side}_{phase}"], t[f"gelsight{side}_{phase}"])


@pytest.mark.skipif(
    not (ROOT / ".venv-fixtures/bin/python").exists(), reason="no numpy<2 venv with flammkuchen"
)
def test_flammkuchen_reads_the_shards(sim_dir: Path) -> None:
    code = (
        "import flammkuchen as fl, json, sys; d = fl.load(sys.argv[1]); "
        "print(json.dumps([[t['object_name'].decode(), int(t['is_gripping']), "
        "str(t['gelsightA_during'].dtype), list(t['gelsightB_after'].shape)] for t in d]))"
    )
    out = subprocess.run(
        [str(ROOT / ".venv-fixtures/bin/python"), "-c", code, str(sim_dir / "sim_seed3_001.h5")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows = json.loads(out.stdout)
    assert len(rows) == 8 and all(r[2] == "uint8" and r[3] == [120, 160, 3] for r in rows)
