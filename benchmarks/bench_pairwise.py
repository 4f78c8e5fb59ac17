"""pytest-benchmark suite of the pairwise divergences: pairwise_kl and pairwise_js against
the numpy and scipy code people write for an (N, M) matrix of divergences.

Groups are ``quantity|shape|dtype`` as in bench_kl.py; pick a shape class with
``-k``: ``-k small`` for a quick run, ``-k full`` for the contract's size
(N = M = 2000 rows of K = 256 against each other: 10^9 terms).  Contenders:

* ``floor``: numpy reading both inputs once (``x.sum(axis=-1)`` each);
* ``kl_fast[<backend>]`` for every compiled backend (pairwise_kl's fast method
  and, as ``kl_fast[<backend>] precise``, the accurate per-term kernel;
  pairwise_js);
* ``numpy broadcast``: blocks of P rows broadcast against all of Q,
  ``(P[b, None] * np.log(P[b, None] / Q[None])).sum(-1)`` with zero handling,
  blocked so its temporaries stay at ~2^22 elements;
* ``scipy rel_entr loop``: ``scipy.special.rel_entr(P[i], Q).sum(-1)`` per row;
* for JS, ``scipy cdist**2``: ``cdist(P, Q, "jensenshannon") ** 2``, and the
  numpy broadcast of the JS formula.
The target the lead measures: pairwise_kl at least 10x faster than
``numpy broadcast``.
"""

import numpy as np
import pytest
from scipy import special
from scipy.spatial import distance

import kl_fast
from kl_fast._contenders import make_data

SHAPES = {"small": (40, 30, 16), "full": (2000, 2000, 256)}   # (N, M, K)
COMPILED = [b for b in kl_fast.available_backends() if b != "numpy"]
_BLOCK_ELEMENTS = 1 << 22

_cache = {}


def pair_data(shape, dtype):
    """(P, Q) for one group, built once (one group in memory at a time)."""
    key = (shape, dtype)
    if key not in _cache:
        _cache.clear()
        n, m, k = SHAPES[shape]
        _cache[key] = (make_data("kl", n, k, dtype, seed=1)["p"],
                       make_data("kl", m, k, dtype, seed=2)["p"])
    return _cache[key]


def _blocks(n, m, k):
    rows = max(1, _BLOCK_ELEMENTS // (m * k))
    return [slice(s, min(n, s + rows)) for s in range(0, n, rows)]


def numpy_pairwise_kl(P, Q):
    """What a numpy user writes: broadcast blocks of P against Q, p = 0 terms set to 0."""
    out = np.empty((P.shape[0], Q.shape[0]), dtype=P.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in _blocks(P.shape[0], Q.shape[0], P.shape[1]):
            p = P[b, None, :]
            out[b] = np.where(p > 0, p * np.log(p / Q[None]), 0.0).sum(axis=-1)
    return out


def numpy_pairwise_js(P, Q):
    out = np.empty((P.shape[0], Q.shape[0]), dtype=P.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in _blocks(P.shape[0], Q.shape[0], P.shape[1]):
            p, q = P[b, None, :], Q[None]
            m = 0.5 * (p + q)
            out[b] = 0.5 * (np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
                            + np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1))
    return out


def scipy_rel_entr_loop(P, Q):
    return np.stack([special.rel_entr(p, Q).sum(axis=-1) for p in P])


def contenders(quantity, P, Q):
    """name -> zero-argument callable computing `quantity` for all pairs of (P, Q)."""
    fns = {"floor": lambda: (P.sum(axis=-1), Q.sum(axis=-1))}
    if quantity == "pairwise_kl":
        for b in COMPILED:
            fns[f"kl_fast[{b}]"] = lambda b=b: kl_fast.pairwise_kl(P, Q, backend=b)
            fns[f"kl_fast[{b}] precise"] = lambda b=b: kl_fast.pairwise_kl(
                P, Q, precise=True, backend=b)
        fns["numpy broadcast"] = lambda: numpy_pairwise_kl(P, Q)
        fns["scipy rel_entr loop"] = lambda: scipy_rel_entr_loop(P, Q)
    else:
        for b in COMPILED:
            fns[f"kl_fast[{b}]"] = lambda b=b: kl_fast.pairwise_js(P, Q, backend=b)
        fns["numpy broadcast"] = lambda: numpy_pairwise_js(P, Q)
        fns["scipy cdist**2"] = lambda: distance.cdist(P, Q, "jensenshannon") ** 2
    return fns


def _cases():
    for quantity in ("pairwise_kl", "pairwise_js"):
        names = list(contenders(quantity, np.ones((1, 2)) / 2, np.ones((1, 2)) / 2))
        for shape in SHAPES:
            for dtype in ("float64", "float32"):
                for name in names:
                    yield pytest.param(quantity, shape, dtype, name,
                                       id=f"{quantity}|{shape}|{dtype}|{name}")


@pytest.mark.parametrize(("quantity", "shape", "dtype", "name"), list(_cases()))
def test_bench_pairwise(benchmark, quantity, shape, dtype, name):
    P, Q = pair_data(shape, dtype)
    fn = contenders(quantity, P, Q)[name]
    benchmark.group = f"{quantity}|{shape}|{dtype}"
    benchmark.extra_info.update(quantity=quantity, shape=shape, dtype=dtype, contender=name)
    if shape == "small":
        benchmark.pedantic(fn, rounds=50, iterations=1, warmup_rounds=1)
    elif name.startswith(("kl_fast", "floor")):
        # one warm-up round compiles Numba's kernels outside the timing
        benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    else:
        # the numpy/scipy peers take tens of seconds here and compile nothing
        benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("quantity", ["pairwise_kl", "pairwise_js"])
def test_contenders_agree(quantity):
    """Every contender computes the same matrix (so the timings compare like with like)."""
    P, Q = pair_data("small", "float64")
    fns = contenders(quantity, P, Q)
    want = fns.pop("numpy broadcast")()
    fns.pop("floor")
    for name, fn in fns.items():
        np.testing.assert_allclose(fn(), want, rtol=1e-10, atol=1e-15, err_msg=name)
