"""Row-streamed table inputs of ``kl-fast score`` (CSV, parquet): the shared part.

A table is read once, from its first row to its last, in row chunks: a
text or columnar file cannot hand out an arbitrary window the way a mapped
``.npy`` can, so slabs must come in order along the rows (axis 0), which is
how the chunk loop asks for them.  A table with one column is 1-D (N,), as
``numpy.loadtxt`` reads it; with K columns it is (N, K).
"""

import math

import numpy as np

from .score_errors import ScoreInputError, dtype_problem

__all__ = ["TableSource"]


class TableSource:
    """A table read by rows, in order; subclasses implement ``_read_rows(n)``."""

    #: the format, for messages ("CSV", "parquet")
    kind = "table"

    def __init__(self, label, shape, dtype, file_bytes):
        self.label = label
        self.shape = tuple(shape)
        self.read_bytes = file_bytes     # for the summary line: what was read from disk
        self._position = 0               # the next row _read_rows will deliver
        self._set_dtype(dtype)

    def _set_dtype(self, dtype):
        self.dtype = np.dtype(dtype)
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize

    def check_dtype(self, allow_int):
        problem = dtype_problem(self.dtype, allow_int)
        if problem:
            raise ScoreInputError(f"{self.label} {problem}")

    def read_slab(self, axis, start, stop):
        """Rows ``start:stop``; `axis` must be 0 and the rows must follow the last ones."""
        if axis != 0:
            raise ScoreInputError(
                f"{self.label}: a {self.kind} file is read row by row and cannot be split "
                "along its columns (its rows would be the category axis, as with --axis 0); "
                "write one distribution per row and keep the default --axis -1")
        if start != self._position:
            raise ScoreInputError(f"{self.label}: a {self.kind} file is read in order "
                                  f"(asked for row {start}, at {self._position})")
        rows = self._read_rows(stop - start)
        self._position = stop
        return rows

    def read_all(self):
        """The whole table (an input that broadcasts and is not sliced)."""
        return np.array(self.read_slab(0, 0, self.shape[0]), copy=True)

    def close(self):
        pass
