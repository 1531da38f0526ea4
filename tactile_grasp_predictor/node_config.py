"""The predictor node's parameters, outside ROS: one table, one validation, one file reader.

:data:`PARAMETERS` lists every parameter of ``predictor_node`` as a :class:`ParamSpec`
(name, default and so type, range, choices, description). The node declares them
(:mod:`tactile_grasp_predictor.ros.params` turns a spec into a ``ParameterDescriptor``);
``tgp bag eval --params`` reads the same YAML through :func:`read_param_file` and builds
the same :class:`NodeConfig`, so a replay runs with exactly the robot's settings. The
``trigger.<field>`` rows come from :class:`~tactile_grasp_predictor.tracker.TriggerConfig`,
defaults and descriptions included (its field metadata). The parameter table of
docs/node.md is :func:`markdown_table` (a test keeps the two equal).

Example:
    >>> cfg = NodeConfig.from_values({"time_base": "receive", "trigger.tb_delay_s": 0.5})
    >>> cfg.trigger.tb_delay_s, cfg["time_base"], cfg.threshold
    (0.5, 'receive', None)
    >>> NodeConfig.from_values({"image_topc": "/x"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tactile_grasp_predictor.errors.ConfigError: image_topc: not a parameter of this node (did you mean ...?)

"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tactile_grasp_predictor.cpu_affinity import parse_cpu_list
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.gripper import JointWidthConfig
from tactile_grasp_predictor.timebase import TIME_BASES
from tactile_grasp_predictor.tracker import TriggerConfig, trigger_doc

ParamValue = bool | int | float | str | list[str] | list[float] | list[int]

#: Image encodings the node can decode (``image_encodings`` chooses among them).
ENCODINGS = ("rgb8", "bgr8", "8UC3", "mono8", "rgba8", "bgra8")
#: The WSG-50 status layouts (``grasp_state_variant``; see :mod:`tactile_grasp_predictor.wsg`).
GRASP_STATE_VARIANTS = ("ros1", "ros2_port", "fork")
#: Input QoS choices (``image_qos``, ``gripper_qos``, ``moving_qos``).
QOS_CHOICES = ("sensor_data", "reliable")
#: Parameters every rclpy node has; a parameter file may set them, they are not ours to judge.
ROS_STANDARD_PARAMETERS = ("use_sim_time", "start_type_description_service")
#: Parameters read once at start-up; the other read-only ones are read at each lifecycle configure.
STARTUP_ONLY = ("managed",)


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter of a node.

    Example:
        >>> spec = ParamSpec("threshold", -1.0, "LIFT iff p >= threshold", lo=-1.0, hi=1.0)
        >>> spec.check(2.0)
        'threshold: 2.0 is above 1.0'

    """

    name: str
    default: ParamValue
    description: str
    lo: float | None = None  # inclusive range for numbers (each element for arrays)
    hi: float | None = None
    choices: tuple[str, ...] = ()  # allowed strings (each element for string arrays)
    read_only: bool = False  # fixed while running (lifecycle: set while unconfigured, read at configure)
    numbers_as_text: bool = False  # a string that may look like a number (`-p cpus:=3`): taken as text

    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not acceptable, or ``None``."""
        values = list(value) if isinstance(value, list | tuple) else [value]
        if isinstance(self.default, list) and not values and self.choices:
            return f"{self.name}: must not be empty"
        for v in values:
            if self.choices and v not in self.choices:
                return f"{self.name}: {v!r} is not one of {', '.join(self.choices)}"
            if isinstance(v, int | float) and not isinstance(v, bool):
                if isinstance(v, float) and not math.isfinite(v):
                    return f"{self.name}: {v} is not finite"
                if self.lo is not None and v < self.lo:
                    return f"{self.name}: {v} is below {self.lo}"
                if self.hi is not None and v > self.hi:
                    return f"{self.name}: {v} is above {self.hi}"
        return None


def not_declared(name: str, specs: Sequence[ParamSpec]) -> str:
    """Say that ``name`` is not a parameter of the node, with the closest declared name if one is near.

    Example:
        >>> not_declared("image_topc", PARAMETERS)
        "image_topc: not a parameter of this node (did you mean 'image_topic'?)"

    """
    near = difflib.get_close_matches(name, [s.name for s in specs], n=1, cutoff=0.75)
    return f"{name}: not a parameter of this node" + (f" (did you mean {near[0]!r}?)" if near else "")


def is_ros_standard(name: str) -> bool:
    """Tell whether ``name`` is a parameter rclpy gives every node (``use_sim_time``, ``qos_overrides.*``)."""
    return name in ROS_STANDARD_PARAMETERS or name.startswith("qos_overrides.")


def check_all(specs: Sequence[ParamSpec], values: Mapping[str, Any]) -> str | None:
    """Check each value of ``values`` against its spec; return the first problem or ``None``."""
    by_name = {s.name: s for s in specs}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            return not_declared(name, specs)
        problem = spec.check(value)
        if problem:
            return problem
    return None


def _trigger_specs() -> tuple[ParamSpec, ...]:
    """``trigger.<field>`` for every :class:`TriggerConfig` field: defaults and descriptions from the core."""
    default = TriggerConfig()
    specs = []
    for f in dataclasses.fields(TriggerConfig):
        value = getattr(default, f.name)
        name, doc = f"trigger.{f.name}", trigger_doc(f.name)
        if isinstance(value, bool):
            specs.append(ParamSpec(name, value, doc))
        elif isinstance(value, int):
            specs.append(ParamSpec(name, value, doc, lo=1, hi=100_000))
        elif isinstance(value, float):
            specs.append(ParamSpec(name, value, doc, lo=0.0, hi=600.0))
        elif value is None:  # optional number: declared as a double, < 0 means "off"
            specs.append(ParamSpec(name, -1.0, doc + " (< 0: off)", lo=-1.0, hi=600.0))
    return tuple(specs)


PARAMETERS: tuple[ParamSpec, ...] = (
    # Lifecycle.
    ParamSpec("managed", False,
              "true: start unconfigured and wait for lifecycle transitions (a lifecycle manager, the "
              "launch file); false: configure and activate at start-up (a plain node)", read_only=True),
    # Inputs. Relative names resolve in the node's namespace (-r __ns:=/left_arm).
    ParamSpec("image_topic", "gelsight_left/image_raw",
              "left GelSight image topic (what tgp bag record writes, in the node's namespace)",
              read_only=True),
    ParamSpec("image_transport", "raw",
              "raw: sensor_msgs/Image on image_topic; compressed: sensor_msgs/CompressedImage (jpeg, png) "
              "on image_topic + '/compressed', as image_transport names it", choices=("raw", "compressed"),
              read_only=True),
    ParamSpec("right_image_topic", "",
              "optional right GelSight topic (same transport and QoS; empty: none): shown in the debug "
              "image; decisions use the left finger, as the bundles are trained", read_only=True),
    ParamSpec("image_qos", "sensor_data",
              "image subscription QoS: sensor_data (best effort; matches any driver) or reliable "
              "(depth 10; needs a reliable driver; FastDDS drops large best-effort frames over UDP)",
              choices=QOS_CHOICES, read_only=True),
    ParamSpec("image_encodings", ["rgb8", "bgr8", "8UC3", "mono8"],
              "accepted image encodings (8UC3 = BGR passthrough); others count as bad frames",
              choices=ENCODINGS),
    ParamSpec("frame_id", "", "frame_id of decisions (empty: the image's frame_id)"),
    ParamSpec("joint_states_topic", "wsg50/joint_states", "gripper sensor_msgs/JointState topic",
              read_only=True),
    ParamSpec("gripper_qos", "sensor_data",
              "JointState / status subscription QoS: sensor_data (best effort, depth 5; matches any "
              "driver) or reliable (depth 50: no sample lost to a stalled callback; needs a reliable driver)",
              choices=QOS_CHOICES, read_only=True),
    ParamSpec("joint_names", ["wsg50_finger_left_joint", "wsg50_finger_right_joint"],
              "finger joints (sum_abs: widths |a|+|b|) or the one width joint (single)", read_only=True),
    ParamSpec("width_mode", "sum_abs", "how joints give the opening", choices=("sum_abs", "single"),
              read_only=True),
    ParamSpec("width_scale", 1.0, "factor to metres (0.001 for joints in millimetres)", lo=1e-6, hi=1e3,
              read_only=True),
    ParamSpec("moving_topic", "", "optional std_msgs/Bool 'moving' topic (empty: none), e.g. wsg50/moving",
              read_only=True),
    ParamSpec("moving_qos", "reliable",
              "moving flag QoS: reliable (depth 10; no change of the flag lost) or sensor_data (best "
              "effort; needed for a best-effort driver)", choices=QOS_CHOICES, read_only=True),
    ParamSpec("grasp_state_topic", "", "optional WSG status topic (empty: none)", read_only=True),
    ParamSpec("grasp_state_type", "", "its message type, 'pkg/msg/Type' (the driver's Status message)",
              read_only=True),
    ParamSpec("grasp_state_variant", "fork",
              "status layout: ros1 (status text + width mm), ros2_port (+ object_grasped), "
              "fork (grasping_state_id)", choices=GRASP_STATE_VARIANTS, read_only=True),
    # Time base of frames and gripper samples (docs/node.md, "Time base").
    ParamSpec("time_base", "header",
              "header: the message's header stamp (capture time; an empty stamp falls back to the "
              "receive time, counted in diagnostics); receive: the node clock when the callback runs",
              choices=TIME_BASES, read_only=True),
    ParamSpec("time_offset_warn_s", 1.0,
              "header stamps further than this from the node clock (or from each other across "
              "topics) are reported in diagnostics and the log", lo=0.001, hi=1e6, read_only=True),
    ParamSpec("time_watchdog_slack_s", 0.1,
              "time_base header: timeouts fire this long after the largest recent transport delay, "
              "so a message still in flight is not overtaken by a tick", lo=0.0, hi=10.0, read_only=True),
    # Model.
    ParamSpec("bundle_path", "", "model bundle directory (empty or unreadable: every grasp ABORTs "
              "with model_unavailable)", read_only=True),
    ParamSpec("threshold", -1.0, "LIFT iff p_success >= threshold; < 0: the bundle's threshold",
              lo=-1.0, hi=1.0),
    ParamSpec("backend", "auto", "inference backend (auto: onnx when the bundle has model.onnx, else torch)",
              choices=("auto", "torch", "onnx"), read_only=True),
    ParamSpec("device", "cpu", "inference device", choices=("cpu", "cuda", "auto"), read_only=True),
    ParamSpec("num_threads", 1, "CPU threads for inference (torch, OpenCV and onnxruntime pools)",
              lo=1, hi=64, read_only=True),
    ParamSpec("inference_cpus", "", "Linux CPU list (e.g. '1' or '2-3') for the inference thread alone; "
              "the node's other threads move to the remaining CPUs. Empty: no pinning", read_only=True,
              numbers_as_text=True),
    ParamSpec("inference_priority", 0, "SCHED_FIFO priority (1-99) for the inference thread; needs "
              "CAP_SYS_NICE or an rtprio limit, else a warning and normal priority. 0: normal",
              lo=0, hi=99, read_only=True),
    # Service.
    ParamSpec("evaluate_timeout_s", 10.0, "EvaluateGrasp wait when the goal's timeout_s <= 0",
              lo=0.01, hi=3600.0),
    ParamSpec("diagnostics_period_s", 1.0, "period of /diagnostics", lo=0.05, hi=60.0, read_only=True),
    ParamSpec("tick_period_s", 0.05, "period of timeout checks (Tb timeout, gripper silence)",
              lo=0.005, hi=1.0, read_only=True),
    ParamSpec("max_pending", 4, "snapshots queued for inference before further ones ABORT (overloaded)",
              lo=1, hi=64, read_only=True),
    # Views of what the node sees.
    ParamSpec("debug_image", False,
              "publish ~/debug_image (sensor_msgs/Image rgb8: Ta, Tb, the amplified difference, p, verdict "
              "and reason of each decision), drawn only while someone subscribes", read_only=True),
    ParamSpec("sensor_drift_warn", 4.0,
              "sensor health: diagnostics WARN when no-contact frames drift this many training standard "
              "deviations from the bundle's frame statistics (gel wear, lighting, a different sensor)",
              lo=0.5, hi=1000.0),
    # The robot records its own data (recorder.py, docs/recording.md).
    ParamSpec("record_dir", "",
              "record every decided grasp (Ta, Tb as received, stamps, decision, p, reason, outcome) into "
              "Calandra-layout shards here, off the decision path (empty: off)", read_only=True),
    ParamSpec("record_outcome_topic", "grasp/outcome",
              "std_msgs/Bool: the lift's outcome, the label of the last decided grasp (with record_dir)",
              read_only=True),
    ParamSpec("record_outcome_timeout_s", 5.0,
              "wall seconds a recorded grasp waits for its outcome; then it is written unlabelled",
              lo=0.0, hi=600.0, read_only=True),
    ParamSpec("record_queue_size", 16, "grasps queued for the recorder before further ones are dropped",
              lo=1, hi=1000, read_only=True),
    ParamSpec("record_shard_trials", 10, "trials per recorded shard (each rewritten atomically per trial)",
              lo=1, hi=1000, read_only=True),
    *_trigger_specs(),
)

SPECS: dict[str, ParamSpec] = {s.name: s for s in PARAMETERS}


def defaults() -> dict[str, Any]:
    """Every parameter's default value (name → value)."""
    return {s.name: (list(s.default) if isinstance(s.default, list) else s.default) for s in PARAMETERS}


