"""atheris (libFuzzer) harness over the public API and the compiled entry points.

Every execution decodes the fuzzer's bytes into one call: a target (every public
function, the ``kl_fast.scipy`` drop-ins, ``score_files`` on a written .npy, and
the compiled functions callers use directly: ``vector_fast``, ``rel_entr_1d``,
``point``), its array arguments (shapes including 0, 1 and rows longer than a
summation block; dtypes from float16 to complex, object and strings; layouts C,
F, reversed, zero-stride, strided, big-endian, misaligned, read-only; values
from probabilities to NaN, +-inf, -0.0, subnormals and 1e308) and its keywords
(valid and invalid values of axis, base, eps, normalize, reduction, keepdims,
the spaces, temperature, ignore_index, num_threads, out, backend and validate
-- ``validate=False`` included).

A call may return a result or raise ValueError or TypeError.  Anything else
(another exception, a crash, an abort, a hang past ``-timeout``) is a defect:
the harness re-raises it and libFuzzer stops with the reproducer.  The harness
also checks that no input array was modified (issue 6, item 8).

Run (see fuzz/README.md)::

    python fuzz/build_debug.py build/debug-ext          # bounds-checked kernels
    KL_FAST_FUZZ_EXT=build/debug-ext python fuzz/fuzz_kl_fast.py -max_total_time=3600

Environment:

``KL_FAST_FUZZ_EXT``
    A directory from ``fuzz/build_debug.py``: its ``kl_fast/_*.so`` replace the
    tree's compiled modules (the harness prints the modules it loaded and
    refuses to start if one came from elsewhere).
``KL_FAST_FUZZ_BACKENDS``
    Comma-separated backends to draw from (default ``cython,numba,numpy``).
``KL_FAST_FUZZ_VERBOSE=1``
    Print every call before it runs (to find a hang's input).
``KL_FAST_FUZZ_TORCH=0``
    Draw no torch tensors (needed under a preloaded ASan, see fuzz/README.md).
``KL_FAST_FUZZ_DIFF=1``
    Also compare each successful cython/numba result with the numpy reference backend
    (same shape and dtype, values within 1e-9 relative, 1e-3 for float32).
"""

import importlib
import importlib.util
import os
import sys
import tempfile
import warnings

import atheris

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPILED = ("rows", "spaces", "gaussian_full", "mutual_information", "pairwise", "elementwise")


def use_debug_build(ext_dir):
    """Import kl_fast from this tree with its compiled modules taken from `ext_dir`.

    The search path of the package ``kl_fast._cython`` lists
    ``ext_dir/kl_fast/_cython`` first, so ``kl_fast._cython.rows`` etc. load
    from the debug build while the Python modules come from the tree.
    Returns the loaded compiled modules' files; raises if one of them is not
    in `ext_dir`.
    """
    ext_pkg = os.path.join(os.path.abspath(ext_dir), "kl_fast")
    tree_pkg = os.path.join(ROOT, "kl_fast")
    if "kl_fast" in sys.modules:
        raise RuntimeError("use_debug_build must run before kl_fast is imported")
    spec = importlib.util.spec_from_file_location(
        "kl_fast", os.path.join(tree_pkg, "__init__.py"),
        submodule_search_locations=[ext_pkg, tree_pkg])
    module = importlib.util.module_from_spec(spec)
    sys.modules["kl_fast"] = module
    # the compiled subpackage first: kl_fast's own import loads kernels from it
    compiled = importlib.util.spec_from_file_location(
        "kl_fast._cython", os.path.join(tree_pkg, "_cython", "__init__.py"),
        submodule_search_locations=[os.path.join(ext_pkg, "_cython"),
                                    os.path.join(tree_pkg, "_cython")])
    sys.modules["kl_fast._cython"] = importlib.util.module_from_spec(compiled)
    compiled.loader.exec_module(sys.modules["kl_fast._cython"])
    spec.loader.exec_module(module)
    files = {}
    for name in COMPILED:
        mod = importlib.import_module(f"kl_fast._cython.{name}")
        if not os.path.abspath(mod.__file__).startswith(ext_pkg + os.sep):
            raise RuntimeError(f"kl_fast._cython.{name} came from {mod.__file__}, not {ext_pkg}")
        files[name] = mod.__file__
    return files


