# Vendored from scipy 1.17.1: scipy/special/tests/test_basic.py, the tests of
# scipy.special.rel_entr (test_rel_entr, test_rel_entr_gh_20710_near_zero,
# test_rel_entr_gh_20710_overflow).  Test bodies unchanged.  Adapted only what
# selects the function under test: `special.rel_entr` is kl_fast.scipy.rel_entr;
# `special.xlogy` (the reference of test_rel_entr) and `special.seterr` stay scipy's.
import itertools

import numpy as np
from numpy.testing import assert_allclose

from scipy import special as _scipy_special
from scipy.special._testutils import assert_func_equal

from kl_fast import scipy as kls


class special:  # adapted: the function under test from kl_fast, the rest from scipy
    rel_entr = kls.rel_entr
    xlogy = _scipy_special.xlogy
    seterr = _scipy_special.seterr


def test_rel_entr():
    def xfunc(x, y):
        if x > 0 and y > 0:
            return special.xlogy(x, x/y)
        elif x == 0 and y >= 0:
            return 0
        else:
            return np.inf
    values = (0, 0.5, 1.0)
    signs = [-1, 1]
    arr = []
    for sgna, va, sgnb, vb in itertools.product(signs, values, signs, values):
        arr.append((sgna*va, sgnb*vb))
    z = np.array(arr, dtype=float)
    w = np.vectorize(xfunc, otypes=[np.float64])(z[:,0], z[:,1])
    assert_func_equal(special.rel_entr, w, z, rtol=1e-13, atol=1e-13)


def test_rel_entr_gh_20710_near_zero():
    # Check accuracy of inputs which are very close
    inputs = np.array([
        # x, y
        (0.9456657713430001, 0.9456657713430094),
        (0.48066098564791515, 0.48066098564794774),
        (0.786048657854401, 0.7860486578542367),
    ])
    # Known values produced using `x * mpmath.log(x / y)` with dps=30
    expected = [
        -9.325873406851269e-15,
        -3.258504577274724e-14,
        1.6431300764454033e-13,
    ]
    x = inputs[:, 0]
    y = inputs[:, 1]
    assert_allclose(special.rel_entr(x, y), expected, rtol=1e-13, atol=0)


def test_rel_entr_gh_20710_overflow():
    special.seterr(all='ignore')
    inputs = np.array([
        # x, y
        # Overflow
        (4, 2.22e-308),
        # Underflow
        (1e-200, 1e+200),
        # Subnormal
        (2.22e-308, 1e15),
    ])
    # Known values produced using `x * mpmath.log(x / y)` with dps=30
    expected = [
        2839.139983229607,
        -9.210340371976183e-198,
        -1.6493212008074475e-305,
    ]
    x = inputs[:, 0]
    y = inputs[:, 1]
    assert_allclose(special.rel_entr(x, y), expected, rtol=1e-13, atol=0)
