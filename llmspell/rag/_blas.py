"""Single-threaded BLAS for the exact vector scan, via threadpoolctl when it is installed.

On the shared 2-core machines OpenBLAS worker threads spin against other processes: a 50k-row exact
search ran 6x slower with two threads than with one (measured). One thread is also what the Lua
thread's synchronous calls want.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

_CONTROLLER: Any = None


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which BLAS calls use one thread (a no-op without threadpoolctl)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        except ImportError:
            _CONTROLLER = False
    if _CONTROLLER is False:
        return nullcontext()
    return _CONTROLLER.limit(limits=1, user_api="blas")  # type: ignore[no-any-return]
