"""``tgp doctor``: report what this environment can run (torch, ROS 2, the interfaces)."""

from __future__ import annotations

import argparse
import importlib
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the command only reports."""


def _check(label: str, module: str, attr: str = "__version__") -> bool:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # report any import failure, whatever its type
        print(f"  {label:<22} MISSING  ({type(exc).__name__}: {exc})")
        return False
    print(f"  {label:<22} ok       {getattr(mod, attr, '')}")
    return True


def run(args: argparse.Namespace) -> int:
    """Import each dependency the package needs and print one line each."""
    print("tactile_grasp_predictor environment")
    checks = [
        _check("torch", "torch"),
        _check("torchvision", "torchvision"),
        _check("rclpy", "rclpy", "__name__"),
        _check("tactile_grasp_msgs", "tactile_grasp_msgs.msg", "__name__"),
        _check("h5py", "h5py"),
        _check("safetensors", "safetensors", "__name__"),
        _check("onnxruntime", "onnxruntime"),
        _check("rosbags", "rosbags", "__name__"),
        _check("mujoco", "mujoco"),
    ]
    print(f"  RMW_IMPLEMENTATION     {os.environ.get('RMW_IMPLEMENTATION', '(default: rmw_fastrtps_cpp)')}")
    return 0 if all(checks) else 1
