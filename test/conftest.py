"""Shared test set-up.

Every test process gets its own DDS domain on loopback, so parallel test runs (and
other ROS 2 processes on the machine) never see each other's topics. ``ros_context`` is
the one fixture every live test uses for its rclpy context. Shared helpers (not fixtures)
are the package ``test/helpers/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

if "TGP_TEST_KEEP_DOMAIN" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # Jazzy and later
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")  # Humble


@pytest.fixture
def one_thread() -> None:
    """Torch on one thread for the test (modules that train or score: ``usefixtures("one_thread")``)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def ros_context() -> Iterator[Any]:
    """A fresh rclpy context for one test (its own DDS participant), shut down afterwards."""
    import rclpy

    context = rclpy.context.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)
