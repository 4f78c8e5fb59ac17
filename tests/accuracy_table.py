"""The accuracy table: every public function against mpmath, per regime and dtype.

Run from the repository root::

    python -m tests.accuracy_table                      # 500 points per cell -> docs/accuracy.md
    python -m tests.accuracy_table --points 25 --output -   # a quick look on stdout

For every (function, regime, dtype) cell it draws ``--points`` seeded inputs,
computes the exact value of the formula on the inputs *as stored* with the
mpmath references of the test suite (``mp_reference.py``,
``binary_reference.py``, and the references of ``test_spaces.py``,
``test_gaussian_full.py``, ``test_mutual_information.py``), and reports the
max and median error of the compiled backends (cython and numba give the same
bits: shown once, checked) and of the numpy reference, in the units of the
DESIGN.md accuracy contract:

* ``ulp32``: float32 results, |got - exact| in float32 ULPs of the exact value (bound 1);
* ``eps``: float64, |got - exact| / |exact| in eps (exact values below 2^-1022:
  in units of the subnormal spacing, so a correctly underflowed result is exact);
* ``eps*S``: float64, |got - exact| / (eps * sum |terms|), the measure for
  cancelling sums (nearly equal distributions, mutual information);
* ``eps*M``: float64 probability rows, |got - exact| / (eps * max(|exact|, S / 2)),
  S = sum |terms|: the relative error where no term cancels (S = |exact|), and a
  quarter of DESIGN's 8 eps * S where terms cancel (S > 2 |exact|), so a row is held
  to whichever of DESIGN's two clauses describes it (Renyi's S:
  ``mp_reference.renyi_scale``);
* ``eps*cond``: gaussian_kl_full, relative error / (eps * cond(cov2)) as its
  docstring states its accuracy.

A point is one scalar result: a row (K = 16 categories, 4 x 4 tables,
4-dimensional Gaussians) or an element (binary functions, estimators).
``tests/test_accuracy_table.py`` runs every cell on 25 points in CI and checks
that docs/accuracy.md is this script's output.
"""

import argparse
import datetime
import functools
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import kl_fast

from . import binary_reference as bref
from . import mp_reference as mpr
from . import test_accuracy as acc
from .test_gaussian_full import mp_kl as mp_gaussian_full
from .test_gaussian_full import spd
from .test_mutual_information import mp_mi
from .test_spaces import _mp_kl_logits, _mp_log_softmax

K = 16                # categories per row
POINTS = 500          # points per cell in docs/accuracy.md
COMPILED = ("cython", "numba")
OUTPUT = "docs/accuracy.md"
mpmath = mpr.mpmath


@dataclass(frozen=True)
class Cell:
    function: str            # the public call, as shown in the table
    regime: str
    dtype: str
    unit: str                # ulp32 | eps | eps*S | eps*M | eps*cond
    bound: float
    make: object = field(compare=False, repr=False)     # (rng, n, dtype) -> inputs
    call: object = field(compare=False, repr=False)     # (backend, *inputs) -> n results
    exact: object = field(compare=False, repr=False)    # (*inputs) -> [(exact, scale), ...]

    @property
    def name(self):
        return f"{self.function}/{self.regime}/{self.dtype}"

    @property
    def seed(self):
        return [ord(c) for c in self.name]


# -- input generators -----------------------------------------------------------------------------
def _as_case(regime, dtype, n, delta=0.0):
    """A test_accuracy.Case for its distribution generators (dirichlet, peaked, near)."""
    return acc.Case("kl", dtype, regime, "", 0.0, delta=delta, n_cat=K, n_rows=n)


def _pairs(regime, delta=0.0):
    def make(rng, n, dtype):
        return acc._distributions(_as_case(regime, dtype, n, delta), rng)
    return make


def _single(regime):
    def make(rng, n, dtype):
        return acc._distributions(_as_case(regime, dtype, n), rng)[:1]
    return make


