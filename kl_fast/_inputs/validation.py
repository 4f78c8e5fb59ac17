"""Argument checks and dtype policy: explicit, flat, one concern each.

``TypeError`` for the kind of an argument, ``ValueError`` for its value; every
message names the argument, the reason and the fix.  Checks of the *data*
(negative, NaN or inf values, row sums) are not here: the kernels report
them in their one pass and ``_engine/report.py`` turns the report into the error.
"""

import functools
import math
import numbers

import numpy as np

__all__ = [
    "as_float_array",
    "as_label_array",
    "check_base",
    "check_eps",
    "check_reduction",
    "check_flag",
    "sum_tolerance",
    "check_sum_tol",
    "check_validate",
    "REDUCTIONS",
]

REDUCTIONS = ("none", "sum", "mean")

_KIND_NAMES = {
    "b": "bool",
    "c": "complex",
    "O": "object",
    "U": "string",
    "S": "bytes",
    "V": "structured/void",
    "M": "datetime",
    "m": "timedelta",
}


def _reject_kind(arr, name, what):
    kind = _KIND_NAMES.get(arr.dtype.kind, str(arr.dtype))
    raise TypeError(
        f"{name} has dtype {arr.dtype} ({kind}); {what} must be real numbers: "
        f"convert with {name}.astype(np.float64)"
    )


def _native_aligned(arr):
    """Kernels read native-endian, aligned memory; copy the rare arrays that are not."""
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not arr.flags.aligned or any(s % arr.itemsize for s in arr.strides):
        arr = np.array(arr, copy=True)
    return arr


def as_float_array(arr, name, what="probabilities"):
    """float32/float64 view of `arr` (float16 -> float32, integers -> float64)."""
    kind = arr.dtype.kind
    if kind == "f":
        if arr.dtype.itemsize < 4:
            arr = arr.astype(np.float32)
        elif arr.dtype.itemsize > 8:
            arr = arr.astype(np.float64)
    elif kind in "iu":
        arr = arr.astype(np.float64)
    else:
        _reject_kind(arr, name, what)
    return _native_aligned(arr)


def as_label_array(arr, name):
    """int64 array of class labels."""
    if arr.dtype.kind not in "iu":
        _reject_kind(arr, name, "class labels")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds labels beyond the int64 range; labels index categories")
    return _native_aligned(arr.astype(np.int64, copy=False))


def result_dtype(arrays):
    """float32 if every input is float32, else float64 (numpy promotion)."""
    if all(a.dtype == np.float32 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a real number >= 0, got {type(eps).__name__}")
    eps = float(eps)
    if not (eps >= 0.0 and math.isfinite(eps)):
        raise ValueError(f"eps must be finite and >= 0, got {eps}; pass e.g. eps=1e-12")
    return eps


def check_base(base):
    """log(base) to divide by: 1.0 for nats (base=None)."""
    if base is None:
        return 1.0
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise TypeError(f"base must be a real number or None, got {type(base).__name__}")
    base = float(base)
    if not (base > 0.0 and math.isfinite(base)) or base == 1.0:
        raise ValueError(f"base must be positive, finite and != 1, got {base}; "
                         "use base=2 for bits, None for nats")
    return math.log(base)


def check_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def check_sum_tol(sum_tol):
    """None (the default tolerance) or a finite float >= 0."""
    if sum_tol is None:
        return None
    if isinstance(sum_tol, bool) or not isinstance(sum_tol, numbers.Real):
        raise TypeError(f"sum_tol must be a float >= 0 or None, got {type(sum_tol).__name__}")
    sum_tol = float(sum_tol)
    if not (sum_tol >= 0.0 and math.isfinite(sum_tol)):
        raise ValueError(f"sum_tol must be finite and >= 0, got {sum_tol!r}; None gives the "
                         "default tolerance")
    return sum_tol


def check_validate(validate):
    """(checks on, full row check of the label path) from validate=True/False/"full"."""
    if isinstance(validate, str):
        if validate != "full":
            raise ValueError(f"validate must be True, False or 'full', got {validate!r}")
        return True, True
    return check_flag(validate, "validate"), False


# Float32 machine epsilon: the default tolerance assumes the data may have been
# float32 once (a model's softmax cast to float64) or printed with 7 decimals.
_EPS32 = float(np.finfo(np.float32).eps)


def sum_tolerance(dtype, n, sum_tol=None):
    """How far a row sum may stray from 1 (see ``_default_sum_tolerance``)."""
    if sum_tol is not None:
        return sum_tol
    return _default_sum_tolerance(np.dtype(dtype), int(n))


@functools.lru_cache(maxsize=256)
def _default_sum_tolerance(dtype, n):
    """How far a row sum of `n` values may stray from 1 before it counts as not
    normalized, by default (the public keyword `sum_tol` overrides it): ``n * eps(float32)``,
    at least 1e-6 and at most 1e-3, whatever the dtype: a float32 softmax
    normalized by a plain float32 sum is off by up to about ``n * eps32 / 2``
    (pairwise sums, as numpy's and torch's, far less), and a row printed with 7
    decimals by up to ``n * 5e-8`` -- while counts, logits and rows taken along
    the wrong axis miss 1 by far more.  float32 (and float16) inputs keep their
    own precision's looser bound, sqrt(eps32) growing as ``4 * n * eps32``
    (sklearn's ``log_loss`` uses sqrt(eps)).
    """
    tol = max(1e-6, n * _EPS32)
    eps = float(np.finfo(dtype).eps)
    if eps >= _EPS32:
        tol = max(tol, math.sqrt(eps), 4.0 * n * eps)
    return min(tol, 1e-3)
