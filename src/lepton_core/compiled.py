"""numba, where installed: :func:`jit` compiles the project's hot loops (the scoring kernel in
``lepton_core.scoring.kernel``; the extender's request readers and answer renderer in
``lepton_extender.names`` and ``lepton_extender.wire``). Without numba it returns the plain Python function
and ``HAVE_NUMBA`` is False, and every caller takes its uncompiled path (the numpy kernel, orjson and a dict).

Options, the same for every compiled function: ``cache=True`` (machine code kept on disk — next to the
source, or under ``NUMBA_CACHE_DIR`` / ``$HOME/.cache`` where that is read-only — so only the first process
pays the compilation), ``nogil=True``, and ``error_model="numpy"`` (a division by zero gives inf/NaN as
in numpy instead of raising: the compiled kernel must answer what the numpy kernel answers).

:func:`jit_inline` also inlines the function into its compiled callers (numba ``inline="always"``): for
small helpers taking scalars, called per element. Hot loops must not pass arrays to helpers or slice
them per element at all, inlined or not: numba counts a reference (a locked increment and decrement)
for every array passed to a call and every view made, and per element that costs more than the
arithmetic (measured with perf: a third to 40 % of the scoring kernel's and the name reader's time
before they were written without).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

_Fn = TypeVar("_Fn", bound=Callable[..., Any])

try:
    import numba

    def jit(fn: _Fn) -> _Fn:
        return cast(_Fn, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))

    def jit_inline(fn: _Fn) -> _Fn:
        return cast(_Fn, numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn))

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; this keeps everything working without it

    def jit(fn: _Fn) -> _Fn:
        return fn

    jit_inline = jit

    HAVE_NUMBA = False
