"""The kernels' own vectorizable log, log1p and exp (src/kl_vmath.h) against mpmath.

They replace libm so that the loops vectorize; the contract is 1 ULP over the
whole range, subnormals included, and C99's special values.
"""

import mpmath
import numpy as np
import pytest

from kl_fast._cython import rows as _kernels_cython

# 40 digits here only: a global setting would leak into every later test
_DPS = 40
RNG = np.random.default_rng(20261121)
MPMATH = {"log": mpmath.log, "log1p": mpmath.log1p, "exp": mpmath.exp}


def vmath(name, x):
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _kernels_cython.vmath(name, x, out)
    return out


def ulp_errors(name, x, got):
    """|got - exact| in units of the last place of the exact result."""
    errors = []
    for xi, gi in zip(x, got, strict=False):
        with mpmath.workdps(_DPS):
            exact = MPMATH[name](mpmath.mpf(float(xi)))
        rounded = float(exact)
        if rounded == 0.0 or not np.isfinite(rounded):
            errors.append(0.0 if gi == rounded else np.inf)
            continue
        # the spacing of the exact result's binade, subnormal results included
        spacing = float(np.spacing(abs(rounded)))
        errors.append(float(abs(mpmath.mpf(float(gi)) - exact)) / spacing)
    return np.array(errors)


def random_bits(n, lo, hi):
    """Doubles with uniformly random bit patterns between the bit patterns lo and hi."""
    lo_bits = np.array(lo, dtype=np.float64).view(np.int64)
    hi_bits = np.array(hi, dtype=np.float64).view(np.int64)
    return RNG.integers(lo_bits, hi_bits, size=n, dtype=np.int64).view(np.float64)


LOG_INPUTS = {
    "all positive doubles": random_bits(3000, 5e-324, np.finfo(float).max),
    "subnormal": random_bits(500, 5e-324, 2.2250738585072014e-308),
    "near one": 1.0 + RNG.uniform(-0.3, 0.42, 2000),
    "probabilities": RNG.uniform(0.0, 1.0, 2000),
}


@pytest.mark.parametrize("regime", list(LOG_INPUTS))
def test_log_within_one_ulp(regime):
    x = LOG_INPUTS[regime]
    assert ulp_errors("log", x, vmath("log", x)).max() <= 1.0


@pytest.mark.parametrize("regime", ["small", "moderate", "large", "towards -1"])
def test_log1p_within_one_ulp(regime):
    x = {
        "small": RNG.choice([-1, 1], 1500) * np.exp(RNG.uniform(-740, -1, 1500)),
        "moderate": RNG.uniform(-0.9, 3.0, 1500),
        "large": np.exp(RNG.uniform(1, 709, 1500)),
        "towards -1": -1.0 + np.exp(RNG.uniform(-36, -1, 1500)),
    }[regime]
    assert ulp_errors("log1p", x, vmath("log1p", x)).max() <= 1.0


@pytest.mark.parametrize("regime", ["normal results", "near zero", "subnormal results", "large"])
def test_exp_within_one_ulp(regime):
    x = {
        "normal results": RNG.uniform(-708, 709.78, 3000),
        "near zero": RNG.uniform(-1e-3, 1e-3, 1000),
        "subnormal results": RNG.uniform(-745.1, -708.4, 1000),
        "large": RNG.uniform(700, 709.78, 1000),
    }[regime]
    assert ulp_errors("exp", x, vmath("exp", x)).max() <= 1.0


@pytest.mark.parametrize("regime", ["normal results", "near zero", "large", "reduced range"])
def test_fast_exp_within_four_u(regime):
    # the fast tiers' exp (kl_spaces.h) counts a relative error of 4 u (u = 2^-53) in
    # its bounds: check it holds with room, over its whole range [-708, 709]
    x = {
        "normal results": RNG.uniform(-708, 709, 4000),
        "near zero": RNG.uniform(-1e-3, 1e-3, 1000),
        "large": RNG.uniform(700, 709, 1000),
        "reduced range": RNG.uniform(-0.35, 0.35, 2000),
    }[regime]
    got = vmath("exp_fast", x)
    with mpmath.workdps(_DPS):
        rel = [abs(mpmath.mpf(float(g)) / mpmath.exp(mpmath.mpf(float(xi))) - 1)
               for xi, g in zip(x, got, strict=True)]
    assert float(max(rel)) / 2.0 ** -53 <= 2.0


def test_special_values_follow_c99():
    inf, nan = np.inf, np.nan
    tiny = 5e-324
    np.testing.assert_array_equal(
        vmath("log", [0.0, -0.0, -1.0, -inf, inf, nan, 1.0, tiny]),
        [-inf, -inf, nan, nan, inf, nan, 0.0, float(mpmath.log(mpmath.mpf(tiny)))],
    )
    log1p_in = np.array([-1.0, -2.0, inf, nan, 0.0, -0.0, 1e-300])
    exp_in = np.array([-inf, inf, nan, 0.0, 710.0, -746.0, 709.78])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(vmath("log1p", log1p_in), np.log1p(log1p_in))
        np.testing.assert_array_equal(vmath("exp", exp_in), np.exp(exp_in))
