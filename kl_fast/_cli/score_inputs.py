"""Open an input of ``kl-fast score`` and read it in slabs.

:func:`open_input` tells the format by the first bytes (``.npy``, ``.npz``,
parquet) or, for text, by the name (``.csv``, ``.tsv``, ``.txt``: see
:mod:`kl_fast._cli.score_csv`; parquet: :mod:`kl_fast._cli.score_parquet`).  This
module reads ``.npy`` files and ``.npz`` members.

Memory stays bounded whatever the file size: nothing here keeps the whole
file mapped or in memory.  A slab (rows ``start:stop`` along one axis) is

- for a ``.npy`` file or an uncompressed ``.npz`` member whose slab is one
  contiguous byte range: a fresh read-only ``mmap`` of just that window,
  unmapped as soon as the caller drops the array (mapped file pages count in
  the resident set while mapped, so one map of the whole file walked from
  start to end would grow RSS to the file size);
- for a slab that is not contiguous (category axis first, Fortran order):
  ``os.preadv`` of each contiguous run into one reused buffer;
- for a compressed ``.npz`` member: a sequential stream (``zipfile``), read
  in order into one reused buffer; it cannot seek, so slabs must come in
  order and be contiguous.

Every problem with a file is a :class:`ScoreInputError` naming the file, the
problem and the fix; the CLI prints it as one line.
"""

import math
import mmap
import os
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from .score_errors import ScoreInputError, dtype_problem

__all__ = ["ScoreInputError", "open_input"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_EMPTY_MAGIC = b"PK\x05\x06"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")   # zip local file header, 30 bytes
_MAX_HEADER = 1 << 20    # numpy allows 10,000 header bytes by default; shapes stay far below
# what a damaged compressed member raises while it is decompressed
_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, zlib.error)


class _Layout:
    """Shape, dtype and storage order of an array as stored on disk."""

    def __init__(self, shape, dtype, fortran):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.fortran = bool(fortran) and len(self.shape) > 1
        # Python ints: a damaged header's huge shape must not wrap around in int64
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize
        # storage shape: a Fortran array of shape S is the C array of shape reversed(S)
        self.storage = self.shape[::-1] if self.fortran else self.shape

    def storage_axis(self, axis):
        return len(self.shape) - 1 - axis if self.fortran else axis

    def describe(self):
        order = ", Fortran order" if self.fortran else ""
        return f"{self.shape} {self.dtype}{order}"


