"""mpmath reference values (50 digits) on the inputs exactly as stored, and error measures.

Every float is read exactly (``mpf(float(x))``: float32 and float64 values
are dyadic rationals that a 50-digit mpf holds without rounding), so the
reference is the exact value of the formula *for the stored numbers*, whose
rows need not sum to 1 exactly.  Conventions follow DESIGN.md "Semantics at
the edges": a term with p == 0 is 0 (whatever q), p > 0 with q == 0 is +inf.
KL is clamped at 0 and JS to [0, log 2], as kl_fast documents it does.

Rows are 1-D sequences; ``rows(f, *arrays)`` maps a row function over the
last axis of 2-D arrays.  Error helpers take what kl_fast returned and the
mpf reference:

* ``ulp_error_f32(got, exact)``: |got - exact| in units of the float32 ULP at
  ``exact`` (the DESIGN contract for float32 results is <= 1).
* ``ulp_error_f64(got, exact)``: the same in float64 ULPs.
* ``rel_error_eps(got, exact, eps)``: |got - exact| / |exact| in units of eps.
* ``scaled_error_eps(got, exact, scale, eps)``: |got - exact| / (eps * scale),
  the condition-aware measure for cancelling sums (scale = sum |terms|).
"""

import mpmath
import numpy as np
from mpmath import mp, mpf

mp.dps = 50

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)

__all__ = [
    "EPS32",
    "EPS64",
    "exact",
    "rows",
    "kl",
    "kl_terms_abs",
    "entropy",
    "entropy_terms_abs",
    "cross_entropy",
    "cross_entropy_terms_abs",
    "js",
    "js_terms_abs",
    "rel_entr",
    "gaussian_kl",
    "gaussian_kl_prior",
    "renyi",
    "renyi_scale",
    "hellinger",
    "total_variation",
    "chi2",
    "log_base",
    "ulp32",
    "ulp64",
    "ulp_error_f32",
    "ulp_error_f64",
    "rel_error_eps",
    "scaled_error_eps",
]

_ZERO = mpf(0)
_INF = mpmath.inf


def exact(x):
    """The stored float as an exact mpf (float32 values widen to float64 exactly)."""
    return mpf(float(x))


def _row(x):
    return [exact(v) for v in np.asarray(x).ravel()]


def log_base(base):
    """log(base) in mpmath; None means nats."""
    return mpf(1) if base is None else mpmath.log(exact(base))


def rows(f, *arrays, **kwargs):
    """[f(row_0, ...), f(row_1, ...), ...] over the last axis of equally shaped 2-D arrays."""
    arrays = [np.atleast_2d(np.asarray(a)) for a in arrays]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    arrays = [np.broadcast_to(a, shape).reshape(-1, shape[-1]) for a in arrays]
    return [f(*r, **kwargs) for r in zip(*arrays, strict=True)]


# -- elementwise terms ----------------------------------------------------------------------------
def rel_entr(p, q):
    """One KL term p log(p / q) on exact values: 0 for p == 0 (q >= 0), +inf for q == 0."""
    p = exact(p) if not isinstance(p, mpf) else p
    q = exact(q) if not isinstance(q, mpf) else q
    if p == 0 and q >= 0:
        return _ZERO
    if p < 0 or q < 0 or q == 0:
        return _INF
    return p * mpmath.log(p / q)


def _kl_terms(p, q):
    return [rel_entr(a, b) for a, b in zip(_row(p), _row(q), strict=True)]


def _js_halves(p, q):
    """The four-way split of JS: 1/2 p log(p/m) and 1/2 q log(q/m), m = (p + q)/2 exactly."""
    out = []
    for a, b in zip(_row(p), _row(q), strict=True):
        m = (a + b) / 2
        out.append(rel_entr(a, m) / 2 if m > 0 else _ZERO)
        out.append(rel_entr(b, m) / 2 if m > 0 else _ZERO)
    return out


# -- row reductions -------------------------------------------------------------------------------
def kl(p, q, base=None):
    """sum p log(p / q) over one row, clamped at 0 (+inf if some p > 0 meets q == 0)."""
    total = mpmath.fsum(_kl_terms(p, q))
    if total == _INF:
        return total
    return max(_ZERO, total) / log_base(base)


def kl_terms_abs(p, q, base=None):
    """sum |p log(p / q)|: the condition scale of KL for the cancelling (p ~ q) regime."""
    return mpmath.fsum(abs(t) for t in _kl_terms(p, q)) / log_base(base)


