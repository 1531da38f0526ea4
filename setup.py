"""ament_python package: the runtime package, the offline tools, launch and config files."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "tactile_grasp_predictor"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", "training", "training.*"]),
    package_data={"training": ["configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="tactile_grasp_predictor maintainers",
    maintainer_email="maintainers@tactile-grasp-predictor.dev",
    description="Tactile (GelSight) grasp-outcome prediction with MoCo v2, as a ROS 2 node.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            # The offline tool; subcommands are listed in training/cli.py.
            "tgp = training.cli:main",
            # ROS 2 executables (`ros2 run tactile_grasp_predictor <name>`).
            "predictor_node = tactile_grasp_predictor.ros.predictor_node:main",
            "sim_robot_node = tactile_grasp_predictor.ros.sim_robot_node:main",
            "pick_gate_example = tactile_grasp_predictor.ros.pick_gate_example:main",
        ],
    },
)
