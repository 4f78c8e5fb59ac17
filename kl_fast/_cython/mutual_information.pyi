"""Stub of kl_fast._cython.mutual_information, compiled from src/mutual_information.pyx.

Written by tools/make_stubs.py: do not edit by hand."""

from typing import Any

import numpy as np

def mutual_information_kernel(
    joint: np.ndarray,
    out: np.ndarray,
    sums: np.ndarray,
    info: np.ndarray,
    check: int,
    eps: float,
    transform: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[t] = max(I(X;Y), 0) / log_base of table joint[t]; sums[t] its raw sum."""