def _entropy_terms(p):
    return [-a * mpmath.log(a) if a > 0 else _ZERO for a in _row(p)]


def entropy(p, base=None):
    """-sum p log p over one row (terms with p == 0 are 0)."""
    return mpmath.fsum(_entropy_terms(p)) / log_base(base)


def entropy_terms_abs(p, base=None):
    return mpmath.fsum(abs(t) for t in _entropy_terms(p)) / log_base(base)


def _ce_terms(p, q):
    out = []
    for a, b in zip(_row(p), _row(q), strict=True):
        if a == 0:
            out.append(_ZERO)
        elif b == 0:
            out.append(_INF)
        else:
            out.append(-a * mpmath.log(b))
    return out


def cross_entropy(p, q, base=None):
    """-sum p log q over one row (p == 0 gives 0 whatever q, p > 0 with q == 0 gives +inf)."""
    return mpmath.fsum(_ce_terms(p, q)) / log_base(base)


def cross_entropy_terms_abs(p, q, base=None):
    return mpmath.fsum(abs(t) for t in _ce_terms(p, q)) / log_base(base)


def js(p, q, base=None):
    """1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q)/2, clamped to [0, log 2]."""
    total = mpmath.fsum(_js_halves(p, q))
    total = min(max(_ZERO, total), mpmath.log(2))
    return total / log_base(base)


def js_terms_abs(p, q, base=None):
    """sum over k of |1/2 p log(p/m)| + |1/2 q log(q/m)|: the condition scale of JS.

    (Each combined per-category JS term is >= 0, but the two halves cancel
    to first order when p ~ q; this is what an implementation that forms
    them separately can be held to.)
    """
    return mpmath.fsum(abs(t) for t in _js_halves(p, q)) / log_base(base)


# -- Gaussians ------------------------------------------------------------------------------------
def _var_and_log(s, scale):
    """(variance, log variance) of one stored scale parameter, exactly."""
    if scale == "var":
        return s, mpmath.log(s)
    if scale == "std":
        return s * s, 2 * mpmath.log(s)
    if scale == "logvar":
        return mpmath.exp(s), s
    if scale == "logstd":
        return mpmath.exp(2 * s), 2 * s
    raise ValueError(scale)


def _gauss_term(m1, s1, m2, s2, scale):
    v1, lv1 = _var_and_log(s1, scale)
    v2, lv2 = _var_and_log(s2, scale)
    return (v1 / v2 - 1 - (lv1 - lv2) + (m1 - m2) ** 2 / v2) / 2


def gaussian_kl(mu1, s1, mu2, s2, scale="var", base=None):
    """sum over one row of KL(N(mu1, v1) || N(mu2, v2)), s in the given scale."""
    terms = [_gauss_term(a, b, c, d, scale)
             for a, b, c, d in zip(_row(mu1), _row(s1), _row(mu2), _row(s2), strict=True)]
    return mpmath.fsum(terms) / log_base(base)


def gaussian_kl_prior(mu, s, scale="var", base=None):
    """The VAE prior term sum 1/2 (mu^2 + v - log v - 1), KL against N(0, 1)."""
    terms = []
    for m, sv in zip(_row(mu), _row(s), strict=True):
        v, lv = _var_and_log(sv, scale)
        terms.append((m * m + v - lv - 1) / 2)
    return mpmath.fsum(terms) / log_base(base)


# -- the f-divergence family ---------------------------------------------------------------------
def _renyi_terms(p, q, alpha):
    """[(p^alpha q^(1-alpha), log(p/q) or None), ...] over p > 0."""
    out = []
    for x, y in zip(_row(p), _row(q), strict=True):
        if x == 0:
            continue
        if y == 0:
            out.append((_ZERO if alpha < 1 else _INF, None))
        else:
            out.append((x ** alpha * y ** (1 - alpha), mpmath.log(x / y)))
    return out


def renyi(p, q, alpha, base=None):
    """log(sum p^alpha q^(1-alpha) / sum p) / (alpha - 1), Renyi's definition for
    incomplete distributions; KL at alpha = 1, max log(p/q) over p > 0 at inf; >= 0."""
    if alpha == 1:
        return kl(p, q, base)
    if alpha == np.inf:
        logs = [_INF if t[1] is None else t[1] for t in _renyi_terms(p, q, mpf(2))]
        return max(max(logs), _ZERO) / log_base(base)
    alpha = exact(alpha)
    total = mpmath.fsum(t for t, _ in _renyi_terms(p, q, alpha))
    if total == _INF:
        return _INF
    if total == 0:
        return _INF
    value = mpmath.log(total / mpmath.fsum(_row(p))) / (alpha - 1)
    return max(value, _ZERO) / log_base(base)


