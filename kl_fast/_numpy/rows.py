"""Row kernels of kl_fast written with plain numpy/scipy.special: the reference backend.

Same names, signatures and report protocol as the compiled kernels (see the
design notes at the top of ``src/rows.pyx``), but vectorised over
whole arrays with temporaries.  It is the fallback that needs no compiler and
a readable statement of what the compiled kernels compute.  Sums use numpy's
pairwise summation, so results agree with the compiled backends within the
accuracy bound, not bit for bit.
"""

import functools
import math

import numpy as np
from scipy import special

from .._engine.scale import SCALE_LOGSTD, SCALE_LOGVAR, SCALE_STD, SCALE_VAR
from .exact import expm1mx

__all__ = [
    "kl_rows",
    "cross_entropy_rows",
    "entropy_rows",
    "js_rows",
    "renyi_rows",
    "cross_entropy_label_rows",
    "gaussian_kl_rows",
    "gaussian_kl_prior_rows",
]


def quiet(kernel):
    """Like the compiled kernels, never warn: inf and NaN are results, and the
    API turns invalid input into errors from the report."""

    @functools.wraps(kernel)
    def wrapper(*args):
        with np.errstate(all="ignore"):
            return kernel(*args)

    return wrapper


_LN2 = 0.6931471805599453
# _LN2 * (1 + 64 eps), as src/rows.pyx: above it a JS total is no rounding
# excess of log 2 but a real value (inf or garbage from invalid input)
_LN2_ROUNDING = 0.6931471805599552


def _clamp_js(total):
    """JS totals into [0, log 2] where only rounding left it: NaN, inf and any value
    beyond a rounding excess (invalid input) pass unchanged, as in the compiled kernels."""
    total = np.where(total < 0, 0.0, total)
    return np.where((total > _LN2) & (total <= _LN2_ROUNDING), _LN2, total)


def _bad(x):
    return ~((x >= 0) & (x < np.inf))


def report_values(report, bads):
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
        report_values(report, [(i, _bad(x)) for i, x in enumerate(xs)])
    sums = [x.sum(axis=1) for x in xs]
    if check == 2 and report[0, 0] == 0:
        _report_sums(report, list(enumerate(sums)), tol)
    if transform:
        n = xs[0].shape[1]
        xs = [(x + eps) / (s + n * eps)[:, None] for x, s in zip(xs, sums, strict=False)]
    return xs


def _finish(out, total, log_base):
    out[...] = total / log_base


@quiet
def kl_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j rel_entr(p[i, j], q[i, j]) / log_base, clamped at 0."""
    if p.shape[0] == 0:
        return
    p64, q64 = _prepare((p, q), report, check, tol, eps, transform)
    total = special.rel_entr(p64, q64).sum(axis=1)
    _finish(out, np.where(total < 0, 0.0, total), log_base)


@quiet
def cross_entropy_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = -sum_j xlogy(p[i, j], q[i, j]) / log_base."""
    if p.shape[0] == 0:
        return
    p64, q64 = _prepare((p, q), report, check, tol, eps, transform)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p64 == 0, 0.0, -p64 * np.log(q64))
    _finish(out, terms.sum(axis=1), log_base)


@quiet
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


