"""Stub of kl_fast._cython.pairwise, compiled from src/pairwise.pyx.

Written by tools/make_stubs.py: do not edit by hand."""

from typing import Any

import numpy as np

def tile_shape(n_cat: int) -> Any:
    """(T, KC): tile rows and chunk length for rows of `n_cat` categories (both"""


def pairwise_kl_matrix(
    P: np.ndarray,
    Q: np.ndarray,
    out: np.ndarray,
    dP: np.ndarray,
    dQ: np.ndarray,
    eps: float,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i, j] = sum_k x log(x / y) / log_base, x = (P[i] + eps) / dP[i],"""
