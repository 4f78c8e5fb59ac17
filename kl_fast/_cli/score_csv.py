"""CSV input of ``kl-fast score``: numbers as text, read in row chunks.

Two passes, both streaming (memory: a few 1 MiB blocks and one chunk):

1. a scan (:func:`_scan`) finds the header, the number of columns (from the
   header or the first data row) and the number of rows, counting newlines
   in 1 MiB binary blocks at C speed; for a one-column file it also tells
   whether every cell is an integer (class labels);
2. 1 MiB blocks of whole lines are parsed by ``numpy.loadtxt`` (numpy's C
   parser) and their rows handed out in chunks.  Only when it fails are the
   block's lines parsed again in Python, to name the line and column of the
   first problem.

Blank (whitespace-only) lines are skipped.  A first row whose cells are all
text is a header; see :func:`_is_header` for the cases that are refused
rather than guessed.
"""

import csv
import io
import re

import numpy as np

from .score_errors import ScoreInputError
from .score_table import TableSource

__all__ = ["CsvSource", "check_delimiter", "HEADER_MODES"]

HEADER_MODES = ("auto", "yes", "no")
_BOM = b"\xef\xbb\xbf"
_BLOCK = 1 << 20     # text blocks: 1 MiB (a few copies of one are alive at a time)
_BLANK_LINE = re.compile(rb"(?m)^[ \t\r\f\v]*\n")
_SPACE = np.zeros(256, dtype=bool)
_SPACE[list(b" \t\r\n\f\v")] = True
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


def _may_have_blank_lines(block):
    """False when no line of `block` can be blank: none starts with whitespace.

    A vectorized look at the byte after each newline; the regex that finds
    blank lines for sure runs ~20x slower than this and only runs when it says so.
    """
    data = np.frombuffer(block, dtype=np.uint8)
    starts = np.flatnonzero(data == 10) + 1
    starts = starts[starts < data.size]
    return bool(data.size and (_SPACE[data[0]] or _SPACE[data[starts]].any()))


def _count_rows(block):
    """Non-blank lines in `block`, a run of whole lines each ending in a newline."""
    n = block.count(b"\n")
    if _may_have_blank_lines(block):
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
        self._tail = b""         # the partial last line of the block read last
        self._parsed = []        # (rows, line of each row or of the first) of the parsed
        self._parsed_at = 0      # blocks not yet handed out; the first row still to go
        #: the file's line number of the first row last handed out (for error messages)
        self.chunk_first_line = None

    def use_float(self):
        """Read an integer column as float64 (for a use other than class labels)."""
        self._set_dtype(np.float64)

    def _read_rows(self, n):
        """The next `n` rows, assembled from the parsed blocks."""
        parts, have = [], 0
        while have < n:
            if not self._parsed:
                self._parse_block()
                continue
            block, lines = self._parsed[0]
            if not parts:
                self.chunk_first_line = (lines + self._parsed_at if isinstance(lines, int)
                                         else int(lines[self._parsed_at]))
            take = min(n - have, block.shape[0] - self._parsed_at)
            parts.append(block[self._parsed_at:self._parsed_at + take])
            have += take
            self._parsed_at += take
            if self._parsed_at == block.shape[0]:
                self._parsed.pop(0)
                self._parsed_at = 0
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return rows.reshape((n,) + self.shape[1:])

    def _parse_block(self):
        """Parse the next block of whole lines (about 1 MiB) into `self._parsed`."""
        if self._fp is None:
            self._fp = open(self._path, "rb")     # closed by close()
            self._fp.seek(self._offset)
        raw = self._fp.read(_BLOCK)
        block = self._tail + raw
        if raw:
            cut = block.rfind(b"\n") + 1
            if cut == 0:                     # one line longer than a block: read on
                self._tail = block
                return
            block, self._tail = block[:cut], block[cut:]
        else:
            self._tail = b""
        first_line = self._line
        self._line += block.count(b"\n")
        data, lines = block, first_line
        if _may_have_blank_lines(block):
            data = _BLANK_LINE.sub(b"", block)
            lines = [first_line + i for i, x in enumerate(block.splitlines()) if x.strip()]
        if not data.strip():
            if not raw:
                raise ScoreInputError(
                    f"{self.label} ended after {self._position:,} rows but held "
                    f"{self.shape[0]:,} when it was first read; it changed while being "
                    "read, run again")
            return
        try:
            arr = np.loadtxt(io.StringIO(data.decode("utf-8")), delimiter=self._delimiter,
                             comments=None, quotechar='"', dtype=self.dtype, ndmin=2)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._diagnose(block.splitlines(), first_line, exc) from None
        if arr.shape[1] != self.n_columns:
            raise self._diagnose(block.splitlines(), first_line, None)
        self._parsed.append((arr, lines))

    def _diagnose(self, lines, first_line, exc):
        """The first bad line of a chunk numpy could not read, as a one-line error."""
        integer = self.dtype.kind == "i"
        for line_no, raw in enumerate(lines, start=first_line):
            if not raw or raw.isspace():
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
                    (int if integer else float)(cell)
                except ValueError:
                    what = ("an empty cell (a missing value)" if not cell.strip()
                            else f"{cell.strip()!r} is not a number")
                    return ScoreInputError(f"{where}, column {column}: {what}; every cell "
                                           "must be a number")
        last = first_line + len(lines) - 1
        reason = exc if exc is not None else "the rows do not all have the same length"
        return ScoreInputError(f"{self.label}, lines {first_line}-{last}: {reason}")

    def close(self):
        self._parsed = []
        if self._fp is not None:
            self._fp.close()
            self._fp = None