@dataclass(frozen=True)
class NodeConfig:
    """The node's parameters, typed and cross-checked (see :meth:`from_values`).

    Attributes:
        values: every parameter (name → value), defaults filled in.
        trigger: the ``trigger.*`` parameters as the core's :class:`TriggerConfig`.
        joints: ``joint_names`` / ``width_scale`` / ``width_mode`` as a :class:`JointWidthConfig`.
        inference_cpus: the parsed ``inference_cpus`` (empty: no pinning).

    """

    values: dict[str, Any]
    trigger: TriggerConfig
    joints: JointWidthConfig
    inference_cpus: frozenset[int] = frozenset()

    @staticmethod
    def from_values(values: Mapping[str, Any]) -> NodeConfig:
        """Build and validate from ``values`` over the defaults; :class:`ConfigError` names the parameter."""
        merged = {**defaults(), **values}
        problem = check_all(PARAMETERS, merged)
        if problem:
            raise ConfigError(problem)
        fields = {name.split(".", 1)[1]: v for name, v in merged.items() if name.startswith("trigger.")}
        default = TriggerConfig()
        for name, v in fields.items():
            if getattr(default, name) is None and isinstance(v, int | float) and v < 0.0:
                fields[name] = None  # an optional number's "< 0: off"
        try:
            trigger = TriggerConfig(**fields).validate()
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"trigger.*: {exc}") from exc
        try:
            joints = JointWidthConfig(
                tuple(merged["joint_names"]), float(merged["width_scale"]), merged["width_mode"]
            ).validate()
        except ConfigError as exc:
            raise ConfigError(f"joint_names/width_mode/width_scale: {exc}") from exc
        cpus = parse_cpu_list(str(merged["inference_cpus"]))  # raises naming inference_cpus
        if merged["grasp_state_topic"] and not re.fullmatch(r"\w+/msg/\w+", str(merged["grasp_state_type"])):
            raise ConfigError(
                f"grasp_state_type: {merged['grasp_state_type']!r} must be 'pkg/msg/Type' "
                f"when grasp_state_topic is set"
            )
        return NodeConfig(merged, trigger, joints, cpus)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def threshold(self) -> float | None:
        """The ``threshold`` override, ``None`` where the bundle's own threshold applies (< 0)."""
        th = float(self.values["threshold"])
        return th if th >= 0.0 else None


