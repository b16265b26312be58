"""The parameter table (:mod:`lanenet_ros.node.params`) on an rclpy node: declaration with descriptors, reading
back, refusing misspelt keys, and the set-parameters gate that calls the table's single check."""
from __future__ import annotations

import difflib
from dataclasses import replace
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

from lanenet_ros.node.params import TABLE, NodeParams, ParamError, ParamSpec, check

_ROS_TYPES = {"bool": ParameterType.PARAMETER_BOOL, "int": ParameterType.PARAMETER_INTEGER,
              "float": ParameterType.PARAMETER_DOUBLE, "str": ParameterType.PARAMETER_STRING,
              "float_array": ParameterType.PARAMETER_DOUBLE_ARRAY}
_ROWS = {row.name: row for row in TABLE}


def descriptor(row: ParamSpec) -> ParameterDescriptor:
    """The ROS descriptor of one parameter-table row (type, description, range, choices).

    Scalars use dynamic typing so that ``-p ground.camera_height:=1`` (an integer) is judged by the table's
    check, which accepts it for a float, instead of by rclpy's exact type match.
    """
    desc = ParameterDescriptor(name=row.name, type=_ROS_TYPES[row.kind], description=row.description,
                               dynamic_typing=row.kind != "float_array")
    if row.choices:
        desc.additional_constraints = "one of: " + ", ".join(row.choices)
    elif row.constraints:
        desc.additional_constraints = row.constraints
    if row.kind == "float" and row.low is not None:
        desc.floating_point_range = [FloatingPointRange(from_value=float(row.low), to_value=float(row.high))]
    if row.kind == "int" and row.low is not None:
        desc.integer_range = [IntegerRange(from_value=int(row.low), to_value=int(row.high), step=1)]
    return desc


def table_value(row: ParamSpec, value: Any) -> Any:
    """A parameter value as the table expects it (an empty YAML list arrives unset)."""
    return () if row.kind == "float_array" and value is None else value


def declare_all(node: Node) -> None:
    """Declare every table row on ``node``, then refuse overrides that name no parameter.

    Raises:
        ParamError: a misspelt parameter name (with the closest real one suggested).
        rclpy.exceptions.InvalidParameterValueException: a value the node's set-parameters gate refused.
    """
    for row in TABLE:
        if row.unset:  # no value unless given: the model's own setting applies (see lanenet_ros.node.params)
            node.declare_parameter(row.name, None, descriptor(row))
            continue
        if row.kind != "float_array":
            node.declare_parameter(row.name, row.default, descriptor(row))
            continue
        param = node.declare_parameter(row.name, Parameter.Type.DOUBLE_ARRAY, descriptor(row))
        if param.value is None:  # no override: give it its (empty) default with the right type
            node.set_parameters([Parameter(row.name, Parameter.Type.DOUBLE_ARRAY, list(row.default))])
    given = getattr(node, "_parameter_overrides", {})  # rclpy keeps them here; there is no public accessor
    unknown = [n for n in given if not node.has_parameter(n) and not n.startswith("qos_overrides.")]
    if unknown:
        hints = ", ".join(_with_suggestion(name) for name in unknown)
        raise ParamError(f"unknown parameter {hints}; config/lanenet.yaml lists every parameter")


def _with_suggestion(name: str) -> str:
    """``'qos.dept' (did you mean 'qos.depth'?)``, or just the quoted name when nothing is close."""
    close = difflib.get_close_matches(name, list(_ROWS), n=1)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


def read_all(node: Node) -> NodeParams:
    """The node's current parameter values, frozen and checked."""
    return NodeParams.from_values({row.name: table_value(row, node.get_parameter(row.name).value)
                                   for row in TABLE})


def gate(params: list[Parameter], current: NodeParams) -> tuple[SetParametersResult, NodeParams, list[str]]:
    """Judge proposed values (other parameters, such as ``use_sim_time``, pass untouched).

    Args:
        params: the proposed parameters.
        current: the parameters in force.

    Returns:
        (the result for rclpy, ``current`` with the accepted live values applied, names that apply only at
        the next configure).
    """
    ours = [(_ROWS[p.name], table_value(_ROWS[p.name], p.value)) for p in params if p.name in _ROWS]
    try:
        for row, value in ours:
            if not (row.unset and value is None):  # a decode.* parameter declared, or left, unset
                check(row.name, value)
    except ParamError as exc:
        return SetParametersResult(successful=False, reason=str(exc)), current, []
    live = {row.name: value for row, value in ours if row.live}
    if live:
        fresh = NodeParams.from_values(live)
        current = replace(current, **{_ROWS[n].field: fresh.value(n) for n in live})
    return SetParametersResult(successful=True), current, [row.name for row, _ in ours if not row.live]