with atheris.instrument_imports(include=["kl_fast"]):
    if os.environ.get("KL_FAST_FUZZ_EXT"):
        _LOADED = use_debug_build(os.environ["KL_FAST_FUZZ_EXT"])
    else:
        sys.path.insert(0, ROOT)
        _LOADED = None
    import numpy as np

    import kl_fast
    import kl_fast.scipy as kl_scipy
    from kl_fast._cli.score import score_files
    from kl_fast._cython import elementwise as _elementwise_cython
    from kl_fast._cython import rows as _kernels_cython

ALL_BACKENDS = ("cython", "numba", "numpy")
BACKENDS = tuple(b.strip() for b in
                 os.environ.get("KL_FAST_FUZZ_BACKENDS", ",".join(ALL_BACKENDS)).split(",")
                 if b.strip())
VERBOSE = os.environ.get("KL_FAST_FUZZ_VERBOSE") == "1"
DIFF = os.environ.get("KL_FAST_FUZZ_DIFF") == "1"
try:
    # KL_FAST_FUZZ_TORCH=0 under a preloaded ASan: torch's C++ exceptions trip its checks
    if os.environ.get("KL_FAST_FUZZ_TORCH", "1") != "1":
        raise ImportError("torch inputs turned off")
    import torch
except ImportError:  # torch inputs are drawn only where torch is installed
    torch = None
ALLOWED = (ValueError, TypeError)

# ---- values -----------------------------------------------------------------------------

SPECIAL = (0.0, -0.0, 1.0, -1.0, 0.5, np.nan, -np.nan, np.inf, -np.inf, 5e-324, 2.2e-308,
           1e-300, 1e-45, 1.4e-45, 6e-8, 1e-16, 1e308, 1.7976931348623157e308, 3.4e38, 65504.0,
           1e-7, 0.999999, 1 - 1e-16, 2.0, 709.0, 710.0, -745.0, 88.7, -103.0, 1e4, -1e4)
FLOAT_DTYPES = ("float64", "float32", "float16", ">f8", ">f4", "longdouble")
OTHER_DTYPES = ("int64", "int32", "int8", "uint8", "uint64", ">i8", "bool", "complex128",
                "complex64", "object", "U3", "datetime64[ns]", "timedelta64[s]")
# 8193 and 16385: rows longer than the kernels' summation BLOCK (8192), so the
# multi-block and split-row (few rows, several threads) paths run too
SIZES = (0, 1, 1, 2, 2, 3, 3, 4, 5, 7, 8, 16, 17, 33, 64, 65, 257, 1025, 8193, 16385)


