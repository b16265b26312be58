"""Compiled kernels of the decoder: numba, compiled once and cached on disk, warmed before the first frame.

``kernel`` is ``numba.njit`` with the settings every kernel uses: compiled code cached next to the module (or in
numba's per-user cache where the package directory is read-only, e.g. a system install), and the GIL released
so that a kernel runs beside inference in another thread. Each module that defines kernels registers a
warm-up: a call on a tiny input with the argument types the decoder passes. :func:`warm_up` runs them all; the
decoder calls it when it is made (the node's ``configure``), so no frame ever waits for the compiler. The
first run on a machine compiles (seconds); later runs load the cache.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numba

kernel = functools.partial(numba.njit, cache=True, nogil=True)

_WARM_UPS: list[Callable[[], Any]] = []


def warms_up(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Register ``fn`` (no arguments) to run by :func:`warm_up`; returns it unchanged (a decorator)."""
    _WARM_UPS.append(fn)
    return fn


@functools.cache
def warm_up() -> None:
    """Compile (or load from the cache) every registered kernel for the types the decoder uses; once per process."""
    for fn in _WARM_UPS:
        fn()
