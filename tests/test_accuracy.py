"""The DESIGN.md accuracy contract, per backend, against mpmath on the stored inputs.

* float32 inputs: result within 1 float32 ULP of the exact value, in every
  regime (generic Dirichlet, peaked softmax with logit scale 8, nearly equal
  q = p (1 + 1e-3 N) renormalized).
* float64, generic: relative error <= 4 eps.
* float64, nearly equal (terms cancel): |error| <= 8 eps * sum |terms|.
* Gaussian KL stays accurate when the two Gaussians nearly coincide
  (<= 8 eps relative: every per-coordinate term is >= 0, nothing cancels
  in the exact sum).

Each regime is a :class:`Case`: a seeded input generator, the mpmath
reference (``mp_reference.py``), the error measure and its bound.  The
references are computed once per case and shared by the backends.
``python -m tests.accuracy_report`` prints the measured errors of every case.
"""

import functools
from dataclasses import dataclass

import numpy as np
import pytest

import kl_fast
from kl_fast.scipy import rel_entr as kl_rel_entr

from . import mp_reference as mpr

BACKENDS = kl_fast.available_backends()

# measured (max, median) error per (case name, backend), filled as the tests run
MEASURED = {}

SCALES = ("var", "std", "logvar", "logstd")


@dataclass(frozen=True)
class Case:
    function: str       # kl | entropy | cross_entropy | js | gaussian_kl | gaussian_prior
    dtype: str          # float32 | float64
    regime: str         # dirichlet | peaked | near1e-6 | generic | ...
    measure: str        # ulp32 | rel | scaled
    bound: float
    scale: str = ""     # gaussian parameterization
    delta: float = 0.0  # perturbation of the nearly-equal regimes
    base: float = None
    n_cat: int = 256
    n_rows: int = 32

    @property
    def name(self):
        parts = [self.function + (f"[{self.scale}]" if self.scale else ""), self.dtype,
                 self.regime]
        if self.base is not None:
            parts.append(f"base{self.base:g}")
        return "/".join(parts)


# -- input generators -----------------------------------------------------------------------------
def _seed(case):
    return [ord(c) for c in case.name]


def _renormalize(x, dtype):
    x = np.asarray(x, dtype=dtype)
    return x / x.sum(axis=-1, keepdims=True)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _distributions(case, rng):
    """(p, q) for the distribution regimes, rows in the case's dtype."""
    shape = (case.n_rows, case.n_cat)
    if case.regime == "dirichlet":
        p = rng.dirichlet(np.ones(case.n_cat), case.n_rows)
        q = rng.dirichlet(np.ones(case.n_cat), case.n_rows)
    elif case.regime == "peaked":
        z = rng.standard_normal(shape)
        p = _softmax(8.0 * z)
        q = _softmax(8.0 * (0.8 * z + 0.6 * rng.standard_normal(shape)))
    elif case.regime.startswith("near"):
        p = _renormalize(rng.dirichlet(np.ones(case.n_cat), case.n_rows), case.dtype)
        q = p.astype(np.float64) * (1.0 + case.delta * rng.standard_normal(shape))
    else:
        raise ValueError(case.regime)
    return _renormalize(p, case.dtype), _renormalize(q, case.dtype)


def _gaussians(case, rng):
    """(mu1, s1, mu2, s2) -- or (mu, s) for the prior -- in the case's scale and dtype."""
    shape = (case.n_rows, case.n_cat)
    log_var = 0.7 * rng.standard_normal(shape)

    def to_scale(lv):
        return {"var": np.exp(lv), "std": np.exp(0.5 * lv), "logvar": lv,
                "logstd": 0.5 * lv}[case.scale]

    if case.function == "gaussian_prior":
        if case.regime == "generic":
            mu, s = rng.standard_normal(shape), to_scale(log_var)
        else:  # near the prior N(0, 1)
            mu = case.delta * rng.standard_normal(shape)
            s = to_scale(case.delta * rng.standard_normal(shape))
        return tuple(a.astype(case.dtype) for a in (mu, s))
    mu1 = rng.standard_normal(shape)
    s1 = to_scale(log_var)
    if case.regime == "generic":
        mu2 = rng.standard_normal(shape)
        s2 = to_scale(0.7 * rng.standard_normal(shape))
    else:
        mu1, s1 = mu1.astype(case.dtype), s1.astype(case.dtype)
        mu2 = mu1 + case.delta * rng.standard_normal(shape)
        if case.scale in ("var", "std"):
            s2 = s1 * (1.0 + case.delta * rng.standard_normal(shape))
        else:
            s2 = s1 + case.delta * rng.standard_normal(shape)
    return tuple(np.asarray(a).astype(case.dtype) for a in (mu1, s1, mu2, s2))


@functools.cache
def inputs(case):
    rng = np.random.default_rng(_seed(case))
    if case.function.startswith("gaussian"):
        arrays = _gaussians(case, rng)
    else:
        arrays = _distributions(case, rng)
        if case.function == "entropy":
            arrays = arrays[:1]
    for a in arrays:
        a.setflags(write=False)
    return arrays


