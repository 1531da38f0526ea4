"""The launch files, loaded without ROS's ``launch`` packages (recording stand-ins in sys.modules).

``launch`` and ``launch_ros`` are not installable here, yet the launch files are the user's
entry on a full ROS install. The stand-ins below only record what the files construct;
the test then checks it against the package: every executable is a console script of
setup.py, every parameter file exists and is installed, and every parameter in it (and in
inline overrides) is declared by that executable's node with the same type.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from lifecycle_msgs.msg import Transition

from helpers.package import console_scripts
from tactile_grasp_predictor.node_config import ParamSpec, resolve_name, section_matches

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tactile_grasp_predictor"


class Recorded:
    """Stands in for any launch class: keeps its arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


class LaunchConfiguration(Recorded):
    def perform(self, context: Any) -> str:
        return str(context.launch_configurations[self.args[0]])


class FindPackageShare(Recorded):
    pass


class PathJoinSubstitution(Recorded):
    pass


class Context:
    def __init__(self, configurations: dict[str, str]) -> None:
        self.launch_configurations = configurations


def stand_ins() -> dict[str, types.ModuleType]:
    def module(name: str, **attrs: Any) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        return m

    names = ("LaunchDescription", "DeclareLaunchArgument", "OpaqueFunction", "Node", "LifecycleNode",
             "IncludeLaunchDescription", "GroupAction", "SetParameter", "TimerAction", "EmitEvent",
             "RegisterEventHandler", "OnStateTransition", "ChangeState", "PythonLaunchDescriptionSource")
    classes = {n: type(n, (Recorded,), {}) for n in names}
    actions = ("DeclareLaunchArgument", "OpaqueFunction", "IncludeLaunchDescription", "GroupAction",
               "TimerAction", "EmitEvent", "RegisterEventHandler")
    return {
        "launch": module("launch", LaunchDescription=classes["LaunchDescription"]),
        "launch.actions": module("launch.actions", **{k: classes[k] for k in actions}),
        "launch.events": module("launch.events", matches_action=lambda action: ("matches", action)),
        "launch.launch_description_sources": module(
            "launch.launch_description_sources",
            PythonLaunchDescriptionSource=classes["PythonLaunchDescriptionSource"]),
        "launch.substitutions": module("launch.substitutions", LaunchConfiguration=LaunchConfiguration,
                                       PathJoinSubstitution=PathJoinSubstitution),
        "launch_ros": module("launch_ros"),
        "launch_ros.actions": module("launch_ros.actions", Node=classes["Node"],
                                     LifecycleNode=classes["LifecycleNode"],
                                     SetParameter=classes["SetParameter"]),
        "launch_ros.event_handlers": module("launch_ros.event_handlers",
                                            OnStateTransition=classes["OnStateTransition"]),
        "launch_ros.events": module("launch_ros.events"),
        "launch_ros.events.lifecycle": module("launch_ros.events.lifecycle",
                                              ChangeState=classes["ChangeState"]),
        "launch_ros.substitutions": module("launch_ros.substitutions", FindPackageShare=FindPackageShare),
    }


def resolve(value: Any, configurations: dict[str, str]) -> Any:
    """Turn recorded substitutions into what a full install would give (share dir = repo root)."""
    if isinstance(value, LaunchConfiguration):
        return resolve(configurations[value.args[0]], configurations)
    if isinstance(value, PathJoinSubstitution):
        return Path(*[str(resolve(p, configurations)) for p in value.args[0]])
    if isinstance(value, FindPackageShare):
        assert value.args[0] == PACKAGE
        return ROOT  # setup.py installs launch/ and config/ under share/<pkg>/ as in the repo
    return value


