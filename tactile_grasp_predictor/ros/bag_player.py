"""Play a rosbag2 recording live with rclpy, at its recorded timing (``tgp bag play``).

For machines without ``ros2 bag`` (no ``rosbag2_py`` on PyPI): the bag is read with
``rosbags`` and every message's raw CDR bytes are published unchanged (``publish`` of
``bytes``), on the recorded topic with the recorded type, at ``t0 + (log time - start) / rate``.
With ``clock=True`` a ``/clock`` (rosgraph_msgs/Clock) carrying the bag's log time is
published ``clock_lead_s`` (default 5 ms, wall) before each message, so a node with
``use_sim_time:=true`` reads the message's recorded receive time as its own "now" when the
message arrives, even if its callback runs late: the replay is then exact in time, as offline.

On a full ROS 2 install the equivalent is::

    ros2 bag play BAG --rate R --start-offset S [--clock 100]

Topics whose message type is not importable here (e.g. a driver's custom WSG status
without its package) are skipped with a warning.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

from tactile_grasp_predictor.errors import BagError
from tactile_grasp_predictor.replay.play_options import add_play_arguments

#: Reliable, volatile, depth 10: what GelSight / WSG drivers offer; best-effort subscribers match too.
PLAYER_QOS = QoSProfile(
    depth=10,
    reliability=QoSReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.VOLATILE,
    history=QoSHistoryPolicy.KEEP_LAST,
)


class Lockstep(Protocol):
    """What a lockstep playback asks of its subscriber (an in-process node)."""

    def clock_ns(self) -> int:
        """Return the subscriber's clock now (ns)."""
        ...

    def received(self, topic: str) -> int | None:
        """Messages of ``topic`` the subscriber has received so far (``None``: it does not subscribe)."""
        ...


def _clock_reached(lockstep: Lockstep, ts_ns: int) -> bool:
    return lockstep.clock_ns() >= ts_ns


def _received_more(lockstep: Lockstep, topic: str, before: int) -> bool:
    return (lockstep.received(topic) or 0) > before


@dataclass
class PlayStats:
    """What one playback did."""

    published: int = 0
    lockstep_timeouts: int = 0  # lockstep waits that ran out (a message the subscriber did not get)
    skipped_topics: dict[str, str] = field(default_factory=dict)
    late_s_max: float = 0.0  # the most a message went out after its due time
    duration_s: float = 0.0


def import_msg_type(msgtype: str) -> Any:
    """Return the rclpy message class of ``pkg/msg/Type``; :class:`BagError` if it is not importable."""
    parts = msgtype.split("/")
    if len(parts) != 3:
        raise BagError(f"message type {msgtype!r} is not 'pkg/msg/Type'")
    pkg, sub, name = parts
    try:
        return getattr(importlib.import_module(f"{pkg}.{sub}"), name)
    except (ImportError, AttributeError) as exc:
        raise BagError(f"message type {msgtype} is not installed here: {exc}") from exc


