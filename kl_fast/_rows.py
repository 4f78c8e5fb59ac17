"""Shapes: move the reduced axis last, broadcast the batch axes, and hand the
kernels 2-D ``(n_rows, n_cat)`` views -- without copying the data.

Batch axes are merged into one wherever the strides of every input allow it
(always for C-ordered inputs and for broadcast one-against-many).  Layouts
that cannot be merged (e.g. a transposed 3-D input) are walked as several
2-D blocks rather than copied.
"""

import itertools
import numbers
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["RowBatch", "make_rows", "normalize_axis"]


def normalize_axis(axis, ndim, names):
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis {axis} is out of bounds for {names} with {ndim} dimension(s); "
            f"use an axis in [{-ndim}, {ndim - 1}]"
        )
    return axis % ndim


def broadcast_shape(arrays, names):
    try:
        return np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays, strict=False))
        raise ValueError(
            f"shapes do not broadcast: {shapes}; batch axes must match or be 1 "
            "(e.g. p of shape (N, K) against q of shape (K,))"
        ) from None


@dataclass
class RowBatch:
    """Inputs as (*batch, n_cat) views, and how to walk them as 2-D blocks."""

    views: list          # each of shape batch + (n_cat,)
    batch: tuple         # broadcast batch shape
    n_cat: int
    axis: int            # the reduced axis in the broadcast shape (for messages)
    shape: tuple         # the broadcast shape of the inputs

    @property
    def n_rows(self):
        return int(np.prod(self.batch, dtype=np.int64))

    def blocks(self):
        """Yield (first_row, [2-D views]) covering all rows in C order."""
        if self.n_rows == 0:
            return
        dims = [d for d in range(len(self.batch)) if self.batch[d] != 1]
        if not dims:
            yield 0, [_as_2d(v, {}, 1, self.n_cat) for v in self.views]
            return
        # merge batch dims from the innermost outwards while every view allows it
        groups = [[dims[-1]]]
        for d in reversed(dims[:-1]):
            inner = groups[0][0]
            if all(v.strides[d] == v.strides[inner] * self.batch[inner] for v in self.views):
                # stepping dim d == stepping batch[inner] rows of the merged group
                groups[0].insert(0, d)
            else:
                groups.insert(0, [d])
        inner_dims = groups[-1]
        n_inner = int(np.prod([self.batch[d] for d in inner_dims]))
        outer_dims = [d for g in groups[:-1] for d in g]
        outer_ranges = [range(self.batch[d]) for d in outer_dims]
        for k, outer in enumerate(itertools.product(*outer_ranges)):
            index = dict(zip(outer_dims, outer, strict=False))
            yield k * n_inner, [
                _as_2d(v, index, n_inner, self.n_cat, inner_dims) for v in self.views
            ]

    def position(self, row, col, arg_shape):
        """Index of (row, col) in an input of shape `arg_shape` (broadcast axes -> 0)."""
        idx = list(np.unravel_index(row, self.batch)) if self.batch else []
        idx.insert(self.axis, col)
        offset = len(self.shape) - len(arg_shape)
        own = [0 if arg_shape[d] == 1 else int(idx[d + offset]) for d in range(len(arg_shape))]
        return tuple(own)


def _as_2d(view, index, n_rows, n_cat, inner_dims=()):
    """(n_rows, n_cat) view of `view` at outer `index`; rows run over the merged `inner_dims`."""
    key = tuple(
        index[d] if d in index else (slice(None) if d in inner_dims else 0)
        for d in range(view.ndim - 1)
    )
    sub = view[key]
    row_stride = view.strides[inner_dims[-1]] if inner_dims else 0
    return as_strided(sub, shape=(n_rows, n_cat), strides=(row_stride, view.strides[-1]),
                      writeable=False)


def make_rows(arrays, names, axis):
    """Broadcast `arrays` and move `axis` last: a RowBatch of (*batch, n_cat) views."""
    shape = broadcast_shape(arrays, names)
    label = " and ".join(names)
    if len(shape) == 0:
        raise ValueError(f"{label} are 0-d; they need an axis of categories (e.g. shape (K,))")
    ax = normalize_axis(axis, len(shape), label)
    n_cat = shape[ax]
    if n_cat == 0:
        raise ValueError(
            f"the category axis {axis} of {label} (shape {shape}) is empty; "
            "a distribution needs at least one category"
        )
    views = [np.moveaxis(np.broadcast_to(a, shape), ax, -1) for a in arrays]
    return RowBatch(views, views[0].shape[:-1], n_cat, ax, shape)