def load(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, mod in stand_ins().items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@dataclass
class Expanded:
    """What a launch file starts: its arguments (name → default), nodes and lifecycle events."""

    arguments: dict[str, Any] = field(default_factory=dict)
    nodes: list[tuple[Recorded, dict[str, Any]]] = field(default_factory=list)  # (action, its configurations)
    events: list[Recorded] = field(default_factory=list)  # EmitEvent / RegisterEventHandler


def expand(description: Any, configurations: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
           out: Expanded | None = None) -> Expanded:
    """Run a description as ``ros2 launch`` would: arguments, opaque functions, groups and includes."""
    out = out if out is not None else Expanded()
    scope = configurations

    def visit(entity: Any) -> None:
        kind = type(entity).__name__
        if kind == "DeclareLaunchArgument":
            assert entity.kwargs.get("description"), f"argument {entity.args[0]} lacks a description"
            out.arguments.setdefault(entity.args[0], entity.kwargs.get("default_value"))
            scope.setdefault(entity.args[0], resolve(entity.kwargs.get("default_value"), scope))
        elif kind == "OpaqueFunction":
            for each in entity.kwargs["function"](Context(scope)):
                visit(each)
        elif kind in ("Node", "LifecycleNode"):
            out.nodes.append((entity, dict(scope)))
        elif kind in ("EmitEvent", "RegisterEventHandler"):
            out.events.append(entity)
        elif kind == "GroupAction":
            assert entity.kwargs.get("scoped", True), "an unscoped group leaks launch arguments"
            for each in entity.kwargs["actions"]:
                visit(each)
        elif kind == "IncludeLaunchDescription":
            path = resolve(entity.args[0].args[0], scope)
            given = {k: resolve(v, scope) for k, v in entity.kwargs.get("launch_arguments", [])}
            expand(load(Path(path), monkeypatch), {**given}, monkeypatch, out)

    for entity in description.args[0]:
        visit(entity)
    return out


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def same_type(spec: ParamSpec, value: Any) -> bool:
    """rclpy refuses a value of another type than the declared one (no dynamic typing)."""
    d = spec.default
    if isinstance(d, list):
        return isinstance(value, list) and all(type(x) is type(d[0]) for x in value)
    return type(value) is type(d) or (isinstance(value, type(d)) and not isinstance(value, bool))


def check_node(node: Recorded, configurations: dict[str, Any]) -> list[str]:
    """Check one Node action; return the parameter names it sets."""
    scripts = console_scripts()
    kw = node.kwargs
    assert kw["package"] == PACKAGE
    executable = kw["executable"]
    assert executable in scripts, f"{executable} is not a console script of setup.py"
    specs = {s.name: s for s in importlib.import_module(scripts[executable]).PARAMETERS}
    name = kw.get("name", executable)
    fqn = resolve_name(name, str(resolve(kw.get("namespace", ""), configurations) or "/"))
    seen: list[str] = []
    for entry in kw.get("parameters", []):
        entry = resolve(entry, configurations)
        if isinstance(entry, dict):
            params = {k: resolve(v, configurations) for k, v in entry.items()}
        else:
            path = Path(entry)
            assert path.is_file(), f"{name}: parameter file {path} missing"
            assert path.parent == ROOT / "config", f"{path}: not installed by setup.py (config/*.yaml)"
            doc = yaml.safe_load(path.read_text())
            sections = [v for k, v in doc.items() if section_matches(str(k), fqn)]
            assert sections, f"{path}: no section for {fqn}"
            params = {}
            for section in sections:
                params.update(flatten(section["ros__parameters"]))
        for key, value in params.items():
            assert key in specs, f"{name}: parameter {key!r} is not declared by {executable}"
            if not isinstance(value, Recorded | Path):
                declared = specs[key].default
                assert same_type(specs[key], value), f"{name}.{key}: {value!r} vs declared {declared!r}"
                assert specs[key].check(value) is None, specs[key].check(value)
            seen.append(key)
    return seen


def check_lifecycle_start(run: Expanded, node: Recorded, autostart: bool) -> None:
    """A managed node: configured by an event, activated once configure reached inactive (autostart)."""
    assert type(node).__name__ == "LifecycleNode" and "namespace" in node.kwargs  # Humble requires it
    inline = [p for p in node.kwargs["parameters"] if isinstance(p, dict)]
    assert inline and inline[-1].get("managed") is True, "the launch file starts the node managed"
    mine = [e for e in run.events if _targets(e, node)]
    if not autostart:
        assert mine == []
        return
    configure = [e for e in mine if type(e).__name__ == "EmitEvent"]
    handlers = [e for e in mine if type(e).__name__ == "RegisterEventHandler"]
    assert [e.kwargs["event"].kwargs["transition_id"] for e in configure] == [Transition.TRANSITION_CONFIGURE]
    (handler,) = handlers
    on = handler.args[0].kwargs
    assert (on["start_state"], on["goal_state"]) == ("configuring", "inactive")  # not after a deactivate
    (activate,) = on["entities"]
    assert activate.kwargs["event"].kwargs["transition_id"] == Transition.TRANSITION_ACTIVATE
    assert activate.kwargs["event"].kwargs["lifecycle_node_matcher"] == ("matches", node)


def _targets(event: Recorded, node: Recorded) -> bool:
    if type(event).__name__ == "EmitEvent":
        return bool(event.kwargs["event"].kwargs["lifecycle_node_matcher"] == ("matches", node))
    return bool(event.args[0].kwargs["target_lifecycle_node"] is node)


def test_predictor_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    ld = load(ROOT / "launch" / "predictor.launch.py", monkeypatch)
    configs: dict[str, Any] = {"bundle_path": "/models/moco", "image_topic": "", "joint_states_topic": "",
                               "time_base": ""}
    run = expand(ld, dict(configs), monkeypatch)
    wanted = {"params_file", "bundle_path", "image_topic", "namespace", "time_base", "autostart"}
    assert wanted <= set(run.arguments)
    assert [n.kwargs["executable"] for n, _ in run.nodes] == ["predictor_node"]
    node, scope = run.nodes[0]
    seen = check_node(node, scope)
    assert "bundle_path" in seen
    check_lifecycle_start(run, node, autostart=True)
    # The defaults file documents every declared parameter: trigger.* as a commented-out section
    # (the core's TriggerConfig defaults apply unless a line is uncommented), checked the same way.
    from tactile_grasp_predictor.node_config import PARAMETERS

    specs = {s.name: s for s in PARAMETERS}
    text = (ROOT / "config" / "predictor.yaml").read_text()
    commented = dict(re.findall(r"^ {4}# {3}(\w+): +(\S+)", text, re.M))
    for name, raw in commented.items():
        spec = specs.get(f"trigger.{name}")
        assert spec is not None, f"config/predictor.yaml: trigger.{name} is not declared"
        value = yaml.safe_load(raw)
        assert same_type(spec, value) and spec.check(value) is None, (name, value)
    assert set(specs) <= set(seen) | {f"trigger.{n}" for n in commented}
    # Empty overrides are not passed (the params file's values stay in force).
    overrides = [p for p in node.kwargs["parameters"] if isinstance(p, dict)]
    assert overrides == [{"managed": True, "bundle_path": "/models/moco"}]
    run = expand(ld, {**configs, "time_base": "receive", "autostart": "false", "namespace": "left_arm"},
                 monkeypatch)
    node, scope = run.nodes[0]
    check_node(node, scope)  # a valid choice of the declared parameter; the /** file in a namespace
    overrides = [p for p in node.kwargs["parameters"] if isinstance(p, dict)]
    assert overrides == [{"managed": True, "bundle_path": "/models/moco", "time_base": "receive"}]
    check_lifecycle_start(run, node, autostart=False)  # left unconfigured for a lifecycle manager


def test_two_arms_launch_starts_one_managed_node_per_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    run = expand(load(ROOT / "launch" / "two_arms.launch.py", monkeypatch), {"bundle_path": "/models/m"},
                 monkeypatch)
    assert sorted(str(s["namespace"]) for _, s in run.nodes) == ["left_arm", "right_arm"]
    for node, scope in run.nodes:
        check_lifecycle_start(run, node, autostart=True)
        seen = check_node(node, scope)  # config/two_arms.yaml: /** and /<arm>/predictor_node sections
        assert "frame_id" in seen and "image_topic" in seen
        assert [p for p in node.kwargs["parameters"] if isinstance(p, dict)][-1]["bundle_path"] == "/models/m"


def test_demo_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    ld = load(ROOT / "launch" / "demo.launch.py", monkeypatch)
    run = expand(ld, {"shards": "/data/sim", "bundle_path": "/models/demo"}, monkeypatch)
    assert sorted(n.kwargs["executable"] for n, _ in run.nodes) == ["pick_gate_example", "predictor_node",
                                                                     "sim_robot_node"]
    for node, scope in run.nodes:
        assert check_node(node, scope)
        if node.kwargs["executable"] == "predictor_node":
            check_lifecycle_start(run, node, autostart=True)


def test_launch_and_config_files_are_installed() -> None:
    text = (ROOT / "setup.py").read_text()
    assert 'glob("launch/*.launch.py")' in text and 'glob("config/*.yaml")' in text
    assert (ROOT / "config" / "predictor.yaml").is_file() and (ROOT / "config" / "demo.yaml").is_file()


def test_a_wrong_parameter_name_is_caught() -> None:
    """The checker itself fails on a misspelt parameter (it is not vacuous)."""
    node = Recorded(package=PACKAGE, executable="predictor_node", name="predictor_node",
                    parameters=[{"bundel_path": "/x"}])
    with pytest.raises(AssertionError, match="bundel_path"):
        check_node(node, {})
    typed = Recorded(package=PACKAGE, executable="predictor_node", name="predictor_node",
                     parameters=[{"width_scale": 1}])  # int for a double: rclpy refuses it
    with pytest.raises(AssertionError, match="width_scale"):
        check_node(typed, {})
