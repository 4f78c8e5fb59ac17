"""scipy's test-selection helpers (scipy._lib._array_api 1.17), for kl_fast's drop-ins.

scipy's ``make_xp_test_case`` / ``make_xp_pytest_param`` read the
capabilities that ``@xp_capabilities`` recorded for a scipy function; the
vendored tests pass them kl_fast's functions instead, so this module holds
their capabilities and builds the same marks.  kl_fast.scipy supports every
backend the vendored conftest runs (numpy, CPU torch, dask): no skips.
``allow_dask_compute`` is False for all three: on dask arrays they build a lazy
graph and compute nothing (checked by the ``xp`` fixture in array-API mode
through ``patch_lazy_xp_functions``).
"""

import functools

import pytest
from scipy._lib.array_api_extra.testing import lazy_xp_function

from kl_fast import scipy as kls

_DEFAULT = {"skip_backends": (), "xfail_backends": (), "cpu_only": False, "np_only": False,
            "reason": None, "exceptions": (), "allow_dask_compute": False, "jax_jit": True}

capabilities_table = {kls.rel_entr: dict(_DEFAULT), kls.entropy: dict(_DEFAULT),
                      kls.jensenshannon: dict(_DEFAULT)}


def make_xp_pytest_marks(*funcs):
    """As scipy's: skip/xfail marks from the capabilities, and the lazy_xp_function tag."""
    marks = []
    for func in funcs:
        cap = capabilities_table[func]
        if cap["cpu_only"]:
            marks.append(pytest.mark.skip_xp_backends(
                cpu_only=True, exceptions=cap["exceptions"], reason=cap["reason"]))
        if cap["np_only"]:
            marks.append(pytest.mark.skip_xp_backends(
                np_only=True, exceptions=cap["exceptions"], reason=cap["reason"]))
        for mod_name, reason in cap["skip_backends"]:
            marks.append(pytest.mark.skip_xp_backends(mod_name, reason=reason))
        for mod_name, reason in cap["xfail_backends"]:
            marks.append(pytest.mark.xfail_xp_backends(mod_name, reason=reason))
        lazy_xp_function(func, allow_dask_compute=cap["allow_dask_compute"],
                         jax_jit=cap["jax_jit"])
    return marks


def make_xp_test_case(*funcs):
    """As scipy's ``make_xp_test_case``: a decorator applying the marks."""
    marks = make_xp_pytest_marks(*funcs)
    return lambda func: functools.reduce(lambda f, g: g(f), marks, func)


def make_xp_pytest_param(func, *args):
    """As scipy's ``make_xp_pytest_param``: a pytest.param with the marks."""
    return pytest.param(func, *args, marks=make_xp_pytest_marks(func), id=func.__name__)