def renyi_scale(p, q, alpha, base=None):
    """The condition scale of renyi, its "sum |terms|": the larger of
    sum_k w_k |log(p_k/q_k)| (w the normalized terms p^a q^(1-a) / S: each term's
    log ratio carries a relative rounding, as KL's terms do) and
    sum_k |p_k^a q_k^(1-a) - p_k| / (|a - 1| S) (the terms of the sum W = S - P that
    is computed, which may cancel)."""
    if alpha == np.inf:
        return renyi(p, q, alpha, base)
    if alpha == 1:
        return kl_terms_abs(p, q, base)
    alpha = exact(alpha)
    terms = _renyi_terms(p, q, alpha)
    total = mpmath.fsum(t for t, _ in terms)
    if total in (_ZERO, _INF):
        return _INF
    tilted = mpmath.fsum(t / total * abs(lg) for t, lg in terms if lg is not None)
    shifted = mpmath.fsum(abs(t - x) for (t, _), x in zip(terms, [v for v in _row(p) if v > 0],
                                                          strict=True))
    return max(tilted, shifted / (abs(alpha - 1) * total)) / log_base(base)


def hellinger(p, q):
    """sqrt(sum (sqrt p - sqrt q)^2 / 2)."""
    total = mpmath.fsum((mpmath.sqrt(x) - mpmath.sqrt(y)) ** 2
                        for x, y in zip(_row(p), _row(q), strict=True))
    return mpmath.sqrt(total / 2)


def total_variation(p, q):
    """sum |p - q| / 2."""
    return mpmath.fsum(abs(x - y) for x, y in zip(_row(p), _row(q), strict=True)) / 2


def chi2(p, q):
    """sum (p - q)^2 / q; 0/0 terms are 0, p > 0 = q gives inf."""
    terms = []
    for x, y in zip(_row(p), _row(q), strict=True):
        if y == 0:
            terms.append(_ZERO if x == 0 else _INF)
        else:
            terms.append((x - y) ** 2 / y)
    return _INF if _INF in terms else mpmath.fsum(terms)


# -- error measures -------------------------------------------------------------------------------
def _ulp(x, mant_bits, min_exp):
    """The spacing of the binary format at |x| (mant_bits incl. the hidden bit)."""
    x = abs(x)
    if x == 0:
        return mpmath.ldexp(mpf(1), min_exp - mant_bits + 1)
    _, e = mpmath.frexp(x)  # x = m 2^e, 1/2 <= m < 1
    return mpmath.ldexp(mpf(1), max(int(e) - 1, min_exp) - mant_bits + 1)


def ulp32(x):
    """float32 ULP at |x| (2^-149 in the subnormal range)."""
    return _ulp(x, 24, -126)


def ulp64(x):
    """float64 ULP at |x| (2^-1074 in the subnormal range)."""
    return _ulp(x, 53, -1022)


def _special(got, ref):
    """Error for non-finite cases: 0 if both agree, inf otherwise; None if both finite."""
    got = float(got)
    if np.isnan(got):
        return float("inf")
    if ref in (_INF, -_INF) or np.isinf(got):
        return 0.0 if float(ref) == got else float("inf")
    return None


def ulp_error_f32(got, ref):
    """|got - ref| in float32 ULPs of ref."""
    s = _special(got, ref)
    if s is not None:
        return s
    return float(abs(exact(got) - ref) / ulp32(ref))


def ulp_error_f64(got, ref):
    """|got - ref| in float64 ULPs of ref."""
    s = _special(got, ref)
    if s is not None:
        return s
    return float(abs(exact(got) - ref) / ulp64(ref))


def rel_error_eps(got, ref, eps=EPS64):
    """|got - ref| / |ref| in units of eps (0 when both are 0, inf when only ref is)."""
    s = _special(got, ref)
    if s is not None:
        return s
    diff = abs(exact(got) - ref)
    if ref == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / abs(ref) / eps)


def scaled_error_eps(got, ref, scale, eps=EPS64):
    """|got - ref| / (eps * scale): error relative to the condition scale sum |terms|."""
    s = _special(got, ref)
    if s is not None:
        return s
    diff = abs(exact(got) - ref)
    if scale == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / (scale * eps))