# -- reference and call ---------------------------------------------------------------------------
_EXACT = {
    "kl": (mpr.kl, mpr.kl_terms_abs),
    "entropy": (mpr.entropy, mpr.entropy_terms_abs),
    "cross_entropy": (mpr.cross_entropy, mpr.cross_entropy_terms_abs),
    "js": (mpr.js, mpr.js_terms_abs),
}


@functools.cache
def reference(case):
    """[(exact value, condition scale sum |terms|), ...] per row."""
    arrays = inputs(case)
    if case.function == "gaussian_kl":
        values = mpr.rows(mpr.gaussian_kl, *arrays, scale=case.scale, base=case.base)
        return [(v, v) for v in values]
    if case.function == "gaussian_prior":
        values = mpr.rows(mpr.gaussian_kl_prior, *arrays, scale=case.scale, base=case.base)
        return [(v, v) for v in values]
    value, terms = _EXACT[case.function]
    values = mpr.rows(value, *arrays, base=case.base)
    scales = mpr.rows(terms, *arrays, base=case.base) if case.measure == "scaled" else values
    return list(zip(values, scales, strict=True))


def compute(case, backend):
    arrays = inputs(case)
    kw = {"backend": backend, "base": case.base}
    f = case.function
    if f == "kl":
        return kl_fast.kl_divergence(*arrays, **kw)
    if f == "entropy":
        return kl_fast.entropy(*arrays, **kw)
    if f == "cross_entropy":
        return kl_fast.cross_entropy(*arrays, **kw)
    if f == "js":
        return kl_fast.js_divergence(*arrays, **kw)
    return kl_fast.gaussian_kl(*arrays, scale=case.scale, **kw)


def errors(case, backend):
    """Per-row error of `backend` on `case`, in the case's measure."""
    got = compute(case, backend)
    assert got.dtype == np.dtype(case.dtype)
    assert got.shape == (case.n_rows,)
    out = []
    for g, (exact, scale) in zip(got, reference(case), strict=True):
        if case.measure == "ulp32":
            out.append(mpr.ulp_error_f32(g, exact))
        elif case.measure == "rel":
            out.append(mpr.rel_error_eps(g, exact))
        else:
            out.append(mpr.scaled_error_eps(g, exact, scale))
    return got, np.array(out)


# -- the cases ------------------------------------------------------------------------------------
def _cases():
    cases = []
    for f in ("kl", "cross_entropy", "entropy", "js"):
        for regime in ("dirichlet", "peaked"):
            cases.append(Case(f, "float32", regime, "ulp32", 1.0))
            cases.append(Case(f, "float64", regime, "rel", 4.0))
    cases.append(Case("kl", "float64", "dirichlet", "rel", 4.0, base=2.0))
    cases.append(Case("entropy", "float64", "dirichlet", "rel", 4.0, base=10.0))
    for f in ("kl", "js"):
        cases.append(Case(f, "float32", "near1e-3", "ulp32", 1.0, delta=1e-3))
        cases.append(Case(f, "float32", "near3e-4", "ulp32", 1.0, delta=3e-4))
        for delta in (1e-6, 1e-9):
            cases.append(Case(f, "float64", f"near{delta:g}", "scaled", 8.0, delta=delta))
    for f in ("gaussian_kl", "gaussian_prior"):
        for scale in SCALES:
            kw = {"scale": scale, "n_cat": 48, "n_rows": 40}
            cases.append(Case(f, "float64", "generic", "rel", 4.0, **kw))
            cases.append(Case(f, "float32", "generic", "ulp32", 1.0, **kw))
            cases.append(Case(f, "float32", "near1e-3", "ulp32", 1.0, delta=1e-3, **kw))
            for delta in (1e-6, 1e-7):
                cases.append(Case(f, "float64", f"near{delta:g}", "rel", 8.0, delta=delta, **kw))
    return cases


CASES = _cases()


def mpmath_str(x):
    return f"{float(x):.17g}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_accuracy_contract(case, backend):
    got, err = errors(case, backend)
    MEASURED[(case.name, backend)] = (float(err.max()), float(np.median(err)))
    worst = int(np.argmax(err))
    exact = reference(case)[worst][0]
    assert err.max() <= case.bound, (
        f"{case.name} on {backend}: row {worst} got {got[worst]!r}, exact "
        f"{mpmath_str(exact)}, error {err[worst]:.3g} > {case.bound} ({case.measure})"
    )


def test_nearly_equal_regimes_really_cancel():
    """The 'near' inputs are in the regime the contract is about: sum |terms| >> KL > 0.

    (The stored rows do not sum to 1 exactly, so where KL ~ 1e-19 some exact
    values are <= 0 and clamped; most rows must still carry a positive value.)
    """
    for case in CASES:
        if case.function in ("kl", "js") and case.regime.startswith("near"):
            ref = reference(case)
            positive = [(v, s) for v, s in ref if v > 0]
            assert len(positive) >= 0.6 * len(ref), case.name
            if case.measure == "scaled":
                assert min(float(s / v) for v, s in positive) > 1e4, case.name


