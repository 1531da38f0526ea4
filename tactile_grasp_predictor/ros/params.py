"""Declared ROS parameters: one table per node, descriptors built from it, validation in one place.

Each node lists its parameters as :class:`ParamSpec` rows. :func:`declare_all` declares
them with a ``ParameterDescriptor`` (description, range, read-only flag, allowed
choices), and :func:`make_set_callback` validates every later change (ranges, choices and
a node-supplied cross-field check), so a bad ``ros2 param set`` is refused with a reason
instead of reaching the running node. The same check runs on the start-up values
(:func:`check_all`), since rclpy does not call set-parameter callbacks for declarations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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

ParamValue = bool | int | float | str | list[str] | list[float] | list[int]

_TYPES: dict[type, int] = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter.

    Example:
        >>> ParamSpec("threshold", -1.0, "LIFT iff p >= threshold (< 0: the bundle's)", lo=-1.0, hi=1.0)

    """

    name: str
    default: ParamValue
    description: str
    lo: float | None = None  # inclusive range for numbers (each element for arrays)
    hi: float | None = None
    choices: tuple[str, ...] = ()  # allowed strings (each element for string arrays)
    read_only: bool = False  # fixed at start-up (topics, model files)
    numbers_as_text: bool = False  # a string that may look like a number (`-p cpus:=3`): taken as text

    def param_type(self) -> int:
        """Return the ``rcl_interfaces/ParameterType`` of the default value."""
        if isinstance(self.default, list):
            assert self.default, f"{self.name}: array defaults must be non-empty to fix their type"
            first = type(self.default[0])
            return {
                str: ParameterType.PARAMETER_STRING_ARRAY,
                float: ParameterType.PARAMETER_DOUBLE_ARRAY,
                int: ParameterType.PARAMETER_INTEGER_ARRAY,
            }[first]
        return _TYPES[type(self.default)]

    def descriptor(self) -> ParameterDescriptor:
        """Build the descriptor rclpy publishes for this parameter (``ros2 param describe``)."""
        d = ParameterDescriptor(
            name=self.name, type=self.param_type(), description=self.description, read_only=self.read_only
        )
        d.dynamic_typing = self.numbers_as_text  # the command line types `3` as an integer
        constraints = []
        if self.choices:
            constraints.append("one of: " + ", ".join(self.choices))
        scalar = self.default if not isinstance(self.default, list) else self.default[0]
        if self.lo is not None and self.hi is not None and not isinstance(scalar, bool):
            if isinstance(scalar, int) and not isinstance(self.default, list):
                d.integer_range = [IntegerRange(from_value=int(self.lo), to_value=int(self.hi), step=0)]
            elif isinstance(scalar, float) and not isinstance(self.default, list):
                d.floating_point_range = [FloatingPointRange(from_value=self.lo, to_value=self.hi, step=0.0)]
            else:
                constraints.append(f"each element in [{self.lo}, {self.hi}]")
        d.additional_constraints = "; ".join(constraints)
        return d

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


def declare_all(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare every parameter of ``specs`` on ``node``; return the name → value map in force."""
    values = {}
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, spec.descriptor())
        value = node.get_parameter(spec.name).value
        if spec.numbers_as_text and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        values[spec.name] = value
    return values


def check_all(specs: Sequence[ParamSpec], values: Mapping[str, Any]) -> str | None:
    """Check each value of ``values`` against its spec; return the first problem or ``None``."""
    by_name = {s.name: s for s in specs}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            return f"{name}: not a parameter of this node"
        problem = spec.check(value)
        if problem:
            return problem
    return None


def make_set_callback(
    specs: Sequence[ParamSpec],
    current: Callable[[], dict[str, Any]],
    cross_check: Callable[[dict[str, Any]], str | None],
    apply: Callable[[dict[str, Any]], None],
) -> Callable[[list[Parameter]], SetParametersResult]:
    """Build an ``add_on_set_parameters_callback`` callback.

    It refuses a change when a value fails its spec or when ``cross_check`` on the values
    after the change reports a problem (e.g. an invalid trigger configuration); otherwise it
    calls ``apply`` with the accepted values.
    """
    by_name = {s.name: s for s in specs}

    def callback(params: list[Parameter]) -> SetParametersResult:
        merged = dict(current())
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue  # e.g. use_sim_time: not ours to judge
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
