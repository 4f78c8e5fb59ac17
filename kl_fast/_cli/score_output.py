"""The output of ``kl-fast score``: a .npy or .csv file written atomically.

The result goes to a temporary file beside the target and is renamed onto
it only when complete: leaving the writer's block by any exception (Ctrl-C
included) before :meth:`commit` deletes the temporary file and leaves an
existing target untouched.  Rows are appended with plain sequential writes
(no mapping, so the output adds nothing to RSS).
"""

import os
import tempfile

import numpy as np

from .score_errors import ScoreInputError

__all__ = ["AtomicNpyWriter", "AtomicCsvWriter", "check_out", "open_writer"]

_SUFFIXES = (".npy", ".csv")


class _AtomicFile:
    """A temporary file beside `path`, renamed onto `path` on commit."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.tmp = None
        self._fp = None

    def _failed(self, exc):
        return ScoreInputError(f"output {self.path!r}: writing failed ({exc.strerror or exc}); "
                               "nothing was written (check the directory's permissions and "
                               "free space)")

    def _open_tmp(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            fd, self.tmp = tempfile.mkstemp(dir=directory, suffix=".tmp",
                                            prefix=f".{os.path.basename(self.path)}.")
            self._fp = os.fdopen(fd, "wb")
        except OSError as exc:
            raise self._failed(exc) from None

    @property
    def is_open(self):
        return self._fp is not None

    def _write_bytes(self, data):
        try:
            self._fp.write(data)
        except OSError as exc:
            raise self._failed(exc) from None

    def _complete(self):
        """None if everything promised was written, else what is missing."""
        return None

    def commit(self):
        missing = self._complete()
        if missing:
            raise RuntimeError(missing)
        try:
            self._fp.flush()
            os.fsync(self._fp.fileno())
            self._fp.close()
            self._fp = None
            # mkstemp makes the file 0600; give it the permissions a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise self._failed(exc) from None
        self.tmp = None

    def abort(self):
        if self._fp is not None:
            self._fp.close()
            self._fp = None
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.abort()      # a no-op after commit
        return False


class AtomicNpyWriter(_AtomicFile):
    """A .npy of a shape and dtype given up front, rows appended in C order."""

    def __init__(self, path):
        super().__init__(path)
        self._expected = 0
        self._written = 0

    def open(self, shape, dtype):
        self._open_tmp()
        dtype = np.dtype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                  "shape": tuple(shape)}
        try:
            np.lib.format.write_array_header_1_0(self._fp, header)
        except OSError as exc:
            raise self._failed(exc) from None
        self._expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize

    def write(self, values):
        data = np.ascontiguousarray(values)
        self._write_bytes(memoryview(data).cast("B"))
        self._written += data.nbytes

    def _complete(self):
        if self._written != self._expected:
            return f"wrote {self._written} bytes of {self._expected}"
        return None


class AtomicCsvWriter(_AtomicFile):
    """A CSV of the results: a header line, then one line per row of the batch.

    A 0-d or 1-D result is one column named after the metric; a 2-D result
    (a batch of shape (A, B)) is A lines of B values named ``metric_0`` ...
    Values are written with the shortest digits that read back as the same
    value of their dtype (a float32 result is not padded to float64's digits).
    """

    def __init__(self, path, name):
        super().__init__(path)
        self._name = name
        self._rows = 0
        self._expected = 0

    def open(self, shape, dtype):
        if len(shape) > 2:
            raise ScoreInputError(f"output {self.path!r}: the result has shape {tuple(shape)}, "
                                  "more than 2 dimensions; a CSV holds rows and columns, "
                                  "write it as .npy")
        self._open_tmp()
        self._float64 = np.dtype(dtype).itemsize > 4
        width = self._width = shape[1] if len(shape) == 2 else 1
        names = [self._name] if len(shape) < 2 else [f"{self._name}_{j}" for j in range(width)]
        self._write_bytes((",".join(names) + "\n").encode())
        self._expected = shape[0] if shape else 1

    def write(self, values):
        rows = np.asarray(values)
        rows = rows.reshape(-1, self._width)
        if self._float64:     # Python floats: repr gives the shortest float64 digits
            text = "".join(",".join(map(repr, row)) + "\n" for row in rows.tolist())
        else:                 # numpy's str of a float32 is the shortest float32 digits
            text = "".join(",".join(map(str, row)) + "\n" for row in rows)
        self._write_bytes(text.encode())
        self._rows += rows.shape[0]

    def _complete(self):
        if self._rows != self._expected:
            return f"wrote {self._rows} rows of {self._expected}"
        return None


class _NoOutput:
    """The writer of a run whose sum or mean is printed, not written (no -o)."""

    is_open = False

    def open(self, shape, dtype):
        pass

    def write(self, values):
        pass

    def commit(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return False


def open_writer(out, metric_name):
    """The writer for `out` (checked by :func:`check_out`; None: nothing is written)."""
    if out is None:
        return _NoOutput()
    if out.lower().endswith(".csv"):
        return AtomicCsvWriter(out, metric_name)
    return AtomicNpyWriter(out)


def check_out(out, paths, reduction):
    """`out` as a path that may be written: not an input, in an existing directory."""
    if out is None:
        if reduction == "none":
            raise ScoreInputError("give the output file with -o OUT.npy (only a --reduction "
                                  "sum or mean can go without one: its value is printed)")
        return None
    out = os.fspath(out)
    if not out.lower().endswith(_SUFFIXES):
        raise ScoreInputError(f"output {out!r} must end in .npy (numpy's format) or .csv "
                              "(text, one line per row)")
    if os.path.isdir(out):
        raise ScoreInputError(f"output {out!r} is a directory; give a file name ending in .npy or "
                              ".csv")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise ScoreInputError(f"output {out!r}: the directory {directory!r} does not exist")
    for path in paths:
        same = (os.path.realpath(out) == os.path.realpath(path)
                or (os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path)))
        if same:
            raise ScoreInputError(f"output {out!r} is the input {path!r}; refusing to "
                                  "overwrite an input, choose another -o")
    return out
