"""Atomic file writes (a reader sees the old file or the new one, never half of one) and JSON-lines reading that
names the line at fault; no rclpy, no torch."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    Args:
        path: destination file; its folder is created when missing.
        data: the complete file content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json_lines(path: str | os.PathLike, needs: Sequence[str], what: str) -> list[dict]:
    """The JSON objects of a JSON-lines file in order (blank lines skipped), each holding the keys ``needs``.

    Args:
        path: the file.
        needs: keys every object must have.
        what: what one line is, for messages (``label``, ``sample``).

    Raises:
        ValueError: ``path:line:`` and what is wrong: not JSON, or not an object with every key of ``needs``.
        OSError: the file cannot be read.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            missing = [k for k in needs if not isinstance(row, dict) or k not in row]
            if missing:
                raise ValueError(f"{path}:{number}: {what} lacks {missing}")
            rows.append(row)
    return rows
