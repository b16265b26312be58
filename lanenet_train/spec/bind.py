"""Binding parsed entries to the typed schema: type and range checks, nearest-name hints, overrides."""
from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from typing import Any

from lanenet_train.spec.textformat import Entry, Scalar, SpecError

_BOOLS = {"true": True, "false": False, "True": True, "False": False, "1": True, "0": False}


@functools.cache
def field_types(cls: type) -> dict[str, tuple[Any, bool]]:
    """Map each field of dataclass ``cls`` to (item type, repeated)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) is list:
            out[f.name] = (args[0], True)
        elif args and typing.get_origin(tp) is not None:  # Optional[X]
            out[f.name] = (args[0], False)
        else:
            out[f.name] = (tp, False)
    return out


def _unknown(name: str, cls: type, where: str) -> SpecError:
    names = list(field_types(cls))
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"did you mean {near[0]!r}?" if near else f"valid fields: {', '.join(names)}"
    return SpecError(f"{where}: unknown field {name!r} in {cls.__name__}; {hint}")


def bind(entries: list[Entry], cls: type, lines: dict[str, str], prefix: str = "") -> Any:
    """Build a ``cls`` instance from entries, checking names, types, ranges and choices.

    Args:
        entries: the parsed fields of one message.
        cls: the schema dataclass of that message.
        lines: filled with ``dotted.path -> where`` for later (cross-field) error messages.
        prefix: dotted path of this message.

    Returns:
        The dataclass instance, defaults filled in.

    Raises:
        SpecError: unknown field, repeated singular field, wrong type or out-of-range value.
    """
    types, meta = field_types(cls), {f.name: f.metadata for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for entry in entries:
        if entry.name not in types:
            raise _unknown(entry.name, cls, entry.where)
        item_type, repeated = types[entry.name]
        path = f"{prefix}{entry.name}"
        if not repeated and entry.name in values:
            raise SpecError(f"{entry.where}: {path} is given twice (first at {lines[path]}); keep one")
        index = len(values.get(entry.name, []))
        lines[path] = lines.get(path, entry.where) if repeated else entry.where
        value = _convert(entry, item_type, meta[entry.name], lines, f"{path}[{index}]." if repeated else path + ".")
        if repeated:
            values.setdefault(entry.name, []).append(value)
        else:
            values[entry.name] = value
    return cls(**values)


def _convert(entry: Entry, tp: Any, meta: Any, lines: dict[str, str], prefix: str) -> Any:
    path = prefix.rstrip(".")
    if dataclasses.is_dataclass(tp):
        if isinstance(entry.value, Scalar):
            raise SpecError(f"{entry.where}: {path} is a message; write {entry.name} {{ ... }}")
        return bind(entry.value, tp, lines, prefix)
    if not isinstance(entry.value, Scalar):
        raise SpecError(f"{entry.where}: {path} takes a value, not a {{ }} block; write {entry.name}: VALUE")
    value = _scalar(entry.value, tp, f"{entry.where}: {path}")
    _check(value, meta, f"{entry.where}: {path}")
    return value


def _scalar(s: Scalar, tp: type, where: str) -> Any:
    try:
        if tp is bool:
            if s.text not in _BOOLS:
                raise ValueError
            return _BOOLS[s.text]
        if tp is int:
            if s.kind != "number":
                raise ValueError
            number = float(s.text)
            if number != int(number):
                raise ValueError
            return int(number)
        if tp is float:
            if s.kind != "number":
                raise ValueError
            return float(s.text)
        return s.text
    except ValueError:
        raise SpecError(f"{where}: expected {tp.__name__}, got {s.text!r}") from None


def _check(value: Any, meta: Any, where: str) -> None:
    low_high, choices = meta.get("range"), meta.get("choices")
    if low_high and not low_high[0] <= value <= low_high[1]:
        raise SpecError(f"{where}: {value} is out of range; allowed {low_high[0]} to {low_high[1]}")
    if choices and value not in choices:
        near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.4)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise SpecError(f"{where}: {value!r} is not allowed{hint}; choose one of {', '.join(map(str, choices))}")


def apply_override(entries: list[Entry], text: str, root: type) -> None:
    """Apply one ``dotted.path=value`` override to the parsed entries (in place).

    Repeated scalars take comma-separated values (``model_config.atrous_rates=6,12,18``); a path through a
    repeated message (``dataset_config.data_sources.dataset_root=...``) sets the field in every occurrence,
    creating one when there is none.

    Raises:
        SpecError: malformed override or unknown field (with the nearest valid name).
    """
    where = f"override {text!r}"
    if "=" not in text:
        raise SpecError(f"{where}: expected KEY=VALUE such as train_config.batch_size=8")
    key, raw = text.split("=", 1)
    parts, cls, blocks = key.strip().split("."), root, [entries]
    for i, name in enumerate(parts):
        if name not in field_types(cls):
            raise _unknown(name, cls, where)
        tp, repeated = field_types(cls)[name]
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(tp):
                raise SpecError(f"{where}: {key} is a message; override one of its fields instead")
            values = raw.split(",") if repeated else [raw]
            for block in blocks:
                block[:] = [e for e in block if e.name != name] + [Entry(name, _guess(v), where) for v in values]
            return
        if not dataclasses.is_dataclass(tp):
            raise SpecError(f"{where}: {'.'.join(parts[:i + 1])} is a value and has no field {parts[i + 1]!r}")
        blocks = [_children(block, name, where) for block in blocks]
        blocks = [b for group in blocks for b in group]
        cls = tp


def _children(block: list[Entry], name: str, where: str) -> list[list[Entry]]:
    found = [e.value for e in block if e.name == name and isinstance(e.value, list)]
    if not found:
        block.append(Entry(name, [], where))
        found = [block[-1].value]
    return found


def _guess(raw: str) -> Scalar:
    raw = raw.strip()
    try:
        float(raw)
        return Scalar("number", raw)
    except ValueError:
        return Scalar("ident" if raw in _BOOLS else "string", raw)