def _logit_pairs(regime):
    def make(rng, n, dtype):
        shape = (n, K)
        if regime == "generic":
            a, b = 2.0 * rng.standard_normal(shape), 2.0 * rng.standard_normal(shape)
        elif regime == "peaked":
            z = rng.standard_normal(shape)
            a, b = 8.0 * z, 8.0 * (0.8 * z + 0.6 * rng.standard_normal(shape))
        elif regime == "tiny-diff":
            a = 4.0 * rng.standard_normal(shape)
            delta = 10.0 ** rng.uniform(-12, -7, (n, 1))
            b = a + delta * rng.standard_normal(shape)
        else:
            # q = 0 (-inf) exactly where p = 0: finite, informative rows (a -inf logit of q
            # against a p of e^-1e4 > 0 would make the exact value +inf, the computed finite)
            a, b = _extreme_logits(rng, shape), _extreme_logits(rng, shape)
            b[np.isinf(b)] = 0.0
            b[np.isinf(a)] = -np.inf
        return a.astype(dtype), b.astype(dtype)
    return make


def _extreme_logits(rng, shape):
    """Logits of scale 3 with a quarter at +-1e4 and an eighth at -inf (never a whole row)."""
    z = 3.0 * rng.standard_normal(shape)
    u = rng.random(shape)
    z[u < 0.25] = 1e4 * np.sign(rng.standard_normal(shape))[u < 0.25]
    z[u > 0.875] = -np.inf
    z[:, 0] = 3.0 * rng.standard_normal(shape[0])
    return z


def _labels_logits(regime):
    pairs = _logit_pairs(regime)

    def make(rng, n, dtype):
        logits, _ = pairs(rng, n, dtype)
        labels = rng.integers(0, K, n)
        labels[::2] = np.argmax(logits[::2], axis=-1)   # half the labels on the top class
        finite = np.isfinite(logits[np.arange(n), labels])
        labels[~finite] = 0                               # column 0 is always finite
        return labels, logits
    return make


def _bernoulli(regime, delta=0.0, logits=False):
    def make(rng, n, dtype):
        if regime == "generic":
            a, b = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
            if logits:
                a, b = 4.0 * rng.standard_normal(n), 4.0 * rng.standard_normal(n)
        elif regime == "peaked":   # sigmoid of logits x 8: probabilities near 0 and 1
            a = 1 / (1 + np.exp(-8.0 * rng.standard_normal(n)))
            b = 1 / (1 + np.exp(-8.0 * rng.standard_normal(n)))
        elif regime.startswith("near"):
            a = rng.uniform(0.001, 0.999, n).astype(dtype)
            b = a * (1.0 + delta * rng.standard_normal(n))
        elif regime == "tiny-diff":
            a = 4.0 * rng.standard_normal(n)
            b = a + 10.0 ** rng.uniform(-12, -7, n) * rng.standard_normal(n)
        else:  # extreme logits
            a, b = _extreme_logits(rng, (1, n))[0], _extreme_logits(rng, (1, n))[0]
            a[0] = b[0] = 1e4
        return np.asarray(a).astype(dtype), np.asarray(b).astype(dtype)
    return make


def _bce(regime, logits=False):
    bern = _bernoulli(regime, logits=logits)

    def make(rng, n, dtype):
        _, q = bern(rng, n, dtype)
        y = rng.uniform(0, 1, n)
        y[::4] = np.round(y[::4])      # hard labels too
        return y.astype(dtype), q
    return make


def _gauss(regime, delta=0.0):
    def make(rng, n, dtype):
        case = acc.Case("gaussian_kl", dtype, "generic" if regime == "generic" else "near",
                        "", 0.0, scale="var", delta=delta, n_cat=K, n_rows=n)
        return acc._gaussians(case, rng)
    return make


def _gauss_full(regime, delta=0.0, k=4):
    def make(rng, n, dtype):
        c1 = spd(rng, k, 100.0, (n,))
        m1 = rng.standard_normal((n, k))
        if regime == "generic":
            c2, m2 = spd(rng, k, 100.0, (n,)), rng.standard_normal((n, k))
        else:
            r = rng.standard_normal((n, k, k))
            c2 = c1 * (1.0 + delta * (r + np.swapaxes(r, -1, -2)))
            m2 = m1 + delta * rng.standard_normal((n, k))
        return tuple(x.astype(dtype) for x in (m1, c1, m2, c2))
    return make