class BagPlayer(Node):
    """A node that publishes one bag's messages at their recorded timing.

    Example::

        rclpy.init()
        player = BagPlayer(Path("grasps_mcap"), rate=1.0, clock=True)
        stats = player.play()
    """

    def __init__(
        self,
        bag: Path,
        *,
        rate: float = 1.0,
        start_offset: float = 0.0,
        clock: bool = False,
        clock_lead_s: float = 0.005,
        topics: Sequence[str] | None = None,
        node_name: str = "tgp_bag_player",
        **node_kwargs: Any,
    ) -> None:
        super().__init__(node_name, **node_kwargs)
        if not rate > 0:
            raise BagError(f"rate: must be > 0, got {rate}")
        if start_offset < 0:
            raise BagError(f"start_offset: must be >= 0, got {start_offset}")
        self.bag = Path(bag)
        self.rate = float(rate)
        self.start_offset = float(start_offset)
        self.clock = clock
        self.clock_lead_s = max(0.0, float(clock_lead_s))
        self.stats = PlayStats()
        self._stop = threading.Event()
        from rosbags.rosbag2 import Reader

        path = self.bag.parent if self.bag.is_file() else self.bag
        try:
            self._reader = Reader(path)
            self._reader.open()
        except Exception as exc:
            raise BagError(f"{self.bag}: cannot open bag: {type(exc).__name__}: {exc}") from exc
        self._pubs: dict[int, Any] = {}
        wanted = set(topics) if topics else None
        for conn in self._reader.connections:
            if wanted is not None and conn.topic not in wanted:
                continue
            try:
                cls = import_msg_type(conn.msgtype)
            except BagError as exc:
                self.stats.skipped_topics[conn.topic] = str(exc)
                self.get_logger().warning(f"{self.bag.name}: not playing {conn.topic}: {exc}")
                continue
            pub = next((p for c, p in self._pubs.items() if self._conn_topic(c) == conn.topic), None)
            self._pubs[conn.id] = pub or self.create_publisher(cls, conn.topic, PLAYER_QOS)
        self._clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self._clock_pub = self.create_publisher(Clock, "/clock", PLAYER_QOS)

    def _conn_topic(self, conn_id: int) -> str:
        return next(c.topic for c in self._reader.connections if c.id == conn_id)

    @property
    def topics(self) -> list[str]:
        """The topics this player publishes."""
        return sorted({self._conn_topic(c) for c in self._pubs})

    def wait_for_subscribers(self, topics: Sequence[str], timeout_s: float) -> bool:
        """Wait until each of ``topics`` has a matched subscriber (``False`` on timeout)."""
        pubs = {p.topic_name: p for p in self._pubs.values()}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(t in pubs and pubs[t].get_subscription_count() > 0 for t in topics):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Ask a running :meth:`play` to return after the current message."""
        self._stop.set()

    def play(self, progress: bool = False, lockstep: Lockstep | None = None) -> PlayStats:
        """Publish every message at its time; blocks until the bag ends or :meth:`stop`.

        ``lockstep`` (with ``clock``): before each message wait until the subscriber's clock
        reads its ``/clock``, after it until the subscriber has received it, so its receive
        times are exactly the bag's log times (``live_replay`` of a bag without stamps).
        """
        from tqdm import tqdm

        conns = [c for c in self._reader.connections if c.id in self._pubs]
        total = sum(c.msgcount for c in conns)
        bar = tqdm(
            total=total, desc=f"play {self.bag.name}", unit="msg", disable=not progress, mininterval=0.5
        )
        start_ns = self._reader.start_time + int(self.start_offset * 1e9)
        wall0 = time.monotonic()
        clock_msg = None
        last_clock = -1
        if self._clock_pub is not None:
            from rosgraph_msgs.msg import Clock

            clock_msg = Clock()
        try:
            for conn, ts_ns, raw in self._reader.messages(connections=conns, start=start_ns):
                if self._stop.is_set() or not self.context.ok():
                    break
                due = wall0 + (ts_ns - start_ns) * 1e-9 / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    if self._stop.wait(delay):
                        break
                else:
                    self.stats.late_s_max = max(self.stats.late_s_max, -delay)
                if clock_msg is not None and self._clock_pub is not None and ts_ns != last_clock:
                    clock_msg.clock.sec, clock_msg.clock.nanosec = divmod(int(ts_ns), 1_000_000_000)
                    self._clock_pub.publish(clock_msg)
                    last_clock = ts_ns
                    if lockstep is not None:
                        self._until(partial(_clock_reached, lockstep, ts_ns))
                    elif self.clock_lead_s > 0 and self._stop.wait(self.clock_lead_s):
                        break
                before = lockstep.received(conn.topic) if lockstep is not None else None
                self._pubs[conn.id].publish(bytes(raw))
                if lockstep is not None and before is not None:
                    self._until(partial(_received_more, lockstep, conn.topic, before))
                self.stats.published += 1
                bar.update()
        except Exception as exc:  # a truncated storage file ends the playback, never a crash
            self.get_logger().error(f"{self.bag.name}: playback stopped: {type(exc).__name__}: {exc}")
        finally:
            bar.close()
        self.stats.duration_s = time.monotonic() - wall0
        return self.stats

    def _until(self, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait (lockstep) until ``done()`` or the timeout; a message the subscriber misses only warns."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline or self._stop.is_set():
                self.stats.lockstep_timeouts += 1
                return
            time.sleep(0.0002)

    def destroy_node(self) -> None:
        """Close the bag, then destroy the node."""
        self._stop.set()
        try:
            self._reader.close()
        finally:
            super().destroy_node()


@dataclass
class LiveRun:
    """What :func:`live_replay` saw: the node's decisions and how the playback went."""

    decisions: list[Any]  # replay.compare.LiveDecision, in arrival order
    frames_accepted: int  # frames the node's gate took (fewer than the bag's: frames were dropped)
    stats: PlayStats
    diagnostics: dict[str, str] = field(default_factory=dict)
    gripper_accepted: int = 0  # gripper samples the node's gate took


class _NodeLockstep:
    """Lockstep with an in-process ``predictor_node``: its clock and its per-topic receive counts."""

    def __init__(self, node: Any) -> None:
        self._node = node

    def clock_ns(self) -> int:
        return int(self._node.get_clock().now().nanoseconds)

    def received(self, topic: str) -> int | None:
        return self._node.received.get(topic)