def test_kl_is_not_ce_minus_entropy():
    """At delta 1e-6 the naive CE - H loses every digit; kl_fast must not (DESIGN)."""
    case = Case("kl", "float64", "near1e-06", "scaled", 8.0, delta=1e-6)
    p, q = inputs(case)
    naive = kl_fast.cross_entropy(p, q) - kl_fast.entropy(p)
    got = kl_fast.kl_divergence(p, q)
    exact = np.array([float(v) for v, _ in reference(case)])
    assert np.all(np.abs(got - exact) <= 1e-6 * exact)
    assert np.max(np.abs(naive - exact) / exact) > 1e-3


# -- scipy gh-20710: the elementwise rel_entr drop-in ---------------------------------------------
GH20710_PAIRS = [
    (0.9456657713430001, 0.9456657713430094),  # nearly equal: -9.33e-15
    (0.48, 0.48000000000000004),
    (0.5, np.nextafter(0.5, 0.0)),
    (np.nextafter(0.5, 0.0), 0.5),
    (4.0, 2.22e-308),        # x / y overflows
    (1e-200, 1e200),         # x / y underflows to 0
    (1e200, 1e-200),         # x / y overflows
    (2.22e-308, 1e15),       # x / y subnormal
    (1.0, 5e-324),           # scipy/scipy#19436: q is the smallest subnormal
    (5e-324, 1.0),
    (5e-324, 5e-324),
    (1e-310, 3e-310),        # both subnormal
    (1.7976931348623157e308, 1.0),
    (1.0, 1.7976931348623157e308),
]


@pytest.mark.parametrize("x, y", GH20710_PAIRS, ids=[f"{x!r},{y!r}" for x, y in GH20710_PAIRS])
def test_rel_entr_gh20710_pairs(x, y):
    got = kl_rel_entr(np.float64(x), np.float64(y))
    exact = mpr.rel_entr(x, y)
    err = mpr.ulp_error_f64(got, exact)  # ULPs: meaningful for subnormal results too
    assert err <= 4.0, f"rel_entr({x!r}, {y!r}) = {got!r}, exact {mpmath_str(exact)}: {err:.3g} ULP"


def test_rel_entr_gh20710_published_values():
    """The gh-20710 regression values, to the digits published (scipy checks rtol 1e-13)."""
    published = {(0.9456657713430001, 0.9456657713430094): "-9.33e-15",
                 (4.0, 2.22e-308): "2839.14", (1e-200, 1e200): "-9.21e-198",
                 (2.22e-308, 1e15): "-1.65e-305"}
    for (x, y), text in published.items():
        got = float(kl_rel_entr(x, y))
        assert got == pytest.approx(float(mpr.rel_entr(x, y)), rel=1e-13, abs=0)
        significant = len(text.split("e")[0].replace("-", "").replace(".", ""))
        assert float(f"{got:.{significant - 1}e}") == float(text), (x, y, got)


def test_rel_entr_elementwise_random_float64():
    """Log-uniform pairs over the whole range and nearly equal pairs: <= 4 float64 ULP."""
    rng = np.random.default_rng(20710)
    x = 10.0 ** rng.uniform(-300, 300, 300)
    y = 10.0 ** rng.uniform(-300, 300, 300)
    near_x = rng.uniform(0.01, 10.0, 300)
    near_y = near_x + rng.integers(-2000, 2000, 300) * np.spacing(near_x)
    xs, ys = np.concatenate([x, near_x]), np.concatenate([y, near_y])
    got = kl_rel_entr(xs, ys)
    assert got.dtype == np.float64
    err = np.array([mpr.ulp_error_f64(g, mpr.rel_entr(a, b))
                    for g, a, b in zip(got, xs, ys, strict=True)])
    assert err.max() <= 4.0, (xs[err.argmax()], ys[err.argmax()], got[err.argmax()])


def test_rel_entr_elementwise_float32_within_one_ulp():
    rng = np.random.default_rng(2071032)
    x = (10.0 ** rng.uniform(-30, 30, 300)).astype(np.float32)
    y = (10.0 ** rng.uniform(-30, 30, 300)).astype(np.float32)
    near_x = rng.uniform(0.01, 10.0, 300).astype(np.float32)
    near_y = (near_x + rng.integers(-200, 200, 300) * np.spacing(near_x)).astype(np.float32)
    xs, ys = np.concatenate([x, near_x]), np.concatenate([y, near_y])
    got = kl_rel_entr(xs, ys)
    assert got.dtype == np.float32
    err = np.array([mpr.ulp_error_f32(g, mpr.rel_entr(a, b))
                    for g, a, b in zip(got, xs, ys, strict=True)])
    assert err.max() <= 1.0, (xs[err.argmax()], ys[err.argmax()], got[err.argmax()])
