"""Every probability-row function in each of its kernel modes, both compiled backends.

The row kernels run different loops for the default call (terms, sums and the
validation in one pass), ``validate=False`` (terms only), and ``normalize=True``
or ``eps > 0`` (a pass of sums, then the scaled terms).  Whether a compiler
vectorizes a loop can differ from one to the next; a mode that falls off the
vectors shows here as a contender much slower than its group's default (it
did once: ``validate=False`` ran 2x slower than the validated call for chi^2
and Hellinger, see docs/performance.md, "Third pass").

Groups are ``modes|<function>|<backend>|<dtype>``; the contenders are the modes,
so the ratios within a group are the result (the floor reads each input once).
"""

import numpy as np
import pytest

import kl_fast
from kl_fast._contenders import make_data
from kl_fast._registry import ROW_REDUCTIONS

SHAPE = (50_000, 256)
MODES = {"default": {}, "validate=False": {"validate": False},
         "normalize=True": {"normalize": True}, "eps=1e-9": {"eps": 1e-9}}
PARAMETERS = {"alpha": 0.7}   # Renyi at a general order (two transcendental calls a term)

_cache = {}


def _data(dtype):
    if dtype not in _cache:
        _cache.clear()
        _cache[dtype] = make_data("kl", *SHAPE, dtype)
    return _cache[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["cython", "numba"])
@pytest.mark.parametrize("mode", [*MODES, "floor"])
@pytest.mark.parametrize("row", ROW_REDUCTIONS, ids=[r.function for r in ROW_REDUCTIONS])
def test_modes(benchmark, row, mode, backend, dtype):
    data = _data(dtype)
    inputs = (data["p"], data["q"])[:row.n_inputs]
    benchmark.group = f"modes|{row.function}|{backend}|{dtype}"
    benchmark.extra_info.update(contender=mode)
    if mode == "floor":
        benchmark.pedantic(lambda: [np.sum(x, axis=-1) for x in inputs], rounds=7,
                           warmup_rounds=1)
        return
    fn = getattr(kl_fast, row.function)
    kwargs = {"backend": backend, **MODES[mode]}
    if row.parameter:
        kwargs[row.parameter] = PARAMETERS[row.parameter]
    benchmark.pedantic(fn, args=inputs, kwargs=kwargs, rounds=7, warmup_rounds=1)
