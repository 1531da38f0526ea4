"""One ``main()`` for the package's nodes: init, build, spin, report config errors, shut down cleanly.

Example::

    def main(args: Sequence[str] | None = None) -> int:
        return spin_node_main("sim_robot_node", SimRobotNode, args, spin=spin_until_done)
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from tactile_grasp_predictor.errors import TgpError

N = TypeVar("N", bound=Node)


def spin_forever(node: Node) -> int:
    """Spin ``node`` on a single-threaded executor until shutdown; exit code 0."""
    executor: Executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.spin()
    return 0


def spin_node_main(name: str, node_factory: Callable[[], N], args: Sequence[str] | None = None,
                   spin: Callable[[N], int] = spin_forever) -> int:
    """Run a node as a program and return its exit code.

    ``rclpy.init`` with ``args`` (default ``sys.argv``), ``node_factory()``, then ``spin(node)``
    (its return value is the exit code). Ctrl-C and an external shutdown end it quietly
    (code 0); a :class:`~tactile_grasp_predictor.errors.TgpError` (bad parameters, bundle,
    shards) is printed as ``name: message`` and gives code 2. The node is destroyed and
    rclpy shut down in every case.
    """
    rclpy.init(args=list(args) if args is not None else sys.argv)
    node: N | None = None
    code = 0
    try:
        node = node_factory()
        code = spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (TgpError, ParameterException) as exc:  # ours, or rclpy's (e.g. `-p name:=value` of a wrong type)
        print(f"{name}: {exc}", file=sys.stderr)
        code = 2
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


def stop_node_process(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """Stop a node run as a child process as Ctrl-C would (SIGINT, clean shutdown); kill it if it hangs."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
