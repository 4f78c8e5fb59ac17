"""Inputs: the named arguments of a call as numpy float arrays of one dtype.

The first step of every public function (after its keyword checks): array
types are unwrapped at the ``_inputs.array_types`` boundary (torch, pandas, lists, ...),
each input is checked to be real numbers (``_inputs.validation.as_float_array``) and
all are brought to their common result dtype, without copying what already is.
"""

from . import array_types as _arrays
from .validation import as_float_array, result_dtype

__all__ = ["prepare_inputs"]


def prepare_inputs(named, what="probabilities", layout=()):
    """numpy float views of the named inputs, their common dtype, the output type,
    and the loosest row-sum tolerance dtype.

    Parameters
    ----------
    named : list of (str, array_like)
        The inputs with the argument names that error messages use.
    what : str
        What the inputs are, for messages ("probabilities", "Gaussian parameters").
    layout : tuple
        How pandas axes pair up: ``(slots, out_slots)`` of ``_inputs.array_types.gather``.

    Returns
    -------
    arrays : list of numpy.ndarray
        The inputs in the common dtype (views where no cast is needed).
    dtype : numpy.dtype
        The common result dtype.
    out_kind : object
        The array type the result goes back to (``_inputs.array_types``).
    tol_dtype : numpy.dtype
        The narrowest input dtype: an input keeps its own precision's row-sum
        tolerance when it is promoted to the common dtype.
    """
    raw, out_kind = _arrays.gather(named, *layout)
    arrays = [as_float_array(a, name, what) for (name, _), a in zip(named, raw, strict=False)]
    dtype = result_dtype(arrays)
    tol_dtype = min((a.dtype for a in arrays), key=lambda d: d.itemsize)
    arrays = [a.astype(dtype, copy=False) for a in arrays]
    return arrays, dtype, out_kind, tol_dtype
