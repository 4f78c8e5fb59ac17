"""The error-free transformations of the numpy reference backend (kl_fast/_numpy/exact.py):
the rounded result plus its error equals the exact result, checked in rational arithmetic."""

from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from kl_fast._numpy.exact import two_diff, two_prod

# |a|, |b| < 2^995 (the Veltkamp split's range) and products far from underflow: the
# error term of a product p is ~p * 2^-53, which must stay a normal number (|a|, |b| >
# 1e-150 let p reach 2e-298 and its error 6e-315, subnormal and rounded: not exact)
finite = st.floats(min_value=-1e150, max_value=1e150, allow_nan=False).filter(
    lambda x: x == 0.0 or abs(x) > 1e-140)


@given(finite, finite)
def test_two_prod_is_exact(a, b):
    p, err = two_prod(np.float64(a), np.float64(b))
    assert p == np.float64(a) * np.float64(b)
    assert Fraction(float(p)) + Fraction(float(err)) == Fraction(a) * Fraction(b)


@given(st.floats(allow_nan=False, allow_infinity=False, width=64),
       st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_two_diff_is_exact(a, b):
    t, err = two_diff(np.float64(a), np.float64(b))
    if np.isfinite(t):
        assert Fraction(float(t)) + Fraction(float(err)) == Fraction(a) - Fraction(b)


def test_not_finite_gives_zero_error():
    # (the backend calls these under np.errstate(all="ignore"), as here)
    with np.errstate(all="ignore"):
        _, err = two_prod(np.array([np.inf, np.nan, 1e300]), np.array([1.0, 1.0, 1e300]))
    assert np.array_equal(err, [0.0, 0.0, 0.0])
    with np.errstate(all="ignore"):
        _, err = two_diff(np.array([np.inf, -np.inf]), np.array([1.0, np.inf]))
    assert np.array_equal(err, [0.0, 0.0])
