"""Compiled kernels of the frame path: numba, compiled once and cached on disk, warmed before the first frame.

``kernel`` is ``numba.njit`` with the settings every kernel uses: compiled code cached next to the module (or in
numba's per-user cache where the package directory is read-only, e.g. a system install), and the GIL released
so that a kernel runs beside inference in another thread. Each module that defines kernels registers a
warm-up: a call on a tiny input with the argument types the frame path passes. :func:`warm_up` runs those not
yet run; the decoder and the preprocessor call it when they are made (the node's ``configure``), so no frame
ever waits for the compiler. The first run on a machine compiles (seconds); later runs load the cache.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numba

_KERNELS: list[Any] = []
_PENDING: list[Callable[[], Any]] = []
_LOCK = threading.Lock()


def kernel(fn: Callable[..., Any]) -> Any:
    """``numba.njit(cache=True, nogil=True)``, remembered so that :func:`warm_up` can say what it compiled."""
    dispatcher = numba.njit(cache=True, nogil=True)(fn)
    _KERNELS.append(dispatcher)
    return dispatcher


def warms_up(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Register ``fn`` (no arguments) to run by :func:`warm_up`; returns it unchanged (a decorator)."""
    _PENDING.append(fn)
    return fn


def warm_up() -> int:
    """Compile (or load from the cache) the kernels registered so far for the types the frame path uses; each
    warm-up runs once per process. Returns how many kernel signatures this process has compiled rather than
    loaded from the cache (0 once the cache is warm)."""
    with _LOCK:
        while _PENDING:
            _PENDING.pop(0)()
        return sum(sum(k.stats.cache_misses.values()) for k in _KERNELS)
