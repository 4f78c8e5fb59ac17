"""Scalar math of kl_fast, Numba backend.

A line-by-line mirror of ``src/kl_math.h`` (read its comments for the
numerics): same formulas, same operation order, same libm calls, so the two
backends agree to the bit.  Never ``fastmath``: it folds the NaN/inf tests
away, and inf/NaN are real results here.  Importing this module imports
numba but compiles nothing; the row kernels compile these on first use.
"""

import math

import numba

DBL_MIN = 2.2250738585072014e-308
DBL_MAX = 1.7976931348623157e308

# Gaussian scales, as the API codes them.
SCALE_VAR = 0
SCALE_STD = 1
SCALE_LOGVAR = 2
SCALE_LOGSTD = 3

# error_model="numpy": x / 0 gives inf or NaN as in C, never ZeroDivisionError.
_njit = numba.njit(nogil=True, cache=False, error_model="numpy")

# 1/3, 1/5, ..., 1/37: the atanh series of log1pmx_band.
_ATANH_COEF = tuple(1.0 / k for k in range(3, 38, 2))
# 1/k!, k = 2..20: the Taylor series of expm1mx (math.factorial is exact and
# every k! up to 20! is exactly representable, as the C literals are).
_INV_FACT = tuple(1.0 / float(math.factorial(k)) for k in range(2, 21))


@_njit
def rel_entr(p, q):
    """p log(p/q), accurate where p ~ q; 0 if p == 0 <= q, +inf if p > 0 == q."""
    if math.isnan(p) or math.isnan(q):
        return p + q
    if p > 0.0 and q > 0.0:
        r = p / q
        if r > 0.5 and r < 2.0:
            return p * math.log1p((p - q) / q)
        if r > DBL_MIN and r < DBL_MAX:
            return p * math.log(r)
        return p * (math.log(p) - math.log(q))
    if p == 0.0 and q >= 0.0:
        return 0.0
    return math.inf


@_njit
def entr(p):
    """-p log p; 0 if p == 0, -inf if p < 0."""
    if p > 0.0:
        return -p * math.log(p)
    if p == 0.0:
        return 0.0
    if math.isnan(p):
        return p
    return -math.inf


@_njit
def neg_xlogy(p, q):
    """-p log q; 0 if p == 0 (whatever q but NaN)."""
    if p == 0.0 and not math.isnan(q):
        return 0.0
    return -p * math.log(q)


@_njit
def log1pmx_band(x):
    """log1p(x) - x without cancellation, for x in [-1/2, 1]."""
    s = x / (2.0 + x)
    s2 = s * s
    poly = _ATANH_COEF[17]
    for k in range(16, -1, -1):
        poly = poly * s2 + _ATANH_COEF[k]
    return -x * s + 2.0 * s * s2 * poly


@_njit
def in_log1pmx_band(x):
    """True where log1pmx_band applies."""
    return x >= -0.5 and x <= 1.0


@_njit
def expm1mx(x):
    """expm1(x) - x without cancellation."""
    if math.fabs(x) <= 1.0:
        poly = _INV_FACT[18]
        for k in range(17, -1, -1):
            poly = poly * x + _INV_FACT[k]
        return x * x * poly
    return math.expm1(x) - x


@_njit
def u_minus_1_minus_log_u(u_minus_1, log_u):
    """u - 1 - log u >= 0 from u - 1 and log u."""
    if in_log1pmx_band(u_minus_1):
        return -log1pmx_band(u_minus_1)
    return u_minus_1 - log_u


@_njit
def gauss_term2(scale, m1, s1, m2, s2):
    """2 KL(N(m1, v1) || N(m2, v2)) for one coordinate, s1/s2 in ``scale``."""
    dm = m1 - m2
    if scale == SCALE_VAR:
        return u_minus_1_minus_log_u((s1 - s2) / s2, math.log(s1) - math.log(s2)) + dm * dm / s2
    if scale == SCALE_STD:
        z = dm / s2
        return u_minus_1_minus_log_u(((s1 - s2) / s2) * ((s1 + s2) / s2),
                                     2.0 * (math.log(s1) - math.log(s2))) + z * z
    if scale == SCALE_LOGVAR:
        return expm1mx(s1 - s2) + dm * dm * math.exp(-s2)
    return expm1mx(2.0 * (s1 - s2)) + dm * dm * math.exp(-2.0 * s2)


@_njit
def gauss_prior_term2(scale, m, s):
    """2 KL(N(m, v) || N(0, 1)) for one coordinate: m^2 + v - 1 - log v."""
    if scale == SCALE_VAR:
        return u_minus_1_minus_log_u(s - 1.0, math.log(s)) + m * m
    if scale == SCALE_STD:
        return u_minus_1_minus_log_u((s - 1.0) * (s + 1.0), 2.0 * math.log(s)) + m * m
    if scale == SCALE_LOGVAR:
        return expm1mx(s) + m * m
    return expm1mx(2.0 * s) + m * m