def _tables(regime, delta=0.0, nx=4, ny=4):
    def make(rng, n, dtype):
        if regime == "generic":
            j = rng.random((n, nx, ny)) ** 2
        elif regime == "peaked":
            z = 8.0 * rng.standard_normal((n, nx * ny))
            j = np.exp(z - z.max(axis=-1, keepdims=True)).reshape(n, nx, ny)
        else:   # nearly independent
            j = (rng.random((n, nx, 1)) * rng.random((n, 1, ny))
                 * (1.0 + delta * rng.standard_normal((n, nx, ny))))
        j = (j / j.sum(axis=(1, 2), keepdims=True)).astype(dtype)
        return (j / j.sum(axis=(1, 2), keepdims=True, dtype=dtype),)
    return make


def _estimates(regime, delta=0.0):
    def make(rng, n, dtype):
        lp = rng.normal(-5, 3, n)
        if regime == "generic":
            lq = rng.normal(-5, 3, n)
        elif regime == "tiny-diff":
            lq = lp + 10.0 ** rng.uniform(-12, -7, n) * rng.standard_normal(n)
        else:
            lq = lp + delta * rng.standard_normal(n)
        return lp.astype(dtype), lq.astype(dtype)
    return make


def _pairwise(regime, delta=0.0):
    """P (n/20 rows) x Q (20 rows): n points; 'near' rows of Q are perturbed rows of P."""
    def make(rng, n, dtype):
        n_p, n_q = max(n // 20, 1), min(n, 20)
        case = _as_case(regime, dtype, max(n_p, n_q), delta)
        p, q = acc._distributions(case, rng)
        if regime.startswith("near"):   # every Q row near P's first row
            q = np.asarray(q[0] * (1.0 + delta * rng.standard_normal((n_q, K))), dtype=dtype)
            q = q / q.sum(axis=-1, keepdims=True)
            p = np.repeat(p[:1], n_p, axis=0)
        return p[:n_p], q[:n_q]
    return make


# -- mpmath references: [(exact, condition scale), ...] per point ---------------------------------
def _rows_pair(value, terms=None):
    def exact(*arrays):
        values = mpr.rows(value, *arrays)
        scales = mpr.rows(terms, *arrays) if terms else values
        return list(zip(values, scales, strict=True))
    return exact


def _kl_logits_exact(a, b):
    return [(max(_mp_kl_logits(x, y), mpr.mpf(0)),) * 2 for x, y in zip(a, b, strict=True)]


def _entropy_logits_exact(a):
    out = []
    for row in a:
        lp = _mp_log_softmax(row)
        h = -mpmath.fsum(mpmath.exp(v) * v for v in lp if v != -mpmath.inf)
        out.append((h, h))
    return out


def _labels_exact(labels, logits):
    return [(-_mp_log_softmax(row)[y],) * 2 for y, row in zip(labels, logits, strict=True)]


def _elementwise(f, **kw):
    def exact(a, b):
        return [(f(x, y, **kw),) * 2 for x, y in zip(a, b, strict=True)]
    return exact


def _gauss_full_exact(m1, c1, m2, c2):
    out = []
    for args in zip(m1, c1, m2, c2, strict=True):
        value = mp_gaussian_full(*args)
        out.append((value, value * float(np.linalg.cond(args[3].astype(np.float64)))))
    return out


def _mi_exact(j):
    return [mp_mi(t) for t in j]


def _pairwise_exact(terms):
    def exact(p, q):
        return [(mpr.kl(x, y), mpr.kl_terms_abs(x, y) if terms else mpr.kl(x, y))
                for x in p for y in q]
    return exact


# -- the calls: n results, flat -------------------------------------------------------------------
def _f(fn, **kw):
    return lambda backend, *a: np.asarray(fn(*a, backend=backend, **kw)).ravel()


# -- the cells ------------------------------------------------------------------------------------
NEAR = (("near1e-3", 1e-3), ("near1e-6", 1e-6))
LOGIT_REGIMES = ("generic", "peaked", "tiny-diff", "extreme")


def _f64(regime_is_near):
    return ("eps*S", 8.0) if regime_is_near else ("eps", 4.0)


def _both(function, regime, make, call, exact, f64=("eps", 4.0), dtypes=("float64", "float32")):
    out = []
    for dtype in dtypes:
        unit, bound = f64 if dtype == "float64" else ("ulp32", 1.0)
        out.append(Cell(function, regime, dtype, unit, bound, make, call, exact))
    return out


def _cells():
    cells = []
    kl, js = _rows_pair(mpr.kl, mpr.kl_terms_abs), _rows_pair(mpr.js, mpr.js_terms_abs)
    for name, fn, exact in (("kl_divergence", kl_fast.kl_divergence, kl),
                            ("js_divergence", kl_fast.js_divergence, js)):
        for regime in ("dirichlet", "peaked"):   # rows whose terms may cancel: eps*M
            cells += _both(name, regime, _pairs(regime), _f(fn), exact, ("eps*M", 4.0))
        for regime, delta in NEAR:
            cells += _both(name, regime, _pairs(regime, delta), _f(fn), exact, _f64(True))
    logits = _f(kl_fast.kl_divergence, p_space="logits", q_space="logits")
    for regime in LOGIT_REGIMES:
        # nearly equal logits: relative 8 eps (stronger than 8 eps * sum|terms|)
        bound = ("eps", 8.0) if regime == "tiny-diff" else ("eps", 4.0)
        dtypes = ("float64",) if regime == "tiny-diff" else ("float64", "float32")
        cells += _both("kl_divergence[logits]", regime, _logit_pairs(regime), logits,
                       _kl_logits_exact, bound, dtypes)
    for regime in ("dirichlet", "peaked"):
        cells += _both("entropy", regime, _single(regime), _f(kl_fast.entropy),
                       _rows_pair(mpr.entropy))
        cells += _both("cross_entropy", regime, _pairs(regime), _f(kl_fast.cross_entropy),
                       _rows_pair(mpr.cross_entropy))
    for regime in ("generic", "peaked", "extreme"):
        first = _logit_pairs(regime)
        cells += _both("entropy[logits]", regime, lambda r, n, d, m=first: m(r, n, d)[:1],
                       _f(kl_fast.entropy, space="logits"), _entropy_logits_exact)
        cells += _both("cross_entropy[labels,logits]", regime, _labels_logits(regime),
                       _f(kl_fast.cross_entropy, q_space="logits"), _labels_exact)
    # the f-divergences: non-negative terms (Hellinger, TV, chi^2) keep a relative bound
    # in every regime; Renyi's is KL's, with its condition sum w |log(p/q)|
    for name, fn, ref in (("hellinger_distance", kl_fast.hellinger_distance, mpr.hellinger),
                          ("total_variation", kl_fast.total_variation, mpr.total_variation),
                          ("chi2_divergence", kl_fast.chi2_divergence, mpr.chi2)):
        for regime, delta in (("dirichlet", 0.0), ("peaked", 0.0)) + NEAR:
            cells += _both(name, regime, _pairs(regime, delta), _f(fn), _rows_pair(ref))
    # order 0 (its terms q - p summed exactly), orders of both general forms (0.3, 5:
    # expm1 of a corrected log ratio) and of the algebraic ones (1/2, 2), and the
    # max-ratio order
    for alpha in (0.0, 0.3, 0.5, 2.0, 5.0, np.inf):
        name = f"renyi_divergence[alpha={alpha:g}]"
        call = _f(kl_fast.renyi_divergence, alpha=alpha)
        ref = _rows_pair(functools.partial(mpr.renyi, alpha=alpha),
                         functools.partial(mpr.renyi_scale, alpha=alpha))
        for regime, delta in (("dirichlet", 0.0), ("peaked", 0.0)) + NEAR:
            f64 = ("eps", 4.0) if alpha == np.inf else (
                _f64(True) if delta else ("eps*M", 4.0))
            cells += _both(name, regime, _pairs(regime, delta), call, ref, f64)
    # binary
    bkl = _elementwise(bref.binary_kl)
    for regime in ("generic", "peaked"):
        cells += _both("binary_kl", regime, _bernoulli(regime), _f(kl_fast.binary_kl), bkl)
    for regime, delta in NEAR:
        cells += _both("binary_kl", regime, _bernoulli(regime, delta), _f(kl_fast.binary_kl),
                       bkl, ("eps", 8.0))
    blog = _elementwise(bref.binary_kl, p_logits=True, q_logits=True)
    for regime in ("generic", "tiny-diff", "extreme"):
        dtypes = ("float64",) if regime == "tiny-diff" else ("float64", "float32")
        cells += _both("binary_kl[logits]", regime, _bernoulli(regime, logits=True),
                       _f(kl_fast.binary_kl, p_space="logits", q_space="logits"), blog,
                       ("eps", 8.0 if regime == "tiny-diff" else 4.0), dtypes)
    for regime in ("generic", "peaked"):
        cells += _both("binary_cross_entropy", regime, _bce(regime),
                       _f(kl_fast.binary_cross_entropy), _elementwise(bref.bce))
    for regime in ("generic", "extreme"):
        cells += _both("binary_cross_entropy[logits]", regime, _bce(regime, logits=True),
                       _f(kl_fast.binary_cross_entropy, q_space="logits"),
                       _elementwise(bref.bce, q_logits=True))
    # Gaussians
    gexact = _rows_pair(functools.partial(mpr.gaussian_kl, scale="var"))
    cells += _both("gaussian_kl", "generic", _gauss("generic"), _f(kl_fast.gaussian_kl), gexact)
    for regime, delta in NEAR:
        cells += _both("gaussian_kl", regime, _gauss(regime, delta), _f(kl_fast.gaussian_kl),
                       gexact, ("eps", 8.0))
    for regime, delta in (("generic", 0.0),) + NEAR:
        cells += _both("gaussian_kl_full", regime, _gauss_full(regime, delta),
                       _f(kl_fast.gaussian_kl_full), _gauss_full_exact, ("eps*cond", 2.0))
    # mutual information: terms of both signs, so eps * sum|terms| in every regime
    for regime, delta in (("generic", 0.0), ("peaked", 0.0)) + NEAR:
        cells += _both("mutual_information", regime, _tables(regime, delta),
                       _f(kl_fast.mutual_information), _mi_exact, ("eps*S", 8.0))
    # estimators
    for kind in ("k1", "k2", "k3"):
        for regime, delta in (("generic", 0.0),) + NEAR + (("tiny-diff", 0.0),):
            dtypes = ("float64",) if regime == "tiny-diff" else ("float64", "float32")
            cells += _both(f"kl_estimate[{kind}]", regime, _estimates(regime, delta),
                           _f(kl_fast.kl_estimate, kind=kind),
                           _elementwise(bref.estimate, kind=kind), ("eps", 4.0), dtypes)
    # pairwise, precise
    pw = _f(kl_fast.pairwise_kl, precise=True)
    for regime in ("dirichlet", "peaked"):
        cells += _both("pairwise_kl[precise]", regime, _pairwise(regime), pw,
                       _pairwise_exact(True))
    for regime, delta in NEAR:
        cells += _both("pairwise_kl[precise]", regime, _pairwise(regime, delta), pw,
                       _pairwise_exact(True), _f64(True))
    return cells


CELLS = _cells()


# -- errors ---------------------------------------------------------------------------------------
def point_error(unit, got, exact, scale):
    if unit == "ulp32":
        return bref.err_ulp32(got, exact)
    if unit == "eps":
        return bref.err_eps(got, exact)
    if unit == "eps*S":
        return mpr.scaled_error_eps(got, exact, scale)
    if unit == "eps*M":
        return mpr.scaled_error_eps(got, exact, max(abs(exact), scale / 2))
    # eps*cond: scale = exact * cond(cov2)
    return bref.err_eps(got, exact) * float(abs(exact) / scale) if exact != 0 else (
        bref.err_eps(got, exact))


@dataclass
class Result:
    cell: Cell
    points: int
    compiled: np.ndarray       # errors of cython (== numba bit for bit)
    numpy: np.ndarray
    same_bits: bool
    worst_input: tuple         # the inputs of the compiled worst point
    worst_exact: object = None   # (exact value, condition scale) of that point


def measure(cell, points, backends=("cython", "numba", "numpy")):
    rng = np.random.default_rng(cell.seed)
    inputs = cell.make(rng, points, np.dtype(cell.dtype))
    refs = cell.exact(*inputs)
    errs, got = {}, {}
    for b in backends:
        got[b] = cell.call(b, *inputs)
        assert got[b].dtype == np.dtype(cell.dtype), (cell.name, b, got[b].dtype)
        assert len(got[b]) == len(refs), (cell.name, b, len(got[b]), len(refs))
        errs[b] = np.array([point_error(cell.unit, g, e, s)
                            for g, (e, s) in zip(got[b], refs, strict=True)])
    compiled = [b for b in COMPILED if b in backends]
    same = all(np.array_equal(got[compiled[0]].view(np.uint8), got[b].view(np.uint8))
               for b in compiled[1:])
    worst = int(np.argmax(errs[compiled[0]])) if compiled else 0
    return Result(cell, len(refs), errs[compiled[0]] if compiled else None,
                  errs.get("numpy"), same, _point_inputs(inputs, worst, len(refs)),
                  refs[worst])


def _point_inputs(inputs, index, n):
    """The inputs behind point `index` (rows for row functions, elements otherwise)."""
    if len(inputs) == 2 and inputs[0].ndim == 2 and inputs[1].ndim == 2 and \
            inputs[0].shape[0] * inputs[1].shape[0] == n and inputs[0].shape[0] != n:
        i, j = divmod(index, inputs[1].shape[0])   # pairwise
        return inputs[0][i], inputs[1][j]
    return tuple(x[index] for x in inputs)


# -- the Markdown table ---------------------------------------------------------------------------
HEADER = ("| function | regime | dtype | unit | bound | max | median | numpy max | numpy median "
          "| cython = numba | points |")
RULE = "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: |"


def _num(x):
    return "inf" if not np.isfinite(x) else f"{x:.3g}"


def table_row(r):
    c = r.cell
    flag = lambda e: " **!**" if e.max() > c.bound else ""  # noqa: E731
    return (f"| {c.function} | {c.regime} | {c.dtype} | {c.unit} | {c.bound:g} "
            f"| {_num(r.compiled.max())}{flag(r.compiled)} | {_num(np.median(r.compiled))} "
            f"| {_num(r.numpy.max())}{flag(r.numpy)} | {_num(np.median(r.numpy))} "
            f"| {'yes' if r.same_bits else '**no**'} | {r.points} |")


def parse_table(text):
    """[{column: cell text}] of the table rows in a docs/accuracy.md text."""
    lines = text.splitlines()
    start = lines.index(HEADER)
    names = [h.strip() for h in HEADER.strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(names, [v.strip() for v in line.strip("|").split("|")],
                             strict=True)))
    return rows


