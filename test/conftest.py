"""Shared test set-up.

Every test process gets its own DDS domain on loopback, so parallel test runs (and
other ROS 2 processes on the machine) never see each other's topics.
"""

from __future__ import annotations

import os

if "TGP_TEST_KEEP_DOMAIN" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # Jazzy and later
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")  # Humble