def _read_npy_header(fp, label):
    """(layout, header length) from a file object positioned at the ``.npy`` magic."""
    start = fp.tell()
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                fp, max_header_size=_MAX_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                fp, max_header_size=_MAX_HEADER)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    except (ValueError, OSError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        # numpy's header parser tokenizes the header text: a damaged header can
        # raise tokenize.TokenError (not a SyntaxError), e.g. an unclosed bracket
        raise ScoreInputError(f"{label}: not a readable .npy array ({exc}); "
                              "write it with numpy.save") from None
    if any(n < 0 for n in shape):
        raise ScoreInputError(f"{label}: the .npy header has a negative dimension {shape}; "
                              "the file is damaged, write it again")
    return _Layout(shape, dtype, fortran), fp.tell() - start


class _Source:
    """One input array: its layout, where its bytes are, and slab reads."""

    def __init__(self, label, layout):
        self.label = label
        self.layout = layout
        self.shape = layout.shape
        self.dtype = layout.dtype
        self.nbytes = layout.nbytes
        self.read_bytes = layout.nbytes
        self._buffer = None

    def check_dtype(self, allow_int):
        problem = dtype_problem(self.dtype, allow_int)
        if problem:
            raise ScoreInputError(f"{self.label} {problem}")

    def _scratch(self, nbytes):
        """A reused byte buffer of at least `nbytes` (one per source, so bounded)."""
        if self._buffer is None or self._buffer.size < nbytes:
            self._buffer = None
            self._buffer = np.empty(max(nbytes, 1), dtype=np.uint8)
        return self._buffer[:nbytes]

    def read_slab(self, axis, start, stop):
        """Rows ``start:stop`` along logical `axis` as an array of the logical layout.

        The array may be a view of a mapped window or of a reused buffer: use
        it before the next call and drop it.
        """
        lay = self.layout
        s_axis = lay.storage_axis(axis)
        storage = lay.storage
        shape = storage[:s_axis] + (stop - start,) + storage[s_axis + 1:]
        arr = self._read_storage_slab(s_axis, start, stop, shape)
        return arr.T if lay.fortran else arr

    def read_all(self):
        """A copy of the whole array (an input that broadcasts and is not sliced)."""
        storage = self.layout.storage
        if not storage:
            arr = self._read_storage_slab(None, 0, 1, ())
        else:
            arr = self._read_storage_slab(0, 0, storage[0], storage)
        whole = np.array(arr.T if self.layout.fortran else arr, copy=True)
        self._buffer = None
        return whole

    def close(self):
        self._buffer = None


class _FileSource(_Source):
    """Array bytes at a fixed offset of a plain file: .npy, or a stored .npz member."""

    def __init__(self, label, layout, path, data_offset):
        super().__init__(label, layout)
        self._path = path
        self._offset = data_offset
        self._fd = os.open(path, os.O_RDONLY)

    def _read_storage_slab(self, s_axis, start, stop, shape):
        item = self.dtype.itemsize
        if s_axis is None:
            n_runs, run, stride, first = 1, item, 0, 0
        else:
            storage = self.layout.storage
            inner = int(np.prod(storage[s_axis + 1:], dtype=np.int64)) * item
            n_runs = int(np.prod(storage[:s_axis], dtype=np.int64))
            run = (stop - start) * inner
            stride = storage[s_axis] * inner
            first = start * inner
        if n_runs * run == 0:
            return np.empty(shape, dtype=self.dtype)
        if n_runs == 1:
            return self._map_window(self._offset + first, run, shape)
        buf = self._scratch(n_runs * run)
        for i in range(n_runs):
            self._pread_into(buf[i * run:(i + 1) * run], self._offset + i * stride + first)
        return buf.view(self.dtype).reshape(shape)

    def _map_window(self, offset, length, shape):
        """A read-only mapping of just these bytes; unmapped when the array is dropped."""
        aligned = offset - offset % mmap.ALLOCATIONGRANULARITY
        # no MAP_POPULATE: pre-faulting the window measured ~20% slower than
        # letting the kernel's fault-around map the pages as the kernel reads them
        window = mmap.mmap(self._fd, length + (offset - aligned), flags=mmap.MAP_SHARED,
                           prot=mmap.PROT_READ, offset=aligned)
        if hasattr(window, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
            window.madvise(mmap.MADV_SEQUENTIAL)     # read ahead; it is read once, in order
        arr = np.frombuffer(window, dtype=self.dtype, count=length // self.dtype.itemsize,
                            offset=offset - aligned)
        return arr.reshape(shape)

    def _pread_into(self, view, offset):
        got = 0
        while got < view.size:
            n = os.preadv(self._fd, [view[got:]], offset + got)
            if n == 0:
                raise ScoreInputError(f"{self.label}: the file ended early (truncated while "
                                      "being read?); write it again")
            got += n

    def close(self):
        super().close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _StreamSource(_Source):
    """A compressed .npz member, decompressed in order (it cannot seek)."""

    def __init__(self, label, layout, archive, stream):
        super().__init__(label, layout)
        self._archive = archive
        self._stream = stream
        self._position = 0       # the next storage row the stream will deliver

    def _read_storage_slab(self, s_axis, start, stop, shape):
        item = self.dtype.itemsize
        if s_axis is None:
            nbytes = item
        else:
            storage = self.layout.storage
            if int(np.prod(storage[:s_axis], dtype=np.int64)) > 1:
                raise ScoreInputError(
                    f"{self.label} is a compressed .npz member whose rows are not contiguous "
                    "(category axis first or Fortran order), so it cannot be streamed; save "
                    "it uncompressed (numpy.savez) or as .npy")
            if start != self._position:
                raise ScoreInputError(f"{self.label}: a compressed member is read in order "
                                      f"(asked for row {start}, at {self._position})")
            nbytes = (stop - start) * int(np.prod(storage[s_axis + 1:], dtype=np.int64)) * item
            self._position = stop
        buf = self._scratch(nbytes)
        got = 0
        try:
            while got < nbytes:
                n = self._stream.readinto(memoryview(buf)[got:])
                if not n:
                    break
                got += n
        except _DAMAGED as exc:
            raise ScoreInputError(f"{self.label}: the compressed data is damaged ({exc}); "
                                  "write the file again") from None
        if got < nbytes:
            raise ScoreInputError(f"{self.label} is truncated: the header promises "
                                  f"{self.layout.describe()} but the data ends early; write "
                                  "the file again")
        return buf.view(self.dtype).reshape(shape)

    def close(self):
        super().close()
        self._stream.close()
        self._archive.close()


def _member_name(names, key, label, strict=False):
    """The member of an .npz that `key` names (or the only one, unless `strict`)."""
    arrays = {n[:-4] if n.endswith(".npy") else n: n for n in names}
    if key is not None and (key in arrays or len(arrays) != 1 or strict):
        # --key names the array in every .npz input; one holding a single array
        # needs no name (e.g. labels.npz beside predictions.npz with --key logits)
        if key in arrays:
            return arrays[key]
        flag = "--p-key/--q-key" if strict else "--key"
        raise ScoreInputError(f"{label} has no array {key!r} ({flag}); it holds "
                              f"{sorted(arrays)}")
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if not arrays:
        raise ScoreInputError(f"{label} is an empty .npz archive (no arrays)")
    raise ScoreInputError(f"{label} holds {len(arrays)} arrays {sorted(arrays)}; "
                          "choose one with --key NAME, or --p-key/--q-key for one input")


def _open_npz(path, key, strict):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ScoreInputError(f"{path}: not a readable .npz archive ({exc}); it may be "
                              "truncated, write it again") from None
    try:
        name = _member_name(archive.namelist(), key, path, strict)
        label = f"{path}[{name[:-4] if name.endswith('.npy') else name}]"
        info = archive.getinfo(name)
        if info.flag_bits & 0x1:
            raise ScoreInputError(f"{label} is encrypted; decrypt it first")
        if info.compress_type == zipfile.ZIP_STORED:
            source = _stored_member(path, info, label)
            archive.close()
            return source
        try:
            stream = archive.open(info)
            layout, _ = _read_npy_header(stream, label)
        except _DAMAGED as exc:
            raise ScoreInputError(f"{label}: the compressed data is damaged ({exc}); write "
                                  "the file again") from None
        return _StreamSource(label, layout, archive, stream)
    except BaseException:
        archive.close()
        raise


def _stored_member(path, info, label):
    """An uncompressed member: a plain byte range of the zip file."""
    with open(path, "rb") as fp:
        fp.seek(info.header_offset)
        raw = fp.read(_LOCAL_HEADER.size)
        if len(raw) < _LOCAL_HEADER.size:
            raise ScoreInputError(f"{label} is truncated (the archive ends inside it)")
        sig, *_, name_len, extra_len = _LOCAL_HEADER.unpack(raw)
        if sig != _ZIP_MAGIC:
            raise ScoreInputError(f"{label}: damaged .npz archive (bad member header)")
        member_start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        fp.seek(member_start)
        layout, header_len = _read_npy_header(fp, label)
    if info.file_size < header_len + layout.nbytes:
        raise ScoreInputError(
            f"{label} is truncated: its header promises {layout.describe()} "
            f"({header_len + layout.nbytes:,} bytes) but the member holds "
            f"{info.file_size:,}; write the file again")
    _check_size(path, label, member_start + header_len, layout)
    return _FileSource(label, layout, path, member_start + header_len)


def _check_size(path, label, data_offset, layout):
    size = os.path.getsize(path)
    if size < data_offset + layout.nbytes:
        raise ScoreInputError(
            f"{label} is truncated: its header promises {layout.describe()} "
            f"({layout.nbytes:,} bytes of data) but the file holds {max(size - data_offset, 0):,}; "
            "write the file again")


_PARQUET_MAGIC = b"PAR1"
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt")


def open_input(path, key=None, *, strict_key=False, delimiter=None, header="auto"):
    """Open the array in `path` for slab reads.

    Parameters
    ----------
    path : str
        A .npy file, an .npz archive, a parquet file (told by their first
        bytes) or a CSV file (a name ending in .csv, .tsv or .txt).
    key : str, optional
        The .npz member or parquet column to read.  Unless `strict_key`, a
        file with a single array or column ignores a key it does not hold
        (the shared ``--key``); a CSV file ignores it.
    strict_key : bool
        `key` was given for this input alone (``--p-key``/``--q-key``): it
        must exist.
    delimiter, header
        CSV only: see :class:`kl_fast._cli.score_csv.CsvSource`.

    Raises
    ------
    ScoreInputError
        A missing, unreadable, truncated or unknown file, an .npz without a
        unique array, a key that names nothing, bad CSV text.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ScoreInputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ScoreInputError(f"{path} is a directory; give a .npy, .npz, .parquet or .csv file")
    try:
        with open(path, "rb") as fp:
            magic = fp.read(6)
            if magic == _NPY_MAGIC:
                fp.seek(0)
                layout, header_len = _read_npy_header(fp, path)
                _check_size(path, path, header_len, layout)
                return _FileSource(path, layout, path, header_len)
    except PermissionError:
        raise ScoreInputError(f"{path}: permission denied") from None
    if magic[:4] in (_ZIP_MAGIC, _ZIP_EMPTY_MAGIC):
        return _open_npz(path, key, strict_key)
    size = os.path.getsize(path)
    if magic[:4] == _PARQUET_MAGIC:
        from .score_parquet import ParquetSource

        return ParquetSource(path, key, strict_key, file_bytes=size)
    if path.lower().endswith(_TEXT_SUFFIXES):
        if strict_key and key is not None:
            raise ScoreInputError(f"{path} is a CSV file, read whole; --p-key/--q-key name an "
                                  "array of an .npz or a column of a .parquet file")
        from .score_csv import CsvSource

        return CsvSource(path, delimiter, header, file_bytes=size)
    raise ScoreInputError(f"{path} is not a .npy, .npz or .parquet file (it does not start with "
                          "their magic bytes) and its name does not end in .csv, .tsv or .txt; "
                          "save arrays with numpy.save/savez, or name a text file .csv")
