"""The path of every reduction over rows of probabilities (KL, JS, entropy,
cross-entropy and the f-divergences): the small-call shortcut, the checks the
kernel's one pass must make, one kernel call, and the report turned into errors.
"""


from ._engine.report import raise_for_sums, raise_for_values
from ._engine.run import finish, run_kernel
from ._inputs.prepare import prepare_inputs
from ._inputs.shapes import make_rows
from ._inputs.validation import check_base, check_eps, check_flag, sum_tolerance

__all__ = ["PROB_REQUIREMENT", "FAST_CODES", "fast_vector", "check_mode",
           "reduce_probability_rows"]

PROB_REQUIREMENT = "probabilities (or counts) must be finite and >= 0"

_FAST_MAX_N = 1 << 15


def _load_fast_path():
    """The compiled one-vector shortcut and its {row kernel: code}, if "auto" means the
    Cython kernels here: (None, {}) if not."""
    from ._engine.backends import auto_name, load_backend

    if auto_name() != "cython":
        return None, {}
    module = load_backend("cython")
    return (None, {}) if module is None else (module.vector_fast, module.QUANTITY_CODES)


# One short plain vector with default options skips the general path (about
# 30 us of Python) and costs ~0.2 us, below scipy.special.rel_entr(p, q).sum().
# It declines (returns None) anything else, invalid data included.
# The shortcut takes the row kernels of the table of src/kl_blocks.h (FAST_CODES:
# kl_rows, entropy_rows, ..., chi2_rows); others (renyi_rows) go the general path.
_FAST, FAST_CODES = _load_fast_path()


def fast_vector(kernel, p, q, axis, base, eps, normalize, reduction, keepdims, out, backend,
                num_threads, validate, sum_tol):
    """The shortcut's result for one plain 1-D distribution (pair) with default
    options through row kernel `kernel` ("kl_rows"), or None: then the general path
    runs (and words any error)."""
    code = FAST_CODES.get(kernel)
    if (code is not None and axis == -1 and base is None and eps == 0.0
            and normalize is False and reduction == "none" and keepdims is False
            and out is None and backend == "auto" and num_threads is None and validate is True
            and sum_tol is None):
        return _FAST(p, q, code, _FAST_MAX_N)
    return None


def check_mode(opts, normalize, eps, dtype, n_cat):
    """(check, tol) for the kernel: what the one pass must verify."""
    if not opts.validate:
        return 0, 0.0
    if normalize:
        # counts need no sum of 1, only a positive sum (unless eps supplies one)
        return (1, -1.0) if eps > 0 else (2, -1.0)
    return 2, sum_tolerance(dtype, n_cat, opts.sum_tol)


def reduce_probability_rows(kernel_name, named, axis, base, eps, normalize, opts, advice,
                            extra=()):
    """One pass of row kernel `kernel_name` over the probability rows `named`
    ([(name, array_like), ...]), its report judged, the result shaped.

    `advice` is (the keywords that would declare each input as logits or
    log-probabilities, the elementwise Bernoulli function to offer for 1-D
    binary data), for the error messages; `extra` are the kernel's own
    arguments after ``log_base`` (Renyi's alpha)."""
    log_base = check_base(base)
    eps = check_eps(eps)
    normalize = check_flag(normalize, "normalize")
    arrays, dtype, out_kind, tol_dtype = prepare_inputs(named)
    names = [name for name, _ in named]
    rows = make_rows(arrays, names, axis)
    check, tol = check_mode(opts, normalize, eps, tol_dtype, rows.n_cat)
    transform = normalize or eps > 0
    result, report = run_kernel(kernel_name, rows, dtype,
                                (check, tol, eps, transform, log_base, *extra), opts)
    if check:
        space_kws, binary = advice
        raise_for_values(report, rows, names, arrays, PROB_REQUIREMENT, space_kws)
        raise_for_sums(report, rows, names, arrays, tol, binary)
    return finish(result, rows, opts, out_kind)