def live_replay(
    bag: Path,
    predictor: Any,
    params: dict[str, Any],
    *,
    rate: float = 1.0,
    clock: bool = False,
    expected: int | None = None,
    wait_s: float = 30.0,
    progress: bool = False,
) -> LiveRun:
    """Play ``bag`` to a fresh ``predictor_node`` over DDS (its own rclpy context) and collect its decisions.

    ``params``: the node's parameters (name → value, e.g. ``image_topic``, ``time_base``,
    ``trigger.tb_delay_s``); ``predictor``: what the node's worker uses (loaded once, outside).
    After the bag ends, waits up to ``wait_s`` for ``expected`` decisions (or for the node's
    pending timeouts: ``trigger.tb_timeout_s`` plus 2 s, when ``expected`` is None). With
    ``clock`` the node runs on the bag's ``/clock`` in lockstep with the player (each message
    received at exactly its log time), so frames without stamps are timed as offline.
    """
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from tactile_grasp_msgs.msg import GraspDecision

    from tactile_grasp_predictor.replay.compare import LiveDecision
    from tactile_grasp_predictor.ros.conversions import stamp_to_float
    from tactile_grasp_predictor.ros.predictor_node import PredictorNode

    if clock:
        params = {**params, "use_sim_time": True}
    context = rclpy.context.Context()
    rclpy.init(context=context)
    executors: list[SingleThreadedExecutor] = []
    nodes: list[Node] = []
    received: list[GraspDecision] = []
    diag: dict[str, str] = {}
    try:
        node = PredictorNode(context=context, loader=lambda _cfg: predictor,
                             parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        sink = Node("tgp_live_replay_sink", context=context)
        topic = f"{node.get_fully_qualified_name()}/decision"
        sink.create_subscription(GraspDecision, topic, received.append,
                                 QoSProfile(depth=1000, reliability=QoSReliabilityPolicy.RELIABLE))
        player = BagPlayer(bag, context=context, clock=clock, rate=rate)
        nodes += [node, sink, player]
        for each in (node, sink):  # one executor each, as the node runs in its own process (main())
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(each)
            executors.append(executor)
            threading.Thread(target=executor.spin, daemon=True).start()
        if not node.model_ready.wait(120):
            raise BagError(f"{bag}: the node's model did not load in 120 s")
        topics = node.input_topics
        inputs = [topics["image"], topics["joint_states"]]
        if not player.wait_for_subscribers([t for t in inputs if t in player.topics], 30.0):
            raise BagError(f"{bag}: the node did not subscribe to {inputs} within 30 s")
        deadline = time.monotonic() + 30.0
        while sink.count_publishers(topic) == 0:
            if time.monotonic() > deadline:
                raise BagError(f"{bag}: no decision publisher matched within 30 s")
            time.sleep(0.05)
        time.sleep(0.5)  # let the decision subscription match both ways
        stats = player.play(progress=progress, lockstep=_NodeLockstep(node) if clock else None)
        if expected is None:
            time.sleep(float(node.cfg.trigger.tb_timeout_s) + 2.0)
        deadline = time.monotonic() + wait_s
        while expected is not None and len(received) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a late duplicate would show up here
        session = node.session
        assert session is not None, "the node is configured (a plain node)"
        gate_stats, timebase = session.gate.stats, session.timebase
        frames, gripper = gate_stats.frames, gate_stats.gripper_samples
        diag = {"stamp_fallbacks": str(timebase.fallbacks), "clock_problem": timebase.problem()[1],
                "time_base": timebase.mode}
    finally:
        for each in reversed(nodes):
            each.destroy_node()
        for executor in executors:
            executor.shutdown(timeout_sec=5.0)
        rclpy.shutdown(context=context)
    rows = [
        LiveDecision(int(m.grasp_id), int(m.verdict), str(m.reason), stamp_to_float(m.ta_stamp),
                     stamp_to_float(m.tb_stamp), float(m.p_success))
        for m in received
    ]
    return LiveRun(rows, frames, stats, diag, gripper)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``tgp bag play`` and this module's ``main``."""
    add_play_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Play the bag with the parsed ``args``; 0 on success, 2 on a bag error."""
    rclpy.init()
    player: BagPlayer | None = None
    try:
        player = BagPlayer(
            args.bag,
            rate=args.rate,
            start_offset=args.start_offset,
            clock=args.clock,
            clock_lead_s=getattr(args, "clock_lead", 0.005),
            topics=args.topics,
        )
        if args.wait_for_subscribers > 0:
            player.wait_for_subscribers(player.topics, args.wait_for_subscribers)
        stats = player.play(progress=True)
        print(
            f"published {stats.published} messages in {stats.duration_s:.1f} s "
            f"(latest {stats.late_s_max * 1000:.1f} ms behind); "
            f"skipped topics: {stats.skipped_topics or 'none'}"
        )
        return 0
    except BagError as exc:
        print(f"tgp bag play: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        if player is not None:
            player.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry: ``python -m tactile_grasp_predictor.ros.bag_player BAG [--rate R] ...``."""
    parser = argparse.ArgumentParser(prog="bag_player", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(list(argv) if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    raise SystemExit(main())
