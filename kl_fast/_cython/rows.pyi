"""Stub of kl_fast._cython.rows, compiled from src/rows.pyx.

Written by tools/make_stubs.py: do not edit by hand."""

from typing import Any

import numpy as np

BLOCK_SIZE: int
REPORT_WIDTH: int
QUANTITY_CODES: dict[str, int]


def openmp_enabled() -> Any:
    """True if this extension was compiled with OpenMP (else kernels run serially)."""


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
    """out[i] = kl(p[i], q[i]) / log_base: a line of src/kl_blocks.h's KL_ROW_QUANTITIES."""


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
    """out[i] = cross_entropy(p[i], q[i]) / log_base: a line of src/kl_blocks.h's
    KL_ROW_QUANTITIES.
    """


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
    """out[i] = entropy(p[i], q[i]) / log_base: a line of src/kl_blocks.h's KL_ROW_QUANTITIES."""


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
    """out[i] = js(p[i], q[i]) / log_base: a line of src/kl_blocks.h's KL_ROW_QUANTITIES."""


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
    """out[i] = hellinger(p[i], q[i]) / log_base: a line of src/kl_blocks.h's KL_ROW_QUANTITIES."""


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
    """out[i] = total_variation(p[i], q[i]) / log_base: a line of src/kl_blocks.h's
    KL_ROW_QUANTITIES.
    """


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
    """out[i] = chi2(p[i], q[i]) / log_base: a line of src/kl_blocks.h's KL_ROW_QUANTITIES."""