class Draw:
    """Decisions from the fuzzer's bytes (atheris.FuzzedDataProvider), named by use."""

    def __init__(self, data):
        self.fdp = atheris.FuzzedDataProvider(data)

    def pick(self, options):
        return options[self.fdp.ConsumeIntInRange(0, len(options) - 1)]

    def chance(self, percent):
        return self.fdp.ConsumeIntInRange(0, 99) < percent

    def int(self, lo, hi):
        return self.fdp.ConsumeIntInRange(lo, hi)

    def floats(self, n):
        """n float64 values: probabilities, raw doubles, special values or a mix."""
        mode = self.int(0, 5)
        if n == 0:
            return np.zeros(0)
        if mode == 0:  # a valid distribution along the last axis (set by the caller)
            raw = np.array([self.fdp.ConsumeIntInRange(0, 255) for _ in range(min(n, 64))],
                           dtype=float)
            return np.resize(raw, n)
        if mode == 1:  # raw doubles: anything a bit pattern can hold
            vals = [self.fdp.ConsumeRegularFloat() if self.chance(80)
                    else self.fdp.ConsumeFloat() for _ in range(min(n, 32))]
            return np.resize(np.array(vals, dtype=float), n)
        if mode == 2:  # special values
            return np.resize(np.array([self.pick(SPECIAL) for _ in range(min(n, 32))]), n)
        if mode == 3:  # logits
            return np.resize(np.array([self.fdp.ConsumeIntInRange(-800, 800) / 8.0
                                       for _ in range(min(n, 32))]), n)
        if mode == 4:  # small labels
            return np.resize(np.array([self.int(-3, 9) for _ in range(min(n, 16))],
                                      dtype=float), n)
        base = self.floats(n)  # probabilities sprinkled with special values
        for _ in range(self.int(0, 3)):
            base[self.int(0, n - 1)] = self.pick(SPECIAL)
        return base

    def shape(self, ndim=None):
        ndim = self.int(0, 3) if ndim is None else ndim
        shape = [self.pick(SIZES) for _ in range(ndim)]
        # keep one call cheap; zero-length dimensions count as 1 (a (16385, 16385, 0)
        # input has a 2 GB result)
        while int(np.prod([max(d, 1) for d in shape], dtype=np.int64)) > 40000:
            shape[shape.index(max(shape))] //= 4
        return tuple(shape)

    def array(self, shape=None, probs=True, dtype=None):
        """An array of `shape` in a drawn dtype and memory layout."""
        shape = self.shape() if shape is None else shape
        n = int(np.prod(shape, dtype=np.int64))
        x = self.floats(n).reshape(shape)
        if probs and len(shape) and shape[-1] and self.chance(60):
            with np.errstate(all="ignore"):
                total = np.abs(x).sum(axis=-1, keepdims=True)
                x = np.where(total > 0, np.abs(x) / np.where(total > 0, total, 1), x)
        dtype = dtype or (self.pick(FLOAT_DTYPES) if self.chance(85)
                          else self.pick(OTHER_DTYPES))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                x = x.astype(dtype)
            except (ValueError, TypeError, OverflowError):
                x = x.astype(object)
        return self.layout(x)

    def layout(self, x):
        kind = self.int(0, 9)
        if kind == 1 and x.ndim >= 2:
            return np.asfortranarray(x)
        if kind == 2 and x.ndim:
            return np.flip(x.copy(), axis=self.int(0, x.ndim - 1))  # negative stride
        if kind == 3 and x.ndim and x.size:  # zero stride along one axis
            ax = self.int(0, x.ndim - 1)
            return np.broadcast_to(np.take(x, [0], axis=ax), x.shape)
        if kind == 4 and x.ndim:  # every other element of a bigger array
            big = np.repeat(x, 2, axis=-1)
            return big[..., ::2]
        if kind == 5 and x.dtype.kind in "fiuc" and x.dtype.isnative:
            return x.astype(x.dtype.newbyteorder(">") if x.dtype.byteorder != ">" else x.dtype)
        if kind == 6 and x.dtype != object and x.dtype.itemsize > 1:  # misaligned
            buf = np.empty(x.nbytes + 1, dtype=np.uint8)
            y = np.frombuffer(buf[1:].data, dtype=x.dtype, count=x.size).reshape(x.shape)
            y[...] = x
            return y
        if kind == 7:
            x = x.copy()
            x.flags.writeable = False
            return x
        if kind == 8 and x.ndim >= 2:  # transposed view
            return np.swapaxes(x.copy(), -1, -2).copy().swapaxes(-1, -2)
        return x

    def maybe_odd(self, x):
        """Rarely replace an array argument by a non-array or a CPU torch tensor."""
        if self.chance(90):
            return x
        if torch is not None and isinstance(x, np.ndarray) and self.chance(40):
            try:
                return torch.from_numpy(x.copy())  # torch in -> torch out
            except (TypeError, ValueError):  # a dtype torch lacks: keep the array
                return x
        return self.pick((None, 1.5, "p", [0.5, 0.5], [[0.2, 0.8]], [], [[]], 3, True,
                          [0.5, "a"], {"a": 1}, np.float64(0.3), np.array(0.25), object()))


# ---- keywords ---------------------------------------------------------------------------