def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    import Cython
    import numba
    return (f"{cpu}, {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
            f"Cython {Cython.__version__}, mpmath {mpmath.__version__}, kl_fast "
            f"{kl_fast.__version__}")


def document(results, command, seconds):
    misses = [r for r in results if r.compiled.max() > r.cell.bound or not r.same_bits]
    np_misses = [r for r in results if r.numpy.max() > r.cell.bound]
    lines = [
        "# Accuracy",
        "",
        "Measured errors of every public function against mpmath (50 digits; the",
        "binary functions and estimators at 2300 bits, the logits references at 80",
        "digits) on the inputs **as stored**, like Boost.Math's accuracy tables.",
        "Generated by `tests/accuracy_table.py`; do not edit by hand.",
        "",
        "Units (the DESIGN.md accuracy contract): `ulp32` float32 ULPs of the exact",
        "value (bound 1); `eps` relative error in float64 eps (exact values below",
        "2^-1022 in units of the subnormal spacing); `eps*S` |error| / (eps * sum|terms|),",
        "for sums whose terms cancel (nearly equal distributions, mutual information);",
        "`eps*M` |error| / (eps * max(|value|, S/2)) for probability rows, S = sum|terms|:",
        "the relative error where nothing cancels, a quarter of the `eps*S` bound where",
        "terms cancel (S > 2 |value|); for Renyi's orders S is the larger of",
        "sum_k w_k |log(p_k/q_k)| (w = p^a q^(1-a) / sum p^a q^(1-a)) and",
        "sum_k |p_k^a q_k^(1-a) - p_k| / (|a - 1| sum p^a q^(1-a)), the terms of the sum",
        "computed (`tests/mp_reference.renyi_scale`);",
        "`eps*cond` relative error / (eps * cond(cov2)) (gaussian_kl_full).",
        "`max` and `median` are those of the compiled backends, which give the same",
        "bits (checked: `cython = numba`); the numpy reference backend has its own",
        "columns.  A value above its bound is marked **!**.",
        "",
        "Regimes: `dirichlet`/`generic` random inputs (Dirichlet(1) rows of 16",
        "categories, logits N(0, 2^2), uniform Bernoulli parameters, random 4-D",
        "Gaussians with cond <= 100, random 4 x 4 tables); `peaked` softmax (or",
        "sigmoid) of logits x 8; `near1e-3`, `near1e-6` q = p (1 + delta N(0, 1)),",
        "renormalized (Gaussians: both parameters perturbed; tables: nearly",
        "independent; estimators: log q = log p + delta N(0, 1)); `tiny-diff` logits",
        "(or log-probabilities) that differ by 1e-12 .. 1e-7 (float64 only: float32",
        "cannot store such differences); `extreme` logits with a quarter at +-1e4 and",
        "an eighth at -inf. A point is one result: a row, a table, a Gaussian, an",
        "element, or one entry of the pairwise matrix.",
        "",
        f"Machine: {_machine()}.",
        "",
        f"Command: `{command}` ({seconds:.0f} s, {datetime.date.today().isoformat()}).",
        "",
        HEADER,
        RULE,
    ]
    lines += [table_row(r) for r in results]
    lines += ["", f"{len(results)} cells, {sum(r.points for r in results)} points per backend; "
              f"compiled cells over their bound: {len(misses)}; numpy reference cells over "
              f"their bound: {len(np_misses)}."]
    if misses or np_misses:
        lines += ["", "Worst inputs of the cells over their bound (compiled backends):", ""]
        for r in misses:
            lines.append(f"- {r.cell.name}: {_describe_worst(r)}; inputs "
                         f"{_fmt_inputs(r.worst_input)}")
        if np_misses:
            lines += ["", "Numpy reference cells over their bound: "
                      + ", ".join(r.cell.name for r in np_misses) + "."]
    return "\n".join(lines) + "\n"


