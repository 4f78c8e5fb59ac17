"""Stub of kl_fast._cython.elementwise, compiled from src/elementwise.pyx.

Written by tools/make_stubs.py: do not edit by hand."""

from typing import Any

import numpy as np

def binary_elementwise(
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    op: int,
    eps: float,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i, j] = op(a[i, j], b[i, j]) / log_base; invalid values counted in `report`."""


def point(op: int, a: float, b: float, eps: float = ..., f32: bool = ...) -> Any:
    """One value of operation `op` (no validation, nats): for the tests of the math."""
