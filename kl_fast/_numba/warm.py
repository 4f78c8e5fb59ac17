"""Compile every Numba kernel of every family now (or load it from the disk cache).

``warmup(dtypes)`` walks each family's compiled drivers -- probability rows,
labels and Gaussians (``rows``), log and logits spaces, the elementwise
functions, pairwise matrices, mutual information, full-covariance Gaussians --
so that a later first call loads machine code instead of compiling.  The test
suite runs it in a background process on the otherwise idle core while the
tests start (``tests/conftest.py``): the kernels it reaches first are cached on
disk before the tests ask for them.
"""

import numpy as np

from . import elementwise, gaussian_full, mutual_information, pairwise, rows, spaces

__all__ = ["warmup"]


def warmup(dtypes=("float32", "float64")):
    """Compile (or load) every kernel variant of every family for `dtypes`."""
    rows.warmup(dtypes)
    elementwise.warmup(dtypes)
    for dtype in (np.dtype(d).name for d in dtypes):
        for family in ("rows", "labels"):
            for parallel in (False, True):
                spaces.compiled(family, parallel, dtype)
        for module in (pairwise, gaussian_full, mutual_information):
            for variant in ("serial", "parallel"):
                module.compiled(variant, dtype)