def _describe_worst(r):
    exact, scale = r.worst_exact
    text = f"error {r.compiled.max():.3g} {r.cell.unit}, exact value {float(exact):.17g}"
    if r.cell.unit in ("eps", "eps*M") and scale != exact and exact != 0:
        # sum|terms| / |value| > 1: the terms cancel, and DESIGN's 8 eps * sum|terms| applies
        ratio = float(scale / abs(exact))
        text += f", sum|terms| / |value| = {ratio:.3g}"
        if r.cell.unit == "eps":
            text += f", i.e. {r.compiled.max() / ratio:.3g} eps*S"
    return text


def _fmt_inputs(arrays):
    return "; ".join(np.array2string(np.asarray(a), precision=17, separator=", ",
                                     max_line_width=10**6) for a in arrays)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=POINTS)
    parser.add_argument("--output", default=OUTPUT, help="Markdown file, '-' for stdout")
    parser.add_argument("--filter", default="", help="only cells whose name contains this")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = []
    for cell in CELLS:
        if args.filter in cell.name:
            t0 = time.perf_counter()
            results.append(measure(cell, args.points))
            print(f"{table_row(results[-1])}  {time.perf_counter() - t0:.1f}s",
                  file=sys.stderr, flush=True)
    command = "python -m tests.accuracy_table" + (f" --points {args.points}"
                                                  if args.points != POINTS else "")
    text = document(results, command, time.perf_counter() - start)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)
    worst = max(max(r.compiled.max() / r.cell.bound for r in results), 0.0)
    ok = worst <= 1.0 and all(r.same_bits for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
