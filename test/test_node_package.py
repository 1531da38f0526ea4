"""The robot-side install set: package.xml declares exactly the ROS packages the code imports, and
requirements/runtime.txt (with the ROS install) covers everything the node loads, nothing more."""

from __future__ import annotations

import ast
import importlib.metadata as md
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers.bundles import make_random_bundle

ROOT = Path(__file__).resolve().parents[1]
#: ROS packages that are not on PyPI (so not in this venv's ament index) but are imported by launch files.
NOT_INSTALLABLE_HERE = {"launch", "launch_ros"}
#: rosdep keys of package.xml → the distribution that provides the module here.
ROSDEP = {"python3-numpy": "numpy", "python3-opencv": "opencv-python-headless", "python3-yaml": "pyyaml",
          "python3-h5py": "h5py", "python3-tqdm": "tqdm"}
#: Never on the robot: training, simulation, replay, plotting.
OFFLINE_ONLY = {"mujoco", "taxim", "kornia", "scikit-learn", "scipy", "matplotlib", "rosbags", "mcap", "h5py",
                "hdf5plugin", "onnx", "rich", "tqdm", "psutil", "opencv-python", "opencv-python-headless"}


def declared() -> tuple[set[str], set[str]]:
    """package.xml's ROS dependencies and rosdep (python3-*) keys."""
    names = {e.text or "" for e in ET.parse(ROOT / "package.xml").getroot()
             if e.tag in ("depend", "exec_depend", "build_depend")}
    return {n for n in names if not n.startswith("python3-")}, {n for n in names if n.startswith("python3-")}


def imported_modules() -> set[str]:
    """Top-level module names imported anywhere in tactile_grasp_predictor/ and launch/."""
    out = set()
    for path in [*(ROOT / "tactile_grasp_predictor").rglob("*.py"), *(ROOT / "launch").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.add(node.module.split(".")[0])
    return out


def ros_packages() -> set[str]:
    """The ROS packages of this environment's ament index (the venv's prefix and AMENT_PREFIX_PATH)."""
    prefixes = [Path(sys.prefix), *(Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(":") if p)]
    index = [p / "share" / "ament_index" / "resource_index" / "packages" for p in prefixes]
    return {f.name for d in index if d.is_dir() for f in d.iterdir()} | NOT_INSTALLABLE_HERE


def test_package_xml_declares_every_ros_import_and_nothing_unused() -> None:
    ros, _keys = declared()
    used = (imported_modules() & ros_packages()) - {"tactile_grasp_predictor"}
    assert used - ros == set(), f"imported but not in package.xml: {sorted(used - ros)}"
    assert ros - used == set(), f"in package.xml but not imported: {sorted(ros - used)}"
    assert "std_srvs" not in ros and {"rcl_interfaces", "rosgraph_msgs", "lifecycle_msgs"} <= ros


def runtime_requirements() -> list[Requirement]:
    lines = (ROOT / "requirements" / "runtime.txt").read_text().splitlines()
    return [Requirement(line.split("#")[0].strip()) for line in lines if line.split("#")[0].strip()]


def closure(names: set[str]) -> set[str]:
    """``names`` and everything they require here (markers evaluated, no extras), canonical names."""
    env = {**default_environment(), "extra": ""}
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(canonicalize_name(req.name))
    return seen


def test_runtime_requirements_are_robot_side_and_fit_the_ros_installs() -> None:
    reqs = {canonicalize_name(r.name): r for r in runtime_requirements()}
    assert set(reqs) == {"numpy", "torch", "torchvision", "safetensors", "onnxruntime"}
    assert not set(reqs) & OFFLINE_ONLY
    numpy = reqs["numpy"].specifier
    for system in ("1.21.6", "1.26.4"):  # Humble (after pip's lift from 1.21.5), Jazzy / Kilted
        assert numpy.contains(system), system
    assert not numpy.contains("2.0.0"), "the system OpenCV / cv_bridge are built against numpy 1.x"
    for name, req in reqs.items():  # the workstation's pins satisfy the robot's ranges (numpy aside)
        if name != "numpy":
            assert req.specifier.contains(md.version(name), prereleases=True), (name, md.version(name))
    pins = (ROOT / "requirements" / "workstation.txt").read_text()
    for heavy in ("mujoco", "taxim", "kornia"):
        assert re.search(rf"^{heavy}==", pins, re.M), f"make setup still installs {heavy}"


def test_what_the_node_loads_is_covered_by_runtime_txt_rosdep_and_ros(tmp_path: Path) -> None:
    """Import the node and load a bundle (torch and onnx) in a fresh process; name what it loaded."""
    bundle = make_random_bundle(tmp_path / "b", size=32, onnx=True)
    probe = (
        "import sys, importlib.metadata as md, numpy as np\n"
        "import tactile_grasp_predictor.ros.predictor_node\n"
        "from tactile_grasp_predictor.inference import load_predictor\n"
        "for backend in ('torch', 'onnx'):\n"
        f"    p = load_predictor({str(bundle)!r}, backend=backend)\n"
        "    p.predict(np.zeros((48, 64, 3), np.uint8), np.zeros((48, 64, 3), np.uint8))\n"
        "dists = md.packages_distributions()\n"
        "tops = {m.split('.')[0] for m in list(sys.modules)} - set(sys.stdlib_module_names)\n"
        "print('\\n'.join(sorted({d for t in tops for d in dists.get(t, [])})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = {canonicalize_name(d) for d in proc.stdout.split()}
    assert {"torch", "onnxruntime", "safetensors", "numpy"} <= loaded  # the probe did load a model
    _ros, keys = declared()
    covered = closure({r.name for r in runtime_requirements()} | {ROSDEP[k] for k in keys})
    ros = {d for d in loaded if d.startswith("ros-") or d.replace("-", "_") in ros_packages()}
    ours = {"tactile-grasp-predictor", "tactile-grasp-msgs"}
    missing = loaded - covered - ros - ours
    assert missing == set(), f"loaded by the node, not provided by runtime.txt / package.xml: {missing}"