@quiet
def entropy_rows(p, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j entr(p[i, j]) / log_base."""
    if p.shape[0] == 0:
        return
    (p64,) = _prepare((p,), report, check, tol, eps, transform)
    _finish(out, special.entr(p64).sum(axis=1), log_base)


# -- the f-divergence family (the forms of kl_blocks.h / kl_math.h, vectorised) -------

_ONE_ROUNDING = 1.0000000000000142   # 1 + 64 eps: a rounding excess over 1


def _clamp_one(total):
    return np.where((total > 1.0) & (total <= _ONE_ROUNDING), 1.0, total)


def hellinger_terms(p, q):
    """(sqrt p - sqrt q)^2 as ((p - q) / (sqrt p + sqrt q))^2 (no cancellation where p ~ q)."""
    d = (p - q) / (np.sqrt(p) + np.sqrt(q))
    return np.where((p == 0) | (q == 0), p + q, d * d)   # exact where one is 0


def tv_terms(p, q):
    return np.abs(p - q)


def chi2_terms(p, q):
    """(p - q)^2 / q as (d / sqrt q)^2: over- or underflows only with the term; 0/0 is 0."""
    d = (p - q) / np.sqrt(q)
    return np.where((p == 0) & (q == 0), 0.0, d * d)


def finish_hellinger(total):
    """The distance from the sum of hellinger_terms: sqrt(total / 2), at most 1."""
    return _clamp_one(np.sqrt(0.5 * total))


def finish_tv(total):
    return _clamp_one(0.5 * total)


# The members that are a plain sum of terms: {row kernel: (terms, finish)}.  A kernel
# is made for each below; the dask path of a split category axis sums the same terms
# per chunk and finishes the total (_dask.split).  A new such member is its two
# functions and a line here.
SUMS_OF_TERMS = {
    "hellinger_rows": (hellinger_terms, finish_hellinger),
    "total_variation_rows": (tv_terms, finish_tv),
    "chi2_rows": (chi2_terms, None),   # 0/0 terms are 0, p > 0 = q gives inf
}


def _sum_of_terms_kernel(name, terms, finish_total):
    @quiet
    def kernel(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
        if p.shape[0] == 0:
            return
        p64, q64 = _prepare((p, q), report, check, tol, eps, transform)
        total = terms(p64, q64).sum(axis=1)
        _finish(out, total if finish_total is None else finish_total(total), log_base)

    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = (f"out[i] = sum_j {terms.__name__}(p[i, j], q[i, j]), finished, "
                      "/ log_base (SUMS_OF_TERMS).")
    return kernel


globals().update({name: _sum_of_terms_kernel(name, *fns) for name, fns in SUMS_OF_TERMS.items()})
__all__ += list(SUMS_OF_TERMS)


def _log_ratio(q, p):
    """log(q/p) for p, q > 0, accurate where q ~ p (kl_math.h's kl_log_ratio)."""
    r = q / p
    band = (r > 0.5) & (r < 2.0)
    normal = (r > np.finfo(np.float64).tiny) & (r < np.inf)
    return np.where(band, np.log1p((q - p) / p),
                    np.where(normal, np.log(r), np.log(q) - np.log(p)))


def renyi_terms(p, q, c, shifted):
    """w = p^alpha q^(1-alpha) - p (shifted) or the term itself, c = 1 - alpha, with the
    conventions of kl_renyi_w / kl_renyi_s; NaN for NaN or negative input."""
    y = c * _log_ratio(q, p)
    big = y >= 709.0      # e^y overflows; p e^y = e^(log p + y) may not
    if shifted:
        t = np.where(big, np.exp(np.log(p) + y) - p, p * np.expm1(y))
        t = q - p if c == 1.0 else t       # alpha = 0: the term is q, exactly
        if c == 0.5:                       # the algebraic forms of alpha = 1/2 and 2
            t = np.sqrt(p) * ((q - p) / (np.sqrt(p) + np.sqrt(q)))
        elif c == -1.0:
            t = p * ((p - q) / q)
        at_q0 = -p if c > 0 else np.inf
    else:
        t = np.where(big, np.exp(np.log(p) + y), p * np.exp(y))
        t = q if c == 1.0 else t
        at_q0 = 0.0 if c > 0 else np.inf
    t = np.where(q == 0, at_q0, t)
    t = np.where(p == 0, 0.0, t)
    return _nan_where_invalid(p, q, t)


def renyi_log_terms(p, q, c):
    """log(p^alpha q^(1-alpha)) = log p + c log(q/p): -inf for a zero term."""
    t = np.where(q == 0, -np.inf if c > 0 else np.inf, np.log(p) + c * _log_ratio(q, p))
    return _nan_where_invalid(p, q, np.where(p == 0, -np.inf, t))


def max_log_ratio_terms(p, q):
    """log(p/q) where p > 0 (+inf where q = 0 < p), -inf elsewhere; NaN for invalid input."""
    t = np.where(q == 0, np.inf, _log_ratio(p, q))
    return _nan_where_invalid(p, q, np.where(p == 0, -np.inf, t))


def _nan_where_invalid(p, q, t):
    return np.where(np.isnan(p) | np.isnan(q) | (p < 0) | (q < 0), np.nan, t)


def exact_zero_order_parts(p, q, w):
    """Order 0's W = sum over p > 0 of (q - p) per row as hi + lo: hi correctly rounded
    (math.fsum), lo the rounding of hi, where the row is finite (`w`, the plain sums,
    and 0 elsewhere).  Its terms cancel to W, which can lie many orders below them
    (src/rows.pyx's _renyi_zero_w); the dask path of a split axis adds the parts of
    its chunks."""
    shape = np.shape(w)
    hi, lo = np.array(w, dtype=np.float64).reshape(-1), np.zeros(int(np.prod(shape)))
    p2, q2 = (x.reshape(-1, x.shape[-1]) for x in np.broadcast_arrays(p, q))
    for i in np.flatnonzero(np.isfinite(hi)):
        keep = p2[i] > 0
        terms = np.concatenate([q2[i][keep], -p2[i][keep]]).tolist()
        hi[i] = math.fsum(terms)
        lo[i] = math.fsum([*terms, -hi[i]])
    return hi.reshape(shape), lo.reshape(shape)


def _exact_zero_order_w(p, q, w):
    return exact_zero_order_parts(p, q, w)[0]


def finish_renyi(c, w, s, log_s, sum_p):
    """D_alpha per row (c = 1 - alpha) from the row sums of the shifted terms (w), the
    terms (s, used where W/P < -1/2) and their log-sum-exp (log_s, where S over- or
    underflows), as src/rows.pyx's _renyi_total; clamped at 0."""
    first = (w >= -0.5 * sum_p) & (w < np.inf)
    second = ~first & (s > 0) & (s < np.inf)
    result = np.where(first, np.log1p(w / sum_p) / -c,
                      np.where(second, np.log(s / sum_p) / -c, (log_s - np.log(sum_p)) / -c))
    result = np.where(np.isnan(w), w, result)
    return np.where((result < 0) & (result > -np.inf), 0.0, result)


def finish_max_log_ratio(top):
    """Order inf from the row maxima of max_log_ratio_terms: no p > 0 gives NaN."""
    top = np.where(top == -np.inf, np.nan, top)
    return np.where((top < 0) & (top > -np.inf), 0.0, top)


@quiet
def renyi_rows(p, q, out, report, check, tol, eps, transform, log_base, alpha, n_threads):
    """out[i] = log(sum_j p^alpha q^(1-alpha) / sum_j p) / (alpha - 1) / log_base:
    KL at alpha = 1, max log(p/q) over p > 0 at alpha = inf (alpha >= 0)."""
    if p.shape[0] == 0:
        return
    if alpha == 1.0:
        kl_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads)
        return
    p64, q64 = _prepare((p, q), report, check, tol, eps, transform)
    if alpha == np.inf:
        # a NaN term (invalid input) makes the row NaN, as in the kernels
        total = finish_max_log_ratio(max_log_ratio_terms(p64, q64).max(axis=1))
    else:
        c = 1.0 - alpha
        sum_p = np.ones(p64.shape[0]) if transform else p64.sum(axis=1)
        w = renyi_terms(p64, q64, c, True).sum(axis=1)
        if c == 1.0:
            w = _exact_zero_order_w(p64, q64, w)
        s = renyi_terms(p64, q64, c, False).sum(axis=1)
        log_s = special.logsumexp(renyi_log_terms(p64, q64, c), axis=1)
        total = finish_renyi(c, w, s, log_s, sum_p)
    _finish(out, total, log_base)


@quiet
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


def u_minus_1_minus_log_u(u_minus_1, log_u):
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
            return u_minus_1_minus_log_u((s1 - s2) / s2, np.log(s1) - np.log(s2)) + dm * dm / s2
        if scale == SCALE_STD:
            um1 = ((s1 - s2) / s2) * ((s1 + s2) / s2)
            return u_minus_1_minus_log_u(um1, 2.0 * (np.log(s1) - np.log(s2))) + (dm / s2) ** 2
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
    report_values(report, bads)
    # report_values picks the smallest row; within a row the smallest column
    # wins across arguments in the compiled kernels, so redo the tie-break.
    if report[0, 1] >= 0:
        row = report[0, 1]
        cols = [(int(np.flatnonzero(m[row])[0]), arg) for arg, m in bads if m[row].any()]
        col, arg = min(cols)
        report[0, 2:4] = (col, arg)


@quiet
def gaussian_kl_rows(mu1, s1, mu2, s2, out, report, check, scale, log_base, n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(mu2, s2))[i, j] / log_base, s in `scale`."""
    if mu1.shape[0] == 0:
        return
    xs = [np.asarray(a, dtype=np.float64) for a in (mu1, s1, mu2, s2)]
    _gauss_report(report, check, scale, list(enumerate(xs)))
    total = 0.5 * _gauss_terms2(scale, *xs).sum(axis=1)
    _finish(out, np.where(total < 0, 0.0, total), log_base)


@quiet
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
