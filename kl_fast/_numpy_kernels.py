"""Row kernels of kl_fast written with plain numpy/scipy.special: the reference backend.

Same names, signatures and report protocol as the compiled kernels (see the
design notes at the top of ``src/_kernels_cython.pyx``), but vectorised over
whole arrays with temporaries.  It is the fallback that needs no compiler and
a readable statement of what the compiled kernels compute.  Sums use numpy's
pairwise summation, so results agree with the compiled backends within the
accuracy bound, not bit for bit.
"""

import functools

import numpy as np
from scipy import special

from ._numpy_exact import expm1mx
from ._scale import SCALE_LOGSTD, SCALE_LOGVAR, SCALE_STD, SCALE_VAR

__all__ = [
    "kl_rows",
    "cross_entropy_rows",
    "entropy_rows",
    "js_rows",
    "cross_entropy_label_rows",
    "gaussian_kl_rows",
    "gaussian_kl_prior_rows",
]


def _quiet(kernel):
    """Like the compiled kernels, never warn: inf and NaN are results, and the
    API turns invalid input into errors from the report."""

    @functools.wraps(kernel)
    def wrapper(*args):
        with np.errstate(all="ignore"):
            return kernel(*args)

    return wrapper


_LN2 = 0.6931471805599453
# _LN2 * (1 + 64 eps), as _kernels_cython.pyx: above it a JS total is no rounding
# excess of log 2 but a real value (inf or garbage from invalid input)
_LN2_ROUNDING = 0.6931471805599552


def _clamp_js(total):
    """JS totals into [0, log 2] where only rounding left it: NaN, inf and any value
    beyond a rounding excess (invalid input) pass unchanged, as in the compiled kernels."""
    total = np.where(total < 0, 0.0, total)
    return np.where((total > _LN2) & (total <= _LN2_ROUNDING), _LN2, total)


def _bad(x):
    return ~((x >= 0) & (x < np.inf))


def _report_values(report, bads):
    """Record the count and first position of bad values; bads = [(arg, mask2d), ...]."""
    total = sum(int(mask.sum()) for _, mask in bads)
    if total == 0:
        return
    report[0, 0] += total
    first = None
    for arg, mask in bads:
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size:
            row = rows[0]
            col = int(np.flatnonzero(mask[row])[0])
            if first is None or row < first[0]:
                first = (row, col, arg)
    report[0, 1:4] = first


def _report_sums(report, sums, tol):
    """Record the first row (and input) whose sum is off by more than tol (tol < 0: not > 0)."""
    best = None
    for arg, s in sums:
        bad = ~((s > 0) & (s < np.inf)) if tol < 0 else ~(np.abs(s - 1.0) <= tol)
        rows = np.flatnonzero(bad)
        if rows.size and (best is None or rows[0] < best[0]):
            best = (rows[0], arg)
    if best is not None:
        report[0, 4:6] = best


def _prepare(arrays, report, check, tol, eps, transform):
    """float64 copies, validation report, and the (x + eps)/(sum + n eps) transform."""
    xs = [np.asarray(a, dtype=np.float64) for a in arrays]
    if check:
        _report_values(report, [(i, _bad(x)) for i, x in enumerate(xs)])
    sums = [x.sum(axis=1) for x in xs]
    if check == 2 and report[0, 0] == 0:
        _report_sums(report, list(enumerate(sums)), tol)
    if transform:
        n = xs[0].shape[1]
        xs = [(x + eps) / (s + n * eps)[:, None] for x, s in zip(xs, sums, strict=False)]
    return xs


def _finish(out, total, log_base):
    out[...] = total / log_base


@_quiet
def kl_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j rel_entr(p[i, j], q[i, j]) / log_base, clamped at 0."""
    if p.shape[0] == 0:
        return
    p64, q64 = _prepare((p, q), report, check, tol, eps, transform)
    total = special.rel_entr(p64, q64).sum(axis=1)
    _finish(out, np.where(total < 0, 0.0, total), log_base)


@_quiet
def cross_entropy_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = -sum_j xlogy(p[i, j], q[i, j]) / log_base."""
    if p.shape[0] == 0:
        return
    p64, q64 = _prepare((p, q), report, check, tol, eps, transform)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p64 == 0, 0.0, -p64 * np.log(q64))
    _finish(out, terms.sum(axis=1), log_base)


@_quiet
def js_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j js_term(p[i, j], q[i, j]) / log_base, clamped to [0, log 2]."""
    if p.shape[0] == 0:
        return
    p64, q64 = _prepare((p, q), report, check, tol, eps, transform)
    s = p64 + q64
    bq = s - p64
    e = (p64 - (s - bq)) + (q64 - bq)  # TwoSum: p + q == s + e exactly (see kl_math.h)
    t = special.rel_entr(p64, 0.5 * s) + special.rel_entr(q64, 0.5 * s)
    with np.errstate(invalid="ignore"):
        terms = 0.5 * np.where(np.isfinite(e), t - e, t)
    _finish(out, _clamp_js(terms.sum(axis=1)), log_base)


@_quiet
def entropy_rows(p, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j entr(p[i, j]) / log_base."""
    if p.shape[0] == 0:
        return
    (p64,) = _prepare((p,), report, check, tol, eps, transform)
    _finish(out, special.entr(p64).sum(axis=1), log_base)


