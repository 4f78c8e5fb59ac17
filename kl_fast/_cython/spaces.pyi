"""Stub of kl_fast._cython.spaces, compiled from src/spaces.pyx.

Written by tools/make_stubs.py: do not edit by hand."""

from typing import Any

import numpy as np

SPACE_CODES: dict[str, int]
FAST_TOL_FLOAT32: float


def kl_space_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol_p: float,
    tol_q: float,
    p_space: int,
    q_space: int,
    temperature: float,
    norm_p: bool,
    norm_q: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = KL(p[i] || q[i]) / log_base for inputs in the given spaces (SPACE_CODES)."""


def cross_entropy_space_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol_p: float,
    tol_q: float,
    q_space: int,
    temperature: float,
    norm_p: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = -sum_j p[i, j] log q[i, j] / log_base, q given as log-probabilities or logits."""


def entropy_space_rows(
    p: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol_p: float,
    space: int,
    temperature: float,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = -sum_j p log p / log_base, p given as log-probabilities or logits."""


def cross_entropy_label_space_rows(
    labels: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    q_space: int,
    temperature: float,
    ignore_index: int,
    has_ignore: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = -log softmax(q[i])[labels[i]] (logits) or -q[i, labels[i]] (log), / log_base."""
