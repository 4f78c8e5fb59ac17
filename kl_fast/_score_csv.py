"""CSV input of ``kl-fast score``: numbers as text, read in row chunks.

Two passes, both streaming (memory: one block or one chunk of lines):

1. a scan (:func:`_scan`) finds the header, the number of columns (from the
   header or the first data row) and the number of rows, counting newlines
   in 1 MiB binary blocks at C speed; for a one-column file it also tells
   whether every cell is an integer (class labels);
2. each chunk's lines are parsed by ``numpy.loadtxt`` (numpy's C parser).
   Only when it fails are the chunk's lines parsed again in Python, to name
   the line and column of the first problem.

Blank (whitespace-only) lines are skipped.  A first row whose cells are all
text is a header; see :func:`_is_header` for the cases that are refused
rather than guessed.
"""

import csv
import io
import itertools
import re

import numpy as np

from ._score_errors import ScoreInputError
from ._score_table import TableSource

__all__ = ["CsvSource", "check_delimiter", "HEADER_MODES"]

HEADER_MODES = ("auto", "yes", "no")
_BOM = b"\xef\xbb\xbf"
_BLOCK = 1 << 20     # scan blocks: 1 MiB (three copies of one are alive at a time)
_BLANK_LINE = re.compile(rb"(?m)^[ \t\r\f\v]*\n")
# a blank line can only start where one of these follows a newline (cheap `in` tests
# spare the regex, ~15x slower than counting newlines, on files without blank lines)
_MAYBE_BLANK = (b"\n\n", b"\n\r", b"\n ", b"\n\t", b"\n\f", b"\n\v")
# the bytes of a column of integers (quotes, signs, whitespace); anything else is a float
_INT_BYTES = b"0123456789+-\" \t\r\n\f\v"


