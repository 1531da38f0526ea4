"""The options of live bag playback, shared by ``tgp bag play`` and ``bag_player``'s ``main``.

Kept free of ROS imports so that ``tgp bag`` parses its options without importing rclpy.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_play_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the playback options (bag, rate, start offset, /clock, topics, waiting)."""
    parser.add_argument("bag", type=Path, help="rosbag2 directory (mcap or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--start-offset", type=float, default=0.0, help="skip the first S seconds")
    parser.add_argument("--clock", action="store_true", help="publish /clock (for use_sim_time:=true)")
    parser.add_argument(
        "--clock-lead",
        type=float,
        default=0.005,
        metavar="S",
        help="publish each /clock this long (wall s) before its message",
    )
    parser.add_argument("--topics", nargs="*", default=None, help="play only these topics")
    parser.add_argument(
        "--wait-for-subscribers",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for a subscriber on every played topic before starting",
    )
