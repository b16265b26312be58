"""A reader for the protobuf text format used by TAO spec files (no protobuf dependency).

``parse_text(text, source)`` returns a tree of :class:`Entry`: ``name: value`` scalars and
``name { ... }`` (or ``name: { ... }``) messages, each with its line number, in file order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r]+) | (?P<newline>\n) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}:;,])
""", re.VERBOSE)


class SpecError(ValueError):
    """A spec problem, with the file and line (or the command-line override) that caused it."""


@dataclass
class Scalar:
    """A scalar value as written: ``kind`` is ``string``, ``number`` or ``ident``."""

    kind: str
    text: str


@dataclass
class Entry:
    """One field occurrence: a scalar or a nested list of entries."""

    name: str
    value: Scalar | list[Entry]
    where: str  # "file:line" or "override 'k=v'"


def _tokens(text: str, source: str) -> list[tuple[str, str, int]]:
    out, line, pos = [], 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SpecError(f"{source}:{line}: cannot read {text[pos:pos + 20]!r}; expected a field name, "
                            "a value, '{' or '}'")
        kind = m.lastgroup or ""
        if kind == "newline":
            line += 1
        elif kind not in ("space", "comment"):
            out.append((kind, m.group(), line))
        pos = m.end()
    return out


def unquote(text: str) -> str:
    """The value of a quoted string token (backslash escapes resolved)."""
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse_text(text: str, source: str = "<spec>") -> list[Entry]:
    """Parse protobuf text format into entries.

    Args:
        text: file contents.
        source: file name used in error messages.

    Returns:
        Top-level entries in file order.

    Raises:
        SpecError: a syntax error, naming the line.
    """
    toks = _tokens(text, source)
    entries, _ = _parse_block(toks, 0, source, closing=False)
    return entries


def _parse_block(toks: list, pos: int, source: str, closing: bool) -> tuple[list[Entry], int]:
    entries: list[Entry] = []
    while pos < len(toks):
        kind, text, line = toks[pos]
        if text == "}" and kind == "punct":
            if not closing:
                raise SpecError(f"{source}:{line}: unmatched '}}'")
            return entries, pos + 1
        if text in (";", ","):
            pos += 1
            continue
        if kind != "ident":
            raise SpecError(f"{source}:{line}: expected a field name, found {text!r}")
        entry, pos = _parse_field(toks, pos + 1, text, line, source)
        entries.append(entry)
    if closing:
        raise SpecError(f"{source}: end of file inside a '{{ }}' block; add the missing '}}'")
    return entries, pos


def _parse_field(toks: list, pos: int, name: str, line: int, source: str) -> tuple[Entry, int]:
    where = f"{source}:{line}"
    colon = pos < len(toks) and toks[pos][2] == line and toks[pos][1] == ":"
    pos += 1 if colon else 0
    if pos >= len(toks):
        raise SpecError(f"{where}: field {name!r} has no value")
    kind, text, _ = toks[pos]
    if text == "{":
        children, pos = _parse_block(toks, pos + 1, source, closing=True)
        return Entry(name, children, where), pos
    if not colon:
        raise SpecError(f"{where}: expected ':' or '{{' after {name!r}")
    if kind not in ("string", "number", "ident"):
        raise SpecError(f"{where}: field {name!r} has no value (found {text!r})")
    if kind == "string":  # adjacent strings concatenate, as in protobuf
        parts = [unquote(text)]
        while pos + 1 < len(toks) and toks[pos + 1][0] == "string":
            pos += 1
            parts.append(unquote(toks[pos][1]))
        return Entry(name, Scalar("string", "".join(parts)), where), pos + 1
    return Entry(name, Scalar(kind, text), where), pos + 1
