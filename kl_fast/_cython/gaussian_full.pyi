"""Stub of kl_fast._cython.gaussian_full, compiled from src/gaussian_full.pyx.

Written by tools/make_stubs.py: do not edit by hand."""

from typing import Any

import numpy as np

def gaussian_full_kernel(
    mu1: np.ndarray,
    cov1: np.ndarray,
    mu2: np.ndarray,
    cov2: np.ndarray,
    out: np.ndarray,
    info: np.ndarray,
    prior: bool,
    check: int,
    sym_tol: float,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[t] = KL(N(mu1[t], cov1[t]) || N(mu2[t], cov2[t])) / log_base."""