def default_joints() -> JointWidthConfig:
    """Return how the node reads the finger opening by default (``joint_names``, ``width_*``)."""
    return NodeConfig.from_values({}).joints


def resolve_name(name: str, namespace: str = "/", node_name: str = "predictor_node") -> str:
    """Resolve a topic name as ROS does: relative names in ``namespace``, ``~`` in the node's own.

    Example:
        >>> resolve_name("gelsight_left/image_raw", "/left_arm")
        '/left_arm/gelsight_left/image_raw'
        >>> resolve_name("~/decision"), resolve_name("/abs/topic", "/left_arm")
        ('/predictor_node/decision', '/abs/topic')

    """
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if name.startswith("/"):
        return name
    if name == "~" or name.startswith("~/"):
        return f"{ns}/{node_name}{name[1:]}"
    return f"{ns}/{name}"


def section_matches(key: str, fqn: str) -> bool:
    """Tell whether a parameter file's node key (``/**``, ``/**/name``, ``/ns/*``, ``name``) names ``fqn``."""
    want = [t for t in key.split("/") if t]
    have = [t for t in fqn.split("/") if t]

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(have)
        if want[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(have) + 1))
        return j < len(have) and want[i] in ("*", have[j]) and match(i + 1, j + 1)

    return match(0, 0)