def check_delimiter(delimiter, path):
    """The one-character delimiter for `path` (None: tab for .tsv, else a comma)."""
    if delimiter is None:
        return "\t" if str(path).lower().endswith(".tsv") else ","
    if delimiter in ("\\t", "tab"):
        return "\t"
    if (not isinstance(delimiter, str) or len(delimiter) != 1
            or delimiter in "0123456789.+-eE\"\r\n"):
        raise ScoreInputError(f"--delimiter must be one character that cannot be part of a "
                              f"number (',', ';', '\\t' or 'tab', ' ', '|'), got {delimiter!r}")
    return delimiter


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _cells(raw, delimiter, where):
    """The cells of one line (bytes), as the csv module splits them."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScoreInputError(f"{where} is not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start}); save the file as UTF-8") from None
    return next(csv.reader([text.rstrip("\r\n")], delimiter=delimiter, quotechar='"'), [])


def _is_header(cells, mode, where):
    """Whether the first non-blank line is a header; refuse the lines that are ambiguous."""
    if mode == "no":
        return False
    names = [c.strip() for c in cells]
    numeric = [_is_number(c) for c in names]
    if mode == "auto" and all(numeric):
        # pandas writes integer column names 0..K-1: the same text as a data row
        if len(names) > 1 and names == [str(i) for i in range(len(names))]:
            raise ScoreInputError(
                f"{where} is '{','.join(names[:4])}{',...' if len(names) > 4 else ''}': "
                "column names 0, 1, 2, ... (pandas' default) or a row of data? Say which "
                "with --header yes or --header no")
        return False
    if mode == "auto" and any(numeric):
        column = numeric.index(False) + 1
        raise ScoreInputError(
            f"{where}, column {column}: {names[column - 1]!r} is not a number, but the line "
            "also holds numbers, so it is neither a header nor a row of data; fix the line "
            "(or pass --header yes if it is the header)")
    if len(names) > 1 and names[0] == "":
        raise ScoreInputError(
            f"{where}: the header's first column has no name, the mark of a pandas index "
            "written by DataFrame.to_csv; its row numbers would be read as a category. "
            "Write the file with to_csv(..., index=False)")
    return True


def _count_rows(block):
    """Non-blank lines in `block`, a run of whole lines each ending in a newline."""
    n = block.count(b"\n")
    if block[:1].isspace() or any(mark in block for mark in _MAYBE_BLANK):
        n -= len(_BLANK_LINE.findall(block))
    return n


def _scan(path, delimiter, header_mode):
    """(first data line number, its byte offset, header?, columns, rows, all integers?)."""
    with open(path, "rb") as fp:
        line_no, first = 0, None
        while first is None:
            offset = fp.tell()
            raw = fp.readline()
            if not raw:
                break
            line_no += 1
            if line_no == 1 and raw.startswith(_BOM):
                raw, offset = raw[len(_BOM):], offset + len(_BOM)
            if not raw.isspace():
                first = raw
        if first is None:
            raise ScoreInputError(f"{path} is empty (no rows of numbers); write the data, "
                                  "one distribution per line")
        where = f"{path}, line {line_no}"
        cells = _cells(first, delimiter, where)
        header = _is_header(cells, header_mode, where)
        data_line, data_offset = line_no, offset
        if header:
            data_line, data_offset = line_no + 1, fp.tell()
        fp.seek(data_offset)
        rows, integer, tail = 0, len(cells) == 1, b""
        while True:
            block = fp.read(_BLOCK)
            if not block:
                break
            block = tail + block
            cut = block.rfind(b"\n") + 1
            tail, block = block[cut:], block[:cut]
            rows += _count_rows(block)
            integer = integer and not block.translate(None, _INT_BYTES)
        if tail and not tail.isspace():
            rows += 1
            integer = integer and not tail.translate(None, _INT_BYTES)
    if rows == 0:
        raise ScoreInputError(f"{path} has a header (line {line_no}) but no rows of numbers")
    return data_line, data_offset, header, len(cells), rows, integer


class CsvSource(TableSource):
    """A CSV file of numbers: (N,) for one column, else (N, K).

    One integer column is read as int64 (class labels); anything else as
    float64.  :meth:`use_float` turns an integer column into float64 where
    it is not used as labels (text carries no dtype of its own).
    """

    kind = "CSV"

    def __init__(self, path, delimiter=None, header="auto", file_bytes=0):
        if header not in HEADER_MODES:
            raise ScoreInputError(f"--header must be one of {HEADER_MODES}, got {header!r}")
        self._path = path
        self._delimiter = check_delimiter(delimiter, path)
        (self._line, self._offset, has_header, self.n_columns, rows,
         integer) = _scan(path, self._delimiter, header)
        self._columns_from = (f"the header (line {self._line - 1})" if has_header
                              else f"line {self._line}, the first row")
        shape = (rows,) if self.n_columns == 1 else (rows, self.n_columns)
        super().__init__(path, shape, np.int64 if integer else np.float64, file_bytes)
        self._fp = None

    def use_float(self):
        """Read an integer column as float64 (for a use other than class labels)."""
        self._set_dtype(np.float64)

    def _read_rows(self, n):
        if self._fp is None:
            self._fp = open(self._path, "rb")  # noqa: SIM115 - closed by close()
            self._fp.seek(self._offset)
        first_line = self._line
        lines, kept = [], 0
        while kept < n:
            more = list(itertools.islice(self._fp, n - kept))
            if not more:
                raise ScoreInputError(
                    f"{self.label} ended after {self._position + kept:,} rows but held "
                    f"{self.shape[0]:,} when it was first read; it changed while being read, "
                    "run again")
            lines.extend(more)
            kept += len(more) - sum(map(bytes.isspace, more))
        self._line += len(lines)
        data = lines if kept == len(lines) else [x for x in lines if not x.isspace()]
        try:
            text = b"".join(data).decode("utf-8")
            arr = np.loadtxt(io.StringIO(text), delimiter=self._delimiter, comments=None,
                             quotechar='"', dtype=self.dtype, ndmin=2)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._diagnose(lines, first_line, exc) from None
        if arr.shape != (n, self.n_columns):
            raise self._diagnose(lines, first_line, None)
        return arr.reshape((n,) + self.shape[1:])

    def _diagnose(self, lines, first_line, exc):
        """The first bad line of a chunk numpy could not read, as a one-line error."""
        integer = self.dtype.kind == "i"
        for line_no, raw in enumerate(lines, start=first_line):
            if raw.isspace():
                continue
            where = f"{self.label}, line {line_no}"
            cells = _cells(raw, self._delimiter, where)
            if len(cells) != self.n_columns:
                return ScoreInputError(
                    f"{where} has {len(cells)} field{'s' * (len(cells) != 1)} but "
                    f"{self._columns_from} has {self.n_columns} (delimiter "
                    f"{self._delimiter!r}); every row needs one value per category")
            for column, cell in enumerate(cells, start=1):
                try:
                    int(cell) if integer else float(cell)
                except ValueError:
                    what = ("an empty cell (a missing value)" if not cell.strip()
                            else f"{cell.strip()!r} is not a number")
                    return ScoreInputError(f"{where}, column {column}: {what}; every cell "
                                           "must be a number")
        last = first_line + len(lines) - 1
        reason = exc if exc is not None else "the rows do not all have the same length"
        return ScoreInputError(f"{self.label}, lines {first_line}-{last}: {reason}")

    def close(self):
        if self._fp is not None:
            self._fp.close()
            self._fp = None
