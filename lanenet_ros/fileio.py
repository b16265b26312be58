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

    Temporary files that killed writers left beside ``path`` are removed first (see
    :func:`remove_orphan_temps`).

    Args:
        path: destination file; its folder is created when missing.
        data: the complete file content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or a number no process can have: leave it
    return True


def remove_orphan_temps(path: str | os.PathLike) -> int:
    """Remove the temporary files (``.NAME.PID.*.tmp`` or ``.NAME.PID.tmp``) that writers of ``path`` killed
    mid-write left behind; those of a process still running are kept.

    Returns:
        The number of files removed.
    """
    path = Path(path)
    removed = 0
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters matched literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
