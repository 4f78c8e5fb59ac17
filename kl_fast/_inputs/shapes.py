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

__all__ = ["RowBatch", "make_rows", "normalize_axis", "check_category_length", "check_axes_pair"]


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


def check_category_length(arg_shape, name, ax, shape, axis):
    """ValueError unless an input of `arg_shape` spans the whole category axis `ax`
    of the broadcast `shape` (it must not be broadcast along it)."""
    n_cat = shape[ax]
    own = ax - (len(shape) - len(arg_shape))
    if own >= 0 and arg_shape[own] == n_cat:
        return
    if own < 0:
        raise ValueError(
            f"{name} of shape {tuple(arg_shape)} has no category axis {axis}: aligned with the "
            f"other input(s) (broadcast shape {shape}) it would be repeated along the "
            f"{n_cat} categories. A category axis never broadcasts: give {name} the category "
            f"axis, or pass the axis it has as `axis`"
        )
    raise ValueError(
        f"{name} has {arg_shape[own]} categor{'y' if arg_shape[own] == 1 else 'ies'} along "
        f"axis {axis} (shape {tuple(arg_shape)}) but the other input(s) have {n_cat} "
        f"(broadcast shape {shape}). A category axis never broadcasts: both inputs need the "
        "same number of categories along `axis`"
    )


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
        if len(self.batch) == 1:
            # (n_rows, n_cat) views already: the one block (the common call, ~10 us less)
            yield 0, self.views
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


def check_axes_pair(axes, ndim):
    """The two distinct axes (X, Y) of a joint table of `ndim` dimensions, as
    non-negative ints; TypeError/ValueError naming `axes` otherwise.  (Shared by
    mutual_information and its dask path.)"""
    if (not isinstance(axes, (tuple, list)) or len(axes) != 2
            or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool)
                       for a in axes)):
        raise TypeError(f"axes must be a pair of ints (the axes of X and Y), got {axes!r}")
    if ndim < 2:
        raise ValueError(f"joint has {ndim} dimension(s); a joint table needs two axes "
                         "(e.g. shape (nx, ny))")
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} in axes={tuple(axes)} is out of bounds for joint with "
                             f"{ndim} dimensions; use axes in [{-ndim}, {ndim - 1}]")
        out.append(int(a) % ndim)
    if out[0] == out[1]:
        raise ValueError(f"axes={tuple(axes)} names the same axis twice; X and Y need two "
                         "distinct axes")
    return tuple(out)


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


def make_rows(arrays, names, axis, fixed=None):
    """Broadcast `arrays` and move `axis` last: a RowBatch of (*batch, n_cat) views.

    The arrays listed in `fixed` (indices; default all of them) are
    distributions along `axis`: their category axis must have the full length,
    never broadcast from 1 (a (N, 1) array against (N, K) is a mistake --
    labels with a stray axis, or the wrong axis -- not K copies of a value).
    Parameters of elementwise quantities (Gaussians, Bernoullis) pass ``()``.
    """
    shape = broadcast_shape(arrays, names)
    label = " and ".join(names)
    if len(shape) == 0:
        raise ValueError(f"{label} are 0-d; they need an axis of categories (e.g. shape (K,))")
    ax = normalize_axis(axis, len(shape), label)
    n_cat = shape[ax]
    for i in range(len(arrays)) if fixed is None else fixed:
        check_category_length(arrays[i].shape, names[i], ax, shape, axis)
    if n_cat == 0:
        raise ValueError(
            f"the category axis {axis} of {label} (shape {shape}) is empty; "
            "a distribution needs at least one category"
        )
    if ax == len(shape) - 1 and all(a.shape == shape for a in arrays):
        views = list(arrays)     # nothing to broadcast or move (the common call, ~10 us less)
    else:
        views = [np.moveaxis(np.broadcast_to(a, shape), ax, -1) for a in arrays]
    return RowBatch(views, shape[:ax] + shape[ax + 1:], n_cat, ax, shape)