KEYWORDS = {
    "axis": (-1, -1, 0, 1, 2, -2, -3, 3, None, 1.0, "a", (0, 1)),
    "axes": ((-2, -1), (0, 1), (1, 2), (-1, -2), (0, 0), (0,), (0, 5), None, 1, "ab"),
    "base": (None, None, 2, 10, np.e, 2.0, 1, 0, -2, 1.0 + 1e-15, np.nan, np.inf, "2", 1e-300),
    "eps": (0.0, 0.0, 1e-12, 1e-6, 0.1, 0.5, 1.0, -1e-9, np.nan, np.inf, 5e-324, "0", None),
    "normalize": (False, True, 0, 1, "yes", None),
    "reduction": ("none", "sum", "mean", "batchmean", "none", "max", None, 1),
    "keepdims": (False, True, 1, None),
    "space": ("prob", "logits", "log", "log_prob", "logprob", "bogus", None, 1),
    "temperature": (1.0, 0.5, 2.0, 1e-300, 1e300, 0.0, -1.0, np.nan, np.inf, "1", None),
    "ignore_index": (None, -100, 0, 1, -1, 2**40, 1.5, "x", True),
    "num_threads": (None, 1, 2, 3, 0, -1, 64, 1.5, "2"),
    "validate": (True, False),
    "scale": ("var", "std", "logvar", "log_var", "bogus", None),
    "kind": ("k1", "k2", "k3", "k4", None, 3),
    "precise": (False, True, "x"),
    "backend": BACKENDS + ("auto", "bogus", None),
}


def keywords(draw, names):
    """A drawn subset of the keywords in `names`, drawn values (valid or not)."""
    kw = {}
    for name in names:
        key = "space" if name.endswith("space") else name
        if draw.chance(25 if name not in ("backend", "validate") else 80):
            kw[name] = draw.pick(KEYWORDS[key])
    if "backend" in names and "backend" not in kw:
        kw["backend"] = draw.pick(BACKENDS)
    return kw


def maybe_out(draw, kw, shape_hint):
    if draw.chance(12):
        shape = shape_hint if draw.chance(50) else draw.shape(draw.int(0, 2))
        kw["out"] = draw.pick((np.empty(shape, dtype=draw.pick(("float64", "float32", "int64"))),
                               None, [0.0], np.empty(shape, dtype=np.float64)[..., ::-1]
                               if len(shape) else None))


ROW = ("axis", "base", "eps", "normalize", "reduction", "keepdims", "num_threads", "validate",
       "backend")

# ---- targets ----------------------------------------------------------------------------


def _pair(draw):
    shape = draw.shape(draw.int(1, 3))
    p = draw.array(shape)
    q = draw.array(shape if draw.chance(85) else draw.shape())
    return p, q, shape


def t_kl(draw):
    p, q, shape = _pair(draw)
    kw = keywords(draw, ROW + ("p_space", "q_space", "temperature"))
    maybe_out(draw, kw, shape[:-1])
    return kl_fast.kl_divergence, (draw.maybe_odd(p), draw.maybe_odd(q)), kw


def t_entropy(draw):
    p = draw.array()
    kw = keywords(draw, ROW + ("space", "temperature"))
    maybe_out(draw, kw, p.shape[:-1])
    return kl_fast.entropy, (draw.maybe_odd(p),), kw


def t_cross_entropy(draw):
    p, q, shape = _pair(draw)
    if draw.chance(40):  # integer labels with one dimension fewer
        p = draw.array(shape[:-1], probs=False,
                       dtype=draw.pick(("int64", "int32", "uint8", ">i8", "int16", "float64")))
    kw = keywords(draw, ROW + ("q_space", "temperature", "ignore_index"))
    maybe_out(draw, kw, shape[:-1])
    return kl_fast.cross_entropy, (draw.maybe_odd(p), draw.maybe_odd(q)), kw


def t_js(draw):
    p, q, shape = _pair(draw)
    kw = keywords(draw, ROW)
    maybe_out(draw, kw, shape[:-1])
    return kl_fast.js_divergence, (draw.maybe_odd(p), draw.maybe_odd(q)), kw


