"""Declaring a node's parameters in rclpy from its ROS-free table of :class:`ParamSpec` rows.

The specs and their validation live in :mod:`tactile_grasp_predictor.node_config`.
:func:`declare_all` declares them with a ``ParameterDescriptor`` (description, range,
read-only flag, allowed choices), and :func:`make_set_callback` validates every later change
(ranges, choices and a node-supplied cross-field check), so a bad ``ros2 param set`` is
refused with a reason instead of reaching the running node. The start-up values are checked
by the node (``check_all`` / ``NodeConfig.from_values``), since rclpy does not call
set-parameter callbacks for declarations. For a lifecycle node (``configure_time``) the
read-only specs become settable while unconfigured and are refused otherwise.
:func:`unknown_parameters` names every value given to a node that it does not declare (rclpy
would ignore a misspelt one silently).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from tactile_grasp_predictor.node_config import STARTUP_ONLY, ParamSpec, is_ros_standard, not_declared

#: The constraint text of a configure-time parameter (``ros2 param describe``).
CONFIGURE_TIME = "read at configure: set it while unconfigured (lifecycle cleanup, set, configure)"

_TYPES: dict[type, int] = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


def param_type(spec: ParamSpec) -> int:
    """Return the ``rcl_interfaces/ParameterType`` of the spec's default value."""
    if isinstance(spec.default, list):
        assert spec.default, f"{spec.name}: array defaults must be non-empty to fix their type"
        first = type(spec.default[0])
        return {
            str: ParameterType.PARAMETER_STRING_ARRAY,
            float: ParameterType.PARAMETER_DOUBLE_ARRAY,
            int: ParameterType.PARAMETER_INTEGER_ARRAY,
        }[first]
    return _TYPES[type(spec.default)]


def descriptor(spec: ParamSpec, configure_time: bool = False) -> ParameterDescriptor:
    """Build the descriptor rclpy publishes for a parameter (``ros2 param describe``).

    ``configure_time``: a read-only spec becomes settable while the (lifecycle) node is
    unconfigured, and is read at configure (its constraints say so).
    """
    settable = configure_time and spec.read_only and spec.name not in STARTUP_ONLY
    d = ParameterDescriptor(
        name=spec.name, type=param_type(spec), description=spec.description,
        read_only=spec.read_only and not settable,
    )
    d.dynamic_typing = spec.numbers_as_text  # the command line types `3` as an integer
    constraints = [CONFIGURE_TIME] if settable else []
    if spec.choices:
        constraints.append("one of: " + ", ".join(spec.choices))
    scalar = spec.default if not isinstance(spec.default, list) else spec.default[0]
    if spec.lo is not None and spec.hi is not None and not isinstance(scalar, bool):
        if isinstance(scalar, int) and not isinstance(spec.default, list):
            d.integer_range = [IntegerRange(from_value=int(spec.lo), to_value=int(spec.hi), step=0)]
        elif isinstance(scalar, float) and not isinstance(spec.default, list):
            d.floating_point_range = [FloatingPointRange(from_value=spec.lo, to_value=spec.hi, step=0.0)]
        else:
            constraints.append(f"each element in [{spec.lo}, {spec.hi}]")
    d.additional_constraints = "; ".join(constraints)
    return d


def declare_all(node: Node, specs: Sequence[ParamSpec], configure_time: bool = False) -> dict[str, Any]:
    """Declare every parameter of ``specs`` on ``node``; return the name → value map in force.

    ``configure_time``: see :func:`descriptor` (a lifecycle node's read-only parameters).
    """
    values = {}
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, descriptor(spec, configure_time))
        value = node.get_parameter(spec.name).value
        if spec.numbers_as_text and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        values[spec.name] = value
    return values


def make_set_callback(
    specs: Sequence[ParamSpec],
    current: Callable[[], dict[str, Any]],
    cross_check: Callable[[dict[str, Any]], str | None],
    apply: Callable[[dict[str, Any]], None],
    configure_time_state: Callable[[], str] | None = None,
) -> Callable[[list[Parameter]], SetParametersResult]:
    """Build an ``add_on_set_parameters_callback`` callback.

    It refuses a change when a value fails its spec or when ``cross_check`` on the values
    after the change reports a problem (e.g. an invalid trigger configuration); otherwise it
    calls ``apply`` with the accepted values. With ``configure_time_state`` (the lifecycle
    state's label) a read-only spec's change is refused unless the node is unconfigured.
    """
    by_name = {s.name: s for s in specs}

    def callback(params: list[Parameter]) -> SetParametersResult:
        merged = dict(current())
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue  # e.g. use_sim_time: not ours to judge
            if spec.read_only and configure_time_state is not None:
                state = configure_time_state()
                if state != "unconfigured":
                    return SetParametersResult(successful=False, reason=(
                        f"{p.name}: read at configure; the node is {state} "
                        f"(deactivate and clean up first, then configure)"))
            problem = spec.check(p.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            merged[p.name] = p.value
        problem = cross_check(merged)
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        apply(merged)
        return SetParametersResult(successful=True, reason="")

    return callback


def unknown_parameters(node: Node, specs: Sequence[ParamSpec]) -> list[str]:
    """Return a warning for each parameter given to ``node`` (files, ``-p``, overrides) it does not declare.

    rclpy silently ignores such a value (a misspelt ``image_topc`` keeps the default topic).
    The values given to a node are rclpy's parameter overrides (``Node._parameter_overrides``,
    the same attribute from Humble to Kilted; absent, nothing is reported). Parameters every
    node has (``use_sim_time``, ``qos_overrides.*``) are not reported.
    """
    given = getattr(node, "_parameter_overrides", None) or {}
    declared = {s.name for s in specs}
    return [f"{not_declared(name, specs)}: ignored" for name in sorted(given)
            if name not in declared and not is_ros_standard(name)]
