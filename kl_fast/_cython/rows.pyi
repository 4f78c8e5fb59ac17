"""Stub of kl_fast._cython.rows, compiled from src/rows.pyx.

Written by tools/make_stubs.py: do not edit by hand."""

from typing import Any

import numpy as np

BLOCK_SIZE: int
REPORT_WIDTH: int
QUANTITY_CODES: dict[str, int]


def openmp_enabled() -> Any:
    """True if this extension was compiled with OpenMP (else kernels run serially)."""


def kl_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol: float,
    eps: float,
    transform: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = sum_j rel_entr(p[i, j], q[i, j]) / log_base, clamped at 0."""


def cross_entropy_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol: float,
    eps: float,
    transform: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = -sum_j xlogy(p[i, j], q[i, j]) / log_base."""


def js_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol: float,
    eps: float,
    transform: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = sum_j js_term(p[i, j], q[i, j]) / log_base, clamped to [0, log 2]."""


def entropy_rows(
    p: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol: float,
    eps: float,
    transform: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = sum_j entr(p[i, j]) / log_base."""


def hellinger_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol: float,
    eps: float,
    transform: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = sqrt(sum_j (sqrt p[i, j] - sqrt q[i, j])^2 / 2) / log_base, in [0, 1]."""


def total_variation_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol: float,
    eps: float,
    transform: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = sum_j |p[i, j] - q[i, j]| / 2 / log_base, in [0, 1]."""


def chi2_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol: float,
    eps: float,
    transform: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = sum_j (p[i, j] - q[i, j])^2 / q[i, j] / log_base (0/0 terms are 0)."""


def renyi_rows(
    p: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    tol: float,
    eps: float,
    transform: bool,
    log_base: float,
    alpha: float,
    n_threads: int,
) -> Any:
    """out[i] = log(sum_j p^alpha q^(1-alpha) / sum_j p) / (alpha - 1) / log_base:"""


def cross_entropy_label_rows(
    labels: np.ndarray,
    q: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    eps: float,
    transform: bool,
    ignore_index: int,
    has_ignore: bool,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = -log q[i, labels[i]] / log_base; NaN where labels[i] == ignore_index."""


def gaussian_kl_rows(
    mu1: np.ndarray,
    s1: np.ndarray,
    mu2: np.ndarray,
    s2: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    scale: int,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = sum_j KL(N(mu1, s1) || N(mu2, s2))[i, j] / log_base, s in `scale`."""


def gaussian_kl_prior_rows(
    mu1: np.ndarray,
    s1: np.ndarray,
    out: np.ndarray,
    report: np.ndarray,
    check: int,
    scale: int,
    log_base: float,
    n_threads: int,
) -> Any:
    """out[i] = sum_j KL(N(mu1, s1) || N(0, 1))[i, j] / log_base, s in `scale`."""


def rel_entr_1d(x: np.ndarray, y: np.ndarray, out: np.ndarray, n_threads: int) -> Any:
    """out[i] = rel_entr(x[i], y[i]): the elementwise term, for the scipy drop-in."""


def sum_tolerance(eps: float, n: int) -> Any:
    """The one-vector fast path's default row-sum tolerance (for the tests)."""


def vector_fast(p: Any, q: Any, kind: int, max_n: int) -> Any:
    """KL/CE/JS (q given) or entropy (q None) of one plain 1-D distribution, or None."""


def vmath(name: str, x: np.ndarray, out: np.ndarray) -> Any:
    """Apply the kernels' own log, log1p, exp or exp_fast (the fast tiers' exp, for"""