def t_gaussian_kl(draw):
    shape = draw.shape(draw.int(0, 3))
    args = [draw.array(shape, probs=False) for _ in range(draw.pick((2, 2, 4)))]
    kw = keywords(draw, ("scale", "axis", "base", "reduction", "keepdims", "num_threads",
                         "validate", "backend"))
    maybe_out(draw, kw, shape[:-1])
    return kl_fast.gaussian_kl, tuple(draw.maybe_odd(a) for a in args), kw


def t_gaussian_kl_full(draw):
    n, d = draw.pick((0, 1, 2, 3, 5)), draw.pick((0, 1, 2, 3, 4, 9))
    mu1 = draw.array((n, d) if draw.chance(80) else draw.shape(), probs=False)
    a = draw.array((n, d, d), probs=False, dtype="float64")
    if draw.chance(70):  # mostly symmetric positive definite
        with np.errstate(all="ignore"):
            a = a @ np.swapaxes(a, -1, -2) + np.eye(d) * draw.pick((1e-12, 1.0, 10.0, 0.0))
    with np.errstate(all="ignore"):
        cov1 = draw.layout(a.astype(draw.pick(FLOAT_DTYPES)))
    args = [mu1, cov1]
    if draw.chance(60):
        args += [draw.array((n, d), probs=False), draw.layout(cov1.copy())]
    kw = keywords(draw, ("base", "reduction", "num_threads", "validate", "backend"))
    maybe_out(draw, kw, (n,))
    return kl_fast.gaussian_kl_full, tuple(draw.maybe_odd(x) for x in args), kw


def t_mutual_information(draw):
    shape = draw.shape(draw.int(1, 4)) if draw.chance(20) else \
        (draw.pick((0, 1, 2, 3)),) + draw.shape(2)
    joint = draw.array(shape)
    kw = keywords(draw, ("axes", "base", "eps", "normalize", "reduction", "keepdims",
                         "num_threads", "validate", "backend"))
    maybe_out(draw, kw, shape[:-2])
    return kl_fast.mutual_information, (draw.maybe_odd(joint),), kw


def t_pairwise(draw):
    k = draw.pick(SIZES[:12] + (8193,))
    P = draw.array((draw.pick((0, 1, 2, 5, 9)), k) if draw.chance(85) else draw.shape())
    args = (P,) if draw.chance(30) else (P, draw.array((draw.pick((0, 1, 3, 8)), k)))
    fn = draw.pick((kl_fast.pairwise_kl, kl_fast.pairwise_js))
    names = ("base", "eps", "normalize", "num_threads", "validate", "backend")
    kw = keywords(draw, names + (("precise",) if fn is kl_fast.pairwise_kl else ()))
    maybe_out(draw, kw, (P.shape[0], args[-1].shape[0]) if P.ndim == 2 else ())
    return fn, tuple(draw.maybe_odd(a) for a in args), kw


def t_binary(draw):
    shape = draw.shape()
    a = draw.array(shape, probs=False)
    b = draw.array(shape if draw.chance(85) else draw.shape(), probs=False)
    fn = draw.pick((kl_fast.binary_kl, kl_fast.binary_cross_entropy))
    names = ("base", "eps", "reduction", "num_threads", "validate", "backend")
    names += ("p_space", "q_space") if fn is kl_fast.binary_kl else ("q_space",)
    kw = keywords(draw, names)
    maybe_out(draw, kw, shape)
    return fn, (draw.maybe_odd(a), draw.maybe_odd(b)), kw


def t_kl_estimate(draw):
    shape = draw.shape()
    a = draw.array(shape, probs=False)
    b = draw.array(shape if draw.chance(85) else draw.shape(), probs=False)
    kw = keywords(draw, ("kind", "base", "reduction", "num_threads", "validate", "backend"))
    maybe_out(draw, kw, shape)
    return kl_fast.kl_estimate, (draw.maybe_odd(a), draw.maybe_odd(b)), kw