@_quiet
def cross_entropy_label_rows(labels, q, out, report, check, eps, transform, ignore_index,
                             has_ignore, log_base, n_threads):
    """out[i] = -log q[i, labels[i]] / log_base; NaN where labels[i] == ignore_index."""
    n_rows, n = q.shape
    if n_rows == 0:
        return
    labels = np.asarray(labels, dtype=np.int64)
    ignored = (labels == ignore_index) if has_ignore else np.zeros(n_rows, dtype=bool)
    out_of_range = ~ignored & ((labels < 0) | (labels >= n))
    if out_of_range.any():
        report[0, 0] += int(out_of_range.sum())
        report[0, 1:4] = (int(np.flatnonzero(out_of_range)[0]), -1, 0)
    valid = ~ignored & ~out_of_range
    rows = np.flatnonzero(valid)
    q64 = np.asarray(q, dtype=np.float64)
    picked = q64[rows, labels[rows]]
    if transform:
        if check:
            bad = _bad(q64[rows])
            if bad.any() and report[0, 1] < 0:
                r = int(np.flatnonzero(bad.any(axis=1))[0])
                report[0, 1:4] = (rows[r], int(np.flatnonzero(bad[r])[0]), 1)
            report[0, 0] += int(bad.sum())
        picked = (picked + eps) / (q64[rows].sum(axis=1) + n * eps)
    elif check:
        bad = _bad(picked) | (picked > 1.0)
        if bad.any():
            report[0, 0] += int(bad.sum())
            if report[0, 1] < 0:
                r = int(np.flatnonzero(bad)[0])
                report[0, 1:4] = (rows[r], labels[rows[r]], 1)
    result = np.full(n_rows, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        result[rows] = 0.0 - np.log(picked)     # +0.0 (not -0.0) for a certain label
    _finish(out, result, log_base)


def _u_minus_1_minus_log_u(u_minus_1, log_u):
    """u - 1 - log u, from an accurate u - 1 (see kl_math.h)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        band = (u_minus_1 >= -0.5) & (u_minus_1 <= 1.0)
        # numpy has no log1pmx; scipy's private one is not public, so use the
        # atanh series of kl_math.h for the band where log1p(x) - x cancels.
        s = u_minus_1 / (2.0 + u_minus_1)
        s2 = s * s
        poly = np.zeros_like(s)
        for k in range(17, -1, -1):
            poly = poly * s2 + 1.0 / (2 * k + 3)
        return np.where(band, u_minus_1 * s - 2.0 * s * s2 * poly, u_minus_1 - log_u)


def _gauss_terms2(scale, m1, s1, m2, s2):
    dm = m1 - m2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if scale == SCALE_VAR:
            return _u_minus_1_minus_log_u((s1 - s2) / s2, np.log(s1) - np.log(s2)) + dm * dm / s2
        if scale == SCALE_STD:
            um1 = ((s1 - s2) / s2) * ((s1 + s2) / s2)
            return _u_minus_1_minus_log_u(um1, 2.0 * (np.log(s1) - np.log(s2))) + (dm / s2) ** 2
        if scale == SCALE_LOGVAR:
            return expm1mx(s1 - s2) + dm * dm * np.exp(-s2)
        if scale == SCALE_LOGSTD:
            return expm1mx(2.0 * (s1 - s2)) + dm * dm * np.exp(-2.0 * s2)
    raise ValueError(f"unknown scale code {scale}")


def _gauss_report(report, check, scale, arrays):
    if not check:
        return
    bads = []
    for arg, x in arrays:
        if arg % 2 == 0 or scale in (SCALE_LOGVAR, SCALE_LOGSTD):
            bads.append((arg, ~np.isfinite(x)))
        else:
            bads.append((arg, ~((x > 0) & (x < np.inf))))
    _report_values(report, bads)
    # _report_values picks the smallest row; within a row the smallest column
    # wins across arguments in the compiled kernels, so redo the tie-break.
    if report[0, 1] >= 0:
        row = report[0, 1]
        cols = [(int(np.flatnonzero(m[row])[0]), arg) for arg, m in bads if m[row].any()]
        col, arg = min(cols)
        report[0, 2:4] = (col, arg)


@_quiet
def gaussian_kl_rows(mu1, s1, mu2, s2, out, report, check, scale, log_base, n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(mu2, s2))[i, j] / log_base, s in `scale`."""
    if mu1.shape[0] == 0:
        return
    xs = [np.asarray(a, dtype=np.float64) for a in (mu1, s1, mu2, s2)]
    _gauss_report(report, check, scale, list(enumerate(xs)))
    total = 0.5 * _gauss_terms2(scale, *xs).sum(axis=1)
    _finish(out, np.where(total < 0, 0.0, total), log_base)


@_quiet
def gaussian_kl_prior_rows(mu1, s1, out, report, check, scale, log_base, n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(0, 1))[i, j] / log_base, s in `scale`."""
    if mu1.shape[0] == 0:
        return
    m, s = (np.asarray(a, dtype=np.float64) for a in (mu1, s1))
    _gauss_report(report, check, scale, [(0, m), (1, s)])
    zero = np.zeros_like(m)
    unit = zero if scale in (SCALE_LOGVAR, SCALE_LOGSTD) else np.ones_like(s)
    total = 0.5 * _gauss_terms2(scale, m, s, zero, unit).sum(axis=1)
    _finish(out, np.where(total < 0, 0.0, total), log_base)