def read_param_file(path: Path, node_name: str = "predictor_node", namespace: str = "/") -> dict[str, Any]:
    """Read a ROS 2 parameter file as the node ``namespace/node_name`` would: flat ``name -> value``.

    Every section whose key names the node (``/**``, ``/**/predictor_node``, ``/<ns>/predictor_node``,
    ``predictor_node``; ``*`` one name, ``**`` any) applies, later sections over earlier ones, as
    rcl reads them; ``ros__parameters`` is unwrapped and nested mappings flattened (``trigger:
    {tb_delay_s: …}`` → ``trigger.tb_delay_s``). A plain mapping of :class:`TriggerConfig`
    fields is read as the ``trigger.*`` parameters. Topic parameters (``*_topic``) come back
    resolved as the node would resolve them (:func:`resolve_name`: relative names in
    ``namespace``). Parameters every rclpy node has (``use_sim_time``) are dropped.
    Raises :class:`ConfigError` naming the file.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read parameters: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of parameters")
    fqn = resolve_name(node_name, namespace)
    ros_layout = [v for v in data.values() if isinstance(v, dict) and "ros__parameters" in v]
    sections = [v["ros__parameters"] for k, v in data.items()
                if isinstance(v, dict) and "ros__parameters" in v and section_matches(str(k), fqn)
                ] if ros_layout else [data]  # else: a plain mapping of parameters
    if ros_layout and not sections:
        raise ConfigError(f"{path}: no section for {fqn} (sections: {', '.join(map(str, data))})")
    flat: dict[str, Any] = {}

    def walk(prefix: str, d: Any) -> None:
        if not isinstance(d, dict):
            raise ConfigError(f"{path}: expected a mapping of parameters under {prefix or 'ros__parameters'}")
        for k, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            else:
                flat[f"{prefix}{k}"] = v

    for section in sections:  # in file order: a later section's value wins
        walk("", section)
    trigger_fields = {f.name for f in dataclasses.fields(TriggerConfig)}
    out: dict[str, Any] = {}
    for name, value in flat.items():
        if is_ros_standard(name):
            continue
        if name.endswith("_topic") and isinstance(value, str) and value:
            value = resolve_name(value, namespace, node_name)
        out[f"trigger.{name}" if name in trigger_fields else name] = value
    return out


def config_from_file(path: Path, node_name: str = "predictor_node", namespace: str = "/") -> NodeConfig:
    """:func:`read_param_file` + :meth:`NodeConfig.from_values`; the error names the file."""
    try:
        return NodeConfig.from_values(read_param_file(path, node_name, namespace))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "`[" + ", ".join(str(v) for v in value) + "]`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value}`"


def markdown_table() -> str:
    """Render the parameter table of docs/node.md: name, default, range or choices, description."""
    rows = ["| parameter | default | range / choices | meaning |", "|---|---|---|---|"]
    for s in PARAMETERS:
        limits = ", ".join(s.choices) if s.choices else (
            f"{s.lo:g} … {s.hi:g}" if s.lo is not None and s.hi is not None else "")
        when = " (start-up)" if s.name in STARTUP_ONLY else " (configure-time)" if s.read_only else ""
        meaning = s.description.replace("|", "\\|") + when
        rows.append(f"| `{s.name}` | {_cell(s.default)} | {limits} | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m tactile_grasp_predictor.node_config: print the docs table
    print(markdown_table(), end="")