def t_scipy(draw):
    which = draw.int(0, 2)
    shape = draw.shape(draw.int(0, 2))
    a = draw.array(shape)
    b = draw.array(shape if draw.chance(85) else draw.shape())
    if which == 0:
        kw = {"out": np.empty(shape)} if draw.chance(20) else {}
        return kl_scipy.rel_entr, (a, b), kw
    kw = {}
    if draw.chance(40):
        kw["base"] = draw.pick(KEYWORDS["base"])
    if draw.chance(40):
        kw["axis"] = draw.pick(KEYWORDS["axis"])
    if which == 1:
        return kl_scipy.entropy, (a, b) if draw.chance(60) else (a,), kw
    if draw.chance(30):
        kw["keepdims"] = draw.pick(KEYWORDS["keepdims"])
    return kl_scipy.jensenshannon, (a, b), kw


def t_vector_fast(draw):
    """The compiled small-call path: must return a number or None for any input."""
    n = draw.pick(SIZES)
    p = draw.maybe_odd(draw.array((n,), dtype=draw.pick(("float64", "float32", ">f8",
                                                          "float16"))))
    q = draw.maybe_odd(draw.array((n if draw.chance(85) else draw.pick(SIZES),),
                                  dtype=draw.pick(("float64", "float32"))))
    kind = draw.int(0, 3)  # the QUANTITY_CODES values
    return _kernels_cython.vector_fast, (p, q, kind, draw.pick((1 << 15, 4, 0, -1))), {}


def t_rel_entr_1d(draw):
    """The scipy drop-in's compiled kernel, called as kl_fast.scipy calls it."""
    n = draw.pick(SIZES)
    dt = draw.pick(("float64", "float32"))
    x = draw.array((n,), dtype=dt)
    y = draw.array((n,), dtype=dt)
    n_threads = draw.pick((1, 2))

    def rel_entr_1d(x, y):  # `out` is written, so it is not one of the checked inputs
        return _kernels_cython.rel_entr_1d(x, y, np.empty(n, dtype=dt), n_threads)
    return rel_entr_1d, (x, y), {}


def t_point(draw):
    """The elementwise scalar kernel, every operation code the module defines."""
    return _elementwise_cython.point, (draw.int(0, 7), draw.pick(SPECIAL + (0.3, 0.7)),
                                       draw.pick(SPECIAL + (0.3, 0.7)),
                                       draw.pick((0.0, 1e-12, 0.1, 0.5))), {}


def t_score(draw):
    """``kl-fast score`` on a drawn .npy (sometimes with a corrupted header)."""
    metric = draw.pick(("kl", "entropy", "cross-entropy", "js", "binary-kl"))
    p, q, shape = _pair(draw)
    kw = {}
    for name in ("axis", "eps", "base", "reduction", "validate", "num_threads"):
        if draw.chance(20):
            kw[name] = draw.pick(KEYWORDS[name])
    if draw.chance(20):
        kw["chunk_rows"] = draw.pick((1, 2, 7, 0, -1, None))
    kw["backend"] = draw.pick(BACKENDS)
    corrupt = draw.int(0, 4) == 0
    cut = draw.int(0, 200)
    byte = draw.int(0, 255)
    return _ScoreCall(metric, p, q, corrupt, cut, byte), (), kw


class _ScoreCall:
    """score_files on temporary .npy files; the output file must not survive a failure."""

    def __init__(self, metric, p, q, corrupt, cut, byte):
        self.metric, self.p, self.q = metric, p, q
        self.corrupt, self.cut, self.byte = corrupt, cut, byte
        self.__name__ = f"score_files[{metric}]"

    def _write(self, path, x):
        if x.dtype == object or x.dtype.kind in "U":
            x = np.zeros(x.shape)
        np.save(path, np.ascontiguousarray(x))
        if self.corrupt:
            with open(path, "r+b") as fh:
                data = bytearray(fh.read())
                if data:
                    data[self.cut % len(data)] = self.byte
                fh.seek(0)
                fh.write(bytes(data[: len(data) - (self.cut % 3)]))
                fh.truncate()

    def __call__(self, **kw):
        with tempfile.TemporaryDirectory() as tmp:
            pp, qq, out = (os.path.join(tmp, n) for n in ("p.npy", "q.npy", "out.npy"))
            self._write(pp, self.p)
            self._write(qq, self.q)
            q = None if self.metric == "entropy" else qq
            try:
                return score_files(pp, q, metric=self.metric, out=out, **kw)
            except ALLOWED:
                leftovers = sorted(set(os.listdir(tmp)) - {"p.npy", "q.npy"})
                if leftovers:
                    raise AssertionError(f"failed score left files {leftovers}") from None
                raise


