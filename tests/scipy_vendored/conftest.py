"""Fixtures and markers for scipy's own tests of rel_entr, entropy and jensenshannon.

Modelled on scipy 1.17's ``scipy/conftest.py``: the ``xp`` fixture runs a
test on numpy and, when ``SCIPY_ARRAY_API`` is set (before scipy is
imported: tests/test_scipy_vendored_array_api.py runs this folder in a
subprocess for that), also on CPU torch (default dtype float64, as scipy's
conftest sets it) and dask, with scipy's lazy-function patching and
``default_xp`` checks.  ``skip_xp_backends`` / ``xfail_xp_backends`` markers
are honoured as scipy does.  Markers scipy registers are registered here
(pytest runs with --strict-markers).  scipy's own hypothesis profile and
``xslow`` skipping are not copied: the project's profile applies and every
vendored test runs.
"""

import numpy as np
import pytest
from scipy._lib._array_api import SCIPY_ARRAY_API, array_namespace, default_xp
from scipy._lib.array_api_extra.testing import patch_lazy_xp_functions

xp_known_backends = {"numpy", "array_api_strict", "torch", "cupy", "jax.numpy", "dask.array"}
xp_available_backends = [pytest.param(np, id="numpy", marks=pytest.mark.array_api_backends)]

if SCIPY_ARRAY_API:
    # as scipy's conftest: each backend that is installed
    try:
        import torch

        torch.set_default_device("cpu")
        torch.set_default_dtype(torch.float64)   # scipy's conftest default
        xp_available_backends.append(
            pytest.param(torch, id="torch", marks=pytest.mark.array_api_backends))
    except ImportError:
        pass
    try:
        import dask.array as da

        xp_available_backends.append(
            pytest.param(da, id="dask.array", marks=pytest.mark.array_api_backends))
    except ImportError:
        pass
# scipy's cpu_only / eager_only sets: everything here runs on the CPU; dask is lazy
xp_skip_cpu_only_backends = set()
xp_skip_eager_only_backends = {"dask.array"} if SCIPY_ARRAY_API else set()


# scipy's markers (xslow, array_api_backends, skip_xp_backends, xfail_xp_backends,
# fail_slow) are registered in pyproject.toml: this module uses them at import time.


@pytest.fixture(params=xp_available_backends)
def xp(request):
    """Run the test on each available array library, as scipy's ``xp`` fixture."""
    _skip_or_xfail_xp_backends(request, "skip")
    _skip_or_xfail_xp_backends(request, "xfail")
    xp = array_namespace(request.param.empty(0))
    if SCIPY_ARRAY_API:
        # dask: the tagged functions may not compute the graph; xp_assert_* check
        # that the expected and actual arrays are of the namespace xp
        with patch_lazy_xp_functions(request=request, xp=request.param), default_xp(xp):
            yield xp
    else:
        yield xp


def _backends_reasons(request, skip_or_xfail):
    """{backend: reason} from the test's skip/xfail_xp_backends markers (scipy's rules)."""
    reasons = {backend: [] for backend in xp_known_backends}
    for marker in request.node.iter_markers(f"{skip_or_xfail}_xp_backends"):
        exceptions = set(marker.kwargs.get("exceptions", []) or [])
        if marker.kwargs.get("np_only", False):
            reason = marker.kwargs.get("reason") or "do not run with non-NumPy backends"
            for backend, backend_reasons in reasons.items():
                if backend != "numpy" and backend not in exceptions:
                    backend_reasons.append(reason)
        elif marker.kwargs.get("cpu_only", False):
            reason = marker.kwargs.get("reason") or "no CPU implementation for this backend"
            for backend in xp_skip_cpu_only_backends - exceptions:
                reasons[backend].append(reason)
        elif marker.kwargs.get("eager_only", False):
            reason = marker.kwargs.get("reason") or "eager checks not executed on lazy backends"
            for backend in xp_skip_eager_only_backends - exceptions:
                reasons[backend].append(reason)
        if len(marker.args) == 1:
            backend = marker.args[0]
            if backend not in xp_known_backends:
                raise ValueError(f"Unknown backend: {backend}")
            reasons[backend].insert(
                0, marker.kwargs.get("reason") or f"do not run with array API backend: {backend}")
    return {backend: r[0] for backend, r in reasons.items() if r}


def _skip_or_xfail_xp_backends(request, skip_or_xfail):
    if f"{skip_or_xfail}_xp_backends" not in request.keywords:
        return
    reasons = _backends_reasons(request, skip_or_xfail)
    if request.param.__name__ in reasons:
        getattr(pytest, skip_or_xfail)(reason=reasons[request.param.__name__])
