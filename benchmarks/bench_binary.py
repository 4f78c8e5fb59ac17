"""pytest-benchmark suite of the elementwise family: binary KL, binary cross-entropy
(probabilities and logits) and the k3 KL estimator, x shape class x dtype x contender.

Groups are ``quantity|shape|dtype``; every contender in a group runs on the same
arrays.  Shapes follow ``benchmarks/conftest.py``: "small" (one short vector, a
quick run: ``-k small``) and "many-rows" (200,000 x 256 = 51.2M elements, the
performance contract's size).  The floor reads each input once
(``x.sum(axis=-1)``); an elementwise function also writes its output, which the
floor does not.
"""

import numpy as np
import pytest

import kl_fast

SHAPES = {"small": (1, 10), "many-rows": (200_000, 256)}
QUANTITIES = ("binary_kl", "bce_prob", "bce_logits", "kl_estimate_k3")
DTYPES = ("float64", "float32")

_cache = {}


def make_data(quantity, shape, dtype, seed=0):
    """The two inputs of `quantity` (named a, b), one group in memory at a time."""
    key = (quantity, shape, dtype)
    if key not in _cache:
        _cache.clear()
        rng = np.random.default_rng(seed)
        size = SHAPES[shape]
        if quantity == "binary_kl":
            a, b = rng.uniform(0.001, 0.999, size), rng.uniform(0.001, 0.999, size)
        elif quantity == "bce_prob":
            a, b = rng.uniform(0.0, 1.0, size), rng.uniform(0.001, 0.999, size)
        elif quantity == "bce_logits":
            a, b = rng.uniform(0.0, 1.0, size), rng.normal(0.0, 3.0, size)
        else:
            a = rng.normal(-5.0, 1.0, size)
            b = a + rng.normal(0.0, 0.3, size)
        _cache[key] = (a.astype(dtype), b.astype(dtype))
    return _cache[key]


def _kl_fast(quantity, a, b, backend):
    if quantity == "binary_kl":
        return lambda: kl_fast.binary_kl(a, b, backend=backend)
    if quantity == "bce_prob":
        return lambda: kl_fast.binary_cross_entropy(a, b, backend=backend)
    if quantity == "bce_logits":
        return lambda: kl_fast.binary_cross_entropy(a, b, q_space="logits", backend=backend)
    return lambda: kl_fast.kl_estimate(a, b, kind="k3", backend=backend)


def _numpy(quantity, a, b):
    """The formula a numpy user writes."""
    if quantity == "binary_kl":
        return lambda: a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))
    if quantity == "bce_prob":
        return lambda: -(a * np.log(b) + (1 - a) * np.log1p(-b))
    if quantity == "bce_logits":
        return lambda: np.maximum(b, 0) - b * a + np.log1p(np.exp(-np.abs(b)))

    def k3():
        lr = b - a
        return np.expm1(lr) - lr
    return k3


def _scipy(quantity, a, b):
    from scipy import special

    if quantity == "binary_kl":
        return lambda: special.rel_entr(a, b) + special.rel_entr(1 - a, 1 - b)
    if quantity == "bce_prob":
        return lambda: -(special.xlogy(a, b) + special.xlog1py(1 - a, -b))
    if quantity == "bce_logits":
        return lambda: -(a * special.log_expit(b) + (1 - a) * special.log_expit(-b))
    return None


def _torch(quantity, a, b):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if quantity == "binary_kl":
        return lambda: (torch.xlogy(ta, ta / tb)
                        + torch.xlogy(1 - ta, (1 - ta) / (1 - tb)))
    if quantity == "bce_prob":
        return lambda: F.binary_cross_entropy(tb, ta, reduction="none")
    if quantity == "bce_logits":
        return lambda: F.binary_cross_entropy_with_logits(tb, ta, reduction="none")

    def k3():
        lr = tb - ta
        return torch.expm1(lr) - lr
    return k3


def contenders(quantity, a, b):
    """name -> zero-argument callable, for the contenders installed here."""
    fns = {"floor": lambda: (a.sum(axis=-1), b.sum(axis=-1))}
    for backend in ("cython", "numba"):
        if backend in kl_fast.available_backends():
            fns[f"kl_fast-{backend}"] = _kl_fast(quantity, a, b, backend)
    fns["numpy"] = _numpy(quantity, a, b)
    for name, make in (("scipy", _scipy), ("torch", _torch)):
        fn = make(quantity, a, b)
        if fn is not None:
            fns[name] = fn
    return fns


NAMES = ["floor", "kl_fast-cython", "kl_fast-numba", "numpy", "scipy", "torch"]


def _cases():
    for quantity in QUANTITIES:
        for shape in SHAPES:
            for dtype in DTYPES:
                for name in NAMES:
                    yield pytest.param(quantity, shape, dtype, name,
                                       id=f"{quantity}|{shape}|{dtype}|{name}")


@pytest.fixture(scope="module", autouse=True)
def warm_numba():
    """Compile the Numba kernel before timing."""
    if "numba" in kl_fast.available_backends():
        from kl_fast import _numba_elementwise

        _numba_elementwise.warmup()


@pytest.mark.parametrize(("quantity", "shape", "dtype", "name"), list(_cases()))
def test_bench(benchmark, quantity, shape, dtype, name):
    fns = contenders(quantity, *make_data(quantity, shape, dtype))
    if name not in fns:
        pytest.skip(f"{name} not installed or not applicable to {quantity}")
    benchmark.group = f"{quantity}|{shape}|{dtype}"
    benchmark.extra_info.update(quantity=quantity, shape=shape, dtype=dtype, contender=name)
    rounds = 200 if shape == "small" else 5
    benchmark.pedantic(fns[name], rounds=rounds, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_contenders_agree(quantity):
    """Like is compared with like: every contender computes the same numbers."""
    a, b = make_data(quantity, "small", "float64")
    fns = contenders(quantity, a, b)
    want = np.asarray(fns.pop("kl_fast-cython", fns.pop("kl_fast-numba", None))())
    fns.pop("floor")
    for name, fn in fns.items():
        got = np.asarray(fn())
        np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=name)