TARGETS = (t_kl, t_entropy, t_cross_entropy, t_js, t_gaussian_kl, t_gaussian_kl_full,
           t_mutual_information, t_pairwise, t_binary, t_kl_estimate, t_scipy,
           t_vector_fast, t_rel_entr_1d, t_point, t_score)

# ---- the check --------------------------------------------------------------------------


def _snapshot(args):
    return [(a, a.tobytes()) for a in args
            if isinstance(a, np.ndarray) and a.dtype != object]


def describe(fn, args, kw):
    def one(a):
        if isinstance(a, np.ndarray):
            return (f"array(shape={a.shape}, dtype={a.dtype}, strides={a.strides}, "
                    f"values={np.array2string(a.ravel()[:8], precision=17)})")
        return repr(a)
    return (f"{getattr(fn, '__name__', fn)}({', '.join(one(a) for a in args)}, "
            f"{', '.join(f'{k}={one(v)}' for k, v in kw.items())})")


def run_one(data):
    """Decode one call from `data`, run it, raise on anything but a result/ValueError/TypeError."""
    draw = Draw(data)
    target = draw.pick(TARGETS)
    try:
        fn, args, kw = target(draw)
    except ALLOWED:  # a drawn combination numpy itself refuses: not a call
        return
    if VERBOSE:
        print(describe(fn, args, kw), file=sys.stderr, flush=True)
    before = _snapshot(args)
    result = _call(fn, args, kw)
    for a, raw in before:
        if a.tobytes() != raw:
            raise AssertionError(f"input modified\n  call: {describe(fn, args, kw)}")
    if DIFF and result is not None and kw.get("backend") in ("cython", "numba") \
            and kw.get("validate", True) is True and "out" not in kw \
            and getattr(fn, "__module__", "").startswith("kl_fast._"):
        reference = _call(fn, args, dict(kw, backend="numpy"))
        _compare(result, reference, fn, args, kw)


def _call(fn, args, kw):
    """fn(*args, **kw), or None for ValueError/TypeError; AssertionError for anything else."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kw)
    except ALLOWED:
        return None
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}\n  call: {describe(fn, args, kw)}"
                             ) from exc


def _compare(result, reference, fn, args, kw):
    """KL_FAST_FUZZ_DIFF=1: a compiled backend's result against the numpy reference."""
    if reference is None:
        raise AssertionError(f"numpy backend refused what {kw['backend']} computed\n"
                             f"  call: {describe(fn, args, kw)}")
    a, b = np.asarray(result), np.asarray(reference)
    rtol = 1e-3 if a.dtype == np.float32 else 1e-9
    same = (a.shape == b.shape and a.dtype == b.dtype
            and np.allclose(a, b, rtol=rtol, atol=rtol * 1e-3, equal_nan=True))
    if not same:
        raise AssertionError(f"{kw['backend']} != numpy: {a!r} vs {b!r}\n"
                             f"  call: {describe(fn, args, kw)}")


def main():
    if _LOADED:
        print("kl_fast fuzz: debug build modules:", file=sys.stderr)
        for path in _LOADED.values():
            print(f"  {path}", file=sys.stderr)
    print(f"kl_fast fuzz: kl_fast from {kl_fast.__file__}, backends {BACKENDS}",
          file=sys.stderr, flush=True)
    atheris.Setup(sys.argv, run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
