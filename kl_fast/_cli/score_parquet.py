"""Parquet input of ``kl-fast score`` (the optional ``parquet`` extra: pyarrow).

The file's row count and schema come from its footer, so nothing is read
before the chunk loop; rows are then read in order with
``ParquetFile.iter_batches`` (pyarrow decodes one row group's pages at a
time), converted chunk by chunk into one reused numpy buffer.

What is read: the column a key names, else every column.  Numeric columns
(all integers or all floats) are the category axis, (N, K); one numeric
column is (N,); one list or fixed-size-list column of numbers is (N, K), its
lists all of length K.  Nulls are refused: a missing value has no right
number to stand in for it.
"""

import numpy as np

from .score_errors import ScoreInputError
from .score_table import TableSource

__all__ = ["ParquetSource"]


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise ScoreInputError('reading .parquet files needs pyarrow: pip install '
                              '"kl_fast[parquet]"') from None
    return pa, pc, pq


def _numeric(pa, typ):
    return pa.types.is_integer(typ) or pa.types.is_floating(typ)


def _numbers(array):
    """A zero-copy numpy view of a null-free array of numbers.

    Read from the data buffer directly: pyarrow's ``to_numpy`` imports pandas
    (about a second) even for a zero-copy view.
    """
    dtype = np.dtype(array.type.to_pandas_dtype())
    if len(array) == 0:
        return np.empty(0, dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array),
                         offset=array.offset * dtype.itemsize)


def _pick(names, key, strict, label):
    """The columns to read: the one `key` names, else all."""
    if key is None:
        return list(names)
    if key in names:
        return [key]
    if not strict and len(names) == 1:
        return list(names)     # the shared --key names a column of another input
    flag = "--p-key/--q-key" if strict else "--key"
    raise ScoreInputError(f"{label} has no column {key!r} ({flag}); it holds {list(names)}")


class ParquetSource(TableSource):
    """A parquet file (or the column `key` names in it), read by row batches."""

    kind = "parquet"

    def __init__(self, path, key=None, strict_key=False, file_bytes=0):
        pa, self._pc, pq = _pyarrow()
        self._pa = pa
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise ScoreInputError(f"{path}: not a readable parquet file ({exc}); it may be "
                                  "truncated, write it again") from None
        schema = self._file.schema_arrow
        self._columns = _pick(schema.names, key, strict_key, path)
        label = path if key is None or len(schema.names) == 1 else f"{path}[{key}]"
        types = [schema.field(c).type for c in self._columns]
        rows = self._file.metadata.num_rows
        self._list = None
        lists = [c for c, t in zip(self._columns, types, strict=True)
                 if pa.types.is_list(t) or pa.types.is_large_list(t)
                 or pa.types.is_fixed_size_list(t)]
        if lists:
            if len(self._columns) != 1:
                raise ScoreInputError(
                    f"{label} has the list column {lists[0]!r} beside other columns; pick "
                    f"one with --p-key/--q-key (columns: {self._columns})")
            self._list = types[0]
            item = types[0].value_type
            if not _numeric(pa, item):
                raise ScoreInputError(f"{label}: the list column {lists[0]!r} holds {item}; "
                                      "score needs numbers")
            dtype = np.dtype(item.to_pandas_dtype())
            shape = (rows, self._list_length(label))
        else:
            bad = [f"{c!r} ({t})" for c, t in zip(self._columns, types, strict=True)
                   if not _numeric(pa, t)]
            if bad:
                raise ScoreInputError(
                    f"{label}: column {', '.join(bad)} is not numeric; every column read is a "
                    "category, so pick the data with --p-key/--q-key or drop that column")
            kinds = {pa.types.is_integer(t) for t in types}
            if len(kinds) > 1:
                ints = [c for c, t in zip(self._columns, types, strict=True)
                        if pa.types.is_integer(t)]
                raise ScoreInputError(
                    f"{label} mixes integer columns {ints} with float columns; an id or "
                    "label column would be read as a category: pick the data with "
                    "--p-key/--q-key or drop those columns")
            dtype = np.result_type(*(np.dtype(t.to_pandas_dtype()) for t in types))
            shape = (rows,) if len(types) == 1 else (rows, len(types))
        super().__init__(label, shape, dtype, file_bytes)
        self._batches = None
        self._pending, self._pending_at = None, 0
        self._buffer = None

    def _list_length(self, label):
        """K of a list column: fixed by its type, else the length of its first list."""
        if self._pa.types.is_fixed_size_list(self._list):
            return self._list.list_size
        for batch in self._file.iter_batches(batch_size=1, columns=self._columns):
            if batch.num_rows:
                first = batch.column(0)[0]
                if not first.is_valid:
                    raise ScoreInputError(f"{label}, row 0: a null list; fill or drop it")
                return len(first)
        return 0

    def _next_batch(self, n):
        if self._batches is None:
            self._batches = self._file.iter_batches(batch_size=max(n, 1),
                                                    columns=self._columns)
        try:
            batch = next(self._batches, None)
        except (self._pa.ArrowException, OSError) as exc:
            raise ScoreInputError(f"{self.label}: reading rows from {self._position:,} failed "
                                  f"({exc}); the file may be damaged, write it again") from None
        if batch is None:
            raise ScoreInputError(f"{self.label} ended after {self._position:,} rows; its "
                                  f"footer promises {self.shape[0]:,}: write it again")
        return batch

    def _read_rows(self, n):
        """The next `n` rows, in one reused buffer (valid until the next call)."""
        if self._buffer is None or self._buffer.shape[0] < n:
            self._buffer = None
            self._buffer = np.empty((n,) + self.shape[1:], dtype=self.dtype)
        out = self._buffer[:n]
        done = 0
        while done < n:
            if self._pending is None:
                self._pending, self._pending_at = self._next_batch(n), 0
            take = min(n - done, self._pending.num_rows - self._pending_at)
            piece = self._pending.slice(self._pending_at, take)
            self._fill(out[done:done + take], piece, self._position + done)
            done += take
            self._pending_at += take
            if self._pending_at == self._pending.num_rows:
                self._pending = None
        return out

    def _first_null(self, array):
        return self._pc.index(array.is_null(), True).as_py()

    def _null(self, array, first_row, column):
        return ScoreInputError(f"{self.label}, row {first_row + self._first_null(array):,}, "
                               f"column {column!r}: a null (missing value); fill or drop it "
                               "first")

    def _fill(self, out, piece, first_row):
        if self._list is None:
            for j, name in enumerate(self._columns):
                col = piece.column(j)
                if col.null_count:
                    raise self._null(col, first_row, name)
                values = _numbers(col)
                if out.ndim == 1:
                    out[:] = values
                else:
                    out[:, j] = values
            return
        col, name, k = piece.column(0), self._columns[0], self.shape[1]
        if col.null_count:
            raise self._null(col, first_row, name)
        lengths = _numbers(self._pc.list_value_length(col))
        wrong = np.flatnonzero(lengths != k)
        if wrong.size:
            i = int(wrong[0])
            raise ScoreInputError(f"{self.label}, row {first_row + i:,}: the list in column "
                                  f"{name!r} has {int(lengths[i])} values, the first row has "
                                  f"{k}; every row needs one value per category")
        values = col.flatten()
        if values.null_count:
            at = self._first_null(values)
            raise ScoreInputError(f"{self.label}, row {first_row + at // k:,}, column "
                                  f"{name!r}: a null inside the list; fill or drop it first")
        out[:] = _numbers(values).reshape(out.shape)

    def close(self):
        self._batches = None
        self._pending = None
        self._buffer = None
        self._file = None
