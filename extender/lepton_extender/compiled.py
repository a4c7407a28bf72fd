"""numba, where installed: the extender's compiled request-path helpers (``names``, ``wire``) use
:func:`jit`; without numba it returns the plain Python function and ``HAVE_NUMBA`` is False, and the
callers take their uncompiled paths.

The scoring kernel (``lepton_core.scoring.kernel``) compiles the same way; numba's on-disk cache keeps
compiled code between runs (``NUMBA_CACHE_DIR``, else ``__pycache__`` or ``$HOME/.cache``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

_Fn = TypeVar("_Fn", bound=Callable[..., Any])

try:
    import numba

    def jit(fn: _Fn) -> _Fn:
        return cast(_Fn, numba.njit(cache=True, nogil=True)(fn))

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; this keeps the extender working without it

    def jit(fn: _Fn) -> _Fn:
        return fn

    HAVE_NUMBA = False
