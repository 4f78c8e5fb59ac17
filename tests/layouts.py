"""The same logical array in many memory layouts, for sweeping the input paths.

``make_layout(name, x, tmp_path)`` returns a :class:`Layout`: the object to
pass to kl_fast (``data``), the float64 values it holds (``values``, what the
oracle in ``reference.py`` should see) and whether it must be passed with
``normalize=True`` (integer counts, float16 roundings whose rows no longer
sum to 1 within the float32 tolerance, and lists of float32 values, which are
read as float64 and so held to the float64 tolerance).

Most layouts hold exactly ``x``; three change the values on purpose and say
so in ``values``: "broadcast" repeats the first row, "float16" rounds,
"counts" turns probabilities into small integer counts.
"""

import itertools
from dataclasses import dataclass

import numpy as np

LAYOUTS = (
    "C",
    "F",
    "strided",
    "reversed",
    "big-endian",
    "readonly",
    "memmap",
    "broadcast",
    "list",
    "float16",
    "counts",
)

_file_ids = itertools.count()


@dataclass(frozen=True)
class Layout:
    name: str
    data: object          # what the test passes to kl_fast
    values: np.ndarray    # float64 values of `data` (input to the oracle)
    normalize: bool       # counts / float16 need normalize=True to be valid probabilities


def _every_axis(step):
    return lambda ndim: (slice(None, None, step),) * ndim


def _strided(x):
    big = np.zeros(tuple(2 * n for n in x.shape), dtype=x.dtype)
    big[_every_axis(2)(x.ndim)] = x
    return big[_every_axis(2)(x.ndim)]


def _reversed(x):
    rev = _every_axis(-1)(x.ndim)
    return np.ascontiguousarray(x[rev])[rev]


def _readonly(x):
    y = x.copy()
    y.flags.writeable = False
    return y


def _memmap(x, tmp_path):
    path = tmp_path / f"layout-{next(_file_ids)}.dat"
    mm = np.memmap(path, dtype=x.dtype, mode="w+", shape=x.shape)
    mm[...] = x
    mm.flush()
    del mm
    return np.memmap(path, dtype=x.dtype, mode="r", shape=x.shape)


def _counts(x, scale=8):
    counts = np.rint(np.asarray(x, dtype=np.float64) * scale).astype(np.int64)
    flat = counts.reshape(-1, counts.shape[-1]) if counts.ndim else counts.reshape(1, 1)
    flat[flat.sum(axis=-1) == 0, 0] = 1      # every row keeps a positive sum
    return counts


def make_layout(name, x, tmp_path=None):
    """`x` (an ndarray, ndim >= 1) in layout `name`; see the module docstring."""
    x = np.asarray(x)
    if name == "C":
        data = np.ascontiguousarray(x)
    elif name == "F":
        data = np.asfortranarray(x)
    elif name == "strided":
        data = _strided(x)
    elif name == "reversed":
        data = _reversed(x)
    elif name == "big-endian":
        data = x.astype(x.dtype.newbyteorder(">"))
    elif name == "readonly":
        data = _readonly(x)
    elif name == "memmap":
        if tmp_path is None:
            raise ValueError("the memmap layout needs tmp_path")
        data = _memmap(x, tmp_path)
    elif name == "broadcast":
        first = x[(0,) * (x.ndim - 1)]
        data = np.broadcast_to(first, x.shape)
    elif name == "list":
        data = x.tolist()
    elif name == "float16":
        data = x.astype(np.float16)
    elif name == "counts":
        data = _counts(x)
    else:
        raise ValueError(f"unknown layout {name!r}")
    values = np.array(data, dtype=np.float64)
    # lists are read as float64, where rows rounded to float32 miss the float64 tolerance
    normalize = name in ("float16", "counts") or (name == "list" and x.dtype != np.float64)
    return Layout(name, data, values, normalize)


def layouts(x, tmp_path=None):
    """Every layout of `x` (memmap only when `tmp_path` is given)."""
    for name in LAYOUTS:
        if name == "memmap" and tmp_path is None:
            continue
        yield make_layout(name, x, tmp_path)
